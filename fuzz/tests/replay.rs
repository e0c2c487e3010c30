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

#[test]
fn sops_seeds() {
    replay("sops", hawser_fuzz::sops);
}

#[test]
fn envsubst_seeds() {
    replay("envsubst", hawser_fuzz::envsubst);
}

/// The sops seeds are real files for the test key: each one decrypts, so the fuzzer
/// starts past the MAC and the tamper check runs on them.
#[test]
fn sops_seeds_decrypt() {
    use hawser_fuzz::{SOPS_TEST_KEY, file, source};
    let keys = file::Keys::parse(SOPS_TEST_KEY).unwrap();
    let budget = file::Budget::default();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/sops");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let (form, rest) = data.split_first().unwrap();
        let text = std::str::from_utf8(rest).unwrap();
        let opened = match form {
            0 => file::decrypt_text(text, file::Format::Yaml, &keys, &budget).map(|p| p.len()),
            1 => file::decrypt_text(text, file::Format::Json, &keys, &budget).map(|p| p.len()),
            2 => file::decrypt_text(text, file::Format::Dotenv, &keys, &budget).map(|p| p.len()),
            3 | 4 => {
                let format = if *form == 3 {
                    source::SourceFormat::Dotenv
                } else {
                    source::SourceFormat::Binary
                };
                source::decrypt_source(rest, format, Some(&keys), &budget)
                    .map(|p| usize::from(p.is_some()))
            }
            _ => panic!("{}: unknown form byte", path.display()),
        };
        assert!(
            matches!(opened, Ok(n) if n > 0),
            "{}: {opened:?}",
            path.display()
        );
    }
}
