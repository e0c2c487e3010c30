//! What a forge's answer means: done, try again (now, later) or a clear refusal.
//!
//! Pure: status code, headers and body in, a [`Reply`] out. Rate limits follow
//! GitHub's documented rules (`Retry-After`, else `X-RateLimit-Remaining: 0` with
//! `X-RateLimit-Reset` in epoch seconds), which GitLab (`RateLimit-*`) and Bitbucket
//! (429) resemble closely enough to share.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::config::Provider;

/// Longest message taken from an error body.
const MAX_MESSAGE_CHARS: usize = 200;

/// How a forge answered a status post or read, as the reporter acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The status is set.
    Done,
    /// A server-side failure (5xx, 408): try again after the backoff.
    Transient { status: u16, message: String },
    /// Rate limited; `wait` is how long the forge asked for, if it said.
    RateLimited { wait: Option<Duration> },
    /// GitHub's cap of statuses per commit and context.
    TooManyStatuses,
    /// Refused for good: bad token, unknown repository, invalid field, redirect.
    Rejected {
        status: u16,
        message: String,
        hint: &'static str,
    },
}

/// Reads an answer. `header` looks a response header up by (case-insensitive) name.
pub fn classify(
    provider: Provider,
    status: u16,
    header: &dyn Fn(&str) -> Option<String>,
    body: &str,
    now: SystemTime,
) -> Reply {
    if provider == Provider::AzureDevOps && status == 203 {
        // Azure's way of refusing a PAT when it redirects to a sign-in page anyway.
        return Reply::Rejected {
            status,
            message: "sign-in page instead of the status: the token was not accepted".to_string(),
            hint: "; check --status-token-file",
        };
    }
    if (200..300).contains(&status) {
        return Reply::Done;
    }
    // GitLab repeats the code ("404 Project Not Found"); the error shows it once.
    let message = message(body);
    let message = match message.strip_prefix(&format!("{status} ")) {
        Some(rest) if !rest.is_empty() => rest.to_string(),
        _ => message,
    };
    if status == 429 || (status == 403 && is_rate_limit(header, &message)) {
        return Reply::RateLimited {
            wait: rate_limit_wait(header, now),
        };
    }
    if status >= 500 || status == 408 {
        return Reply::Transient { status, message };
    }
    let lower = message.to_ascii_lowercase();
    if provider == Provider::GitHub && status == 422 && lower.contains("maximum number of statuses")
    {
        return Reply::TooManyStatuses;
    }
    if provider == Provider::GitLab && status == 400 && lower.contains("cannot transition status") {
        // GitLab refuses to set the state a status already has: it is set.
        return Reply::Done;
    }
    if (300..400).contains(&status) {
        let to = header("location")
            .map(|l| format!(" to {l}"))
            .unwrap_or_default();
        return Reply::Rejected {
            status,
            message: format!("redirected{to}"),
            hint: "; check --status-api-url",
        };
    }
    let hint = match status {
        401 => "; check --status-token-file",
        403 => "; check that the token may write commit statuses",
        404 => {
            "; check --status-repo and --status-api-url, and that the token can see the repository"
        }
        _ => "",
    };
    Reply::Rejected {
        status,
        message,
        hint,
    }
}

fn is_rate_limit(header: &dyn Fn(&str) -> Option<String>, message: &str) -> bool {
    header("x-ratelimit-remaining").is_some_and(|r| r.trim() == "0")
        || header("ratelimit-remaining").is_some_and(|r| r.trim() == "0")
        || header("retry-after").is_some()
        || message.to_ascii_lowercase().contains("rate limit")
}

/// How long the forge asked to wait: `Retry-After` (seconds or a date), else the reset time of an
/// exhausted primary limit. `None` when it did not say.
fn rate_limit_wait(header: &dyn Fn(&str) -> Option<String>, now: SystemTime) -> Option<Duration> {
    if let Some(wait) = header("retry-after").and_then(|v| crate::duration::retry_after(&v, now)) {
        return Some(wait);
    }
    exhausted_wait(header, now)
}

