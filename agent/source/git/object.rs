//! Git objects: ids, kinds, and the few fields hawser reads from commits, tags and
//! trees. In: raw object bytes from the pack. Out: typed fields. Every id is computed
//! with collision-detecting SHA-1, as git itself does.

use std::fmt;

use sha1_checked::{Digest, Sha1};

use super::GitError;

/// A SHA-1 object id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub [u8; 20]);

impl ObjectId {
    /// Parses 40 lowercase or uppercase hex digits.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Some(Self(out))
    }

    /// Takes the first 20 bytes of `bytes` as a binary id.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let raw: [u8; 20] = bytes.get(..20)?.try_into().ok()?;
        Some(Self(raw))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// The four object kinds a pack may hold once deltas are resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Commit,
    Tree,
    Blob,
    Tag,
}

impl Kind {
    /// The name used in object headers (`blob 12\0`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
            Kind::Tag => "tag",
        }
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        match name {
            b"commit" => Some(Kind::Commit),
            b"tree" => Some(Kind::Tree),
            b"blob" => Some(Kind::Blob),
            b"tag" => Some(Kind::Tag),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Incremental object-id computation: `<kind> <size>\0` followed by the content.
pub struct IdHasher(Sha1);

impl IdHasher {
    pub fn new(kind: Kind, size: u64) -> Self {
        let mut sha = Sha1::new();
        Digest::update(&mut sha, format!("{} {size}\0", kind.name()).as_bytes());
        Self(sha)
    }

    pub fn update(&mut self, data: &[u8]) {
        Digest::update(&mut self.0, data);
    }

    /// Finishes the id; a detected SHA-1 collision attack is an error, not an id.
    pub fn finish(self) -> Result<ObjectId, GitError> {
        let result = self.0.try_finalize();
        if result.has_collision() {
            return Err(GitError::Sha1Collision);
        }
        let mut id = [0u8; 20];
        id.copy_from_slice(result.hash());
        Ok(ObjectId(id))
    }
}

/// The id of a whole object held in memory.
pub fn object_id(kind: Kind, data: &[u8]) -> Result<ObjectId, GitError> {
    let mut h = IdHasher::new(kind, data.len() as u64);
    h.update(data);
    h.finish()
}

/// The tree a commit points at (its first header line).
pub fn commit_tree(id: ObjectId, data: &[u8]) -> Result<ObjectId, GitError> {
    let line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    line.strip_prefix(b"tree ")
        .and_then(|hex| std::str::from_utf8(hex).ok())
        .and_then(ObjectId::from_hex)
        .ok_or(GitError::MalformedObject {
            id,
            what: "commit without a tree line",
        })
}

/// The object and kind an annotated tag points at.
pub fn tag_target(id: ObjectId, data: &[u8]) -> Result<(ObjectId, Kind), GitError> {
    let mut object = None;
    let mut kind = None;
    for line in data.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(hex) = line.strip_prefix(b"object ") {
            object = std::str::from_utf8(hex).ok().and_then(ObjectId::from_hex);
        } else if let Some(name) = line.strip_prefix(b"type ") {
            kind = Kind::from_name(name);
        }
    }
    match (object, kind) {
        (Some(o), Some(k)) => Ok((o, k)),
        _ => Err(GitError::MalformedObject {
            id,
            what: "tag without object and type lines",
        }),
    }
}

/// What a tree entry's mode says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryMode {
    File,
    Executable,
    Symlink,
    Tree,
    Gitlink,
}

/// One entry of a tree object.
#[derive(Debug, PartialEq, Eq)]
pub struct TreeEntry<'a> {
    pub mode: EntryMode,
    pub name: &'a [u8],
    pub id: ObjectId,
}

/// Parses a tree object: `<octal mode> <name>\0<20-byte id>` repeated. Names must be
/// non-empty, without `/`, and not `.` or `..` (git's fsck rules that matter for
/// extraction); anything else is a malformed tree.
pub fn parse_tree(id: ObjectId, data: &[u8]) -> Result<Vec<TreeEntry<'_>>, GitError> {
    let bad = |what| GitError::MalformedObject { id, what };
    let mut entries = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or(bad("tree entry without mode"))?;
        let mode = match &rest[..space] {
            b"100644" | b"100664" | b"100640" => EntryMode::File,
            b"100755" => EntryMode::Executable,
            b"120000" => EntryMode::Symlink,
            b"40000" | b"040000" => EntryMode::Tree,
            b"160000" => EntryMode::Gitlink,
            _ => return Err(bad("tree entry with an unknown mode")),
        };
        rest = &rest[space + 1..];
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(bad("tree entry without name terminator"))?;
        let name = &rest[..nul];
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
            return Err(bad("tree entry with an unsafe name"));
        }
        rest = &rest[nul + 1..];
        let entry_id = ObjectId::from_bytes(rest).ok_or(bad("tree entry with a truncated id"))?;
        rest = &rest[20..];
        entries.push(TreeEntry {
            mode,
            name,
            id: entry_id,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_blob_and_tree_have_gits_well_known_ids() {
        let blob = object_id(Kind::Blob, b"").unwrap();
        assert_eq!(blob.to_string(), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
        let tree = object_id(Kind::Tree, b"").unwrap();
        assert_eq!(tree.to_string(), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    }

    #[test]
    fn hex_round_trip_and_rejects_bad_input() {
        let hex = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        assert_eq!(ObjectId::from_hex(hex).unwrap().to_string(), hex);
        assert!(ObjectId::from_hex(&hex[1..]).is_none());
        assert!(ObjectId::from_hex("zz825dc642cb6eb9a060e54bf8d69288fbee4904").is_none());
    }

    #[test]
    fn tree_parsing_reads_modes_and_rejects_unsafe_names() {
        let id = ObjectId([0; 20]);
        let mut data = b"100755 run.sh\0".to_vec();
        data.extend([1u8; 20]);
        data.extend(b"40000 dir\0");
        data.extend([2u8; 20]);
        let entries = parse_tree(id, &data).unwrap();
        assert_eq!(entries[0].mode, EntryMode::Executable);
        assert_eq!(entries[0].name, b"run.sh");
        assert_eq!(entries[1].mode, EntryMode::Tree);
        assert_eq!(entries[1].id, ObjectId([2; 20]));

        for name in [&b".."[..], b"a/b", b""] {
            let mut data = b"100644 ".to_vec();
            data.extend(name);
            data.push(0);
            data.extend([1u8; 20]);
            let err = parse_tree(id, &data).unwrap_err();
            assert!(err.to_string().contains("unsafe name"), "{err}");
        }
        assert!(parse_tree(id, b"100644 a\0short").is_err());
    }

    #[test]
    fn commit_and_tag_headers() {
        let id = ObjectId([0; 20]);
        let commit = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor x\n\nmsg";
        assert_eq!(
            commit_tree(id, commit).unwrap().to_string(),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
        assert!(commit_tree(id, b"parent x\n").is_err());
        let tag = b"object 4b825dc642cb6eb9a060e54bf8d69288fbee4904\ntype commit\ntag v1\n\nmsg";
        assert_eq!(tag_target(id, tag).unwrap().1, Kind::Commit);
    }
}
