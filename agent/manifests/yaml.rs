//! Parsing untrusted YAML and JSON into `serde_json::Value` documents, with budgets.
//!
//! YAML is read the way `kubectl` reads it (sigs.k8s.io/yaml on goyaml v2, YAML 1.1
//! flavoured), because that is what manifest authors test against:
//!
//! - unquoted `yes`/`no`/`on`/`off`/`y`/`n` (and `true`/`false`) are booleans; quoted,
//!   they are strings. (serde-saphyr also accepts odd casings such as `yEs`, which
//!   goyaml would keep as a string; nobody writes those.) Where Kubernetes only takes
//!   strings (labels, annotations, ConfigMap and Secret data) a boolean or number is
//!   rejected with a hint to quote it, instead of at the API server's dry run.
//! - unquoted `0777` is the octal number 511 (so `defaultMode: 0644` means what the
//!   Kubernetes docs say); `"0777"` stays a string; `0o777` and `0x1ff` are numbers too.
//! - `~`, `null` and empty values are null; `.inf`/`.nan` are rejected (JSON, and so
//!   the API server, cannot carry them).
//! - merge keys (`<<: *base`) are expanded; duplicate keys are an error.
//! - empty documents (only comments, `---` separators, or `null`) are skipped and not
//!   counted: "document 2" is the second document with content.
//!
//! The stream is split into documents here, on `---` and `...` lines, before parsing:
//! each document then gets an exact index and first line even when it fails to parse,
//! and the budgets apply per document. YAML forbids those markers inside scalars at
//! column 0, so splitting there is exact.
//!
//! - explicit tags other than the standard ones (`!custom`, `!<tag:…>`) are refused:
//!   kubectl drops them silently, which hides what the author meant. `!!binary`
//!   becomes its decoded text, as with kubectl; bytes that are not UTF-8 are refused.
//!
//! JSON files are parsed with serde_json, rejecting duplicate keys the same way; a
//! file may hold several values one after another, as kubectl accepts.
//!
//! Both formats share the budgets: bytes per file, nesting depth, nodes per document
//! and nodes per load (an 8 MiB JSON array of four million zeros would otherwise take
//! some 150 MiB as values).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::{
    DuplicateKeyPolicy, MergeKeyPolicy, MessageFormatter, NonFiniteFloatPolicy, Options,
};

use super::{Location, ManifestError, ParseLimits};

/// Whose reading of YAML a file gets. Manifests are read as `kubectl` reads them;
/// the render stage reads files as `kustomize build` does, which differs by file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// sigs.k8s.io/yaml on goyaml v2, as described in the module doc.
    #[default]
    Kubectl,
    /// A kustomization file: kustomize reads it with sigs.k8s.io/yaml too, but
    /// without its strict mode, so a repeated key keeps the last value.
    Kustomization,
    /// Resources and patches under a kustomization: kyaml reads them with goyaml
    /// v3, YAML 1.2 booleans (only `true`/`false`; `yes`, `on`, `y` stay strings).
    Kyaml,
}

/// One parsed document and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub document: usize,
    pub line: usize,
    pub value: Value,
}

/// Parses the files of one load. Alias expansion is budgeted across all of them, so
/// many small bombs cost no more than one.
#[derive(Debug)]
pub struct Parser<'a> {
    limits: &'a ParseLimits,
    /// Parser events aliases may still add beyond what the input itself produces.
    expansion_left: usize,
    /// Nodes the documents of this load may still hold.
    nodes_left: usize,
}

impl<'a> Parser<'a> {
    pub fn new(limits: &'a ParseLimits) -> Self {
        Self {
            limits,
            expansion_left: limits.max_alias_expansion,
            nodes_left: limits.max_total_nodes,
        }
    }

    /// The node budget of the next document, and whether the load's total is what
    /// bounds it (for the message).
    fn node_budget(&self) -> (usize, bool) {
        let total_bounds = self.nodes_left < self.limits.max_nodes;
        (self.limits.max_nodes.min(self.nodes_left), total_bounds)
    }

    fn nodes_error(&self, total_bounds: bool) -> String {
        if total_bounds {
            format!(
                "the files hold more than the limit of {} nodes in all",
                self.limits.max_total_nodes
            )
        } else {
            format!(
                "the document has more than the limit of {} nodes",
                self.limits.max_nodes
            )
        }
    }

