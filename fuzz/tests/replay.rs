//! Replays every seed of every target: the corpus must stay valid input that
//! exercises the decoders without panicking.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        f(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn pktline_seeds() {
    replay("pktline", hawser_fuzz::pktline);
}

#[test]
fn pack_entry_seeds() {
    replay("pack_entry", hawser_fuzz::pack_entry);
}

#[test]
fn delta_seeds() {
    replay("delta", hawser_fuzz::delta);
}

#[test]
fn strategic_merge_seeds() {
    replay("strategic_merge", hawser_fuzz::strategic_merge);
}

#[test]
fn json6902_seeds() {
    replay("json6902", hawser_fuzz::json6902);
}

#[test]
fn kustomization_seeds() {
    replay("kustomization", hawser_fuzz::kustomization);
}
