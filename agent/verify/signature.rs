//! Where a git object keeps its signature (git's `gitformat-signature`): the signed
//! payload and the armored signature, split out of the raw commit or tag bytes.
//!
//! In: the object's body exactly as hashed into its id. Out: a [`Signed`] holding the
//! payload (the bytes the signature covers), the signature text, its format and the
//! committer (or tagger) time. Nothing here checks a signature: that is
//! `ssh`/`openpgp`. What can go wrong: no signature (`None`), or a signature of a
//! format hawser does not know (reported by the caller).

/// The armor a signature starts with, as git's `get_format_by_sig` tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    OpenPgp,
    Ssh,
    /// `-----BEGIN SIGNED MESSAGE-----` (gpgsm), or a `gpgsig` header holding no
    /// armor hawser knows: never trusted.
    Other,
}

impl Format {
    fn of_line(line: &[u8]) -> Option<Self> {
        const MARKERS: [(&[u8], Format); 4] = [
            (b"-----BEGIN PGP SIGNATURE-----", Format::OpenPgp),
            (b"-----BEGIN PGP MESSAGE-----", Format::OpenPgp),
            (b"-----BEGIN SSH SIGNATURE-----", Format::Ssh),
            (b"-----BEGIN SIGNED MESSAGE-----", Format::Other),
        ];
        MARKERS
            .iter()
            .find(|(m, _)| line.starts_with(m))
            .map(|(_, f)| *f)
    }
}

/// A signed object, taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    pub format: Format,
    /// What the signature covers.
    pub payload: Vec<u8>,
    /// The armored signature, newline-terminated lines.
    pub signature: Vec<u8>,
    /// Unix seconds of the committer (commit) or tagger (tag) line, if it parses.
    pub time: Option<i64>,
}

/// Splits a commit: the `gpgsig` header (with its continuation lines) is the
/// signature, and the payload is the commit without it. Like git in a SHA-1
/// repository, a `gpgsig-sha256` header is left out of the payload too.
pub fn split_commit(raw: &[u8]) -> Option<Signed> {
    let header_end = find_blank_line(raw);
    let mut payload = Vec::with_capacity(raw.len());
    let mut signature = Vec::new();
    let mut in_sig = false;
    let mut in_other = false;
    let mut pos = 0;
    while pos < header_end {
        let end = raw[pos..header_end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(header_end, |i| pos + i + 1);
        let line = &raw[pos..end];
        if let Some(cont) = line.strip_prefix(b" ")
            && (in_sig || in_other)
        {
            if in_sig {
                signature.extend_from_slice(cont);
            }
        } else if let Some(first) = line.strip_prefix(b"gpgsig ") {
            in_sig = true;
            in_other = false;
            signature.extend_from_slice(first);
        } else if line.starts_with(b"gpgsig") {
            // git leaves every other signature header (`gpgsig-sha256`) out too.
            in_sig = false;
            in_other = true;
        } else {
            in_sig = false;
            in_other = false;
            payload.extend_from_slice(line);
        }
        pos = end;
    }
    payload.extend_from_slice(&raw[header_end..]);
    if signature.is_empty() {
        return None;
    }
    Some(Signed {
        format: Format::of_line(&signature).unwrap_or(Format::Other),
        time: header_time(&raw[..header_end], b"committer "),
        payload,
        signature,
    })
}

/// Splits a tag: the signature starts at the last line that opens one (git's
/// `parse_signed_buffer`), after the message.
pub fn split_tag(raw: &[u8]) -> Option<Signed> {
    let header_end = find_blank_line(raw);
    let mut start = None;
    let mut pos = header_end;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        if Format::of_line(&raw[pos..end]).is_some() {
            start = Some(pos);
        }
        pos = end;
    }
    let start = start?;
    Some(Signed {
        format: Format::of_line(&raw[start..])?,
        payload: raw[..start].to_vec(),
        signature: raw[start..].to_vec(),
        time: header_time(&raw[..header_end], b"tagger "),
    })
}

