//! Flux's `envsubst` (`fluxcd/pkg/envsubst`), as far as `postBuild` uses it: the
//! expansion of one string, pure, so the fuzz crate compiles it as is.
//!
//! In: a text and the variables. Out: the text expanded, or a reason naming the
//! variable or the form (never a value). `${var}`, `${var:=default}`,
//! `${var:-default}` (also when set but empty), `${var=default}`, `${var-default}`
//! (only when unset); a default may hold further `${…}`, 16 deep at most; `$$` is a
//! literal `$`, so `$${var}` prints `${var}`. Other bash forms envsubst knows
//! (`${#var}`, `${var^^}`, `${var/a/b}`, …) are refused by name rather than
//! rendered differently. An unset variable without a default is empty, or an error
//! when strict.

use std::collections::BTreeMap;

/// Whether `name` is a valid variable name (Flux's `varsubRegex`).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Expands `text`. The reason on failure names the variable, never a value.
pub fn eval(text: &str, vars: &BTreeMap<String, String>, strict: bool) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$'); // `$$`: a literal `$`, never the start of `${`
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let (value, tail) = expression(inner, vars, strict, 0)?;
            out.push_str(&value);
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One `${…}` body (after the brace): its value and the text after its `}`.
fn expression<'t>(
    inner: &'t str,
    vars: &BTreeMap<String, String>,
    strict: bool,
    depth: usize,
) -> Result<(String, &'t str), String> {
    if depth > 16 {
        return Err("defaults nest more than 16 deep".into());
    }
    let end = inner
        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(inner.len());
    let name = &inner[..end];
    let rest = &inner[end..];
    if !valid_name(name) {
        return Err(match rest.chars().next() {
            None => "a ${ without a closing }".into(),
            Some(_) if name.is_empty() => {
                format!("${{{}…}} is not a supported substitution", first(rest))
            }
            Some(_) => format!("{name:?} is not a valid variable name"),
        });
    }
    let value = vars.get(name);
    let (op, rest) = match rest.chars().next() {
        Some('}') => return finish(name, value, strict).map(|v| (v, &rest[1..])),
        Some(':') if rest[1..].starts_with(['=', '-']) => (&rest[..2], &rest[2..]),
        Some('=' | '-') => (&rest[..1], &rest[1..]),
        None => return Err(format!("${{{name} has no closing }}")),
        Some(_) => {
            return Err(format!(
                "${{{name}{}…}}: only ${{var}}, ${{var:=default}} and ${{var:-default}} forms are supported",
                first(rest)
            ));
        }
    };
    // The default runs to the matching `}`, expanding what it holds.
    let mut default = String::new();
    let mut rest = rest;
    loop {
        let Some(i) = rest.find(['$', '}']) else {
            return Err(format!("${{{name} has no closing }}"));
        };
        default.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if rest[i..].starts_with('}') {
            rest = after;
            break;
        }
        if let Some(tail) = after.strip_prefix('$') {
            default.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let (v, tail) = expression(inner, vars, strict, depth + 1)?;
            default.push_str(&v);
            rest = tail;
        } else {
            default.push('$');
            rest = after;
        }
    }
    let use_default = match (op, value) {
        (_, None) => true,
        (":=" | ":-", Some(v)) => v.is_empty(),
        _ => false,
    };
    Ok((
        if use_default {
            default
        } else {
            value.cloned().unwrap_or_default()
        },
        rest,
    ))
}

fn finish(name: &str, value: Option<&String>, strict: bool) -> Result<String, String> {
    match value {
        Some(v) => Ok(v.clone()),
        None if strict => Err(format!(
            "variable {name} is not set (--substitute-strict) and has no default"
        )),
        None => Ok(String::new()),
    }
}

/// The first characters of what follows a name, for an error: escaped, so a line
/// break in the text cannot break the one-line message.
fn first(text: &str) -> String {
    text.chars().take(2).flat_map(char::escape_debug).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn forms() {
        let v = vars(&[("a", "1"), ("empty", ""), ("cluster_name", "edge-7")]);
        let e = |t: &str| eval(t, &v, false).unwrap();
        assert_eq!(e("x-${a}-y"), "x-1-y");
        assert_eq!(e("${missing}"), "");
        assert_eq!(e("${missing:=dflt}"), "dflt");
        assert_eq!(e("${missing:-dflt}"), "dflt");
        assert_eq!(e("${empty:=dflt}"), "dflt");
        assert_eq!(e("${empty=dflt}"), "");
        assert_eq!(e("${missing-dflt}"), "dflt");
        assert_eq!(e("${a:=dflt}"), "1");
        assert_eq!(e("${missing:=${cluster_name}-x}"), "edge-7-x");
        assert_eq!(e("$${a} and $$ and $ alone"), "${a} and $ and $ alone");
        assert_eq!(e("cost: $5"), "cost: $5");
    }

    #[test]
    fn strict_and_refusals() {
        let v = vars(&[("a", "secret-value")]);
        let err = eval("${nope}", &v, true).unwrap_err();
        assert!(err.contains("nope") && err.contains("strict"), "{err}");
        assert_eq!(eval("${nope:=d}", &v, true).unwrap(), "d");
        for bad in [
            "${a", "${a^^}", "${#a}", "${a/x/y}", "${1a}", "${}", "${a\nb}",
        ] {
            let err = eval(bad, &v, false).unwrap_err();
            assert!(!err.contains("secret-value"), "{err}");
            assert!(!err.contains('\n'), "found by the fuzz target: {err:?}");
        }
    }

    #[test]
    fn names_follow_flux() {
        assert!(valid_name("cluster_name"));
        assert!(valid_name("_X1"));
        assert!(!valid_name("1x"));
        assert!(!valid_name("a-b"));
        assert!(!valid_name(""));
    }
}
