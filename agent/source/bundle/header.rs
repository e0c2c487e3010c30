//! The bundle header (`gitformat-bundle`): a signature line, v3 capabilities,
//! prerequisites and references, then an empty line before the pack. In: the first
//! bytes of an untrusted file. Out: a [`Header`] and the offset where the pack
//! starts. What can go wrong: anything a hostile file may say, so every line, the
//! whole header and the number of entries are bounded before anything is kept.

use std::io::BufRead;

use crate::source::git::object::ObjectId;

/// Longest header line, newline included (git's ref names stay far below it).
pub const MAX_LINE: usize = 4096;
/// Largest header.
pub const MAX_HEADER: usize = 1 << 20;
/// Most prerequisites plus references.
pub const MAX_ENTRIES: usize = 10_000;

const V2: &str = "# v2 git bundle";
const V3: &str = "# v3 git bundle";

/// A parsed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    /// Objects the reader must already have, with git's comment (usually a subject).
    pub prerequisites: Vec<(ObjectId, String)>,
    /// `(object id, ref name)` in file order.
    pub refs: Vec<(ObjectId, String)>,
    /// Bytes before the pack.
    pub len: u64,
}

/// Why a header was refused. One line each, naming the line when there is one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("not a git bundle (no \"# v2 git bundle\" or \"# v3 git bundle\" line)")]
    NotABundle,
    #[error("header ends before the empty line that starts the pack")]
    Truncated,
    #[error("header line {line} is longer than {MAX_LINE} bytes")]
    LineTooLong { line: usize },
    #[error("header is larger than {MAX_HEADER} bytes")]
    TooLarge,
    #[error("header lists more than {MAX_ENTRIES} prerequisites and references")]
    TooManyEntries,
    #[error("header line {line} is malformed: {what}")]
    Malformed { line: usize, what: &'static str },
    #[error("bundle uses {0} object ids; hawser supports sha1 only")]
    ObjectFormat(String),
    #[error("filtered (partial) bundles are not supported (capability {0:?})")]
    Filtered(String),
    #[error("unknown bundle capability {0:?}")]
    UnknownCapability(String),
    #[error("bundle lists no references")]
    NoRefs,
    #[error("reading the header: {0}")]
    Io(String),
}

/// Parses a header from the start of `data` (which may hold more, such as the pack).
pub fn parse(data: &[u8]) -> Result<Header, HeaderError> {
    parse_from(&mut &data[..])
}

/// Parses a header from a reader, consuming exactly the header's bytes.
pub fn parse_from(rd: &mut impl BufRead) -> Result<Header, HeaderError> {
    let mut lines = Lines { rd, len: 0, no: 0 };
    // Whatever keeps the first line from being a signature line, it is not a bundle.
    let first = lines.next().map_err(|_| HeaderError::NotABundle)?;
    let version = match first.as_deref() {
        Some(V2) => 2,
        Some(V3) => 3,
        _ => return Err(HeaderError::NotABundle),
    };
    let mut header = Header {
        version,
        prerequisites: Vec::new(),
        refs: Vec::new(),
        len: 0,
    };
    let mut in_caps = version == 3;
    loop {
        let line = lines.next()?.ok_or(HeaderError::Truncated)?;
        let no = lines.no;
        if line.is_empty() {
            break;
        }
        if in_caps {
            if let Some(cap) = line.strip_prefix('@') {
                capability(cap)?;
                continue;
            }
            in_caps = false;
        }
        if header.prerequisites.len() + header.refs.len() >= MAX_ENTRIES {
            return Err(HeaderError::TooManyEntries);
        }
        let malformed = |what| HeaderError::Malformed { line: no, what };
        if let Some(rest) = line.strip_prefix('-') {
            // `-<oid>` optionally followed by ` <comment>`.
            let (hex, comment) = rest.split_once(' ').unwrap_or((rest, ""));
            let id = ObjectId::from_hex(hex).ok_or(malformed("prerequisite without an id"))?;
            header.prerequisites.push((id, comment.to_string()));
        } else {
            let (hex, name) = line
                .split_once(' ')
                .ok_or(malformed("reference without a name"))?;
            let id = ObjectId::from_hex(hex).ok_or(malformed("reference without an id"))?;
            if !valid_ref_name(name) {
                return Err(malformed("invalid reference name"));
            }
            header.refs.push((id, name.to_string()));
        }
    }
    if header.refs.is_empty() {
        return Err(HeaderError::NoRefs);
    }
    header.len = lines.len as u64;
    Ok(header)
}

