use std::time::{Duration, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;

use super::*;

fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    encode(&mut text, registry).unwrap();
    text
}

/// Checks one sample line: `name{k="v",...} value`, returning the name, the raw
/// label text and the value.
fn parse_sample(line: &str) -> Option<(&str, &str, f64)> {
    let name_end = line.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))?;
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = "";
    if let Some(after) = rest.strip_prefix('{') {
        let close = after.find("} ")?;
        labels = &after[..close];
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=')?;
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            if !(value.len() >= 2 && value.starts_with('"') && value.ends_with('"')) {
                return None;
            }
        }
        rest = &after[close + 1..];
    }
    let value = rest.strip_prefix(' ')?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some((name, labels, value))
}

fn samples(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (n, labels, v) = parse_sample(l).unwrap_or_else(|| panic!("bad sample line {l:?}"));
            (n.to_string(), labels.to_string(), v)
        })
        .collect()
}

fn value(text: &str, name: &str, labels: &str) -> Option<f64> {
    samples(text)
        .into_iter()
        .find(|(n, l, _)| n == name && l == labels)
        .map(|(_, _, v)| v)
}

#[test]
fn every_family_is_exported_and_every_line_parses() {
    let (metrics, registry) = Metrics::new();
    metrics.set_applied_revision(Some("abc"));
    metrics.set_good_revision(Some("abc"));
    let text = scrape(&registry);
    let families = [
        "hawser_reconciles_total",
        "hawser_reconcile_duration_seconds_bucket",
        "hawser_reconcile_duration_seconds_sum",
        "hawser_reconcile_duration_seconds_count",
        "hawser_source_polls_total",
        "hawser_source_fetches_total",
        "hawser_source_fetched_bytes_total",
        "hawser_managed_objects",
        "hawser_drift_corrections_total",
        "hawser_applied_revision_info",
        "hawser_good_revision_info",
        "hawser_last_success_timestamp_seconds",
        "hawser_source_unreachable_seconds",
        "hawser_suspended",
    ];
    let found = samples(&text);
    for family in families {
        assert!(
            found.iter().any(|(n, _, _)| n == family),
            "{family} missing in:\n{text}"
        );
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in text.lines().filter(|l| l.starts_with('#')) {
        assert!(
            line.starts_with("# HELP hawser_")
                || line.starts_with("# TYPE hawser_")
                || line == "# EOF",
            "{line}"
        );
    }
}

#[test]
fn result_labels_start_at_zero_with_lowercase_values() {
    let (_metrics, registry) = Metrics::new();
    let text = scrape(&registry);
    for result in ["success", "rejected", "failed", "unhealthy"] {
        let labels = format!("result=\"{result}\"");
        assert_eq!(
            value(&text, "hawser_reconciles_total", &labels),
            Some(0.0),
            "{text}"
        );
    }
    for result in ["unchanged", "changed", "failed"] {
        let labels = format!("result=\"{result}\"");
        assert_eq!(
            value(&text, "hawser_source_polls_total", &labels),
            Some(0.0),
            "{text}"
        );
    }
    for result in ["success", "invalid", "failed"] {
        let labels = format!("result=\"{result}\"");
        assert_eq!(
            value(&text, "hawser_source_fetches_total", &labels),
            Some(0.0),
            "{text}"
        );
    }
}

#[test]
fn the_timer_counts_its_result_and_an_unfinished_timer_counts_as_failed() {
    let (metrics, registry) = Metrics::new();
    metrics.reconcile_timer().finish(ReconcileResult::Unhealthy);
    {
        let _timer = metrics.reconcile_timer();
    }
    let text = scrape(&registry);
    assert_eq!(
        value(&text, "hawser_reconciles_total", "result=\"unhealthy\""),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "hawser_reconciles_total", "result=\"failed\""),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "hawser_reconciles_total", "result=\"success\""),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "hawser_reconcile_duration_seconds_count", ""),
        Some(2.0)
    );
    assert_eq!(
        value(
            &text,
            "hawser_reconcile_duration_seconds_bucket",
            "le=\"0.1\""
        ),
        Some(2.0)
    );
}

#[test]
fn revision_info_is_replaced_not_added() {
    let (metrics, registry) = Metrics::new();
    metrics.set_applied_revision(Some("one"));
    metrics.set_applied_revision(Some("two"));
    metrics.set_applied_revision(Some("two"));
    let text = scrape(&registry);
    let applied: Vec<_> = samples(&text)
        .into_iter()
        .filter(|(n, _, _)| n == "hawser_applied_revision_info")
        .collect();
    assert_eq!(
        applied,
        [(
            "hawser_applied_revision_info".into(),
            "revision=\"two\"".into(),
            1.0
        )]
    );
    metrics.set_applied_revision(None);
    assert!(!scrape(&registry).contains("revision=\"two\""));
}

#[test]
fn counters_and_gauges_follow_the_calls() {
    let (metrics, registry) = Metrics::new();
    metrics.polled(PollResult::Changed);
    metrics.polled(PollResult::Failed);
    metrics.fetched(FetchResult::Success, 1000);
    metrics.fetched(FetchResult::Invalid, 24);
    metrics.set_managed_objects(42);
    metrics.drift_corrected(3);
    metrics.set_suspended(true);
    metrics.succeeded_at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let text = scrape(&registry);
    assert_eq!(
        value(&text, "hawser_source_polls_total", "result=\"changed\""),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "hawser_source_polls_total", "result=\"failed\""),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "hawser_source_fetches_total", "result=\"invalid\""),
        Some(1.0)
    );
    assert_eq!(
        value(&text, "hawser_source_fetched_bytes_total", ""),
        Some(1024.0)
    );
    assert_eq!(value(&text, "hawser_managed_objects", ""), Some(42.0));
    assert_eq!(
        value(&text, "hawser_drift_corrections_total", ""),
        Some(3.0)
    );
    assert_eq!(value(&text, "hawser_suspended", ""), Some(1.0));
    assert_eq!(
        value(&text, "hawser_last_success_timestamp_seconds", ""),
        Some(1.7e9)
    );
}

#[test]
fn unreachable_seconds_grow_from_the_first_failure_until_reachable() {
    let (metrics, registry) = Metrics::new();
    let read = || value(&scrape(&registry), "hawser_source_unreachable_seconds", "").unwrap();
    assert_eq!(read(), 0.0);
    metrics.source_unreachable();
    std::thread::sleep(Duration::from_millis(20));
    metrics.source_unreachable(); // a second failure does not restart the clock
    let first = read();
    assert!(first >= 0.02, "{first}");
    std::thread::sleep(Duration::from_millis(5));
    assert!(read() > first);
    metrics.source_reachable();
    assert_eq!(read(), 0.0);
}

#[test]
fn the_sample_parser_refuses_malformed_lines() {
    for bad in [
        "",
        "1abc 1",
        "name",
        "name{a=b} 1",
        "name{a=\"b\"}1",
        "name one",
        "name{=\"b\"} 1",
    ] {
        assert!(parse_sample(bad).is_none(), "{bad:?}");
    }
    assert_eq!(
        parse_sample("a_b{le=\"+Inf\"} 3"),
        Some(("a_b", "le=\"+Inf\"", 3.0))
    );
}
