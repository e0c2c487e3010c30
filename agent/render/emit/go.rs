//! The two places where Go's formatting, not YAML, decides the bytes: goyaml v2's
//! order of map keys, and numbers as Go's JSON encoder writes them.

use std::cmp::Ordering;

use serde_json::Number;

/// goyaml v2's order of map keys (its `keyList.Less`, string keys): runs of digits
/// compare by value, a letter sorts after any non-letter, other characters by code
/// point, and a prefix first.
pub fn key_order(a: &str, b: &str) -> Ordering {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        // Digit runs: a run after a non-zero digit compares as a whole number.
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// A number as it comes out of Go's JSON encoder and back through goyaml v2: an
/// integral value that fits 64 bits prints as an integer, any other float in Go's
/// shortest `%g` form with an exponent from `e+06` / `e-05` on.
pub(super) fn number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let Some(f) = n.as_f64() else {
        return n.to_string();
    };
    // Go's JSON writes |f| < 1e21 without an exponent; goyaml then reads an integral
    // value that fits 64 bits as an integer.
    if f.fract() == 0.0 && f.abs() < 1e21 {
        if f >= i64::MIN as f64 && f < i64::MAX as f64 {
            return format!("{}", f as i64);
        }
        if f >= 0.0 && f < u64::MAX as f64 {
            return format!("{}", f as u64);
        }
    }
    go_shortest_g(f)
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)`.
fn go_shortest_g(f: f64) -> String {
    // Rust's `{:e}` gives the shortest round-trip digits: "d.ddde<exp>".
    let text = format!("{:e}", f);
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let point = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{point}{rest}e{esign}{:02}", exp.abs());
    }
    // Fixed notation: the decimal point after exp+1 digits.
    let dp = exp + 1;
    if dp <= 0 {
        let zeros = "0".repeat(usize::try_from(-dp).unwrap_or(0));
        return format!("{sign}0.{zeros}{digits}");
    }
    let dp = usize::try_from(dp).unwrap_or(0);
    if digits.len() <= dp {
        let zeros = "0".repeat(dp - digits.len());
        format!("{sign}{digits}{zeros}")
    } else {
        format!("{sign}{}.{}", &digits[..dp], &digits[dp..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_goyaml_sorts_them() {
        let mut keys = vec!["a10", "a9", "A_", "_a", "Ab", "kind", "data", "apiVersion"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(
            keys,
            ["_a", "A_", "Ab", "a9", "a10", "apiVersion", "data", "kind"]
        );
    }

    #[test]
    fn floats_print_as_go_prints_them() {
        let cases = [
            (1234567.5, "1.2345675e+06"),
            (0.00001, "1e-05"),
            (1e20, "1e+20"),
            (6.02e23, "6.02e+23"),
            (0.5, "0.5"),
            (123456.5, "123456.5"),
            (1.0, "1"),
            (-2.25, "-2.25"),
        ];
        for (f, want) in cases {
            assert_eq!(number(&Number::from_f64(f).unwrap()), want, "{f}");
        }
    }
}