/// Checks one v3 capability (`key[=value]`): only `object-format=sha1` is known.
fn capability(cap: &str) -> Result<(), HeaderError> {
    let (key, value) = cap.split_once('=').unwrap_or((cap, ""));
    match key {
        "object-format" if value == "sha1" => Ok(()),
        "object-format" => Err(HeaderError::ObjectFormat(value.to_string())),
        "filter" => Err(HeaderError::Filtered(cap.to_string())),
        _ => Err(HeaderError::UnknownCapability(cap.to_string())),
    }
}

/// `HEAD` or `refs/...` without the characters git forbids in ref names.
fn valid_ref_name(name: &str) -> bool {
    (name == "HEAD" || name.starts_with("refs/"))
        && !name.contains("..")
        && !name.ends_with('/')
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
}

/// Bounded line reader over the header.
struct Lines<'a, R> {
    rd: &'a mut R,
    len: usize,
    no: usize,
}

impl<R: BufRead> Lines<'_, R> {
    /// The next line without its `\n`; `None` at the end of input. Never reads past
    /// the newline, so the pack starts exactly where the header ends.
    fn next(&mut self) -> Result<Option<String>, HeaderError> {
        self.no += 1;
        let mut line = Vec::new();
        loop {
            let buf = self
                .rd
                .fill_buf()
                .map_err(|e| HeaderError::Io(e.to_string()))?;
            if buf.is_empty() {
                if line.is_empty() {
                    return Ok(None);
                }
                return Err(HeaderError::Truncated);
            }
            let room = MAX_LINE - line.len();
            let (take, done) = match buf.iter().take(room).position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len().min(room), false),
            };
            line.extend_from_slice(&buf[..take]);
            self.rd.consume(take);
            self.len += take;
            if self.len > MAX_HEADER {
                return Err(HeaderError::TooLarge);
            }
            if done {
                line.pop();
                break;
            }
            if line.len() >= MAX_LINE {
                return Err(HeaderError::LineTooLong { line: self.no });
            }
        }
        String::from_utf8(line)
            .map(Some)
            .map_err(|_| HeaderError::Malformed {
                line: self.no,
                what: "not utf-8",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "079231eb032eb666d0235fe4343d1c3c0f450ba3";
    const B: &str = "a4815c55f3a4a68cbef2134c0dde56949648664f";

    #[test]
    fn v2_with_prerequisites_and_the_pack_offset() {
        let text = format!("# v2 git bundle\n-{B} subject line\n{A} refs/heads/main\n\nPACK");
        let h = parse(text.as_bytes()).unwrap();
        assert_eq!(h.version, 2);
        assert_eq!(h.prerequisites[0].1, "subject line");
        assert_eq!(
            h.refs,
            [(ObjectId::from_hex(A).unwrap(), "refs/heads/main".into())]
        );
        assert_eq!(&text.as_bytes()[h.len as usize..], b"PACK");
    }

    #[test]
    fn v3_capabilities() {
        let ok = format!("# v3 git bundle\n@object-format=sha1\n{A} HEAD\n\n");
        assert_eq!(parse(ok.as_bytes()).unwrap().version, 3);
        let sha256 = format!("# v3 git bundle\n@object-format=sha256\n{A} HEAD\n\n");
        assert_eq!(
            parse(sha256.as_bytes()),
            Err(HeaderError::ObjectFormat("sha256".into()))
        );
        let unknown = format!("# v3 git bundle\n@frobnicate\n{A} HEAD\n\n");
        assert_eq!(
            parse(unknown.as_bytes()),
            Err(HeaderError::UnknownCapability("frobnicate".into()))
        );
        let filter = format!("# v3 git bundle\n@filter=blob:none\n{A} HEAD\n\n");
        assert!(matches!(
            parse(filter.as_bytes()),
            Err(HeaderError::Filtered(_))
        ));
        // Capabilities are a v3 thing; in v2 an `@` line is just a bad reference.
        let v2 = format!("# v2 git bundle\n@object-format=sha1\n{A} HEAD\n\n");
        assert!(matches!(
            parse(v2.as_bytes()),
            Err(HeaderError::Malformed { line: 2, .. })
        ));
    }

    #[test]
    fn hostile_headers_fail_with_one_line() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PACK\0\0\0\x02".to_vec(), "not a git bundle"),
            (b"".to_vec(), "not a git bundle"),
            (
                format!("# v2 git bundle\n{A} HEAD\n").into_bytes(),
                "ends before",
            ),
            (
                format!("# v2 git bundle\n{A} HEAD").into_bytes(),
                "ends before",
            ),
            (b"# v2 git bundle\n\n".to_vec(), "no references"),
            (
                format!("# v2 git bundle\n{A}\n\n").into_bytes(),
                "malformed",
            ),
            (
                format!("# v2 git bundle\n{A} main\n\n").into_bytes(),
                "invalid reference",
            ),
            (
                format!("# v2 git bundle\n{A} refs/a..b\n\n").into_bytes(),
                "invalid reference",
            ),
            (
                format!("# v2 git bundle\n-zz {A}\n\n").into_bytes(),
                "prerequisite",
            ),
            (
                format!("# v2 git bundle\n{A} refs/heads/\u{7f}\n\n").into_bytes(),
                "invalid reference",
            ),
            (
                [b"# v2 git bundle\n".as_slice(), &[0xff, b'\n', b'\n']].concat(),
                "utf-8",
            ),
            (
                format!("# v2 git bundle\n{A} refs/{}\n\n", "x".repeat(MAX_LINE)).into_bytes(),
                "longer than",
            ),
            (
                format!("# v2 git bundle\n{}", "y".repeat(3 * MAX_LINE)).into_bytes(),
                "longer than",
            ),
        ];
        for (data, want) in cases {
            let err = parse(&data).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
            assert!(!err.contains('\n'), "{err:?}");
        }
    }

    #[test]
    fn entry_count_and_total_size_are_bounded() {
        let mut many = String::from("# v2 git bundle\n");
        for i in 0..=MAX_ENTRIES {
            many.push_str(&format!("{A} refs/tags/t{i}\n"));
        }
        many.push('\n');
        assert_eq!(parse(many.as_bytes()), Err(HeaderError::TooManyEntries));

        let mut huge = String::from("# v3 git bundle\n");
        while huge.len() <= MAX_HEADER {
            huge.push_str(&format!("@{}\n", "z".repeat(100)));
        }
        // The first unknown capability stops it long before the size bound.
        assert!(matches!(
            parse(huge.as_bytes()),
            Err(HeaderError::UnknownCapability(_))
        ));
        let mut long = String::from("# v2 git bundle\n");
        while long.len() <= MAX_HEADER {
            long.push_str(&format!("-{B} {}\n", "c".repeat(2000)));
        }
        let err = parse(long.as_bytes()).unwrap_err();
        assert!(
            matches!(err, HeaderError::TooLarge | HeaderError::TooManyEntries),
            "{err}"
        );
    }

    /// A cheap stand-in for a fuzzer: thousands of mutations of a real header (bytes
    /// flipped, inserted, cut) must each parse or fail with one line, never panic.
    #[test]
    fn mutated_headers_never_panic() {
        let base = format!(
            "# v3 git bundle\n@object-format=sha1\n-{B} subject\n{A} refs/heads/main\n{A} HEAD\n\nPACK"
        )
        .into_bytes();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let mut data = base.clone();
            for _ in 0..=(next() % 4) {
                let at = (next() as usize) % data.len();
                match next() % 3 {
                    0 => data[at] = next() as u8,
                    1 => data.insert(at, [b'\n', b' ', b'@', b'-', 0xff][(next() % 5) as usize]),
                    _ => data.truncate(at.max(1)),
                }
            }
            match parse(&data) {
                Ok(h) => assert!(h.len as usize <= data.len()),
                Err(e) => assert!(!e.to_string().contains('\n'), "{e}"),
            }
        }
    }
}
