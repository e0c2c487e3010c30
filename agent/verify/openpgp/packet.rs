//! OpenPGP packet framing (RFC 9580 §4.2, both the old and the new format) and the
//! two packet bodies hawser reads: v4 public keys (§5.5.2) and v4 signatures (§5.2.3)
//! with their subpackets. In: binary from the armor. Out: [`Packet`]s, [`PublicKey`]s,
//! [`Signature`]s. Everything is bounds-checked; a malformed packet is a
//! [`PacketError`], never a panic. Partial body lengths (only used by data packets,
//! which keys and detached signatures never contain) are refused.

/// Packet tags hawser looks at.
pub const TAG_SIGNATURE: u8 = 2;
pub const TAG_PUBLIC_KEY: u8 = 6;
pub const TAG_USER_ID: u8 = 13;
pub const TAG_PUBLIC_SUBKEY: u8 = 14;

/// Public key algorithms (RFC 9580 §9.1).
pub const ALGO_RSA: u8 = 1;
pub const ALGO_RSA_SIGN: u8 = 3;
pub const ALGO_EDDSA_LEGACY: u8 = 22;
pub const ALGO_ED25519: u8 = 27;

/// The curve OID of Ed25519 in legacy EdDSA keys (1.3.6.1.4.1.11591.15.1).
const OID_ED25519: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01];

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("packet at byte {at}: {message}")]
    Framing { at: usize, message: &'static str },
    #[error("{what} packet is truncated")]
    Truncated { what: &'static str },
    #[error("{what} packet: {message}")]
    Invalid {
        what: &'static str,
        message: &'static str,
    },
}

/// One packet: its tag and body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub tag: u8,
    pub body: &'a [u8],
}

/// Splits `data` into packets.
pub fn packets(data: &[u8]) -> Result<Vec<Packet<'_>>, PacketError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let at = pos;
        let framing = |message| PacketError::Framing { at, message };
        let ctb = data[pos];
        pos += 1;
        if ctb & 0x80 == 0 {
            return Err(framing("not a packet header"));
        }
        let mut byte = || -> Result<usize, PacketError> {
            let b = *data.get(pos).ok_or(framing("truncated length"))?;
            pos += 1;
            Ok(usize::from(b))
        };
        let (tag, len) = if ctb & 0x40 != 0 {
            let first = byte()?;
            let len = match first {
                0..=191 => first,
                192..=223 => ((first - 192) << 8) + byte()? + 192,
                255 => (byte()? << 24) | (byte()? << 16) | (byte()? << 8) | byte()?,
                _ => return Err(framing("partial body lengths are not supported")),
            };
            (ctb & 0x3F, len)
        } else {
            let len = match ctb & 0x03 {
                0 => byte()?,
                1 => (byte()? << 8) | byte()?,
                2 => (byte()? << 24) | (byte()? << 16) | (byte()? << 8) | byte()?,
                _ => return Err(framing("indeterminate lengths are not supported")),
            };
            ((ctb >> 2) & 0x0F, len)
        };
        let end = pos.checked_add(len).filter(|&e| e <= data.len());
        let end = end.ok_or(framing("length runs past the end"))?;
        out.push(Packet {
            tag,
            body: &data[pos..end],
        });
        pos = end;
    }
    Ok(out)
}

/// A bounds-checked cursor over a packet body.
struct Reader<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PacketError> {
        if n > self.data.len() {
            return Err(PacketError::Truncated { what: self.what });
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, PacketError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<usize, PacketError> {
        let b = self.take(2)?;
        Ok(usize::from(b[0]) << 8 | usize::from(b[1]))
    }
    fn u32(&mut self) -> Result<u32, PacketError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A multiprecision integer: a bit count, then the big-endian bytes.
    fn mpi(&mut self) -> Result<&'a [u8], PacketError> {
        let bits = self.u16()?;
        self.take(bits.div_ceil(8))
    }
    fn invalid(&self, message: &'static str) -> PacketError {
        PacketError::Invalid {
            what: self.what,
            message,
        }
    }
}

/// Key material of the algorithms hawser verifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ed25519([u8; 32]),
    /// Another algorithm (ECDH and RSA encryption subkeys, DSA, ECDSA, …): kept so
    /// fingerprints and bindings work, never used to verify.
    Unsupported(u8),
}

/// A v4 public key or subkey packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub created: u32,
    pub algorithm: u8,
    pub material: Material,
    /// The packet body, as hashed into fingerprints and binding signatures.
    pub body: Vec<u8>,
}

