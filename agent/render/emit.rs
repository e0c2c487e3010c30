//! Rendered documents as YAML, byte for byte as `kustomize build` prints them.
//!
//! kustomize turns each resource into JSON and that JSON into YAML with goyaml v2
//! (sigs.k8s.io/yaml `JSONToYAML`), so its output is goyaml v2's, not the input's
//! layout: every mapping's keys sorted by goyaml's key order ([`key_order`]: runs of
//! digits compare as numbers, letters after other characters), sequences at their
//! key's indentation, and each scalar in the style goyaml's emitter picks
//! ([`scalar`]): plain when it reads back as the same string under YAML 1.1 and
//! is plain-safe, else single-quoted, else double-quoted; `|` blocks for multi-line
//! text; long plain and quoted lines folded after column 80. Numbers go through
//! JSON on their way (`1.0` prints as `1`, `1234567.5` as `1.2345675e+06`).
//! The output parses back to exactly the rendered values.

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use super::yaml11;

/// Documents separated by `---` lines, as `kustomize build` prints them.
pub fn documents<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut e = Emitter::default();
    for (i, doc) in docs.into_iter().enumerate() {
        if i > 0 {
            e.raw("---\n");
        }
        match doc {
            Value::Object(map) if !map.is_empty() => e.mapping(map, 0),
            Value::Array(items) if !items.is_empty() => e.sequence(items, 0),
            other => {
                e.scalar_value(other, 0, false);
                e.end_line();
            }
        }
    }
    e.out
}

/// goyaml's emitter folds plain and quoted scalars at spaces past this column.
const BEST_WIDTH: usize = 80;

#[derive(Default)]
struct Emitter {
    out: String,
    /// Characters written on the current line.
    column: usize,
}

impl Emitter {
    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
        match s.rfind('\n') {
            Some(at) => self.column = s[at + 1..].chars().count(),
            None => self.column += s.chars().count(),
        }
    }

    fn push(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    /// Ends the line unless a block scalar already did.
    fn end_line(&mut self) {
        if self.column > 0 {
            self.newline();
        }
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// Starts a line at `indent` (a new line unless this one is still blank).
    fn indent(&mut self, indent: usize) {
        if self.column > 0 {
            self.newline();
        }
        while self.column < indent {
            self.push(' ');
        }
    }

    /// The entries of a non-empty mapping at `level`; the first key goes where the
    /// cursor is when the line is already indented (after `- `).
    fn mapping(&mut self, map: &Map<String, Value>, level: usize) {
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        entries.sort_by(|a, b| key_order(a.0, b.0));
        for (i, (key, value)) in entries.into_iter().enumerate() {
            if i > 0 || self.column < level {
                self.indent(level);
            }
            self.string(key, level + 2, true);
            self.push(':');
            match value {
                Value::Object(inner) if !inner.is_empty() => {
                    self.newline();
                    self.indent(level + 2);
                    self.mapping(inner, level + 2);
                }
                // Block sequences in a mapping are not indented.
                Value::Array(items) if !items.is_empty() => {
                    self.newline();
                    self.sequence(items, level);
                }
                other => {
                    self.push(' ');
                    self.scalar_value(other, level + 2, false);
                    self.end_line();
                }
            }
        }
    }

    fn sequence(&mut self, items: &[Value], level: usize) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 || self.column != level {
                self.indent(level);
            }
            self.raw("- ");
            match item {
                Value::Object(map) if !map.is_empty() => self.mapping(map, level + 2),
                // A sequence in a sequence starts on the same line: `- - a`.
                Value::Array(inner) if !inner.is_empty() => self.sequence(inner, level + 2),
                other => {
                    self.scalar_value(other, level + 2, false);
                    self.end_line();
                }
            }
        }
    }

    /// A scalar or an empty collection; continuation lines go at `indent`.
    fn scalar_value(&mut self, value: &Value, indent: usize, key: bool) {
        match value {
            Value::Null => self.raw("null"),
            Value::Bool(b) => self.raw(if *b { "true" } else { "false" }),
            Value::Number(n) => self.raw(&number(n)),
            Value::String(s) => self.string(s, indent, key),
            Value::Array(_) => self.raw("[]"),
            Value::Object(_) => self.raw("{}"),
        }
    }

    fn string(&mut self, s: &str, indent: usize, key: bool) {
        match style(s, key) {
            Style::Plain => self.plain(s, indent, !key),
            Style::Single => self.single(s, indent, !key),
            Style::Double => self.double(s, indent, !key),
            Style::Literal => self.literal(s, indent),
        }
    }

    /// A fold point: past the width, a space becomes a line break and indentation.
    fn folds(&self, breaks: bool, after_space: bool) -> bool {
        breaks && !after_space && self.column > BEST_WIDTH
    }

    fn plain(&mut self, s: &str, indent: usize, breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if self.folds(breaks, spaces) && chars.get(i + 1) != Some(&' ') {
                    self.indent_continuation(indent);
                } else {
                    self.push(c);
                }
                spaces = true;
            } else {
                self.push(c);
                spaces = false;
            }
        }
    }

    fn single(&mut self, s: &str, indent: usize, breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.push('\'');
        let mut spaces = false;
        let mut in_breaks = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if self.folds(breaks, spaces)
                    && i > 0
                    && i + 1 < chars.len()
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.indent_continuation(indent);
                } else {
                    self.push(c);
                }
                spaces = true;
            } else if yaml11::is_break(c) {
                if !in_breaks && c == '\n' {
                    self.newline();
                }
                if c == '\n' {
                    self.newline();
                } else {
                    self.out.push(c);
                    self.column = 0;
                }
                in_breaks = true;
            } else {
                if in_breaks {
                    self.indent_continuation(indent);
                }
                if c == '\'' {
                    self.push('\'');
                }
                self.push(c);
                spaces = false;
                in_breaks = false;
            }
        }
        self.push('\'');
    }

    fn double(&mut self, s: &str, indent: usize, breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        // goyaml's check for a byte order mark looks at the string's start for every
        // character: a string that starts with one is escaped throughout.
        let bom = s.starts_with('\u{feff}');
        self.push('"');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !yaml11::is_printable(c) || bom || yaml11::is_break(c) || c == '"' || c == '\\' {
                self.escape(c);
                spaces = false;
            } else if c == ' ' {
                if self.folds(breaks, spaces) && i > 0 && i + 1 < chars.len() {
                    self.indent_continuation(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.push('\\');
                    }
                } else {
                    self.push(c);
                }
                spaces = true;
            } else {
                self.push(c);
                spaces = false;
            }
        }
        self.push('"');
    }

    fn escape(&mut self, c: char) {
        self.push('\\');
        let short = match c {
            '\0' => Some('0'),
            '\u{7}' => Some('a'),
            '\u{8}' => Some('b'),
            '\t' => Some('t'),
            '\n' => Some('n'),
            '\u{b}' => Some('v'),
            '\u{c}' => Some('f'),
            '\r' => Some('r'),
            '\u{1b}' => Some('e'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            '\u{85}' => Some('N'),
            '\u{a0}' => Some('_'),
            '\u{2028}' => Some('L'),
            '\u{2029}' => Some('P'),
            _ => None,
        };
        if let Some(short) = short {
            self.push(short);
            return;
        }
        let v = u32::from(c);
        let text = if v <= 0xff {
            format!("x{v:02X}")
        } else if v <= 0xffff {
            format!("u{v:04X}")
        } else {
            format!("U{v:08X}")
        };
        self.raw(&text);
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.push('|');
        if s.starts_with(' ') || s.starts_with(yaml11::is_break) {
            self.push('2');
        }
        let mut rev = s.chars().rev();
        match (rev.next(), rev.next()) {
            (Some(last), _) if !yaml11::is_break(last) => self.push('-'),
            (Some(_), None) => self.push('+'),
            (Some(_), Some(before)) if yaml11::is_break(before) => self.push('+'),
            _ => {}
        }
        self.newline();
        let mut at_line_start = true;
        for c in s.chars() {
            if yaml11::is_break(c) {
                if c == '\n' {
                    self.newline();
                } else {
                    self.out.push(c);
                    self.column = 0;
                }
                at_line_start = true;
            } else {
                if at_line_start {
                    self.indent(indent);
                }
                self.push(c);
                at_line_start = false;
            }
        }
    }

    fn indent_continuation(&mut self, indent: usize) {
        self.newline();
        while self.column < indent {
            self.push(' ');
        }
    }
}

