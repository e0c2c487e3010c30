//! Mutation tests for the kustomization parser and renderer, in the manner of
//! `manifests/fuzz.rs` (no cargo-fuzz dependency): seeded, deterministic, fast. Any
//! kustomization yields documents or a one-line error, never a panic or a hang.

use std::fs;
use std::time::{Duration, Instant};

use super::{ParseLimits, kustomize};

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

const SEED: &str = "resources: [cm.yaml, base]\nnamespace: prod\nnamePrefix: p-\nnameSuffix: -s\n\
commonLabels: {app: web}\nlabels:\n- pairs: {tier: a}\n  includeSelectors: true\n\
commonAnnotations: {owner: me}\nimages:\n- {name: nginx, newTag: '2'}\nreplicas:\n- {name: web, count: 2}\n\
configMapGenerator:\n- name: settings\n  literals: [A=1]\n  envs: [a.env]\n  files: [k=a.env]\n\
secretGenerator:\n- {name: s, literals: [B=2], type: Opaque}\n\
generatorOptions: {disableNameSuffixHash: false, labels: {g: h}}\n\
components: [comp]\nsortOptions: {order: legacy}\ntransformers: [t.yaml]\nconfigurations: [c.yaml]\n";

const TOKENS: &[&str] = &[
    "resources: [base]\n",
    "components: [comp]\n",
    "../",
    "/",
    "base",
    "comp",
    "- ",
    ": ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\"",
    "\n",
    "  ",
    "behavior: merge\n",
    "behavior: replace\n",
    "kind: Component\n",
    "namespace: x\n",
    "vars: []\n",
    "=",
    "a.env",
    "t.yaml",
    "\u{0}",
    "*",
    "~",
    "::",
    "https://x/y",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut text: Vec<char> = seed.chars().collect();
    for _ in 0..=rng.below(3) {
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
fn mutated_kustomizations_render_or_fail_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let files = [
        (
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n",
        ),
        ("a.env", "X=1\n# c\nY\n"),
        (
            "base/kustomization.yaml",
            "resources: [d.yaml]\nnamePrefix: b-\n",
        ),
        (
            "base/d.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: w, image: nginx, envFrom: [{configMapRef: {name: settings}}]}]\n",
        ),
        (
            "comp/kustomization.yaml",
            "kind: Component\ncommonAnnotations: {c: d}\n",
        ),
        (
            "t.yaml",
            "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: t}\nlabels: {x: z}\nfieldSpecs: [{path: metadata/labels, create: true}]\n",
        ),
        (
            "c.yaml",
            "nameReference:\n- kind: ConfigMap\n  fieldSpecs: [{path: spec/cm, kind: Thing}]\n",
        ),
    ];
    for (path, text) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let limits = ParseLimits::default();
    fs::write(root.join("kustomization.yaml"), SEED).unwrap();
    if let Err(e) = kustomize(root, None, &limits) {
        panic!("the seed must render: {e}");
    }
    let mut rng = Rng(0x243f_6a88_85a3_08d3);
    let start = Instant::now();
    let (mut ok, mut failed) = (0, 0);
    for _ in 0..400 {
        let input = mutate(&mut rng, SEED);
        fs::write(root.join("kustomization.yaml"), &input).unwrap();
        match kustomize(root, None, &limits) {
            Ok(_) => ok += 1,
            Err(e) => {
                let line = e.to_string();
                assert!(
                    !line.contains('\n'),
                    "{input:?} gave a multi-line error: {line}"
                );
                failed += 1;
            }
        }
    }
    assert!(
        ok > 0 && failed > 0,
        "mutations should both render and fail: {ok} {failed}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "too slow: {:?}",
        start.elapsed()
    );
}