/// Parses a public key packet body; `Ok(None)` for versions other than 4.
pub fn public_key(body: &[u8]) -> Result<Option<PublicKey>, PacketError> {
    let mut r = Reader {
        data: body,
        what: "public key",
    };
    if r.u8()? != 4 {
        return Ok(None);
    }
    let created = r.u32()?;
    let algorithm = r.u8()?;
    let material = match algorithm {
        ALGO_RSA | ALGO_RSA_SIGN => {
            let n = strip_zeros(r.mpi()?).to_vec();
            let e = strip_zeros(r.mpi()?).to_vec();
            Material::Rsa { n, e }
        }
        ALGO_EDDSA_LEGACY => {
            let oid_len = usize::from(r.u8()?);
            let oid = r.take(oid_len)?;
            let point = r.mpi()?;
            match (oid == OID_ED25519, point) {
                // Native point encoding: the 0x40 prefix, then 32 bytes.
                (true, [0x40, rest @ ..]) if rest.len() == 32 => {
                    Material::Ed25519(to_array(rest).ok_or(r.invalid("bad point"))?)
                }
                (true, _) => return Err(r.invalid("ed25519 point is not 0x40 || 32 bytes")),
                (false, _) => Material::Unsupported(algorithm),
            }
        }
        ALGO_ED25519 => Material::Ed25519(to_array(r.take(32)?).ok_or(r.invalid("bad key"))?),
        other => Material::Unsupported(other),
    };
    Ok(Some(PublicKey {
        created,
        algorithm,
        material,
        body: body.to_vec(),
    }))
}

/// The signature subpackets hawser reads; anything else is ignored unless marked
/// critical, which makes the signature unusable (RFC 9580 §5.2.3.7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subpackets {
    pub created: Option<u32>,
    /// Seconds after `created`.
    pub sig_expires: Option<u32>,
    /// Seconds after the key's creation (self-signatures only).
    pub key_expires: Option<u32>,
    pub issuer_key_id: Option<[u8; 8]>,
    pub issuer_fingerprint: Option<[u8; 20]>,
    pub key_flags: Option<u8>,
    pub primary_user_id: bool,
    /// An embedded signature (the primary key binding of a signing subkey).
    pub embedded: Option<Vec<u8>>,
    pub unknown_critical: bool,
}

/// Hash algorithms (RFC 9580 §9.5).
pub const HASH_SHA256: u8 = 8;
pub const HASH_SHA384: u8 = 9;
pub const HASH_SHA512: u8 = 10;
pub const HASH_SHA224: u8 = 11;

/// A v4 signature packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub sig_type: u8,
    pub algorithm: u8,
    pub hash: u8,
    /// Version through the hashed subpackets: what the trailer hashes.
    pub hashed_part: Vec<u8>,
    pub hashed: Subpackets,
    pub unhashed: Subpackets,
    pub digest_prefix: [u8; 2],
    /// RSA: the signature integer; Ed25519: r || s, 64 bytes.
    pub value: Vec<u8>,
}

impl Signature {
    /// Issuer fingerprint or key id, hashed area first. The unhashed area is only a
    /// hint for finding the key; the signature check itself is what counts.
    pub fn issuer_fingerprint(&self) -> Option<[u8; 20]> {
        self.hashed
            .issuer_fingerprint
            .or(self.unhashed.issuer_fingerprint)
    }
    pub fn issuer_key_id(&self) -> Option<[u8; 8]> {
        self.hashed.issuer_key_id.or(self.unhashed.issuer_key_id)
    }
}

/// Parses a signature packet body; `Ok(None)` for versions other than 4.
pub fn signature(body: &[u8]) -> Result<Option<Signature>, PacketError> {
    let mut r = Reader {
        data: body,
        what: "signature",
    };
    if r.u8()? != 4 {
        return Ok(None);
    }
    let sig_type = r.u8()?;
    let algorithm = r.u8()?;
    let hash = r.u8()?;
    let hashed_len = r.u16()?;
    let hashed_area = r.take(hashed_len)?;
    let hashed_part = body[..6 + hashed_len].to_vec();
    let unhashed_len = r.u16()?;
    let unhashed_area = r.take(unhashed_len)?;
    let prefix = r.take(2)?;
    let value = match algorithm {
        ALGO_RSA | ALGO_RSA_SIGN => strip_zeros(r.mpi()?).to_vec(),
        ALGO_EDDSA_LEGACY => {
            let (rr, s) = (r.mpi()?, r.mpi()?);
            let mut v = left_pad(strip_zeros(rr), 32).ok_or(r.invalid("eddsa r too long"))?;
            v.extend(left_pad(strip_zeros(s), 32).ok_or(r.invalid("eddsa s too long"))?);
            v
        }
        ALGO_ED25519 => r.take(64)?.to_vec(),
        _ => Vec::new(),
    };
    Ok(Some(Signature {
        sig_type,
        algorithm,
        hash,
        hashed_part,
        hashed: subpackets(hashed_area)?,
        unhashed: subpackets(unhashed_area)?,
        digest_prefix: [prefix[0], prefix[1]],
        value,
    }))
}

