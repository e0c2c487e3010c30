//! Mutation tests for the SOPS parsers (YAML/JSON/dotenv trees, ENC values, age
//! armor and headers) and the substitution parser, seeded and deterministic like
//! `render/fuzz.rs`: any input yields a result or an error, never a panic or a hang.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::source::{SourceFormat, decrypt_source};
use super::{Budget, Format, Keys, age, decrypt_text};
use crate::render::substitute;

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

const KEY: &str = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";

const SEED: &str = "kind: Secret\nstringData:\n    password: ENC[AES256_GCM,data:kkj1YqsFDw==,iv:+cEwmyqc9H3QX9kdqz+QoqsBm7ZWr/13habpiXArlH0=,tag:3bOGqCgGvJ8Iv5nLErj4JQ==,type:str]\n    list:\n        - ENC[AES256_GCM,data:cQ==,iv:64ObmwdxzqXmEDumAT73e/HxROYV0CxJhDvKUE1RRRQ=,tag:D4NGsvW+QvB4QB90QGJHQg==,type:int]\nsops:\n    age:\n        - recipient: age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj\n          enc: |\n            -----BEGIN AGE ENCRYPTED FILE-----\n            YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBrMVovWXk1Ujc3V1gzY0da\n            QUVqNitoVVNkc0dhSFdxenc4VmV5YmkrMkJjCnpYcDMrNktwZGV2K1FoWFBreGFy\n            -----END AGE ENCRYPTED FILE-----\n    encrypted_regex: ^(data|stringData)$\n    lastmodified: \"2026-12-02T01:10:32Z\"\n    mac: ENC[AES256_GCM,data:Lq6I,iv:gfs28x054rBFd2Lj9NmNfQu52bhEcxgC9FI1tXvG0AI=,tag:8+DX2riGUKJQzjNaxJZYFA==,type:str]\n";

const TOKENS: &[&str] = &[
    "ENC[",
    "]",
    ",",
    ":",
    "data:",
    "iv:",
    "tag:",
    "type:",
    "==",
    "\n",
    "  ",
    "- ",
    "sops:",
    "key_groups:",
    "mac_only_encrypted: true",
    "${",
    "}",
    "$$",
    ":=",
    ":-",
    "\u{0}",
    "{",
    "[",
    "-> X25519 ",
    "--- ",
    "age-encryption.org/v1\n",
    "sops_age__list_0__map_enc=",
    "=",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut text: Vec<char> = seed.chars().collect();
    for _ in 0..=rng.below(6) {
        let at = rng.below(text.len() + 1);
        match rng.below(3) {
            0 => text
                .splice(at..at, TOKENS[rng.below(TOKENS.len())].chars())
                .for_each(drop),
            1 if at < text.len() => {
                let end = (at + rng.below(12)).min(text.len());
                text.drain(at..end);
            }
            _ if at < text.len() => text[at] = char::from(rng.below(128) as u8),
            _ => {}
        }
    }
    text.into_iter().collect()
}

#[test]
fn mutated_sops_files_and_expressions_never_panic() {
    let keys = Keys::parse(KEY).unwrap();
    let limits = Budget::default();
    let vars: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
    let mut rng = Rng(0x5eed_5095);
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0..3000 {
        if Instant::now() > deadline {
            break;
        }
        let text = mutate(&mut rng, SEED);
        let format = [Format::Yaml, Format::Json, Format::Dotenv][i % 3];
        if let Err(reason) = decrypt_text(&text, format, &keys, &limits) {
            assert!(!reason.contains('\n'), "{reason}");
        }
        // A generator source: the marker appended, so the parsers behind it run.
        let (source, marker) = [
            (SourceFormat::Dotenv, "\nsops_mac=ENC["),
            (SourceFormat::Binary, "\"mac\": \"ENC["),
        ][i % 2];
        let bytes = format!("{text}{marker}").into_bytes();
        if let Err(reason) = decrypt_source(&bytes, source, Some(&keys), &limits) {
            assert!(!reason.contains('\n'), "{reason}");
        }
        let _ = age::decrypt(text.as_bytes(), &keys.identities);
        let _ = age::decrypt_armored(&text, &keys.identities);
        let _ = substitute::eval(
            &mutate(&mut rng, "x ${a} ${b:=${a}} $${c} ${d:-e}"),
            &vars,
            i % 2 == 0,
        );
    }
}
