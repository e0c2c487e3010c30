//! Base64 (RFC 4648), the two forms hawser needs: standard with padding for HTTP Basic
//! auth headers, URL-safe without padding for ApplySet ids. Small enough not to be
//! worth a crate. And the one check of hex ids (commit ids, sha256 digests).

/// Whether `text` is exactly `len` hex digits (either case).
pub fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `text` is a full SHA-1 commit id, 40 hex digits: what forges set commit
/// statuses on and what status reports name.
pub fn is_commit_id(text: &str) -> bool {
    is_hex(text, 40)
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Standard base64 with `=` padding.
pub fn base64(input: &[u8]) -> String {
    encode(input, STANDARD, true)
}

/// URL-safe base64 without padding.
pub fn base64url_nopad(input: &[u8]) -> String {
    encode(input, URL_SAFE, false)
}

fn encode(input: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64. With `padded`, the input must carry `=` padding to a
/// multiple of four (as SOPS and PEM-style armor write it); without, it must carry
/// none (as age headers write it). `None` for anything else, including non-zero
/// trailing bits, so one text has one meaning.
pub fn base64_decode(text: &str, padded: bool) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let body = if padded {
        if !bytes.len().is_multiple_of(4) {
            return None;
        }
        let pad = bytes.iter().rev().take_while(|b| **b == b'=').count();
        if pad > 2 {
            return None;
        }
        &bytes[..bytes.len() - pad]
    } else {
        bytes
    };
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in body {
        let v = STANDARD.iter().position(|&c| c == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids() {
        assert!(is_commit_id(
            &"aB0".repeat(13).chars().chain(['f']).collect::<String>()
        ));
        assert!(!is_commit_id(&"a".repeat(39)));
        assert!(!is_commit_id(&"g".repeat(40)));
        assert!(is_hex(&"0".repeat(64), 64));
        assert!(!is_hex(&"0".repeat(64), 40));
    }

    #[test]
    fn base64_round_trips() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let padded = base64(&data);
            assert_eq!(base64_decode(&padded, true).as_deref(), Some(&data[..]));
            let bare = padded.trim_end_matches('=');
            assert_eq!(base64_decode(bare, false).as_deref(), Some(&data[..]));
            if padded.ends_with('=') {
                assert_eq!(base64_decode(bare, true), None);
                assert_eq!(base64_decode(&padded, false), None);
            }
        }
        assert_eq!(base64_decode("QQ", false).as_deref(), Some(&b"A"[..]));
        assert_eq!(base64_decode("QR", false), None, "trailing bits set");
        assert_eq!(base64_decode("Q!==", true), None);
    }

    #[test]
    fn rfc4648_vectors() {
        for (plain, padded, unpadded) in [
            ("", "", ""),
            ("f", "Zg==", "Zg"),
            ("fo", "Zm8=", "Zm8"),
            ("foo", "Zm9v", "Zm9v"),
            ("foob", "Zm9vYg==", "Zm9vYg"),
            ("fooba", "Zm9vYmE=", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), padded);
            assert_eq!(base64url_nopad(plain.as_bytes()), unpadded);
        }
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
        assert_eq!(base64url_nopad(&[0xfb, 0xff]), "-_8");
    }
}