    /// Parses a YAML stream. `file` is only used in error messages.
    pub fn yaml(&mut self, text: &str, file: &str) -> Result<Vec<Parsed>, ManifestError> {
        self.yaml_as(text, file, Dialect::Kubectl)
    }

    /// Parses a YAML stream as `dialect` reads it.
    pub fn yaml_as(
        &mut self,
        text: &str,
        file: &str,
        dialect: Dialect,
    ) -> Result<Vec<Parsed>, ManifestError> {
        let limits = self.limits;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut out = Vec::new();
        for chunk in split_documents(text) {
            let Some(content_line) = chunk.content_line() else {
                continue; // blank, comments, bare markers
            };
            let document = out.len() + 1;
            if document > limits.max_documents {
                return Err(ManifestError::TooManyDocuments {
                    file: file.to_string(),
                    limit: limits.max_documents,
                });
            }
            // Without aliases a document yields fewer than two events per byte; what
            // goes beyond that is alias expansion, charged to the shared allowance.
            let own_events = chunk.text.len().saturating_mul(2).saturating_add(16);
            let events = Rc::new(Cell::new(0));
            let report = Rc::clone(&events);
            let (max_nodes, total_bounds) = self.node_budget();
            let options = options(
                limits,
                own_events.saturating_add(self.expansion_left),
                max_nodes,
                dialect,
            )
            .with_budget_report(move |r| report.set(r.events));
            let parsed = serde_saphyr::from_str_multiple_with_options::<Value, Vec<Value>>(
                chunk.text, options,
            );
            let expanded = events.get().saturating_sub(own_events);
            self.expansion_left = self.expansion_left.saturating_sub(expanded);
            let values = parsed.map_err(|err| {
                let line_in_chunk = err
                    .location()
                    .and_then(|l| usize::try_from(l.line()).ok())
                    .filter(|l| *l >= 1);
                let line = line_in_chunk.map_or(content_line, |l| chunk.first_line + l - 1);
                let mut message = message(&err);
                if is_nodes_breach(&err) {
                    message = self.nodes_error(total_bounds);
                }
                // `{{ x }}` parses as a flow mapping: the library's message would not
                // say that the file is a template nobody rendered.
                let text_line = line_in_chunk.and_then(|l| chunk.text.lines().nth(l - 1));
                if text_line.is_some_and(|t| t.contains("{{")) {
                    message.push_str(" (templates such as {{ ... }} are not rendered)");
                }
                ManifestError::Syntax {
                    location: Location {
                        file: file.to_string(),
                        document,
                        line: Some(line),
                        item: None,
                    },
                    format: "yaml",
                    message,
                }
            })?;
            // A chunk holds one document; more would mean a marker the splitter missed.
            for value in values {
                self.nodes_left = self.nodes_left.saturating_sub(nodes(&value));
                if value.is_null() {
                    continue;
                }
                let document = out.len() + 1;
                out.push(Parsed {
                    document,
                    line: content_line,
                    value,
                });
            }
        }
        Ok(out)
    }

    /// Parses a JSON file: one value, or several one after another as kubectl
    /// accepts. Duplicate keys are rejected; nesting and nodes are bounded.
    pub fn json(&mut self, text: &str, file: &str) -> Result<Vec<Parsed>, ManifestError> {
        let limits = self.limits;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let syntax = |document: usize, line: usize, message: String| ManifestError::Syntax {
            location: Location {
                file: file.to_string(),
                document,
                line: Some(line),
                item: None,
            },
            format: "json",
            message,
        };
        let mut out = Vec::new();
        let (mut start, mut line) = (0, 1);
        while let Some(begin) = text[start..]
            .find(|c: char| !c.is_whitespace())
            .map(|i| start + i)
        {
            line += text[start..begin].matches('\n').count();
            let end = begin + json_value_len(&text[begin..]);
            let document = out.len() + 1;
            let (max_nodes, total_bounds) = self.node_budget();
            let seed = StrictValue {
                depth_left: 128,
                nodes_left: Rc::new(Cell::new(max_nodes)),
            };
            let mut de = serde_json::Deserializer::from_str(&text[begin..end]);
            let value = seed
                .deserialize(&mut de)
                .and_then(|value| de.end().map(|()| value))
                .map_err(|err| {
                    let message = if err.to_string().starts_with(NODES_EXCEEDED) {
                        self.nodes_error(total_bounds)
                    } else {
                        strip_json_position(&err)
                    };
                    syntax(document, line + err.line().max(1) - 1, message)
                })?;
            let doc_line = line;
            line += text[begin..end].matches('\n').count();
            start = end;
            if document > limits.max_documents {
                return Err(ManifestError::TooManyDocuments {
                    file: file.to_string(),
                    limit: limits.max_documents,
                });
            }
            if depth(&value) > limits.max_depth {
                return Err(syntax(
                    document,
                    doc_line,
                    "nesting is deeper than the limit".into(),
                ));
            }
            self.nodes_left = self.nodes_left.saturating_sub(nodes(&value));
            if !value.is_null() {
                out.push(Parsed {
                    document,
                    line: doc_line,
                    value,
                });
            }
        }
        Ok(out)
    }
}

