//! age decryption with X25519 identities: just enough to open the data key SOPS
//! wraps for each age recipient (age-encryption.org/v1).
//!
//! In: the identities of `--sops-age-key-file` (`AGE-SECRET-KEY-1…` lines, as
//! `age-keygen` writes them) and an armored age file. Out: the decrypted payload.
//! What can go wrong is an [`AgeError`]: a malformed identity, an armor or header
//! that is not age's, a header MAC that does not verify, or no identity matching any
//! stanza. Nothing here prints key material.
//!
//! The format: a text header (`age-encryption.org/v1`, one stanza per recipient, then
//! `--- <MAC>`), a 16-byte nonce, and the payload in 64 KiB ChaCha20-Poly1305 chunks.
//! An X25519 stanza's file key is wrapped with a key derived by HKDF-SHA256 from the
//! shared secret; the header MAC is HMAC-SHA256 under a key derived from the file key.

use curve25519_dalek::montgomery::MontgomeryPoint;
use ring::{aead, hkdf, hmac};

use crate::encoding::base64_decode;

const X25519_LABEL: &[u8] = b"age-encryption.org/v1/X25519";
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
const ARMOR_END: &str = "-----END AGE ENCRYPTED FILE-----";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AgeError {
    #[error("line {line}: not an age identity: {reason}")]
    Identity { line: usize, reason: &'static str },
    #[error("the age key file holds no AGE-SECRET-KEY-1 identity")]
    NoIdentity,
    #[error("not an age file: {0}")]
    Format(&'static str),
    #[error("the age header MAC does not verify")]
    HeaderMac,
    #[error("the age payload does not decrypt: {0}")]
    Payload(&'static str),
    #[error("no identity in the key file matches")]
    NoMatch,
}

/// One X25519 identity: the secret scalar and the public key it belongs to.
pub struct Identity {
    secret: [u8; 32],
    public: [u8; 32],
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never goes into Debug output.
        write!(f, "Identity({})", self.recipient())
    }
}

impl Identity {
    /// The `age1…` recipient this identity decrypts for.
    pub fn recipient(&self) -> String {
        bech32_encode("age", &self.public)
    }
}

/// Parses a key file: `#` comments and blank lines are skipped, every other line
/// must be an `AGE-SECRET-KEY-1…` identity.
pub fn parse_identities(text: &str) -> Result<Vec<Identity>, AgeError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let refuse = |reason| AgeError::Identity {
            line: i + 1,
            reason,
        };
        if !line.starts_with("AGE-SECRET-KEY-1") {
            return Err(refuse("expected AGE-SECRET-KEY-1…"));
        }
        if line.bytes().any(|b| b.is_ascii_lowercase()) {
            return Err(refuse("identities are written in upper case"));
        }
        let (hrp, data) =
            bech32_decode(&line.to_ascii_lowercase()).ok_or(refuse("bad bech32 encoding"))?;
        let secret: [u8; 32] = match (hrp.as_str(), <[u8; 32]>::try_from(data)) {
            ("age-secret-key-", Ok(secret)) => secret,
            _ => return Err(refuse("not a 32-byte X25519 secret key")),
        };
        let public = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
        out.push(Identity { secret, public });
    }
    if out.is_empty() {
        return Err(AgeError::NoIdentity);
    }
    Ok(out)
}

/// Decrypts an armored age file with the first identity that opens a stanza.
pub fn decrypt_armored(text: &str, identities: &[Identity]) -> Result<Vec<u8>, AgeError> {
    let binary = dearmor(text)?;
    decrypt(&binary, identities)
}

fn dearmor(text: &str) -> Result<Vec<u8>, AgeError> {
    let text = text.trim();
    let body = text
        .strip_prefix(ARMOR_BEGIN)
        .and_then(|t| t.strip_suffix(ARMOR_END))
        .ok_or(AgeError::Format("missing the armor lines"))?;
    let b64: String = body.split_whitespace().collect();
    base64_decode(&b64, true).ok_or(AgeError::Format("bad base64 in the armor"))
}