fn subpackets(mut area: &[u8]) -> Result<Subpackets, PacketError> {
    let mut out = Subpackets::default();
    let truncated = PacketError::Truncated {
        what: "signature subpacket",
    };
    while !area.is_empty() {
        let mut r = Reader {
            data: area,
            what: "signature subpacket",
        };
        let first = usize::from(r.u8()?);
        let len = match first {
            0..=191 => first,
            192..=254 => ((first - 192) << 8) + usize::from(r.u8()?) + 192,
            _ => r.u32()? as usize,
        };
        let body = r.take(len).map_err(|_| truncated.clone())?;
        area = r.data;
        let Some((&kind, data)) = body.split_first() else {
            return Err(truncated);
        };
        let critical = kind & 0x80 != 0;
        let be32 = |d: &[u8]| to_array::<4>(d).map(u32::from_be_bytes);
        match kind & 0x7F {
            2 => out.created = be32(data),
            3 => out.sig_expires = be32(data),
            9 => out.key_expires = be32(data),
            16 => out.issuer_key_id = to_array(data),
            33 => {
                if let [4, fp @ ..] = data {
                    out.issuer_fingerprint = to_array(fp);
                }
            }
            27 => out.key_flags = data.first().copied(),
            25 => out.primary_user_id = data.first() == Some(&1),
            32 => out.embedded = Some(data.to_vec()),
            // Preferences, features, notations, revocation reasons, keyserver
            // fields, policy URIs, trust, signer's user id: nothing to decide on.
            4 | 5 | 7 | 11 | 20 | 21 | 22 | 23 | 24 | 26 | 28 | 29 | 30 | 31 | 34 | 35 | 37
            | 39 => {}
            _ if critical => out.unknown_critical = true,
            _ => {}
        }
    }
    Ok(out)
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

fn left_pad(b: &[u8], len: usize) -> Option<Vec<u8>> {
    let pad = len.checked_sub(b.len())?;
    let mut v = vec![0; pad];
    v.extend_from_slice(b);
    Some(v)
}

fn to_array<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_header_formats_and_all_length_forms_frame() {
        // New format, tag 13, one-octet length; old format, tag 2, two-octet length;
        // new format with a two-octet length (200 bytes).
        let mut data = vec![0xC0 | 13, 3, b'a', b'b', b'c', 0x80 | (2 << 2) | 1, 0, 1, 9];
        data.extend([0xC0 | 14, 192, 8]);
        data.extend(vec![7; 200]);
        data.extend([0xC0 | 6, 255, 0, 0, 0, 1, 5]);
        let p = packets(&data).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!((p[0].tag, p[0].body), (13, &b"abc"[..]));
        assert_eq!((p[1].tag, p[1].body), (2, &[9][..]));
        assert_eq!((p[2].tag, p[2].body.len()), (14, 200));
        assert_eq!((p[3].tag, p[3].body), (6, &[5][..]));
    }

    #[test]
    fn malformed_framing_is_an_error() {
        assert!(packets(&[0x00]).is_err());
        assert!(packets(&[0xC2, 10, 1]).is_err());
        assert!(packets(&[0xC2, 230]).is_err(), "partial lengths");
        assert!(packets(&[0x8B]).is_err(), "indeterminate length");
        assert!(packets(&[0xC2, 255, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
    }

    #[test]
    fn unknown_critical_subpackets_are_noticed() {
        let s = subpackets(&[2, 0x80 | 100, 0, 5, 2, 0, 0, 0, 9]).unwrap();
        assert!(s.unknown_critical);
        assert_eq!(s.created, Some(9));
        assert!(!subpackets(&[2, 100, 0]).unwrap().unknown_critical);
        assert!(subpackets(&[9, 2]).is_err());
    }
}
