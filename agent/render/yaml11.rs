//! goyaml v2's reading of a plain scalar (YAML 1.1 flavoured), which decides how
//! `kustomize build` quotes a string on output: a string that goyaml would read back
//! as a bool, null, number or timestamp is double-quoted. Also its notion of
//! printable characters and line breaks, which decide the quoting style.
//!
//! In: a string. Out: whether it reads back as the same string. Nothing can fail.

/// Whether goyaml v2 reads `s`, written plain, back as the string `s` (its
/// `resolve` gives `!!str` and it is not a base-60 float such as `1:20`).
pub fn resolves_to_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null",
        "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF", "<<",
    ];
    if WORDS.contains(&s) || is_base60_float(s) {
        return false;
    }
    match s.as_bytes().first() {
        Some(b'.') => !is_go_float(s),
        Some(b'0'..=b'9' | b'+' | b'-') => {
            if is_timestamp(s) {
                return false;
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            !(is_go_int(&plain)
                || (is_yaml_float(&plain) && is_go_float(&plain))
                || plain
                    .strip_prefix("0b")
                    .or_else(|| plain.strip_prefix("-0b"))
                    .is_some_and(|b| !b.is_empty() && b.bytes().all(|c| c == b'0' || c == b'1')))
        }
        _ => true,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` or `ParseUint` accepting `s` (range aside:
/// goyaml falls back to a float for what overflows, which is not a string either).
fn is_go_int(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (digits, radix) = if let Some(h) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(o) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (o, 8)
    } else if let Some(b) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (b, 2)
    } else if body.len() > 1 && body.starts_with('0') {
        (&body[1..], 8)
    } else {
        (body, 10)
    };
    !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix))
}

/// goyaml's `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => digits(frac),
        Some((int, frac)) => digits(int) && (frac.is_empty() || digits(frac)),
        None => digits(mantissa),
    };
    mantissa_ok && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

/// Go's `strconv.ParseFloat(s, 64)` accepting `s` (decimal forms; it also takes
/// `inf`/`nan` words and hex floats, which the callers' first characters exclude or
/// which goyaml's table already covers).
fn is_go_float(s: &str) -> bool {
    is_yaml_float(s) || {
        let body = s.strip_prefix(['+', '-']).unwrap_or(s);
        ["inf", "infinity", "nan"].contains(&body.to_ascii_lowercase().as_str())
    }
}

/// goyaml's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (s, frac) = match s.split_once('.') {
        Some((head, frac)) => (head, Some(frac)),
        None => (s, None),
    };
    if frac.is_some_and(|f| !f.bytes().all(|c| c.is_ascii_digit() || c == b'_')) {
        return false;
    }
    let mut parts = s.split(':');
    let head = parts.next().unwrap_or("");
    let head_ok = head.as_bytes().first().is_some_and(u8::is_ascii_digit)
        && head.bytes().all(|c| c.is_ascii_digit() || c == b'_');
    let mut sexagesimal = 0;
    for part in parts {
        let ok = match part.as_bytes() {
            [d] => d.is_ascii_digit(),
            [a, b] => (b'0'..=b'5').contains(a) && b.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
        sexagesimal += 1;
    }
    head_ok && sexagesimal > 0
}

/// goyaml's `parseTimestamp`: four digits and `-`, then one of its layouts
/// (`2006-1-2`, with `T`/`t`/` ` and `15:4:5[.frac]`, and a zone after `T`/`t`).
pub fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let Some((date, time)) = split_date(&s[5..]) else {
        return false;
    };
    let (month, day) = date;
    let year: u32 = s[..4].parse().unwrap_or(0);
    if !(1..=12).contains(&month) || day < 1 || day > days_in(year, month) {
        return false;
    }
    match time {
        None => true,
        Some((sep, rest)) => clock(rest, sep != ' '),
    }
}

/// A month and day, and what follows them: a separator and the rest.
type DateAndRest<'a> = ((u32, u32), Option<(char, &'a str)>);

/// `M-D` then optionally a separator and the rest.
fn split_date(s: &str) -> Option<DateAndRest<'_>> {
    let (month, rest) = number_prefix(s, 2)?;
    let rest = rest.strip_prefix('-')?;
    let (day, rest) = number_prefix(rest, 2)?;
    let mut chars = rest.chars();
    match chars.next() {
        None => Some(((month, day), None)),
        Some(sep @ ('T' | 't' | ' ')) => Some(((month, day), Some((sep, chars.as_str())))),
        Some(_) => None,
    }
}

/// `h:m:s[.fraction]`, then a zone (`Z` or `±hh:mm`) when `zone` is required.
fn clock(s: &str, zone: bool) -> bool {
    let Some((hour, rest)) = number_prefix(s, 2) else {
        return false;
    };
    let Some((minute, rest)) = rest.strip_prefix(':').and_then(|r| number_prefix(r, 2)) else {
        return false;
    };
    let Some((second, mut rest)) = rest.strip_prefix(':').and_then(|r| number_prefix(r, 2)) else {
        return false;
    };
    if hour > 23 || minute > 59 || second > 59 {
        return false;
    }
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return false;
        }
        rest = &frac[n..];
    }
    if !zone {
        return rest.is_empty();
    }
    if rest == "Z" {
        return true;
    }
    let Some(offset) = rest.strip_prefix(['+', '-']) else {
        return false;
    };
    let o = offset.as_bytes();
    o.len() == 5
        && o[2] == b':'
        && [o[0], o[1], o[3], o[4]].iter().all(u8::is_ascii_digit)
        && offset[..2].parse::<u32>().is_ok_and(|h| h < 24)
        && offset[3..].parse::<u32>().is_ok_and(|m| m < 60)
}

/// One or `max` leading digits as a number, and the rest.
fn number_prefix(s: &str, max: usize) -> Option<(u32, &str)> {
    let n = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// goyaml's `is_printable`: `\n`, printable ASCII, U+00A0–U+D7FF and U+E000–U+FFFD
/// but the byte order mark (characters past U+FFFF are escaped too).
pub fn is_printable(c: char) -> bool {
    matches!(c, '\n' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

/// goyaml's line breaks: CR, LF, NEL, LS, PS.
pub fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_goyaml_reads_as_another_type() {
        for s in [
            "yes",
            "on",
            "N",
            "",
            "~",
            "1",
            "-1",
            "0777",
            "08",
            "0x1F",
            "0o17",
            "0b101",
            "1_000",
            "1.5",
            ".5",
            "1e3",
            "+.inf",
            "1:20",
            "2001-12-14",
            "2001-1-2T3:04:05Z",
            "2001-12-14 21:59:43.10",
            "<<",
        ] {
            assert!(!resolves_to_string(s), "{s:?} should need quotes");
        }
        for s in [
            "abc",
            "1.2.3",
            "10.0.0.1",
            "1Gi",
            "90%",
            "2001-13-01",
            "2001-02-30",
            "0x",
            "-x",
            "*",
            "0b2",
            "1:60",
            "v1",
            "yesno",
        ] {
            assert!(resolves_to_string(s), "{s:?} should stay plain");
        }
    }
}
