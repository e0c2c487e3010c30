//! Webhook authentication: is this push notification from our forge?
//!
//! In: the request headers, the body and the configured secret. Out: which forge's
//! scheme vouched for the request, or why it was refused. Accepted schemes:
//!
//! - GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`
//! - Gitea / Forgejo: `X-Gitea-Signature` / `X-Forgejo-Signature: <hex HMAC>`
//! - GitLab: `X-Gitlab-Token: <the secret itself>`
//!
//! Every scheme header present must verify (Gitea sends two; a request with one good
//! and one bad signature is not trusted). The body is never parsed: a valid hook only
//! wakes the loop, which asks the source itself what changed.

use sha2::{Digest, Sha256};

use super::hmac::{constant_time_eq, decode_hex, hmac_sha256};

/// The webhook secret. `Debug` does not show it.
#[derive(Clone)]
pub struct HookSecret(Vec<u8>);

impl HookSecret {
    /// `None` for an empty secret: an empty HMAC key would let anyone sign.
    pub fn new(secret: impl Into<Vec<u8>>) -> Option<HookSecret> {
        let secret = secret.into();
        (!secret.is_empty()).then_some(HookSecret(secret))
    }
}

impl std::fmt::Debug for HookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookSecret(..)")
    }
}

/// The scheme that authenticated a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    GitHub,
    Gitea,
    Forgejo,
    GitLab,
}

impl Scheme {
    const ALL: [(Scheme, &'static str); 4] = [
        (Scheme::GitHub, "x-hub-signature-256"),
        (Scheme::Gitea, "x-gitea-signature"),
        (Scheme::Forgejo, "x-forgejo-signature"),
        (Scheme::GitLab, "x-gitlab-token"),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::GitHub => "github",
            Scheme::Gitea => "gitea",
            Scheme::Forgejo => "forgejo",
            Scheme::GitLab => "gitlab",
        }
    }

    fn header(self) -> &'static str {
        Scheme::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("", |(_, h)| h)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error(
        "no signature header (X-Hub-Signature-256, X-Gitea-Signature, X-Forgejo-Signature or X-Gitlab-Token)"
    )]
    Unsigned,
    #[error("{} does not match the configured secret", .0.header())]
    Mismatch(Scheme),
}

/// Whether any scheme header is present: checked before the body is read, so an
/// unsigned request costs nothing.
pub fn is_signed(headers: &[(String, String)]) -> bool {
    Scheme::ALL
        .iter()
        .any(|(_, name)| headers.iter().any(|(n, _)| n == name))
}

/// Verifies every scheme header present against `secret`. Header names must be
/// lowercase (as the parser yields them).
pub fn verify(
    secret: &HookSecret,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Scheme, HookError> {
    let mut first = None;
    for (name, value) in headers {
        let Some((scheme, _)) = Scheme::ALL.iter().find(|(_, h)| h == name) else {
            continue;
        };
        let ok = match scheme {
            Scheme::GitHub => value
                .strip_prefix("sha256=")
                .is_some_and(|hex| mac_matches(secret, hex, body)),
            Scheme::Gitea | Scheme::Forgejo => mac_matches(secret, value, body),
            // Compare digests so the time does not depend on the secret's length.
            Scheme::GitLab => constant_time_eq(
                &Sha256::digest(value.as_bytes()),
                &Sha256::digest(&secret.0),
            ),
        };
        if !ok {
            return Err(HookError::Mismatch(*scheme));
        }
        first.get_or_insert(*scheme);
    }
    first.ok_or(HookError::Unsigned)
}

fn mac_matches(secret: &HookSecret, hex: &str, body: &[u8]) -> bool {
    decode_hex(hex.trim())
        .is_some_and(|given| constant_time_eq(&given, &hmac_sha256(&secret.0, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"{\"ref\":\"refs/heads/main\"}";

    fn secret() -> HookSecret {
        HookSecret::new("s3cret").unwrap()
    }

    fn sig() -> String {
        hmac_sha256(b"s3cret", BODY)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn headers(pairs: &[(&str, String)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn accepts_each_forge_scheme() {
        let cases = [
            (
                "x-hub-signature-256",
                format!("sha256={}", sig()),
                Scheme::GitHub,
            ),
            (
                "x-hub-signature-256",
                format!("sha256={}", sig().to_uppercase()),
                Scheme::GitHub,
            ),
            ("x-gitea-signature", sig(), Scheme::Gitea),
            ("x-forgejo-signature", sig(), Scheme::Forgejo),
            ("x-gitlab-token", "s3cret".to_string(), Scheme::GitLab),
        ];
        for (name, value, scheme) in cases {
            let h = headers(&[("content-type", "application/json".into()), (name, value)]);
            assert!(is_signed(&h));
            assert_eq!(verify(&secret(), &h, BODY), Ok(scheme), "{name}");
        }
        let gitea = headers(&[
            ("x-gitea-signature", sig()),
            ("x-hub-signature-256", format!("sha256={}", sig())),
        ]);
        assert_eq!(verify(&secret(), &gitea, BODY), Ok(Scheme::Gitea));
    }

    #[test]
    fn refuses_wrong_missing_or_mixed_signatures() {
        let wrong = hmac_sha256(b"other", BODY)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let cases = [
            ("x-hub-signature-256", format!("sha256={wrong}")),
            ("x-hub-signature-256", sig()),
            ("x-hub-signature-256", "sha1=abcd".into()),
            ("x-gitea-signature", "not hex".into()),
            ("x-gitea-signature", sig()[..62].to_string()),
            ("x-forgejo-signature", wrong),
            ("x-gitlab-token", "s3cre".into()),
            ("x-gitlab-token", String::new()),
        ];
        for (name, value) in cases {
            let err = verify(&secret(), &headers(&[(name, value.clone())]), BODY).unwrap_err();
            assert!(matches!(err, HookError::Mismatch(_)), "{name}: {value}");
            assert!(err.to_string().contains(name), "{err}");
        }
        let tampered = verify(&secret(), &headers(&[("x-gitea-signature", sig())]), b"{}");
        assert!(tampered.is_err());
        let mixed = headers(&[
            ("x-gitea-signature", sig()),
            ("x-gitlab-token", "nope".into()),
        ]);
        assert_eq!(
            verify(&secret(), &mixed, BODY),
            Err(HookError::Mismatch(Scheme::GitLab))
        );
        let none = headers(&[("x-github-event", "push".into())]);
        assert!(!is_signed(&none));
        assert_eq!(verify(&secret(), &none, BODY), Err(HookError::Unsigned));
    }

    #[test]
    fn empty_secrets_are_refused_and_never_printed() {
        assert!(HookSecret::new("").is_none());
        assert_eq!(format!("{:?}", secret()), "HookSecret(..)");
    }
}