/// The value of the first header `name` (e.g. `object `) of a commit or tag.
pub fn header<'a>(raw: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let headers = &raw[..find_blank_line(raw)];
    headers
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(name))
}

/// Where the headers end: the offset of the empty line (or the end).
fn find_blank_line(raw: &[u8]) -> usize {
    if raw.starts_with(b"\n") {
        return 0;
    }
    raw.windows(2)
        .position(|w| w == b"\n\n")
        .map_or(raw.len(), |i| i + 1)
}

/// `committer Name <mail> 1700000000 +0100` → 1700000000.
fn header_time(headers: &[u8], name: &[u8]) -> Option<i64> {
    let value = header(headers, name)?;
    let after_mail = &value[value.iter().rposition(|&b| b == b'>')? + 1..];
    std::str::from_utf8(after_mail)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED_COMMIT: &[u8] = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
parent 1111111111111111111111111111111111111111\n\
author A U Thor <a@example.com> 1700000000 +0000\n\
committer C O Mitter <c@example.com> 1700000100 +0100\n\
gpgsig -----BEGIN SSH SIGNATURE-----\n \n U1NIU0lH\n -----END SSH SIGNATURE-----\n\
mergetag object 2222222222222222222222222222222222222222\n type commit\n\
\n\
message\n\n body\n";

    #[test]
    fn a_commit_signature_is_cut_out_of_the_headers() {
        let s = split_commit(SIGNED_COMMIT).unwrap();
        assert_eq!(s.format, Format::Ssh);
        assert_eq!(
            s.signature,
            b"-----BEGIN SSH SIGNATURE-----\n\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"
        );
        let payload = String::from_utf8(s.payload).unwrap();
        assert!(!payload.contains("gpgsig") && !payload.contains("U1NIU0lH"));
        // Other continuation headers (a merge's mergetag) stay in the payload.
        assert!(payload.contains("mergetag object 2222"));
        assert!(payload.contains(" type commit\n\nmessage\n\n body\n"));
        assert_eq!(s.time, Some(1_700_000_100));
    }

    #[test]
    fn unsigned_objects_have_no_signature() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
committer C <c@e> 1 +0000\n\ngpgsig -----BEGIN PGP SIGNATURE-----\n";
        // A "gpgsig" line in the message is not a header.
        assert_eq!(split_commit(raw), None);
        assert_eq!(split_tag(b"object x\ntype commit\ntag v1\n\nmsg\n"), None);
    }

    #[test]
    fn a_sha256_signature_header_leaves_the_payload_too() {
        let raw = b"tree t\ncommitter C <c@e> 5 +0000\ngpgsig-sha256 -----BEGIN PGP SIGNATURE-----\n x\n -----END PGP SIGNATURE-----\ngpgsig -----BEGIN PGP SIGNATURE-----\n y\n -----END PGP SIGNATURE-----\n\nm\n";
        let s = split_commit(raw).unwrap();
        assert_eq!(s.format, Format::OpenPgp);
        assert_eq!(s.payload, b"tree t\ncommitter C <c@e> 5 +0000\n\nm\n");
        assert!(s.signature.ends_with(b"y\n-----END PGP SIGNATURE-----\n"));
    }

    #[test]
    fn a_tag_signature_is_the_last_armored_block() {
        let raw = b"object 1111111111111111111111111111111111111111\ntype commit\ntag v1\ntagger T <t@e> 42 +0000\n\nrelease\n-----BEGIN PGP SIGNATURE-----\nquoted in the message\n-----END PGP SIGNATURE-----\n-----BEGIN PGP SIGNATURE-----\n\nreal\n-----END PGP SIGNATURE-----\n";
        let s = split_tag(raw).unwrap();
        assert!(
            s.signature
                .starts_with(b"-----BEGIN PGP SIGNATURE-----\n\nreal")
        );
        assert!(
            s.payload
                .ends_with(b"quoted in the message\n-----END PGP SIGNATURE-----\n")
        );
        assert_eq!(s.time, Some(42));
        assert_eq!(header(raw, b"tag "), Some(&b"v1"[..]));
    }
}
