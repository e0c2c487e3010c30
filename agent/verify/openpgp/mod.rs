//! OpenPGP signature verification, the small subset git commit signing needs
//! (RFC 9580, v4 keys and signatures): ASCII armor, packet framing, public keys and
//! subkeys with their self-signatures (user id certifications, subkey bindings with
//! the signing subkey's back-signature, key expiration, key and subkey revocations),
//! and detached binary/text signatures by RSA or Ed25519 keys over SHA-2.
//!
//! In: `--trusted-gpg-keys` (one or more `gpg --armor --export` blocks) once, then
//! a payload and its armored signature per commit or tag. Out: the [`PgpSigner`], or
//! why not ([`PgpError`]). Only what a key's own valid self-signatures say is
//! believed; third-party certifications are ignored (trust is the file itself).
//! Written here rather than taking the `pgp` crate: that crate adds 99 crates to
//! hawser's tree for signing, encryption and ciphers hawser never uses; this subset
//! over `rsa`, `ed25519-dalek` and `sha2` adds 15.

mod armor;
mod crypto;
pub mod packet;

#[cfg(test)]
mod fuzz;

use sha1_checked::{Digest, Sha1};

use packet::{PacketError, PublicKey, Signature};

pub use armor::ArmorError;

/// Key flag: may sign data (RFC 9580 §5.2.3.29).
const FLAG_SIGN: u8 = 0x02;

/// Why the keys file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error(transparent)]
    Armor(#[from] ArmorError),
    #[error("key block {block}: {source}")]
    Packet {
        block: usize,
        #[source]
        source: PacketError,
    },
    #[error("no usable signing key (v4 RSA 2048-4096 or Ed25519 with a valid self-signed user id)")]
    NoKeys,
}

/// Why a signature does not count. `fingerprint` is the signing key's, upper hex.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PgpError {
    #[error("malformed openpgp signature: {0}")]
    Malformed(String),
    #[error("signed by an untrusted key `{issuer}`")]
    Untrusted { issuer: String },
    #[error("signed by a revoked key `{fingerprint}`")]
    Revoked { fingerprint: String },
    #[error("signed by an expired key `{fingerprint}`")]
    Expired { fingerprint: String },
    #[error("signed by key `{fingerprint}`, which is not allowed to sign")]
    NotSigning { fingerprint: String },
    #[error("bad signature by key `{fingerprint}`: {reason}")]
    Bad { fingerprint: String, reason: String },
}

/// Who made a good signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgpSigner {
    /// The signing key (a subkey's own fingerprint when a subkey signed).
    pub fingerprint: String,
    /// The primary key's fingerprint.
    pub primary: String,
    /// The primary user id of the certificate.
    pub user_id: String,
}

#[derive(Clone, Debug)]
struct Key {
    packet: PublicKey,
    fingerprint: [u8; 20],
    revoked: bool,
    /// Unix seconds; `None` never expires.
    expires_at: Option<u64>,
    can_sign: bool,
}

#[derive(Clone, Debug)]
struct Cert {
    primary: Key,
    user_id: String,
    subkeys: Vec<Key>,
}

/// The trusted OpenPGP certificates.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    certs: Vec<Cert>,
}

impl Keyring {
    /// Reads every `PUBLIC KEY BLOCK` in `text`. Certificates without a valid
    /// self-signed user id, and keys of other versions, are skipped with a warning.
    pub fn parse(text: &[u8]) -> Result<Self, KeyringError> {
        let mut certs = Vec::new();
        for (i, block) in armor::decode_all(text, "PUBLIC KEY BLOCK")?
            .iter()
            .enumerate()
        {
            let packets = packet::packets(block).map_err(|source| KeyringError::Packet {
                block: i + 1,
                source,
            })?;
            let mut start = 0;
            for end in 1..=packets.len() {
                if end == packets.len() || packets[end].tag == packet::TAG_PUBLIC_KEY {
                    match cert(&packets[start..end]) {
                        Ok(Some(c)) => certs.push(c),
                        Ok(None) => {}
                        Err(source) => {
                            return Err(KeyringError::Packet {
                                block: i + 1,
                                source,
                            });
                        }
                    }
                    start = end;
                }
            }
        }
        if certs.is_empty() {
            return Err(KeyringError::NoKeys);
        }
        // The same key exported twice (once before its revocation): like gpg, which
        // merges copies, a revocation in any copy counts for all.
        let revoked: Vec<[u8; 20]> = certs
            .iter()
            .filter(|c| c.primary.revoked)
            .map(|c| c.primary.fingerprint)
            .collect();
        for c in &mut certs {
            c.primary.revoked |= revoked.contains(&c.primary.fingerprint);
        }
        Ok(Self { certs })
    }

