//! Keys and signatures made by the real GnuPG 2.2 (`testdata/`): an RSA 3072 key that
//! signs with its primary, and an Ed25519 certification-only primary whose signing
//! subkey made the signature.

use super::*;

const PAYLOAD: &[u8] = include_bytes!("testdata/payload");
const RSA_KEY: &[u8] = include_bytes!("testdata/rsa.asc");
const RSA_SIG: &[u8] = include_bytes!("testdata/payload.rsa.asc");
const ED_KEY: &[u8] = include_bytes!("testdata/ed.asc");
const ED_SIG: &[u8] = include_bytes!("testdata/payload.ed.asc");
const NOW: u64 = 1_800_000_000;

fn both() -> Keyring {
    let mut text = RSA_KEY.to_vec();
    text.extend(ED_KEY);
    Keyring::parse(&text).unwrap()
}

#[test]
fn real_rsa_and_ed25519_subkey_signatures_verify() {
    let keys = both();
    assert_eq!(keys.fingerprints().len(), 2);
    let rsa = keys.verify(PAYLOAD, RSA_SIG, NOW).unwrap();
    assert_eq!(rsa.user_id, "RSA Signer <rsa@example.com>");
    assert_eq!(rsa.fingerprint, rsa.primary, "the rsa primary signs");
    let ed = keys.verify(PAYLOAD, ED_SIG, NOW).unwrap();
    assert_eq!(ed.user_id, "Ed Signer <ed@example.com>");
    assert_ne!(ed.fingerprint, ed.primary, "the ed25519 subkey signs");
}

#[test]
fn changed_payload_and_unknown_keys_are_refused() {
    let keys = both();
    let mut changed = PAYLOAD.to_vec();
    changed[10] ^= 1;
    for sig in [RSA_SIG, ED_SIG] {
        let err = keys.verify(&changed, sig, NOW).unwrap_err();
        assert!(matches!(err, PgpError::Bad { .. }), "{err}");
    }
    let only_rsa = Keyring::parse(RSA_KEY).unwrap();
    let err = only_rsa.verify(PAYLOAD, ED_SIG, NOW).unwrap_err();
    assert!(matches!(err, PgpError::Untrusted { .. }), "{err}");
}

#[test]
fn a_subkey_without_its_binding_does_not_count() {
    // Drop every signature after the subkey: the subkey is then unbound.
    let block = &armor::decode_all(ED_KEY, "PUBLIC KEY BLOCK").unwrap()[0];
    let packets = packet::packets(block).unwrap();
    let sub = packets
        .iter()
        .rposition(|p| p.tag == packet::TAG_PUBLIC_SUBKEY)
        .unwrap();
    let mut cert_packets = packets[..=sub].to_vec();
    cert_packets.truncate(sub + 1);
    let c = cert(&cert_packets).unwrap().unwrap();
    assert!(c.subkeys.is_empty());
    // The primary alone is certification-only: nothing may sign.
    assert!(!c.primary.can_sign);
}

#[test]
fn a_key_file_without_keys_is_an_error() {
    assert!(matches!(
        Keyring::parse(b"nothing here"),
        Err(KeyringError::Armor(_))
    ));
    let err = Keyring::parse(RSA_SIG).unwrap_err();
    assert!(err.to_string().contains("PUBLIC KEY BLOCK"), "{err}");
}