/// Decrypts a binary age file.
pub fn decrypt(file: &[u8], identities: &[Identity]) -> Result<Vec<u8>, AgeError> {
    let header = Header::parse(file)?;
    let mut file_key = None;
    'stanzas: for stanza in &header.stanzas {
        if stanza.kind != "X25519" {
            continue; // another recipient type, or grease
        }
        let [share] = stanza.args.as_slice() else {
            return Err(AgeError::Format("an X25519 stanza takes one argument"));
        };
        let share: [u8; 32] = base64_decode(share, false)
            .and_then(|s| s.try_into().ok())
            .ok_or(AgeError::Format("bad X25519 share"))?;
        if stanza.body.len() != 16 + TAG {
            return Err(AgeError::Format(
                "an X25519 stanza wraps a 16-byte file key",
            ));
        }
        for identity in identities {
            if let Some(key) = unwrap_x25519(identity, &share, &stanza.body) {
                file_key = Some(key);
                break 'stanzas;
            }
        }
    }
    let file_key = file_key.ok_or(AgeError::NoMatch)?;
    let mac_key = derive(&file_key, &[], b"header");
    hmac::verify(
        &hmac::Key::new(hmac::HMAC_SHA256, &mac_key),
        &file[..header.mac_input_len],
        &header.mac,
    )
    .map_err(|_| AgeError::HeaderMac)?;
    payload(&file_key, &file[header.len..])
}

/// The file key, when `identity` is the one this stanza was wrapped for.
fn unwrap_x25519(identity: &Identity, share: &[u8; 32], body: &[u8]) -> Option<[u8; 16]> {
    let shared = MontgomeryPoint(*share)
        .mul_clamped(identity.secret)
        .to_bytes();
    if shared == [0; 32] {
        return None; // a low-order share: refuse, as age does
    }
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(share);
    salt[32..].copy_from_slice(&identity.public);
    let wrap = derive(&shared, &salt, X25519_LABEL);
    let mut buf = body.to_vec();
    let opened = open(&wrap, [0; 12], &mut buf)?;
    opened.try_into().ok()
}

/// The payload: a 16-byte nonce, then chunks of 64 KiB plaintext plus a tag; the
/// last chunk's nonce carries the final flag, and only an empty payload may end in
/// an empty chunk.
fn payload(file_key: &[u8; 16], rest: &[u8]) -> Result<Vec<u8>, AgeError> {
    let (nonce, mut body) = rest
        .split_at_checked(16)
        .ok_or(AgeError::Payload("truncated nonce"))?;
    let key = derive(file_key, nonce, b"payload");
    let mut out = Vec::new();
    let mut counter: u128 = 0;
    loop {
        let take = body.len().min(CHUNK + TAG);
        let (chunk, after) = body.split_at(take);
        let last = after.is_empty();
        if chunk.len() < TAG {
            return Err(AgeError::Payload("truncated chunk"));
        }
        if last && chunk.len() == TAG && counter > 0 {
            return Err(AgeError::Payload("empty last chunk"));
        }
        let mut n = [0u8; 12];
        n[..11].copy_from_slice(&counter.to_be_bytes()[5..]);
        n[11] = u8::from(last);
        let mut buf = chunk.to_vec();
        let plain = open(&key, n, &mut buf).ok_or(AgeError::Payload("a chunk fails its tag"))?;
        out.extend_from_slice(plain);
        if last {
            return Ok(out);
        }
        counter += 1;
        body = after;
    }
}

fn open<'b>(key: &[u8; 32], nonce: [u8; 12], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::CHACHA20_POLY1305, key).ok()?);
    let plain = key
        .open_in_place(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::empty(),
            buf,
        )
        .ok()?;
    Some(plain)
}

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn derive(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    // Expanding 32 bytes from SHA-256 is always within HKDF's 255-block bound.
    if let Ok(okm) = prk.expand(&[info], Len32) {
        let _ = okm.fill(&mut out);
    }
    out
}

struct Stanza {
    kind: String,
    args: Vec<String>,
    body: Vec<u8>,
}

struct Header {
    stanzas: Vec<Stanza>,
    /// Bytes covered by the MAC: up to and including `---`.
    mac_input_len: usize,
    mac: Vec<u8>,
    /// Bytes of the whole header, through the newline after the MAC.
    len: usize,
}