    /// The fingerprints of the primary keys, for the startup log.
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs
            .iter()
            .map(|c| hex(&c.primary.fingerprint))
            .collect()
    }

    /// Checks the armored detached `signature` over `payload` at time `now`.
    pub fn verify(
        &self,
        payload: &[u8],
        signature: &[u8],
        now: u64,
    ) -> Result<PgpSigner, PgpError> {
        let malformed = |m: String| PgpError::Malformed(m);
        let blocks =
            armor::decode_all(signature, "SIGNATURE").map_err(|e| malformed(e.to_string()))?;
        let packets = packet::packets(&blocks[0]).map_err(|e| malformed(e.to_string()))?;
        let first = packets
            .iter()
            .find(|p| p.tag == packet::TAG_SIGNATURE)
            .ok_or_else(|| malformed("no signature packet".into()))?;
        let sig = packet::signature(first.body)
            .map_err(|e| malformed(e.to_string()))?
            .ok_or_else(|| malformed("not a version 4 signature".into()))?;
        let (cert, key) = self.find(&sig).ok_or_else(|| PgpError::Untrusted {
            issuer: sig
                .issuer_fingerprint()
                .map(|f| hex(&f))
                .or_else(|| sig.issuer_key_id().map(|k| hex(&k)))
                .unwrap_or_else(|| "without an issuer".into()),
        })?;
        let fingerprint = hex(&key.fingerprint);
        if cert.primary.revoked || key.revoked {
            return Err(PgpError::Revoked { fingerprint });
        }
        let expired = |k: &Key| k.expires_at.is_some_and(|at| now >= at);
        if expired(&cert.primary) || expired(key) {
            return Err(PgpError::Expired { fingerprint });
        }
        if !key.can_sign {
            return Err(PgpError::NotSigning { fingerprint });
        }
        let bad = |reason: String| PgpError::Bad {
            fingerprint: fingerprint.clone(),
            reason,
        };
        let canonical;
        let data: &[u8] = match sig.sig_type {
            0x00 => payload,
            0x01 => {
                canonical = crlf(payload);
                &canonical
            }
            other => {
                return Err(bad(format!(
                    "signature type {other:#04x} is not a document signature"
                )));
            }
        };
        if sig.hashed.unknown_critical {
            return Err(bad("unknown critical subpacket".into()));
        }
        let created = sig
            .hashed
            .created
            .ok_or_else(|| bad("no signature creation time".into()))?;
        if created < key.packet.created {
            return Err(bad("made before its key was created".into()));
        }
        if let Some(exp) = sig.hashed.sig_expires.filter(|&e| e != 0)
            && now >= u64::from(created) + u64::from(exp)
        {
            return Err(bad("the signature has expired".into()));
        }
        crypto::check(&key.packet, &sig, &[data]).map_err(|f| bad(f.to_string()))?;
        Ok(PgpSigner {
            fingerprint,
            primary: hex(&cert.primary.fingerprint),
            user_id: cert.user_id.clone(),
        })
    }

    fn find(&self, sig: &Signature) -> Option<(&Cert, &Key)> {
        let fp = sig.issuer_fingerprint();
        let id = sig.issuer_key_id();
        let matches = |k: &Key| match (fp, id) {
            (Some(fp), _) => k.fingerprint == fp,
            (None, Some(id)) => k.fingerprint[12..] == id,
            (None, None) => false,
        };
        self.certs.iter().find_map(|c| {
            std::iter::once(&c.primary)
                .chain(&c.subkeys)
                .find(|k| matches(k))
                .map(|k| (c, k))
        })
    }
}

/// The hash input that stands for a key: `0x99`, a two-byte length, the body.
fn key_prefix(key: &PublicKey) -> Vec<u8> {
    // v4 key bodies are far below 64 KiB (an RSA-4096 key is about 530 bytes); a
    // larger one cannot be a v4 key packet that gpg wrote.
    let len = key.body.len().min(0xFFFF) as u16;
    let mut v = vec![0x99];
    v.extend(len.to_be_bytes());
    v.extend(&key.body);
    v
}

fn fingerprint(key: &PublicKey) -> [u8; 20] {
    Sha1::digest(key_prefix(key)).into()
}

/// A newest-valid-self-signature pick: (creation time, what it said).
type Newest = Option<(u32, Option<u32>, Option<u8>)>;

fn newer(slot: &mut Newest, sig: &Signature) {
    let created = sig.hashed.created.unwrap_or(0);
    if slot.is_none_or(|(c, _, _)| created >= c) {
        *slot = Some((created, sig.hashed.key_expires, sig.hashed.key_flags));
    }
}