/// Length of the JSON value at the start of `text` (which starts with no
/// whitespace), found without parsing it: up to the bracket closing the first one,
/// the end of a string, or the next whitespace or bracket after a scalar. Invalid
/// JSON is caught by the parser afterwards; this only splits a stream of values.
fn json_value_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => {
                    in_string = false;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' if depth == 0 => return i,
            _ => {}
        }
    }
    bytes.len()
}

/// The message [`StrictValue`] fails with when the node budget runs out.
const NODES_EXCEEDED: &str = "node budget exceeded";

fn is_nodes_breach(err: &serde_saphyr::Error) -> bool {
    let mut inner = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    matches!(
        inner,
        serde_saphyr::Error::Budget {
            breach: serde_saphyr::budget::BudgetBreach::Nodes { .. },
            ..
        }
    )
}

/// Mappings, sequences and scalars in a value.
fn nodes(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(nodes).sum::<usize>(),
        Value::Object(map) => 1 + map.len() + map.values().map(nodes).sum::<usize>(),
        _ => 1,
    }
}

/// Parses one YAML stream on its own budget.
pub fn parse_yaml(
    text: &str,
    file: &str,
    limits: &ParseLimits,
) -> Result<Vec<Parsed>, ManifestError> {
    Parser::new(limits).yaml(text, file)
}

/// Parses a JSON file on its own budget.
pub fn parse_json(
    text: &str,
    file: &str,
    limits: &ParseLimits,
) -> Result<Vec<Parsed>, ManifestError> {
    Parser::new(limits).json(text, file)
}

/// Nesting depth of a value; bounded by serde_json's recursion limit (128).
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The serde-saphyr options: kubectl-like scalars (see the module doc) and budgets.
fn options(limits: &ParseLimits, max_events: usize, max_nodes: usize, dialect: Dialect) -> Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: max_events,
            max_depth: limits.max_depth,
            max_nodes: max_nodes,
            max_documents: limits.max_documents,
            max_aliases: limits.max_alias_expansion,
            max_recorded_anchor_events: limits.max_alias_expansion,
            max_reader_input_bytes: usize::try_from(limits.max_file_bytes).ok(),
        },
        duplicate_keys: if dialect == Dialect::Kustomization {
            DuplicateKeyPolicy::LastWins
        } else {
            DuplicateKeyPolicy::Error
        },
        merge_keys: MergeKeyPolicy::Merge,
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: limits.max_alias_expansion,
        },
        legacy_octal_numbers: true,
        strict_booleans: dialect == Dialect::Kyaml,
        non_finite_float_policy: NonFiniteFloatPolicy::Reject,
        reject_unsupported_tags: true,
        with_snippet: false,
        crop_radius: 0,
    }
}

/// The error's message without location suffix or snippet, on one line.
fn message(err: &serde_saphyr::Error) -> String {
    let mut inner = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    if let serde_saphyr::Error::DuplicateMappingKey { key, .. } = inner {
        // The library's wording suggests changing its options; ours must not.
        return match key {
            Some(key) => one_line(&format!("duplicate key {key}")),
            None => "duplicate key".to_string(),
        };
    }
    if let serde_saphyr::Error::Budget { breach, .. } = inner {
        return budget_message(breach);
    }
    if let serde_saphyr::Error::AliasReplayLimitExceeded { .. }
    | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. } = inner
    {
        return "aliases expand beyond the limit (alias bomb?)".to_string();
    }
    one_line(&serde_saphyr::DefaultMessageFormatter.format_message(inner))
}

