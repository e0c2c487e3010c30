//! Mutation tests for the OpenPGP parsers (armor, packets, keys, signatures) over
//! the real GnuPG fixtures: any input yields a value or an error, never a panic.
//! Seeded and deterministic, like `manifests::fuzz`, instead of a cargo-fuzz target.

use super::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        if data.is_empty() {
            return;
        }
        let at = rng.below(data.len());
        match rng.below(4) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = [0x00, 0xFF, 0x80, 0xC0, 0x3F, 192, 255][rng.below(7)],
            2 => {
                data.remove(at);
            }
            _ => data.truncate(at),
        }
    }
}

const SEEDS: [&[u8]; 4] = [
    include_bytes!("testdata/rsa.asc"),
    include_bytes!("testdata/ed.asc"),
    include_bytes!("testdata/payload.rsa.asc"),
    include_bytes!("testdata/payload.ed.asc"),
];

#[test]
fn mutated_binary_packets_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let keys = Keyring::parse(SEEDS[1]).unwrap_or_default();
    for seed in SEEDS {
        let kind = if seed.starts_with(b"-----BEGIN PGP PUBLIC") {
            "PUBLIC KEY BLOCK"
        } else {
            "SIGNATURE"
        };
        let binary = armor::decode_all(seed, kind).unwrap().remove(0);
        for _ in 0..300 {
            let mut data = binary.clone();
            mutate(&mut rng, &mut data);
            if let Ok(packets) = packet::packets(&data) {
                for p in &packets {
                    let _ = packet::public_key(p.body);
                    let _ = packet::signature(p.body);
                }
                let _ = cert(&packets);
            }
            // Through the armor too, so the whole verify path sees the bytes.
            let text = format!(
                "-----BEGIN PGP {kind}-----\n\n{}\n-----END PGP {kind}-----\n",
                crate::encoding::base64(&data)
            );
            let _ = Keyring::parse(text.as_bytes());
            let _ = keys.verify(b"payload", text.as_bytes(), 1_800_000_000);
        }
    }
}

#[test]
fn mutated_armor_never_panics() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for seed in SEEDS {
        for _ in 0..500 {
            let mut text = seed.to_vec();
            mutate(&mut rng, &mut text);
            let _ = armor::decode_all(&text, "PUBLIC KEY BLOCK");
            let _ = armor::decode_all(&text, "SIGNATURE");
        }
    }
}