/// One transferable public key: the primary key, then its signatures, user ids and
/// subkeys each followed by theirs (RFC 9580 §10.1).
fn cert(packets: &[packet::Packet<'_>]) -> Result<Option<Cert>, PacketError> {
    let Some(first) = packets.first() else {
        return Ok(None);
    };
    let Some(primary) = packet::public_key(first.body)? else {
        tracing::warn!("trusted gpg keys: skipping a key that is not version 4");
        return Ok(None);
    };
    let pk = key_prefix(&primary);
    let mut revoked = false;
    let mut self_sig: Newest = None;
    let mut user_ids: Vec<(String, bool, u32)> = Vec::new();
    let mut subkeys: Vec<(PublicKey, Newest, bool, bool)> = Vec::new();
    enum At {
        Primary,
        UserId(Vec<u8>),
        Subkey,
        Other,
    }
    let mut at = At::Primary;
    for p in &packets[1..] {
        match p.tag {
            packet::TAG_USER_ID => at = At::UserId(p.body.to_vec()),
            packet::TAG_PUBLIC_SUBKEY => match packet::public_key(p.body)? {
                Some(sub) => {
                    subkeys.push((sub, None, false, false));
                    at = At::Subkey;
                }
                None => at = At::Other,
            },
            packet::TAG_SIGNATURE => {
                let Some(sig) = packet::signature(p.body)? else {
                    continue;
                };
                if sig.hashed.unknown_critical {
                    continue;
                }
                let ok = |prefix: &[&[u8]]| crypto::check(&primary, &sig, prefix).is_ok();
                match (&at, sig.sig_type) {
                    (At::Primary, 0x20) if ok(&[&pk]) => revoked = true,
                    (At::Primary, 0x1F) if ok(&[&pk]) => newer(&mut self_sig, &sig),
                    (At::UserId(uid), 0x10..=0x13 | 0x30) => {
                        let mut up = vec![0xB4];
                        up.extend((uid.len() as u32).to_be_bytes());
                        up.extend(uid);
                        if !ok(&[&pk, &up]) {
                            continue;
                        }
                        let name = String::from_utf8_lossy(uid).into_owned();
                        if sig.sig_type == 0x30 {
                            user_ids.retain(|(n, _, _)| *n != name);
                            continue;
                        }
                        newer(&mut self_sig, &sig);
                        user_ids.push((
                            name,
                            sig.hashed.primary_user_id,
                            sig.hashed.created.unwrap_or(0),
                        ));
                    }
                    (At::Subkey, 0x18 | 0x28) => {
                        let Some((sub, binding, sub_revoked, backsig)) = subkeys.last_mut() else {
                            continue;
                        };
                        let sp = key_prefix(sub);
                        if !ok(&[&pk, &sp]) {
                            continue;
                        }
                        if sig.sig_type == 0x28 {
                            *sub_revoked = true;
                            continue;
                        }
                        newer(binding, &sig);
                        // A signing subkey must sign back (0x19), or anyone could bind
                        // someone else's signing key to their certificate.
                        *backsig |= sig
                            .hashed
                            .embedded
                            .as_deref()
                            .or(sig.unhashed.embedded.as_deref())
                            .and_then(|e| packet::signature(e).ok().flatten())
                            .is_some_and(|back| {
                                back.sig_type == 0x19
                                    && crypto::check(sub, &back, &[&pk, &sp]).is_ok()
                            });
                    }
                    _ => {}
                }
            }
            _ => at = At::Other,
        }
    }
    let fp = fingerprint(&primary);
    user_ids.sort_by_key(|(_, primary_flag, created)| (!primary_flag, std::cmp::Reverse(*created)));
    let Some((user_id, _, _)) = user_ids.into_iter().next() else {
        tracing::warn!(fingerprint = %hex(&fp), "trusted gpg keys: skipping a key without a valid self-signed user id");
        return Ok(None);
    };
    let expiry = |created: u32, secs: Option<u32>| {
        secs.filter(|&s| s != 0)
            .map(|s| u64::from(created) + u64::from(s))
    };
    let signs = |algorithm: u8, flags: Option<u8>| {
        matches!(
            algorithm,
            packet::ALGO_RSA
                | packet::ALGO_RSA_SIGN
                | packet::ALGO_EDDSA_LEGACY
                | packet::ALGO_ED25519
        ) && flags.is_none_or(|f| f & FLAG_SIGN != 0)
    };
    let (_, key_expires, flags) = self_sig.unwrap_or((0, None, None));
    let primary_key = Key {
        fingerprint: fp,
        revoked,
        expires_at: expiry(primary.created, key_expires),
        can_sign: signs(primary.algorithm, flags),
        packet: primary,
    };
    let subkeys = subkeys
        .into_iter()
        .filter_map(|(sub, binding, revoked, backsig)| {
            let (_, expires, flags) = binding?;
            Some(Key {
                fingerprint: fingerprint(&sub),
                revoked,
                expires_at: expiry(sub.created, expires),
                // Without key flags a subkey is not taken as a signing key.
                can_sign: flags.is_some() && signs(sub.algorithm, flags) && backsig,
                packet: sub,
            })
        })
        .collect();
    Ok(Some(Cert {
        primary: primary_key,
        user_id,
        subkeys,
    }))
}

/// Text signatures hash lines ending in CR LF.
fn crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 32);
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests;