/// How long until an exhausted primary limit resets (`X-RateLimit-Remaining: 0`
/// with `X-RateLimit-Reset`, or GitLab's `RateLimit-*`), on any answer: a read that
/// used the last request must not be followed by another before the reset.
pub fn exhausted_wait(
    header: &dyn Fn(&str) -> Option<String>,
    now: SystemTime,
) -> Option<Duration> {
    let exhausted = ["x-ratelimit-remaining", "ratelimit-remaining"]
        .iter()
        .any(|h| header(h).is_some_and(|r| r.trim() == "0"));
    if !exhausted {
        return None;
    }
    let reset = ["x-ratelimit-reset", "ratelimit-reset"]
        .iter()
        .find_map(|h| header(h).and_then(|v| v.trim().parse::<u64>().ok()))?;
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

/// The human part of an error body, one line: the providers' JSON shapes first
/// (`message`, `error.message`, `errors[0].message`, `error_description`, `error`),
/// else the body's first line.
pub fn message(body: &str) -> String {
    let text = match serde_json::from_str::<Value>(body) {
        Ok(json) => json_message(&json).unwrap_or_else(|| first_line(body)),
        Err(_) => first_line(body),
    };
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > MAX_MESSAGE_CHARS {
        let mut cut: String = line.chars().take(MAX_MESSAGE_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        line
    }
}

fn json_message(json: &Value) -> Option<String> {
    let nested = json.get("errors").and_then(|e| e.get(0)).and_then(|e| {
        e.get("message")
            .and_then(Value::as_str)
            .or_else(|| e.as_str())
    });
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    let top = json
        .get("message")
        .and_then(text)
        .or_else(|| json.pointer("/error/message").and_then(text))
        .or_else(|| json.get("error_description").and_then(text))
        .or_else(|| json.get("error").and_then(text));
    match (top, nested) {
        (Some(top), Some(nested)) if top != nested => Some(format!("{top}: {nested}")),
        (Some(top), _) => Some(top),
        (None, Some(nested)) => Some(nested.to_string()),
        (None, None) => None,
    }
}

fn first_line(body: &str) -> String {
    body.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        }
    }

    const NOW: u64 = 1_700_000_000;

    fn at_now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }

    #[test]
    fn rate_limits_say_how_long_to_wait() {
        let h = headers(&[("Retry-After", "7")]);
        assert_eq!(
            classify(Provider::GitHub, 429, &h, "", at_now()),
            Reply::RateLimited {
                wait: Some(Duration::from_secs(7))
            }
        );
        let reset = Box::leak(format!("{}", NOW + 3600).into_boxed_str());
        let pairs = Box::leak(
            vec![
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", &*reset),
            ]
            .into_boxed_slice(),
        );
        let h = headers(pairs);
        let body = r#"{"message":"API rate limit exceeded for user ID 1."}"#;
        assert_eq!(
            classify(Provider::GitHub, 403, &h, body, at_now()),
            Reply::RateLimited {
                wait: Some(Duration::from_secs(3600))
            }
        );
        let h = headers(&[]);
        let body = r#"{"message":"You have exceeded a secondary rate limit."}"#;
        assert_eq!(
            classify(Provider::GitHub, 403, &h, body, at_now()),
            Reply::RateLimited { wait: None }
        );
    }

    #[test]
    fn a_plain_403_is_a_refusal() {
        let h = headers(&[("X-RateLimit-Remaining", "4999")]);
        let verdict = classify(
            Provider::GitHub,
            403,
            &h,
            r#"{"message":"Resource not accessible"}"#,
            at_now(),
        );
        assert!(
            matches!(verdict, Reply::Rejected { status: 403, .. }),
            "{verdict:?}"
        );
    }

    #[test]
    fn provider_specific_answers() {
        let h = headers(&[]);
        let body = r#"{"message":"Validation Failed","errors":[{"resource":"Status","code":"custom","message":"This SHA and context has reached the maximum number of statuses."}]}"#;
        assert_eq!(
            classify(Provider::GitHub, 422, &h, body, at_now()),
            Reply::TooManyStatuses
        );
        let body = r#"{"message":"Cannot transition status via :run from :running (Reason(s): Status cannot transition via \"run\".)"}"#;
        assert_eq!(
            classify(Provider::GitLab, 400, &h, body, at_now()),
            Reply::Done
        );
        assert!(matches!(
            classify(Provider::GitLab, 502, &h, "<html>", at_now()),
            Reply::Transient { status: 502, .. }
        ));
    }

    #[test]
    fn messages_from_each_shape() {
        assert_eq!(
            message(r#"{"message":"Bad credentials","documentation_url":"x"}"#),
            "Bad credentials"
        );
        assert_eq!(
            message(r#"{"type":"error","error":{"message":"Repository not found"}}"#),
            "Repository not found"
        );
        assert_eq!(
            message(
                r#"{"errors":[{"context":null,"message":"Authentication failed.","exceptionName":"x"}]}"#
            ),
            "Authentication failed."
        );
        assert_eq!(
            message(r#"{"error":"invalid_token","error_description":"Token was revoked."}"#),
            "Token was revoked."
        );
        assert_eq!(
            message(r#"{"message":{"name":["is too long"]}}"#),
            r#"{"name":["is too long"]}"#
        );
        assert_eq!(message("\n  Not Found \n more"), "Not Found");
        assert_eq!(message(&"x".repeat(500)).chars().count(), MAX_MESSAGE_CHARS);
    }
}
