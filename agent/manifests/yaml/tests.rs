use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

fn parse(text: &str) -> Result<Vec<Parsed>, ManifestError> {
    parse_yaml(text, "t.yaml", &ParseLimits::default())
}

fn one(text: &str) -> Value {
    let mut docs = parse(text).unwrap();
    assert_eq!(docs.len(), 1, "{docs:?}");
    docs.remove(0).value
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn yaml_1_1_booleans_like_kubectl() {
    let v = one("a: yes\nb: no\nc: on\nd: off\ne: y\nf: n\ng: true\nh: False\n");
    assert_eq!(
        v,
        json!({"a": true, "b": false, "c": true, "d": false, "e": true, "f": false, "g": true, "h": false})
    );
}

#[test]
fn quoted_scalars_stay_strings() {
    let v =
        one("a: 'yes'\nb: \"on\"\nc: \"0777\"\nd: '1.0'\ne: \"null\"\nf: \"true\"\ng: !!str 12\n");
    assert_eq!(
        v,
        json!({"a": "yes", "b": "on", "c": "0777", "d": "1.0", "e": "null", "f": "true", "g": "12"})
    );
}

#[test]
fn numbers_like_kubectl() {
    let v = one(
        "octal: 0777\nmode: 0644\no: 0o17\nhex: 0x1f\nu: 1_000\nf: 1.5\nneg: -3\nbig: 12345678901\n",
    );
    assert_eq!(
        v,
        json!({"octal": 511, "mode": 420, "o": 15, "hex": 31, "u": 1000, "f": 1.5, "neg": -3, "big": 12345678901_u64})
    );
}

#[test]
fn nulls_and_plain_strings() {
    let v = one("a: ~\nb: null\nc:\nd: 2024-01-01\ne: hello world\nf: 1.2.3\n");
    assert_eq!(
        v,
        json!({"a": null, "b": null, "c": null, "d": "2024-01-01", "e": "hello world", "f": "1.2.3"})
    );
}

#[test]
fn non_finite_floats_are_rejected() {
    assert_eq!(
        err("a: 1\nb: .inf\n"),
        "t.yaml: document 1 (line 2): invalid yaml: non-finite float `.inf` rejected by the configured policy"
    );
}

#[test]
fn merge_keys_are_expanded() {
    let v = one("base: &b {x: 1, y: 1}\nc:\n  <<: *b\n  y: 2\n");
    assert_eq!(v, json!({"base": {"x": 1, "y": 1}, "c": {"x": 1, "y": 2}}));
}

#[test]
fn duplicate_keys_are_rejected_with_their_line() {
    assert_eq!(
        err("---\na: 1\n---\nkind: A\nmetadata:\n  name: x\n  name: y\n"),
        "t.yaml: document 2 (line 7): invalid yaml: duplicate key name"
    );
}

#[test]
fn empty_documents_and_separators_are_skipped_and_not_counted() {
    let docs = parse("---\n---\n# only a comment\n---\n\n---\na: 1\n---\n~\n---\nb: 2\n...\n---\n")
        .unwrap();
    let found: Vec<(usize, usize, Value)> = docs
        .into_iter()
        .map(|p| (p.document, p.line, p.value))
        .collect();
    assert_eq!(found, [(1, 7, json!({"a": 1})), (2, 11, json!({"b": 2}))]);
    assert!(parse("").unwrap().is_empty());
    assert!(parse("# nothing\n").unwrap().is_empty());
}

#[test]
fn document_end_markers_split_too() {
    let docs = parse("a: 1\n...\nb: 2\n").unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!((docs[1].document, docs[1].line), (2, 3));
}

#[test]
fn markers_inside_scalars_are_not_split() {
    let v = one("a: |\n  ---\n  text\nb: \"x --- y\"\n");
    assert_eq!(v, json!({"a": "---\ntext\n", "b": "x --- y"}));
    let docs = parse("--- # first\na: 1\n--- {b: 2}\n").unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!((docs[1].line, &docs[1].value), (3, &json!({"b": 2})));
}

#[test]
fn directives_stay_with_their_document() {
    let docs = parse("%YAML 1.2\n---\na: 1\n").unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].line, 3);
}

#[test]
fn crlf_and_bom_are_accepted() {
    let docs = parse("\u{feff}a: 1\r\n---\r\nb: 2\r\n").unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[1].value, json!({"b": 2}));
}

#[test]
fn syntax_errors_name_document_and_line() {
    assert_eq!(
        err("a: 1\n---\nb: [1, 2\n"),
        "t.yaml: document 2 (line 3): invalid yaml: unclosed bracket '['"
    );
}

#[test]
fn billion_laughs_is_rejected_quickly() {
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
        .windows(2)
        .map(|w| (w[0], w[1]))
    {
        let refs = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    let start = Instant::now();
    let message = err(&bomb);
    // A debug build on a busy machine; a release build takes a few milliseconds.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        message.starts_with("t.yaml: document 1 (line "),
        "{message}"
    );
    assert!(
        message.ends_with(": invalid yaml: aliases expand beyond the limit (alias bomb?)"),
        "{message}"
    );
}

