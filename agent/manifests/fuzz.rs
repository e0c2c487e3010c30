//! Mutation tests for the parsers of untrusted input, in place of a cargo-fuzz
//! target (which would need a dependency): seeded, deterministic, fast. They assert
//! that any input yields a value or a one-line error, never a panic or a hang.

use std::time::{Duration, Instant};

use super::ignore::IgnoreFile;
use super::yaml::{parse_json, parse_yaml};
use super::{BuiltinNamespacing, Document, Location, ParseLimits, Scope, build};

/// xorshift64*: enough randomness to mutate with, no dependency.
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

const SEEDS: &[&str] = &[
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  labels: &l {app: api}\nspec:\n  selector:\n    matchLabels: *l\n  template:\n    metadata:\n      labels:\n        <<: *l\n        tier: web\n",
    "---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n  data: {k: \"0777\", b: yes}\n...\n--- |\n  text\n",
    "{\"apiVersion\": \"v1\", \"kind\": \"Secret\", \"metadata\": {\"name\": \"s\"}, \"stringData\": {\"a\": \"b\"}}\n",
    // Issue #21's probes: a glued JSON stream with a wide array, unknown tags.
    "[0,0,0,0,0,0,0,0,0,0,0,0]{\"a\": \"}{\"}\n7 \"x\"\n",
    "a: !custom x\nb: !!binary aGVsbG8=\nc: !<tag:x.example,2024:y> 1\n",
];

const TOKENS: &[&str] = &[
    "---\n",
    "...\n",
    "&a ",
    "*a",
    "<<: ",
    "? ",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "'",
    "|\n",
    ">-\n",
    "!!str ",
    "!!binary ",
    "!custom ",
    "%YAML 1.2\n",
    "#",
    "\t",
    "\n",
    "  ",
    "~",
    "yes",
    "0777",
    ".inf",
    "\u{feff}",
    "\r\n",
    "kind: List\n",
    "items:\n",
    "metadata:\n",
    "\\",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut text: Vec<char> = seed.chars().collect();
    for _ in 0..=rng.below(2) {
        let at = rng.below(text.len() + 1);
        match rng.below(3) {
            0 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                text.splice(at..at, token.chars());
            }
            1 if at < text.len() => {
                let end = (at + rng.below(8)).min(text.len());
                text.drain(at..end);
            }
            _ => {
                let from = rng.below(text.len().max(1));
                let end = (from + rng.below(20)).min(text.len());
                let copy: Vec<char> = text[from..end].to_vec();
                text.splice(at..at, copy);
            }
        }
    }
    text.into_iter().collect()
}

#[test]
fn mutated_manifests_parse_or_fail_in_one_line() {
    let limits = ParseLimits::default();
    let scope = Scope {
        namespace: "edge".into(),
        allow_cluster_scoped: true,
        ..Scope::default()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = Instant::now();
    for i in 0..1500 {
        let input = mutate(&mut rng, SEEDS[i % SEEDS.len()]);
        let parsed = if i % SEEDS.len() == 2 {
            parse_json(&input, "f.json", &limits)
        } else {
            parse_yaml(&input, "f.yaml", &limits)
        };
        match parsed {
            Ok(docs) => {
                let docs = docs
                    .into_iter()
                    .map(|p| {
                        Document::new(
                            Location {
                                file: "f.yaml".into(),
                                document: p.document,
                                line: Some(p.line),
                                item: None,
                            },
                            p.value,
                        )
                    })
                    .collect();
                if let Err(err) = build(docs, &scope, &BuiltinNamespacing) {
                    assert!(!err.to_string().contains('\n'), "{input:?}: {err}");
                }
            }
            Err(err) => {
                let line = err.to_string();
                assert!(
                    !line.contains('\n') && !line.contains('\r'),
                    "{input:?}: {line}"
                );
                assert!(line.starts_with("f."), "{input:?}: {line}");
            }
        }
    }
    assert!(start.elapsed() < Duration::from_secs(60));
}

#[test]
fn random_ignore_patterns_never_panic() {
    let alphabet: Vec<char> = "ab/*?[]!-^\\#. é".chars().collect();
    let mut rng = Rng(42);
    let word = |rng: &mut Rng, n: usize| -> String {
        (0..rng.below(n))
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect()
    };
    for _ in 0..3000 {
        let rules = (0..rng.below(4))
            .map(|_| word(&mut rng, 12))
            .collect::<Vec<_>>()
            .join("\n");
        let file = IgnoreFile::parse(&rules);
        let path = word(&mut rng, 16);
        let _ = file.decide(&path, rng.below(2) == 0);
    }
}
