//! Packs made by the git CLI are the oracle: every id `git verify-pack -v` lists must
//! come out of `Pack::open` with the same kind and the content `git cat-file` prints.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use sha1_checked::{Digest, Sha1};

use super::*;

pub(crate) fn git(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A repository whose history, repacked hard, holds OFS_DELTA chains.
fn delta_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"]);
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!(
            "line {i} of a file that changes a little every commit\n"
        ));
    }
    for round in 0..6 {
        text.push_str(&format!("round {round}\n"));
        std::fs::write(d.join("big.txt"), &text).unwrap();
        std::fs::write(d.join(format!("f{round}.txt")), &text[round * 10..]).unwrap();
        git(d, &["add", "-A"]);
        git(d, &["commit", "-q", "-m", &format!("round {round}")]);
    }
    git(d, &["tag", "-a", "-m", "annotated", "v1"]);
    git(d, &["repack", "-adfq", "--window=250", "--depth=50"]);
    dir
}

fn pack_file(repo: &Path) -> std::path::PathBuf {
    let packs = repo.join(".git/objects/pack");
    std::fs::read_dir(&packs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap()
}

fn kind_of(name: &str) -> Kind {
    match name {
        "commit" => Kind::Commit,
        "tree" => Kind::Tree,
        "blob" => Kind::Blob,
        "tag" => Kind::Tag,
        other => panic!("{other}"),
    }
}

#[test]
fn decodes_every_object_of_an_aggressively_deltified_pack() {
    let repo = delta_repo();
    let path = pack_file(repo.path());
    let verify = String::from_utf8(git(
        repo.path(),
        &["verify-pack", "-v", path.to_str().unwrap()],
    ))
    .unwrap();
    let mut listed = Vec::new();
    let mut deltas = 0;
    for line in verify.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() >= 5 && fields[0].len() == 40 {
            if fields.len() == 7 {
                deltas += 1;
            }
            listed.push((ObjectId::from_hex(fields[0]).unwrap(), kind_of(fields[1])));
        }
    }
    assert!(deltas > 5, "the oracle pack should hold deltas:\n{verify}");

    let mut pack = Pack::open(std::fs::File::open(&path).unwrap(), 1 << 30).unwrap();
    assert_eq!(pack.len(), listed.len());
    for (id, kind) in listed {
        assert_eq!(pack.kind(&id), Some(kind), "{id}");
        let data = pack.read(&id, kind).unwrap();
        let expected = git(repo.path(), &["cat-file", kind.name(), &id.to_string()]);
        assert_eq!(*data, expected, "{id}");
    }
}