/// Names the budget breached in words, not in the library's `Debug` form.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    let what = match breach {
        B::Aliases { .. }
        | B::Anchors { .. }
        | B::AliasAnchorRatio { .. }
        | B::RecordedAnchorEvents { .. }
        | B::RecordedAnchorBytes { .. } => "aliases expand beyond the limit (alias bomb?)",
        B::Depth { .. } => "nesting is deeper than the limit",
        B::Documents { .. } => "too many documents",
        B::InputBytes { .. } | B::ScalarBytes { .. } | B::CommentBytes { .. } => {
            "the document is larger than the limit"
        }
        // Events beyond twice the input's size can only come from aliases.
        B::Events { .. } => "aliases expand beyond the limit (alias bomb?)",
        B::Nodes { .. } => "the document has more nodes than the limit",
        B::MergeKeys { .. } => "too many merge keys",
        _ => "the document exceeds a parsing limit",
    };
    what.to_string()
}

fn strip_json_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => &text,
    };
    one_line(text)
}

/// Collapses whitespace, neutralises control characters and caps the length of a
/// message that may quote untrusted text (a duplicate key, say).
fn one_line(text: &str) -> String {
    const MAX_CHARS: usize = 300;
    let mut out = String::new();
    let mut chars = 0;
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            chars += 1;
            if chars > MAX_CHARS {
                out.push('…');
                return out;
            }
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
    }
    out
}

/// A slice of the stream holding at most one document.
#[derive(Debug)]
struct Chunk<'a> {
    text: &'a str,
    /// 1-based line of the chunk's first line in the file.
    first_line: usize,
}

impl Chunk<'_> {
    /// The first line with content: not blank, not a comment, not a directive, not a
    /// bare `---`/`...` marker. `None` for an empty document.
    fn content_line(&self) -> Option<usize> {
        for (i, line) in self.text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || line.starts_with('%') {
                continue;
            }
            if let Some(rest) = marker_rest(line, "---").or_else(|| marker_rest(line, "...")) {
                let rest = rest.trim();
                if rest.is_empty() || rest.starts_with('#') {
                    continue;
                }
            }
            return Some(self.first_line + i);
        }
        None
    }
}

/// If `line` is the document marker `marker` (at column 0, followed by end of line or
/// whitespace), the rest of the line.
fn marker_rest<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(marker)?;
    let rest = rest.strip_suffix('\r').unwrap_or(rest);
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
}

/// Splits a stream before each `---` line and after each `...` line. Directives
/// (`%YAML`) stay with the document that follows them.
fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start = 0; // byte offset of the current chunk
    let mut start_line = 1;
    let mut only_directives = false; // chunk so far is directives (and blanks/comments)
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let bare = line.strip_suffix('\n').unwrap_or(line);
        if marker_rest(bare, "---").is_some() && offset > start && !only_directives {
            chunks.push(Chunk {
                text: &text[start..offset],
                first_line: start_line,
            });
            start = offset;
            start_line = line_no;
        }
        offset += line.len();
        if bare.starts_with('%') {
            only_directives = offset - line.len() == start || only_directives;
        } else if !bare.trim().is_empty() && !bare.trim_start().starts_with('#') {
            only_directives = false;
        }
        if marker_rest(bare, "...").is_some() {
            chunks.push(Chunk {
                text: &text[start..offset],
                first_line: start_line,
            });
            start = offset;
            start_line = line_no + 1;
            only_directives = false;
        }
    }
    if start < text.len() {
        chunks.push(Chunk {
            text: &text[start..],
            first_line: start_line,
        });
    }
    chunks
}

/// A `serde_json::Value` that rejects duplicate keys and bounds nesting and nodes.
struct StrictValue {
    depth_left: usize,
    /// Shared by every node of the document.
    nodes_left: Rc<Cell<usize>>,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.nodes_left.get().checked_sub(1) {
            Some(left) => self.nodes_left.set(left),
            None => return Err(de::Error::custom(NODES_EXCEEDED)),
        }
        deserializer.deserialize_any(self)
    }
}

impl StrictValue {
    fn nested<E: de::Error>(&self) -> Result<StrictValue, E> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(StrictValue {
                depth_left,
                nodes_left: Rc::clone(&self.nodes_left),
            }),
            None => Err(E::custom("nesting is deeper than the limit")),
        }
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.nested()?)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // A key is a node too, as in YAML.
            match self.nodes_left.get().checked_sub(1) {
                Some(left) => self.nodes_left.set(left),
                None => return Err(de::Error::custom(NODES_EXCEEDED)),
            }
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let value = map.next_value_seed(self.nested()?)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests;
