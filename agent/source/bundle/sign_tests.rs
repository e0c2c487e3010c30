//! Signatures made by the real `ssh-keygen -Y sign` (OpenSSH 9.2) over `MESSAGE`.

use super::*;
use crate::source::bundle::allowed_signers::{glob, parse_time, pattern_list_matches};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDxXsEsx9Ku3isSzruq4hQf5u0OLwCbemg6wP9oHxb7O test";
const OTHER: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO0z+q4Z5G4dFEZZLo6U+0t8woZ4Vt1pSmJQ+YvYsgHU other";
const MESSAGE: &[u8] = b"hello bundle\n";
const SIG: &str = "-----BEGIN SSH SIGNATURE-----
U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgPFewSzH0q7eKxLOu6riFB/m7Q4
vAJt6aDrA/2gfFvs4AAAANaGF3c2VyLWJ1bmRsZQAAAAAAAAAGc2hhNTEyAAAAUwAAAAtz
c2gtZWQyNTUxOQAAAEBL/7ZAgZ6nLzOoGlmBuBeW+efbJqCdJmoBaq3/PuSEgYdKSY78Po
52k/f3zhxGk5+fwuy0pdPzyrhc5ebEoUIF
-----END SSH SIGNATURE-----
";
/// The same key and message, namespace `git`.
const GIT_SIG: &str = "-----BEGIN SSH SIGNATURE-----
U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgPFewSzH0q7eKxLOu6riFB/m7Q4
vAJt6aDrA/2gfFvs4AAAADZ2l0AAAAAAAAAAZzaGE1MTIAAABTAAAAC3NzaC1lZDI1NTE5
AAAAQLlrBoB3A/T3tG1iNvFrpyd1EQdzSUOH6cPxlU80n9ACSopmfTJO1Kgg157PDVtcE7
E7VVC05XUhB8G7y+615As=
-----END SSH SIGNATURE-----
";

fn verify(signers: &str, sig: &str, msg: &[u8]) -> Result<BundleSigner, SignError> {
    TrustedKeys::parse(signers)
        .unwrap()
        .verify(Path::new("b.bundle.sig"), sig.as_bytes(), msg)
}

#[test]
fn a_real_ssh_keygen_signature_verifies() {
    let signer = verify(&format!("ops@example.com {KEY}"), SIG, MESSAGE).unwrap();
    assert_eq!(signer.principals, "ops@example.com");
    assert!(signer.fingerprint.starts_with("SHA256:"), "{signer}");
}

#[test]
fn changed_data_wrong_key_and_wrong_namespace_are_refused() {
    let trusted = format!("ops {KEY}");
    let err = verify(&trusted, SIG, b"hello bundle?\n").unwrap_err();
    assert!(matches!(err, SignError::Mismatch { .. }), "{err}");
    let err = verify(&format!("ops {OTHER}"), SIG, MESSAGE).unwrap_err();
    assert!(matches!(err, SignError::Untrusted { .. }), "{err}");
    let err = verify(&trusted, GIT_SIG, MESSAGE).unwrap_err();
    assert!(err.to_string().contains("namespace \"git\""), "{err}");
    let err = verify(&trusted, "-----BEGIN SSH SIGNATURE-----\nAAAA\n", MESSAGE).unwrap_err();
    assert!(matches!(err, SignError::Malformed { .. }), "{err}");
}

#[test]
fn namespaces_option_limits_what_a_key_may_sign() {
    let only_git = format!("ops namespaces=\"git,file\" {KEY}");
    assert!(TrustedKeys::parse(&only_git).unwrap().keys.is_empty());
    let err = verify(&only_git, SIG, MESSAGE).unwrap_err();
    assert!(matches!(err, SignError::Untrusted { .. }), "{err}");
    for ok in [
        "namespaces=\"hawser-bundle\"",
        "namespaces=\"git,hawser-*\"",
        "NAMESPACES=\"*\"",
    ] {
        verify(&format!("ops {ok} {KEY}"), SIG, MESSAGE).unwrap();
    }
    let negated = format!("ops namespaces=\"*,!hawser-bundle\" {KEY}");
    assert!(TrustedKeys::parse(&negated).unwrap().keys.is_empty());
}

#[test]
fn allowed_signers_syntax() {
    let text = format!(
        "# comment\n\n\"a b\",c@d {KEY}\nx@y ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7 rsa\n"
    );
    let keys = TrustedKeys::parse(&text).unwrap();
    assert_eq!(keys.keys.len(), 1, "the broken rsa line is skipped");
    assert_eq!(keys.keys[0].principals, "\"a b\",c@d");
    for (bad, want) in [
        (format!("p cert-authority {KEY}"), "not supported"),
        (format!("p valid-before=\"2030\" {KEY}"), "not YYYYMMDD"),
        (format!("p namespaces=x {KEY}"), "quoted"),
        (format!("p namespaces=\"x {KEY}"), "unterminated"),
        ("p".to_string(), "no key"),
        ("p ssh-ed25519".to_string(), "no key data"),
    ] {
        let err = TrustedKeys::parse(&bad).unwrap_err().to_string();
        assert!(err.contains(want) && err.contains("line 1"), "{bad}: {err}");
    }
}

#[test]
fn globs() {
    assert!(glob(b"*", b""));
    assert!(glob(b"a*c?e", b"abbbcde"));
    assert!(!glob(b"a*c", b"abd"));
    assert!(glob(b"**a**", b"xxaxx"));
    assert!(pattern_list_matches("git, hawser-bundle", "hawser-bundle"));
    assert!(!pattern_list_matches("", "hawser-bundle"));
}

#[test]
fn sig_paths_append_dot_sig() {
    assert_eq!(
        sig_path(Path::new("/in/a.bundle")),
        Path::new("/in/a.bundle.sig")
    );
}

#[test]
fn mutated_allowed_signers_never_panic() {
    let base = format!("\"a b\",c namespaces=\"git,hawser-*\" {KEY}\n# c\nx {OTHER}\n");
    let chars: Vec<char> = base.chars().collect();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let mut text = chars.clone();
        for _ in 0..=(next() % 3) {
            if text.is_empty() {
                break;
            }
            let at = (next() as usize) % text.len();
            match next() % 3 {
                0 => text[at] = ['"', ',', '=', ' ', '\n', 'é', '!'][(next() % 7) as usize],
                1 => {
                    text.remove(at);
                }
                _ => text.truncate(at.max(1)),
            }
        }
        let text: String = text.into_iter().collect();
        if let Err(e) = TrustedKeys::parse(&text) {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
}

#[test]
fn validity_windows_are_honoured_at_the_time_given() {
    assert_eq!(parse_time("19700101").unwrap(), 0);
    assert_eq!(parse_time("20240229123456Z").unwrap(), 1_709_210_096);
    assert!(parse_time("20241301").is_err());
    let keys = TrustedKeys::parse(&format!(
        "ops valid-after=\"20230101\",valid-before=\"20240101Z\" {KEY}"
    ))
    .unwrap();
    let at = |t: i64| keys.check(SIG.as_bytes(), MESSAGE, t);
    assert!(at(1_680_000_000).is_ok());
    assert!(matches!(at(1_600_000_000), Err(Refusal::NotValidAt(_))));
    assert!(matches!(at(1_800_000_000), Err(Refusal::NotValidAt(_))));
    // Bundles take the current time: this window has passed.
    let err = verify(
        &format!("ops valid-before=\"20240101\" {KEY}"),
        SIG,
        MESSAGE,
    )
    .unwrap_err();
    assert!(matches!(err, SignError::Untrusted { .. }), "{err}");
}