#[test]
fn ref_deltas_resolve_including_bases_later_in_the_pack() {
    let repo = delta_repo();
    let revs = git(repo.path(), &["rev-list", "--objects", "--all"]);
    // `--no-reuse-delta` with `pack-objects` writes REF_DELTA unless told --delta-base-offset.
    let out = Command::new("git")
        .args([
            "pack-objects",
            "--stdout",
            "--window=250",
            "--depth=50",
            "--no-reuse-delta",
        ])
        .current_dir(repo.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(&revs)?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    let bytes = out.stdout;
    let mut pack = Pack::open(Cursor::new(&bytes), 1 << 30).unwrap();
    let refs = pack
        .entries
        .iter()
        .filter(|e| matches!(e.raw, Raw::Ref(_)))
        .count();
    assert!(refs > 5, "expected REF_DELTA entries, got {refs}");
    let head = String::from_utf8(git(repo.path(), &["rev-parse", "HEAD"])).unwrap();
    let head = ObjectId::from_hex(head.trim()).unwrap();
    assert!(pack.read(&head, Kind::Commit).is_ok());
    assert_eq!(
        pack.len(),
        revs.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
    );
}

fn small_pack() -> Vec<u8> {
    let repo = delta_repo();
    std::fs::read(pack_file(repo.path())).unwrap()
}

fn retrailer(mut bytes: Vec<u8>) -> Vec<u8> {
    let n = bytes.len() - 20;
    let sum = Sha1::digest(&bytes[..n]);
    bytes[n..].copy_from_slice(&sum);
    bytes
}

fn open_err(bytes: Vec<u8>) -> String {
    match Pack::open(Cursor::new(bytes), 1 << 30) {
        Ok(_) => panic!("hostile pack opened"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn hostile_packs_are_refused_with_a_reason() {
    let good = small_pack();

    let mut bad_trailer = good.clone();
    *bad_trailer.last_mut().unwrap() ^= 1;
    assert_eq!(
        open_err(bad_trailer),
        "invalid pack: trailer checksum mismatch"
    );

    let truncated = good[..good.len() / 2].to_vec();
    assert_eq!(
        open_err(truncated),
        "invalid pack: trailer checksum mismatch"
    );
    assert_eq!(
        open_err(good[..20].to_vec()),
        "invalid pack: shorter than a header and trailer"
    );

    // Corrupt a byte inside the first object's zlib stream (header is 12 bytes, the
    // entry header a few more), keeping the trailer consistent.
    let mut zlib = good.clone();
    zlib[20] ^= 0x55;
    let err = open_err(retrailer(zlib));
    assert!(err.starts_with("pack entry at offset 12: "), "{err}");

    let mut count = good.clone();
    count[11] += 1;
    assert_eq!(
        open_err(retrailer(count)),
        "invalid pack: fewer objects than its header declares"
    );

    let mut fewer = good.clone();
    fewer[11] -= 1;
    assert_eq!(
        open_err(retrailer(fewer)),
        "invalid pack: bytes after the last object"
    );

    let mut sig = good;
    sig[0] = b'X';
    assert_eq!(
        open_err(retrailer(sig)),
        "invalid pack: missing PACK signature"
    );
}

/// Builds a one-object pack by hand, so sizes and content can lie.
fn handmade(kind_code: u8, declared: u8, body: &[u8]) -> Vec<u8> {
    let mut p = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
    assert!(declared < 16);
    p.push((kind_code << 4) | declared);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(body).unwrap();
    p.extend(z.finish().unwrap());
    p.extend([0u8; 20]);
    retrailer(p)
}

#[test]
fn sizes_that_lie_and_limits() {
    let err = open_err(handmade(3, 5, b"hello world"));
    assert_eq!(
        err,
        "pack entry at offset 12: inflates past its declared size of 5 bytes"
    );
    let err = open_err(handmade(3, 12, b"hello world"));
    assert_eq!(
        err,
        "pack entry at offset 12: inflated size 11 differs from the declared 12"
    );
    let err = open_err(handmade(5, 11, b"hello world"));
    assert_eq!(err, "pack entry at offset 12: unknown object type 5");
    let ok = handmade(3, 11, b"hello world");
    let err = Pack::open(Cursor::new(ok.clone()), 10)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "pack entry at offset 12: object of 11 bytes exceeds the max-object-bytes limit of 10"
    );
    let mut pack = Pack::open(Cursor::new(ok), 100).unwrap();
    let id = object_id(Kind::Blob, b"hello world").unwrap();
    let mut out = Vec::new();
    assert_eq!(pack.write_blob(&id, &mut out).unwrap(), 11);
    assert_eq!(out, b"hello world");
    assert!(matches!(
        pack.read(&id, Kind::Tree),
        Err(GitError::WrongKind { .. })
    ));
}

#[test]
fn thin_pack_base_missing_is_named() {
    let mut p = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
    let delta = [11u8, 5, 0x90, 5];
    p.push((7 << 4) | delta.len() as u8);
    p.extend([0xab; 20]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&delta).unwrap();
    p.extend(z.finish().unwrap());
    p.extend([0u8; 20]);
    let err = open_err(retrailer(p));
    assert_eq!(
        err,
        format!("object {} is missing from the pack", ObjectId([0xab; 20]))
    );
}

#[test]
fn ofs_delta_pointing_outside_the_pack() {
    let mut p = b"PACK\0\0\0\x02\0\0\0\x01".to_vec();
    p.push((6 << 4) | 4);
    p.push(0x7f); // 127 bytes back from offset 12
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&[11u8, 5, 0x90, 5]).unwrap();
    p.extend(z.finish().unwrap());
    p.extend([0u8; 20]);
    let err = open_err(retrailer(p));
    assert_eq!(
        err,
        "pack entry at offset 12: invalid pack: OFS_DELTA base outside the pack"
    );
}
