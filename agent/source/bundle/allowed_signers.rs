//! The lines of OpenSSH's `allowed_signers` file as ssh-keygen reads them:
//! whitespace-separated tokens with quoting, the options hawser honours
//! (`namespaces`, `valid-after`, `valid-before`), and ssh's pattern lists.

/// `valid-after` / `valid-before` of an `allowed_signers` line, unix seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Validity {
    pub after: Option<i64>,
    pub before: Option<i64>,
}

impl Validity {
    /// ssh-keygen's rule: valid from `after` through `before`, both inclusive.
    pub fn allows(&self, time: i64) -> bool {
        self.after.is_none_or(|a| time >= a) && self.before.is_none_or(|b| time <= b)
    }
}

pub(super) fn is_key_type(token: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-"]
        .iter()
        .any(|p| token.starts_with(p))
}

/// Splits on whitespace outside double quotes; quotes are kept inside tokens except
/// around a whole token (quoted principals).
pub(super) fn tokenize(line: &str) -> Result<Vec<String>, &'static str> {
    let mut tokens = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote");
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    if let Some(first) = tokens.first_mut()
        && first.len() >= 2
        && first.starts_with('"')
        && first.ends_with('"')
    {
        *first = first[1..first.len() - 1].to_string();
    }
    Ok(tokens)
}

/// The options of an `allowed_signers` line that hawser honours.
#[derive(Debug, Default)]
pub(super) struct Options {
    pub namespaces: Option<String>,
    pub validity: Validity,
}

/// The `namespaces` list and validity window of an options string; any other
/// option is refused.
pub(super) fn parse_options(opts: &str) -> Result<Options, String> {
    let mut out = Options::default();
    let mut rest = opts;
    while !rest.is_empty() {
        let (name, value, after) = match rest.find([',', '=']) {
            Some(i) if rest.as_bytes()[i] == b'=' => {
                let v = rest[i + 1..]
                    .strip_prefix('"')
                    .ok_or_else(|| "option value must be quoted".to_string())?;
                let end = v
                    .find('"')
                    .ok_or_else(|| "unterminated option value".to_string())?;
                let after = &v[end + 1..];
                let after = match after.strip_prefix(',') {
                    Some(a) => a,
                    None if after.is_empty() => after,
                    None => return Err("junk after an option value".into()),
                };
                (&rest[..i], Some(&v[..end]), after)
            }
            Some(i) => (&rest[..i], None, &rest[i + 1..]),
            None => (rest, None, ""),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("namespaces", Some(v)) => out.namespaces = Some(v.to_string()),
            ("valid-after", Some(v)) => out.validity.after = Some(parse_time(v)?),
            ("valid-before", Some(v)) => out.validity.before = Some(parse_time(v)?),
            (other, _) => return Err(format!("option {other:?} is not supported by hawser")),
        }
        rest = after;
    }
    Ok(out)
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, optionally with a `Z`. ssh-keygen
/// reads times without `Z` in the local zone; hawser reads every time as UTC (the
/// zone its container runs in), so write `Z` to mean the same to both.
pub(super) fn parse_time(v: &str) -> Result<i64, String> {
    let bad = || format!("time {v:?} is not YYYYMMDD[HHMM[SS]][Z]");
    let digits = v.strip_suffix(['Z', 'z']).unwrap_or(v);
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).map_or(Ok(0), |s| s.parse::<i64>());
    let field = |r| num(r).map_err(|_| bad());
    let (y, m, d) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hh, mm, ss) = (field(8..10)?, field(10..12)?, field(12..14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    // Howard Hinnant's days_from_civil.
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// OpenSSH's `match_pattern_list`: comma-separated globs (`*`, `?`), `!` negates and
/// a matching negation wins.
pub(super) fn pattern_list_matches(list: &str, s: &str) -> bool {
    let mut matched = false;
    for pat in list.split(',').map(str::trim) {
        match pat.strip_prefix('!') {
            Some(neg) if glob(neg.as_bytes(), s.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= glob(pat.as_bytes(), s.as_bytes()),
        }
    }
    matched
}

pub(super) fn glob(p: &[u8], s: &[u8]) -> bool {
    // Iterative matching with one backtrack point: linear in practice, no recursion.
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}
