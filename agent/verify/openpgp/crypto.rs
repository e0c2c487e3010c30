//! The two checks hawser can make: RSA PKCS#1 v1.5 (2048–4096-bit keys) and Ed25519
//! (legacy EdDSA, algorithm 22, and RFC 9580's algorithm 27), over SHA-2 digests.
//! In: key material, a signature packet, the signed data. Out: whether it holds.

use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

use super::packet::{
    HASH_SHA224, HASH_SHA256, HASH_SHA384, HASH_SHA512, Material, PublicKey, Signature,
};

/// Why a signature could not be checked or did not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// SHA-1, MD5 and other hashes are refused (SHA-1 signatures are forgeable).
    Hash(u8),
    Algorithm(u8),
    /// RSA keys must be 2048 to 4096 bits.
    KeySize(usize),
    Mismatch,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Hash(h) => write!(f, "hash algorithm {h} is not accepted (SHA-2 only)"),
            Failure::Algorithm(a) => write!(f, "public key algorithm {a} is not supported"),
            Failure::KeySize(bits) => write!(f, "rsa key of {bits} bits (2048-4096 accepted)"),
            Failure::Mismatch => f.write_str("signature does not match"),
        }
    }
}

/// The digest a v4 signature signs: `prefix` (keys, user ids or the document),
/// then the hashed part of the signature and the v4 trailer.
pub fn digest(sig: &Signature, prefix: &[&[u8]]) -> Result<Vec<u8>, Failure> {
    fn run<D: Digest>(sig: &Signature, prefix: &[&[u8]]) -> Vec<u8> {
        let mut d = D::new();
        for p in prefix {
            d.update(p);
        }
        d.update(&sig.hashed_part);
        d.update([0x04, 0xFF]);
        // The hashed part is bounded by its 16-bit length field plus six bytes.
        d.update((sig.hashed_part.len() as u32).to_be_bytes());
        d.finalize().to_vec()
    }
    Ok(match sig.hash {
        HASH_SHA256 => run::<Sha256>(sig, prefix),
        HASH_SHA384 => run::<Sha384>(sig, prefix),
        HASH_SHA512 => run::<Sha512>(sig, prefix),
        HASH_SHA224 => run::<Sha224>(sig, prefix),
        other => return Err(Failure::Hash(other)),
    })
}

/// Checks `sig` by `key` over `prefix`.
pub fn check(key: &PublicKey, sig: &Signature, prefix: &[&[u8]]) -> Result<(), Failure> {
    let hashed = digest(sig, prefix)?;
    if hashed[..2] != sig.digest_prefix {
        // A quick reject RFC 9580 provides; not a security check by itself.
        return Err(Failure::Mismatch);
    }
    match &key.material {
        Material::Rsa { n, e } => check_rsa(n, e, sig, &hashed),
        Material::Ed25519(point) => {
            let key =
                ed25519_dalek::VerifyingKey::from_bytes(point).map_err(|_| Failure::Mismatch)?;
            let value: [u8; 64] = sig
                .value
                .as_slice()
                .try_into()
                .map_err(|_| Failure::Mismatch)?;
            let signature = ed25519_dalek::Signature::from_bytes(&value);
            // OpenPGP's EdDSA signs the digest, not the data.
            key.verify_strict(&hashed, &signature)
                .map_err(|_| Failure::Mismatch)
        }
        Material::Unsupported(a) => Err(Failure::Algorithm(*a)),
    }
}

fn check_rsa(n: &[u8], e: &[u8], sig: &Signature, hashed: &[u8]) -> Result<(), Failure> {
    use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
    let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    if !(2048..=4096).contains(&bits) {
        return Err(Failure::KeySize(bits));
    }
    let key = RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
        .map_err(|_| Failure::Mismatch)?;
    let scheme = match sig.hash {
        HASH_SHA256 => Pkcs1v15Sign::new::<Sha256>(),
        HASH_SHA384 => Pkcs1v15Sign::new::<Sha384>(),
        HASH_SHA512 => Pkcs1v15Sign::new::<Sha512>(),
        HASH_SHA224 => Pkcs1v15Sign::new::<Sha224>(),
        other => return Err(Failure::Hash(other)),
    };
    // The integer dropped its leading zeros; the scheme wants the modulus's length.
    if sig.value.len() > n.len() {
        return Err(Failure::Mismatch);
    }
    let mut value = vec![0; n.len() - sig.value.len()];
    value.extend_from_slice(&sig.value);
    rsa::traits::SignatureScheme::verify(scheme, &key, hashed, &value)
        .map_err(|_| Failure::Mismatch)
}
