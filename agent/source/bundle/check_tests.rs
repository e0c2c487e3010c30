use std::io::Cursor;

use super::*;

fn id(n: u8) -> ObjectId {
    ObjectId([n; 20])
}

fn content(commit: u8, time: i64, ancestors: &[u8], complete: bool) -> Content {
    Content {
        reference: "refs/heads/main".into(),
        commit: id(commit),
        committer_time: time,
        files: 1,
        history: History {
            ancestors: ancestors.iter().map(|&n| id(n)).collect(),
            complete,
        },
    }
}

fn applied(commit: u8, time: Option<i64>) -> AppliedCommit {
    AppliedCommit {
        commit: id(commit),
        committer_time: time,
    }
}

#[test]
fn ancestry_decides_when_history_can() {
    assert_eq!(
        judge(&content(2, 10, &[1], true), &applied(2, None)),
        Ancestry::Same
    );
    // A descendant is newer even with an earlier clock.
    assert_eq!(
        judge(&content(3, 5, &[1, 2], false), &applied(2, Some(100))),
        Ancestry::Newer
    );
    // Full history without the applied commit: another line of history.
    assert!(matches!(
        judge(&content(3, 500, &[1], true), &applied(2, Some(100))),
        Ancestry::Older(r) if r.contains("does not descend")
    ));
}

#[test]
fn committer_time_decides_otherwise() {
    assert_eq!(
        judge(&content(3, 200, &[9], false), &applied(2, Some(100))),
        Ancestry::Newer
    );
    assert_eq!(
        judge(&content(3, 100, &[9], false), &applied(2, Some(100))),
        Ancestry::Newer
    );
    assert!(matches!(
        judge(&content(3, 99, &[9], false), &applied(2, Some(100))),
        Ancestry::Older(r) if r.contains("earlier")
    ));
    assert!(matches!(
        judge(&content(3, 99, &[9], false), &applied(2, None)),
        Ancestry::Older(r) if r.contains("unknown")
    ));
}

#[test]
fn commit_headers() {
    let data = format!(
        "tree {t}\nparent {a}\nparent {b}\nauthor A <a@x> 1 +0000\n\
         committer C <c> d> 1700000000 +0100\n\nparent {t}\n",
        t = "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
        a = id(1),
        b = id(2)
    );
    let (parents, time) = parse_commit(id(0), data.as_bytes()).unwrap();
    assert_eq!(parents, [id(1), id(2)]);
    assert_eq!(time, 1_700_000_000);
    let err = parse_commit(id(0), b"tree x\nauthor a <a> 1 +0000\n").unwrap_err();
    assert!(err.to_string().contains("no committer time"), "{err}");
    assert!(parse_commit(id(0), b"parent nothex\n").is_err());
}

#[test]
fn refs_are_selected_like_git_does() {
    let header = |refs: &[(u8, &str)]| Header {
        version: 2,
        prerequisites: Vec::new(),
        refs: refs.iter().map(|(n, r)| (id(*n), r.to_string())).collect(),
        len: 0,
    };
    let one = header(&[(1, "refs/heads/main")]);
    assert_eq!(
        select_ref(&one, &RefSpec::Head).unwrap(),
        ("refs/heads/main".into(), id(1))
    );
    let two = header(&[(1, "refs/heads/main"), (2, "refs/tags/main"), (3, "HEAD")]);
    assert_eq!(select_ref(&two, &RefSpec::Head).unwrap().1, id(3));
    let err = select_ref(&two, &RefSpec::parse("main").unwrap()).unwrap_err();
    assert!(err.to_string().contains("ambiguous"), "{err}");
    let err = select_ref(&two, &RefSpec::parse("dev").unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .contains("it has refs/heads/main, refs/tags/main, HEAD"),
        "{err}"
    );
    let no_head = header(&[(1, "refs/heads/a"), (2, "refs/heads/b")]);
    let err = select_ref(&no_head, &RefSpec::Head).unwrap_err();
    assert!(err.to_string().contains("--ref"), "{err}");
}

#[test]
fn window_shows_only_its_slice() {
    let mut w = ByteRange::new(Cursor::new(b"headerPACKDATA".to_vec()), 6, 8);
    assert_eq!(w.seek(SeekFrom::End(0)).unwrap(), 8);
    w.seek(SeekFrom::Start(0)).unwrap();
    let mut all = Vec::new();
    w.read_to_end(&mut all).unwrap();
    assert_eq!(all, b"PACKDATA");
    w.seek(SeekFrom::End(-4)).unwrap();
    let mut tail = Vec::new();
    w.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, b"DATA");
    assert!(w.seek(SeekFrom::Current(-100)).is_err());
}
