//! ASCII armor (RFC 9580 §6): `-----BEGIN PGP <KIND>-----`, optional `Key: value`
//! headers, an empty line, base64, an optional `=` CRC24 checksum line, the END line.
//! In: text. Out: the binary of every block of the wanted kind. A checksum that is
//! present must match (RFC 9580 lets writers drop it; gpg 2.2 still writes it).

/// Why armored text could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArmorError {
    #[error("no -----BEGIN PGP {0}----- block")]
    Missing(&'static str),
    #[error("armor block {block} has no END line")]
    Unterminated { block: usize },
    #[error("armor block {block}: invalid base64 on line {line}")]
    Base64 { block: usize, line: usize },
    #[error("armor block {block}: CRC24 checksum mismatch")]
    Checksum { block: usize },
}

/// Decodes every `-----BEGIN PGP <kind>-----` block in `text`.
pub fn decode_all(text: &[u8], kind: &'static str) -> Result<Vec<Vec<u8>>, ArmorError> {
    let begin = format!("-----BEGIN PGP {kind}-----");
    let end = format!("-----END PGP {kind}-----");
    let mut blocks = Vec::new();
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate();
    while let Some((_, line)) = lines.next() {
        if trim(line) != begin.as_bytes() {
            continue;
        }
        let block = blocks.len() + 1;
        // Headers run to the first empty line; a block without headers may start
        // its base64 right away (some writers do), which no header line looks like.
        let mut data = Vec::new();
        let mut checksum = None;
        let mut in_headers = true;
        let mut closed = false;
        for (i, line) in lines.by_ref() {
            let line = trim(line);
            if line == end.as_bytes() {
                closed = true;
                break;
            }
            if in_headers {
                if line.is_empty() {
                    in_headers = false;
                    continue;
                }
                if line.contains(&b':') {
                    continue;
                }
                in_headers = false;
            }
            if let Some(crc) = line.strip_prefix(b"=") {
                let crc = base64_decode(crc).ok_or(ArmorError::Base64 { block, line: i + 1 })?;
                checksum = Some(crc);
                continue;
            }
            let bytes = base64_decode(line).ok_or(ArmorError::Base64 { block, line: i + 1 })?;
            data.extend(bytes);
        }
        if !closed {
            return Err(ArmorError::Unterminated { block });
        }
        if let Some(crc) = checksum {
            let want = crc24(&data).to_be_bytes();
            if crc.as_slice() != &want[1..] {
                return Err(ArmorError::Checksum { block });
            }
        }
        blocks.push(data);
    }
    if blocks.is_empty() {
        return Err(ArmorError::Missing(kind));
    }
    Ok(blocks)
}

fn trim(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// RFC 9580 §6.1.1.
pub fn crc24(data: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

/// Standard base64 with optional `=` padding; `None` on any other character.
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    let mut padding = 0;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            _ => return None,
        };
        if padding > 0 {
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (padding <= 2).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc24_matches_the_rfc_example_shape() {
        // The CRC of nothing is the initial value.
        assert_eq!(crc24(b""), 0x00B7_04CE);
        assert_eq!(base64_decode(b"Zm9vYmE=").unwrap(), b"fooba");
        assert_eq!(base64_decode(b"Zm9vYg==").unwrap(), b"foob");
        assert!(base64_decode(b"Zm9v!").is_none());
    }

    #[test]
    fn blocks_are_decoded_and_checksums_checked() {
        let data = b"hello, armor";
        let b64 = crate::encoding::base64(data);
        let crc = crate::encoding::base64(&crc24(data).to_be_bytes()[1..]);
        let text = format!(
            "junk\n-----BEGIN PGP SIGNATURE-----\nComment: x\n\n{b64}\n={crc}\n-----END PGP SIGNATURE-----\n"
        );
        assert_eq!(
            decode_all(text.as_bytes(), "SIGNATURE").unwrap(),
            vec![data.to_vec()]
        );
        let bad = text.replace(&format!("={crc}"), "=AAAA");
        assert_eq!(
            decode_all(bad.as_bytes(), "SIGNATURE"),
            Err(ArmorError::Checksum { block: 1 })
        );
        assert_eq!(
            decode_all(b"nothing", "SIGNATURE"),
            Err(ArmorError::Missing("SIGNATURE"))
        );
        let cut = text.replace("-----END PGP SIGNATURE-----", "");
        assert_eq!(
            decode_all(cut.as_bytes(), "SIGNATURE"),
            Err(ArmorError::Unterminated { block: 1 })
        );
    }
}