#[test]
fn deep_nesting_is_rejected() {
    let deep = format!("{}{}", "[".repeat(150), "]".repeat(150));
    let message = err(&deep);
    assert_eq!(
        message,
        "t.yaml: document 1 (line 1): invalid yaml: nesting is deeper than the limit"
    );
    let limits = ParseLimits {
        max_depth: 3,
        ..ParseLimits::default()
    };
    assert!(parse_yaml("a:\n  b:\n    c:\n      d: 1\n", "t.yaml", &limits).is_err());
    assert!(parse_yaml("a:\n  b: 1\n", "t.yaml", &limits).is_ok());
}

#[test]
fn document_count_is_bounded() {
    let limits = ParseLimits {
        max_documents: 2,
        ..ParseLimits::default()
    };
    let text = "a: 1\n---\na: 2\n---\na: 3\n";
    assert_eq!(
        parse_yaml(text, "t.yaml", &limits).unwrap_err().to_string(),
        "t.yaml: more than 2 documents in one file"
    );
}

#[test]
fn control_characters_in_messages_are_escaped() {
    assert_eq!(one_line("a\nb\u{1b}[31m  c"), "a b\\u{1b}[31m c");
    let long = one_line(&"k".repeat(10_000));
    assert_eq!(long.chars().count(), 301);
    assert!(long.ends_with('…'));
}

#[test]
fn json_parses_one_value() {
    let docs = parse_json(
        "\n{\"a\": [1, true, null, \"x\"]}\n",
        "t.json",
        &ParseLimits::default(),
    )
    .unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!((docs[0].document, docs[0].line), (1, 2));
    assert_eq!(docs[0].value, json!({"a": [1, true, null, "x"]}));
}

#[test]
fn json_streams_are_several_documents() {
    // `null` is an empty document: skipped and not counted, as in YAML.
    let text = "{\"a\": 1}\n\n  {\n\"b\": 2}\nnull\n{\"c\": 3}{\"d\": 4}\n";
    let docs = parse_json(text, "t.json", &ParseLimits::default()).unwrap();
    let found: Vec<(usize, usize, Value)> = docs
        .into_iter()
        .map(|p| (p.document, p.line, p.value))
        .collect();
    assert_eq!(
        found,
        [
            (1, 1, json!({"a": 1})),
            (2, 3, json!({"b": 2})),
            (3, 6, json!({"c": 3})),
            (4, 6, json!({"d": 4})),
        ]
    );
}

#[test]
fn json_rejects_duplicates_trailing_data_and_depth() {
    let limits = ParseLimits::default();
    assert_eq!(
        parse_json("{\n\"a\": 1,\n\"a\": 2}", "t.json", &limits)
            .unwrap_err()
            .to_string(),
        "t.json: document 1 (line 3): invalid json: duplicate key \"a\""
    );
    assert_eq!(
        parse_json("{\"a\": 1}\n{\"b\": 2,}", "t.json", &limits)
            .unwrap_err()
            .to_string(),
        "t.json: document 2 (line 2): invalid json: trailing comma"
    );
    let deep = format!("{}{}", "[".repeat(150), "]".repeat(150));
    assert_eq!(
        parse_json(&deep, "t.json", &limits)
            .unwrap_err()
            .to_string(),
        "t.json: document 1 (line 1): invalid json: recursion limit exceeded"
    );
    let deep = format!("{}{}", "[".repeat(70), "]".repeat(70));
    assert_eq!(
        parse_json(&deep, "t.json", &limits)
            .unwrap_err()
            .to_string(),
        "t.json: document 1 (line 1): invalid json: nesting is deeper than the limit"
    );
}

#[test]
fn the_default_depth_fits_a_small_thread_stack() {
    // Deserializing recurses once per level; blocking-pool threads have 2 MiB.
    let depth = ParseLimits::default().max_depth;
    let ok = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let deeper = format!("[{deep}]");
            parse(&deep).is_ok() && parse(&deeper).is_err()
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(ok);
}

#[test]
fn alias_expansion_is_budgeted_across_documents_and_files() {
    // Each document expands ~6k events: under the per-document limit, but a file
    // (or a load) full of them is not.
    let x20 = vec!["x"; 20].join(",");
    let a20 = vec!["*a"; 20].join(",");
    let b15 = vec!["*b"; 15].join(",");
    let doc = format!("a: &a [{x20}]\nb: &b [{a20}]\nc: [{b15}]\n");
    let limits = ParseLimits {
        max_alias_expansion: 10_000,
        ..ParseLimits::default()
    };
    assert!(parse_yaml(&doc, "t.yaml", &limits).is_ok());
    let mut parser = Parser::new(&limits);
    assert!(parser.yaml(&doc, "1.yaml").is_ok());
    let err = parser.yaml(&doc, "2.yaml").unwrap_err().to_string();
    assert!(
        err.starts_with("2.yaml: document 1 (line ")
            && err.ends_with("aliases expand beyond the limit (alias bomb?)"),
        "{err}"
    );
    let stream = [doc.as_str(); 3].join("---\n");
    let err = parse_yaml(&stream, "t.yaml", &limits)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("t.yaml: document 2 (line "), "{err}");
}

