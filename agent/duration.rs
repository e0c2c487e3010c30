//! Durations on the command line: `30s`, `5m`, `1h`, `1h30m`, `250ms`.
//!
//! In: the text of a flag or `HAWSER_*` variable. Out: a [`Duration`]. What can go
//! wrong: an empty value, a number without a unit, an unknown unit, or a value too
//! large to represent; the error names the value and the accepted form, so clap can
//! show it as is. `parse` fits clap's `value_parser = hawser::duration::parse`.
//!
//! And durations in HTTP answers: [`retry_after`], the one reading of a
//! `Retry-After` header for every server hawser talks to (sources and forges).

use std::fmt;
use std::time::{Duration, SystemTime};

/// The accepted form, quoted in every error.
const FORM: &str = "a whole number with a unit (ms, s, m, h), e.g. 30s, 5m, 1h30m, 250ms";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {value:?}: {problem}; expected {FORM}")]
    Invalid {
        value: String,
        problem: &'static str,
    },
}

/// Parses a duration made of one or more `<number><unit>` parts, largest unit first
/// not required (`90s` and `1m30s` are both fine). `0` alone is zero.
pub fn parse(value: &str) -> Result<Duration, DurationError> {
    let invalid = |problem| DurationError::Invalid {
        value: value.to_string(),
        problem,
    };
    let text = value.trim();
    if text.is_empty() {
        return Err(invalid("it is empty"));
    }
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid("a unit must follow a number"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| invalid("the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit_len] {
            "ms" => Some(Duration::from_millis(number)),
            "s" => Some(Duration::from_secs(number)),
            "m" => number.checked_mul(60).map(Duration::from_secs),
            "h" => number.checked_mul(3600).map(Duration::from_secs),
            "" => return Err(invalid("a number is missing its unit")),
            _ => return Err(invalid("the unit is unknown")),
        };
        rest = &rest[unit_len..];
        total = part
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| invalid("the number is too large"))?;
    }
    Ok(total)
}

/// How long a `Retry-After` header value asks to wait, from `now`: delay-seconds or
/// an HTTP-date (RFC 9110 §10.2.3; a date in the past is no wait). `None` when the
/// value is neither, as a client must then ignore it.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let at = SystemTime::from(at);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Shows a duration in the same form [`parse`] reads (`1h30m`, `250ms`, `0s`), for
/// help texts, logs and status messages. Sub-millisecond parts are dropped.
pub fn display(duration: Duration) -> impl fmt::Display {
    Shown(duration)
}

struct Shown(Duration);

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let millis = self.0.subsec_millis();
        if secs == 0 && millis == 0 {
            return f.write_str("0s");
        }
        let parts = [(secs / 3600, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")];
        for (n, unit) in parts {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        if millis > 0 {
            write!(f, "{millis}ms")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        let cases = [
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
            ("1h30m", 5_400_000),
            ("250ms", 250),
            ("1m30s", 90_000),
            ("90s", 90_000),
            ("2s500ms", 2_500),
            ("0", 0),
            ("0s", 0),
            (" 10s ", 10_000),
        ];
        for (text, millis) in cases {
            assert_eq!(parse(text), Ok(Duration::from_millis(millis)), "{text}");
        }
    }

    #[test]
    fn rejects_with_the_value_and_the_form() {
        for text in [
            "",
            "10",
            "s",
            "1.5h",
            "-5s",
            "5 m",
            "5d",
            "1h30",
            "10S",
            "99999999999999999999s",
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(&format!("{:?}", text)), "{err}");
            assert!(err.contains("e.g. 30s, 5m, 1h30m, 250ms"), "{err}");
        }
        assert!(parse("18446744073709551615h").is_err());
    }

    #[test]
    fn works_as_a_clap_value_parser() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Args {
            #[arg(long, value_parser = parse)]
            interval: Duration,
        }
        let args = Args::try_parse_from(["hawser", "--interval", "1h30m"]).unwrap();
        assert_eq!(args.interval, Duration::from_secs(5400));
        let err = Args::try_parse_from(["hawser", "--interval", "soon"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid duration \"soon\"") && err.contains("--interval"),
            "{err}"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 07:28:00
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:29:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past asks for no wait"
        );
        for junk in ["", "-5", "1.5", "soon", "99999999999999999999"] {
            assert_eq!(retry_after(junk, now), None, "{junk:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["0s", "250ms", "30s", "5m", "1h", "1h30m", "2h1s", "1m1s1ms"] {
            let parsed = parse(text).unwrap();
            assert_eq!(display(parsed).to_string(), text);
        }
    }
}