#[derive(Debug, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// The style goyaml v2 gives a string: what its encoder asks for (a `|` block for
/// text with line breaks, plain unless it would read back as another type, else
/// double-quoted), downgraded as its emitter's analysis of the text requires.
fn style(s: &str, key: bool) -> Style {
    let requested = if s.contains('\n') {
        Style::Literal
    } else if yaml11::resolves_to_string(s) {
        Style::Plain
    } else {
        Style::Double
    };
    let a = analyze(s);
    if key && a.multiline {
        return Style::Double;
    }
    let mut style = requested;
    if style == Style::Plain && (!a.plain_allowed || (s.is_empty() && key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block_allowed || key) {
        style = Style::Double;
    }
    style
}

/// What goyaml's `yaml_emitter_analyze_scalar` finds, in block context.
struct Analysis {
    multiline: bool,
    plain_allowed: bool,
    single_allowed: bool,
    block_allowed: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            plain_allowed: true,
            single_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let mut indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let last = chars.len() - 1;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|n| matches!(n, ' ' | '\t'));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => indicators = true,
                '#' if preceded_by_whitespace => indicators = true,
                _ => {}
            }
        }
        if !yaml11::is_printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i == last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if yaml11::is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= i == last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = matches!(c, ' ' | '\t' | '\0') || yaml11::is_break(c);
    }
    let edges = leading_space || leading_break || trailing_space || trailing_break;
    Analysis {
        multiline: line_breaks,
        plain_allowed: !(edges
            || break_space
            || space_break
            || special
            || line_breaks
            || indicators),
        single_allowed: !(break_space || space_break || special),
        block_allowed: !(trailing_space || space_break || special),
    }
}

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
fn number(n: &Number) -> String {
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
    use serde_json::json;

    fn round_trip(v: Value) {
        let text = documents([&v]);
        let parsed = crate::manifests::yaml::parse_yaml(
            &text,
            "t",
            &crate::manifests::ParseLimits::default(),
        )
        .unwrap();
        assert_eq!(parsed[0].value, v, "{text}");
    }

    #[test]
    fn every_kind_of_value_reads_back_the_same() {
        round_trip(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "a b"}},
            "data": {
                "yes": "yes", "n": "0777", "e": "", "f": "1.5", "t": "true", "c": "a: b",
                "h": "#x", "m": "line one\nline two\n", "m2": "a\n b", "tr": "a \nb",
                "q": "\"quoted\"", "u": "ünï", "tab": "a\tb", "star": "*x", "null": "null",
                "long": "word ".repeat(30), "lead": "  two\nlines", "plus": "a\n\n",
            },
            "list": [[1, 2], [], {}, {"a": [1, {"b": null}]}, "- x"],
            "num": 3, "neg": -1.5, "bool": false,
        }));
    }

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