#[test]
fn inputs_without_aliases_never_hit_the_expansion_budget() {
    // Dense flow syntax has the most events per byte.
    let limits = ParseLimits {
        max_alias_expansion: 0,
        ..ParseLimits::default()
    };
    let dense: Vec<String> = (0..3_000).map(|i| format!("{{k{i}}}")).collect();
    let dense = format!("[{}]", dense.join(","));
    assert!(parse_yaml(&dense, "t.yaml", &limits).is_ok());
    let nested = format!("{}{}", "[".repeat(60), "]".repeat(60));
    assert!(parse_yaml(&nested, "t.yaml", &limits).is_ok());
    let block = "- a\n- {}\n- []\n- ? x\n- [{a},{b}]\n".repeat(1_000);
    assert!(parse_yaml(&block, "t.yaml", &limits).is_ok());
}

#[test]
fn unrendered_templates_get_a_hint() {
    assert_eq!(
        err("metadata:\n  name: x\n  labels:\n    version: {{ version }}\n"),
        "t.yaml: document 1 (line 4): invalid yaml: expected string scalar (templates such as {{ ... }} are not rendered)"
    );
}

/// Issue #21, finding 5: JSON had no node budget; an 8 MiB array of zeros took some
/// 150 MiB. Both formats now stop at the same node count, and so do many documents
/// that each stay under it.
#[test]
fn json_and_yaml_share_the_node_budgets() {
    let limits = ParseLimits {
        max_nodes: 1000,
        max_total_nodes: 2500,
        ..ParseLimits::default()
    };
    let array = |n: usize| format!("[{}]", vec!["0"; n].join(","));
    let json_err = parse_json(&array(1000), "t.json", &limits).unwrap_err();
    assert_eq!(
        json_err.to_string(),
        "t.json: document 1 (line 1): invalid json: the document has more than the limit of 1000 nodes"
    );
    let yaml_err = parse_yaml(&format!("a: {}\n", array(1000)), "t.yaml", &limits).unwrap_err();
    assert!(
        yaml_err
            .to_string()
            .ends_with("the document has more than the limit of 1000 nodes"),
        "{yaml_err}"
    );
    assert!(parse_json(&array(900), "t.json", &limits).is_ok());

    // Three documents of 900 nodes: each fits, together they do not.
    let mut parser = Parser::new(&limits);
    let stream = format!("{}\n{}\n", array(899), array(899));
    assert_eq!(parser.json(&stream, "1.json").unwrap().len(), 2);
    let err = parser.json(&array(899), "2.json").unwrap_err().to_string();
    assert!(
        err.ends_with("the files hold more than the limit of 2500 nodes in all"),
        "{err}"
    );
    let err = parser
        .yaml(&format!("a: {}\n", array(899)), "3.yaml")
        .unwrap_err();
    assert!(err.to_string().contains("2500 nodes in all"), "{err}");
}

#[test]
fn the_default_node_budget_stops_the_probe_quickly() {
    // The probe's shape: 4 million zeros in 8 MiB.
    let text = format!("[{}]", vec!["0"; 4 << 20].join(","));
    let err = parse_json(&text, "big.json", &ParseLimits::default()).unwrap_err();
    assert!(err.to_string().contains("250000 nodes"), "{err}");
}

#[test]
fn json_streams_keep_lines_and_split_glued_values() {
    let docs = parse_json(
        "{\"a\": \"}{\"}{\"b\":\n[1]}\n\n  7 \"x\"",
        "t.json",
        &ParseLimits::default(),
    )
    .unwrap();
    let found: Vec<_> = docs.iter().map(|d| (d.line, d.value.clone())).collect();
    assert_eq!(
        found,
        [
            (1, json!({"a": "}{"})),
            (1, json!({"b": [1]})),
            (4, json!(7)),
            (4, json!("x"))
        ]
    );
}

/// Issue #21: unknown tags used to be dropped silently.
#[test]
fn unknown_yaml_tags_are_refused() {
    for text in [
        "a: !custom x\n",
        "a: !<tag:x.example,2024:y> 1\n",
        "a: !!binary /w==\n",
    ] {
        let e = err(text);
        assert!(e.contains("tag") || e.contains("binary"), "{text:?}: {e}");
    }
    // `!!binary` becomes its decoded text, as kubectl (goyaml) makes it.
    assert_eq!(one("a: !!binary aGVsbG8=\n"), json!({"a": "hello"}));
    // The standard ones keep their meaning.
    assert_eq!(
        one("a: !!str 12\nb: !!int \"7\"\n"),
        json!({"a": "12", "b": 7})
    );
}
