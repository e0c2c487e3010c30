//! Byte-for-byte comparison of two directory trees, the way git sees them:
//! file contents, the executable bit, symlink targets. `.git` entries are
//! skipped (git never stores a path component named `.git`). Empty
//! directories count: git cannot store them, so a fetch must not create any.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// At most this many differences are described; the rest are counted.
const MAX_REPORTED: usize = 20;

#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File { executable: bool, contents: Vec<u8> },
    Symlink(std::path::PathBuf),
    Dir,
    Other,
}

impl Entry {
    fn kind(&self) -> &'static str {
        match self {
            Entry::File {
                executable: true, ..
            } => "executable file",
            Entry::File { .. } => "file",
            Entry::Symlink(_) => "symlink",
            Entry::Dir => "directory",
            Entry::Other => "special file",
        }
    }
}

/// Compares the trees under `left` and `right`; `Err` holds a readable list
/// of every difference (relative paths, what differs).
pub fn compare_trees(left: &Path, right: &Path) -> Result<(), String> {
    let a = collect(left)?;
    let b = collect(right)?;
    let mut problems = Vec::new();
    for (path, entry) in &a {
        match b.get(path) {
            None => problems.push(format!("only in left: {path} ({})", entry.kind())),
            Some(other) => {
                if let Some(diff) = describe(entry, other) {
                    problems.push(format!("{path}: {diff}"));
                }
            }
        }
    }
    for (path, entry) in &b {
        if !a.contains_key(path) {
            problems.push(format!("only in right: {path} ({})", entry.kind()));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let total = problems.len();
    let mut report = format!(
        "trees differ (left {}, right {}), {total} difference(s):\n",
        left.display(),
        right.display()
    );
    for problem in problems.iter().take(MAX_REPORTED) {
        report.push_str("  ");
        report.push_str(problem);
        report.push('\n');
    }
    if total > MAX_REPORTED {
        report.push_str(&format!("  … and {} more\n", total - MAX_REPORTED));
    }
    Err(report)
}

/// Panics with `compare_trees`' description unless the trees are equal.
#[track_caller]
pub fn assert_same_tree(left: &Path, right: &Path) {
    if let Err(report) = compare_trees(left, right) {
        panic!("{report}");
    }
}

fn describe(a: &Entry, b: &Entry) -> Option<String> {
    match (a, b) {
        (
            Entry::File {
                executable: xa,
                contents: ca,
            },
            Entry::File {
                executable: xb,
                contents: cb,
            },
        ) => {
            let mut diffs = Vec::new();
            if ca != cb {
                let at = ca
                    .iter()
                    .zip(cb.iter())
                    .position(|(x, y)| x != y)
                    .unwrap_or(ca.len().min(cb.len()));
                diffs.push(format!(
                    "contents differ ({} vs {} bytes, first difference at byte {at})",
                    ca.len(),
                    cb.len()
                ));
            }
            if xa != xb {
                diffs.push(format!(
                    "executable bit differs (left {}, right {})",
                    mode_word(*xa),
                    mode_word(*xb)
                ));
            }
            (!diffs.is_empty()).then(|| diffs.join("; "))
        }
        (Entry::Symlink(ta), Entry::Symlink(tb)) => (ta != tb).then(|| {
            format!(
                "symlink targets differ (left {}, right {})",
                ta.display(),
                tb.display()
            )
        }),
        _ if a.kind() == b.kind() => None,
        _ => Some(format!(
            "type differs (left {}, right {})",
            a.kind(),
            b.kind()
        )),
    }
}

fn mode_word(executable: bool) -> &'static str {
    if executable { "100755" } else { "100644" }
}

/// Relative path (with `/`) → entry, for everything below `root`.
fn collect(root: &Path) -> Result<BTreeMap<String, Entry>, String> {
    let mut entries = BTreeMap::new();
    let meta = fs::metadata(root).map_err(|e| format!("cannot read {}: {e}", root.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", root.display()));
    }
    walk(root, "", &mut entries)?;
    Ok(entries)
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Entry>) -> Result<(), String> {
    let read = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for item in read {
        let item = item.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name == ".git" {
            continue;
        }
        let path = item.path();
        let rel = format!("{prefix}{name}");
        let meta = fs::symlink_metadata(&path)
            .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
        let kind = meta.file_type();
        let entry = if kind.is_symlink() {
            let target = fs::read_link(&path)
                .map_err(|e| format!("cannot read link {}: {e}", path.display()))?;
            Entry::Symlink(target)
        } else if kind.is_dir() {
            walk(&path, &format!("{rel}/"), out)?;
            Entry::Dir
        } else if kind.is_file() {
            let contents =
                fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Entry::File {
                // git records only the owner's execute bit.
                executable: meta.permissions().mode() & 0o100 != 0,
                contents,
            }
        } else {
            Entry::Other
        };
        out.insert(rel, entry);
    }
    Ok(())
}
