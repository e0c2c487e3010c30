//! Pure encodings the forges need: URL path segments, base64 for Basic auth,
//! Bitbucket build keys, Azure status contexts.

use sha2::{Digest, Sha256};

/// Bitbucket Cloud keeps build status keys short; longer contexts are hashed.
pub const BITBUCKET_KEY_MAX: usize = 40;

/// A Bitbucket Cloud build key: the context itself when short enough, otherwise a
/// readable prefix and 8 hex digits of its SHA-256, 40 bytes at most.
pub fn bitbucket_key(context: &str) -> String {
    if context.len() <= BITBUCKET_KEY_MAX {
        return context.to_string();
    }
    let digest = Sha256::digest(context.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut prefix_len = BITBUCKET_KEY_MAX - hash.len() - 1;
    while !context.is_char_boundary(prefix_len) {
        prefix_len -= 1;
    }
    format!("{}-{hash}", &context[..prefix_len])
}

/// Azure's context is `{genre, name}`: `hawser/prod` becomes genre `hawser`, name
/// `prod`; a context without `/` goes under genre `hawser`.
pub fn azure_context(context: &str) -> (&str, &str) {
    match context.split_once('/') {
        Some((genre, name)) if !genre.is_empty() && !name.is_empty() => (genre, name),
        _ => ("hawser", context),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a value is one
/// path segment (`/` becomes `%2F`, a space `%20`).
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitbucket_keys_stay_within_40_bytes_and_are_stable() {
        assert_eq!(bitbucket_key("hawser/prod"), "hawser/prod");
        let exactly = "hawser/".to_string() + &"c".repeat(33);
        assert_eq!(bitbucket_key(&exactly), exactly);
        let long = "hawser/a-very-long-cluster-name-in-eu-west-1-zone-b";
        let key = bitbucket_key(long);
        assert!(key.len() <= BITBUCKET_KEY_MAX, "{key}");
        assert_eq!(key, bitbucket_key(long));
        assert!(key.starts_with("hawser/a-very-long-cluster-nam"));
        assert_ne!(
            key,
            bitbucket_key("hawser/a-very-long-cluster-name-in-eu-west-1-zone-c")
        );
        let wide = "hawser/".to_string() + &"ü".repeat(30);
        assert!(bitbucket_key(&wide).len() <= BITBUCKET_KEY_MAX);
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("group/sub/project"), "group%2Fsub%2Fproject");
        assert_eq!(encode_segment("My Project"), "My%20Project");
        assert_eq!(encode_segment("a-b_c.d~e"), "a-b_c.d~e");
    }

    #[test]
    fn azure_context_splits_genre_and_name() {
        assert_eq!(azure_context("hawser/prod-eu"), ("hawser", "prod-eu"));
        assert_eq!(azure_context("deploy/a/b"), ("deploy", "a/b"));
        assert_eq!(azure_context("plain"), ("hawser", "plain"));
    }
}