impl Header {
    fn parse(file: &[u8]) -> Result<Self, AgeError> {
        let mut pos = 0;
        let mut line = || -> Result<(&str, usize), AgeError> {
            let rest = &file[pos..];
            let end = rest
                .iter()
                .position(|b| *b == b'\n')
                .ok_or(AgeError::Format("truncated header"))?;
            let start = pos;
            pos += end + 1;
            let text = std::str::from_utf8(&rest[..end])
                .map_err(|_| AgeError::Format("header is not text"))?;
            Ok((text, start))
        };
        if line()?.0 != "age-encryption.org/v1" {
            return Err(AgeError::Format("missing the age-encryption.org/v1 line"));
        }
        let mut stanzas = Vec::new();
        let mut next = line()?;
        loop {
            let (text, start) = next;
            if let Some(mac) = text.strip_prefix("--- ") {
                let mac = base64_decode(mac, false)
                    .filter(|m| m.len() == 32)
                    .ok_or(AgeError::Format("bad header MAC"))?;
                return Ok(Header {
                    stanzas,
                    mac_input_len: start + 3,
                    mac,
                    len: pos,
                });
            }
            let mut words = text
                .strip_prefix("-> ")
                .ok_or(AgeError::Format("expected a stanza or the header end"))?
                .split(' ');
            let kind = words
                .next()
                .filter(|k| !k.is_empty())
                .ok_or(AgeError::Format("a stanza without a type"))?
                .to_string();
            let args = words.map(str::to_string).collect();
            // The body: base64 lines of 64 characters, ended by a shorter one.
            let mut b64 = String::new();
            loop {
                let (body_line, _) = line()?;
                if body_line.len() > 64 {
                    return Err(AgeError::Format("a stanza line is longer than 64 columns"));
                }
                b64.push_str(body_line);
                if body_line.len() < 64 {
                    break;
                }
            }
            let body =
                base64_decode(&b64, false).ok_or(AgeError::Format("bad base64 in a stanza"))?;
            stanzas.push(Stanza { kind, args, body });
            next = line()?;
        }
    }
}

const CHARSET: &[u8; 32] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";

fn polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
    let mut chk = 1u32;
    for v in values {
        let top = chk >> 25;
        chk = ((chk & 0x1ff_ffff) << 5) ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

fn hrp_expand(hrp: &str) -> impl Iterator<Item = u8> + '_ {
    hrp.bytes()
        .map(|c| c >> 5)
        .chain([0])
        .chain(hrp.bytes().map(|c| c & 31))
}

/// Decodes lower-case bech32 (BIP 173; age allows any length) into its
/// human-readable part and 8-bit data.
fn bech32_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let sep = text.rfind('1')?;
    let (hrp, data) = (&text[..sep], &text[sep + 1..]);
    if hrp.is_empty() || data.len() < 6 {
        return None;
    }
    let values: Vec<u8> = data
        .bytes()
        .map(|c| CHARSET.iter().position(|&x| x == c).map(|p| p as u8))
        .collect::<Option<_>>()?;
    if polymod(hrp_expand(hrp).chain(values.iter().copied())) != 1 {
        return None;
    }
    let five = &values[..values.len() - 6];
    let (mut acc, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for v in five {
        acc = (acc << 5) | u32::from(*v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 5 || acc != 0 {
        return None;
    }
    Some((hrp.to_string(), out))
}

fn bech32_encode(hrp: &str, data: &[u8]) -> String {
    let (mut acc, mut bits, mut five) = (0u32, 0u32, Vec::new());
    for b in data {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            five.push(((acc >> bits) & 31) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        five.push(((acc << (5 - bits)) & 31) as u8);
    }
    let chk = polymod(hrp_expand(hrp).chain(five.iter().copied()).chain([0; 6])) ^ 1;
    let mut out = format!("{hrp}1");
    for v in five
        .iter()
        .copied()
        .chain((0..6).map(|i| ((chk >> (5 * (5 - i))) & 31) as u8))
    {
        out.push(char::from(CHARSET[usize::from(v)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // From age's own test vectors (x25519 identity in testdata).
    const KEY: &str = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    const RECIPIENT: &str = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

    #[test]
    fn identity_and_recipient() {
        let ids = parse_identities(&format!("# created: now\n# public key: x\n{KEY}\n")).unwrap();
        assert_eq!(ids.len(), 1);
        assert_eq!(ids[0].recipient(), RECIPIENT);
        assert!(!format!("{:?}", ids[0]).contains("GFPYY"));
    }

    #[test]
    fn bad_identities() {
        assert!(matches!(
            parse_identities(
                "# only comments
"
            ),
            Err(AgeError::NoIdentity)
        ));
        let broken = KEY.replace("GFPQ4", "GFPQ5");
        assert!(matches!(
            parse_identities(&broken),
            Err(AgeError::Identity { line: 1, .. })
        ));
        assert!(matches!(
            parse_identities("age1abc\n"),
            Err(AgeError::Identity { line: 1, .. })
        ));
    }

    #[test]
    fn bech32_round_trip() {
        let (hrp, data) = bech32_decode(RECIPIENT).unwrap();
        assert_eq!(hrp, "age");
        assert_eq!(bech32_encode("age", &data), RECIPIENT);
    }

    #[test]
    fn garbage_is_refused() {
        let ids = parse_identities(KEY).unwrap();
        assert!(decrypt(b"", &ids).is_err());
        assert!(decrypt(b"age-encryption.org/v1\n--- x\n", &ids).is_err());
        assert!(decrypt_armored("hello", &ids).is_err());
    }
}
