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

use serde_json::{Map, Value};

mod go;
mod style;

use go::{key_order, number};
use style::{Style, style};

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

    /// Writes the line break `c` (`\n` or another YAML 1.1 break, kept as is).
    fn line_break(&mut self, c: char) {
        self.out.push(c);
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
                self.line_break(c);
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
                self.line_break(c);
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
}
