//! The benchmark harness at a tiny size (`scripts/bench --smoke`), so it cannot rot:
//! every scenario runs once with 10 objects against the test control plane and the
//! test Git server, and its results must come out complete. Nothing here looks at a
//! time: benchmarks are not tests; a broken harness is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

const SCENARIOS: &[&str] = &[
    "memory", "apply", "change", "poll", "latency", "fetch", "fleet", "render",
];

#[test]
fn bench_harness_runs_every_scenario_at_smoke_size() {
    assert!(
        std::env::var_os("HAWSER_TEST_APISERVER").is_some(),
        "HAWSER_TEST_APISERVER is not set: this test needs the test control plane; run `eval \"$(tests/env/up)\"` or scripts/test"
    );
    let out_dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(format!("{root}/scripts/bench"))
        .args([
            "--smoke",
            "--reuse-env",
            "--hawser",
            env!("CARGO_BIN_EXE_hawser"),
        ])
        .arg("--out")
        .arg(out_dir.path())
        .output()
        .expect("scripts/bench runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/bench --smoke failed:\n{stderr}"
    );

    let json = std::fs::read_to_string(out_dir.path().join("smoke.json")).unwrap();
    let doc: Value = serde_json::from_str(&json).unwrap();
    for key in ["machine", "versions", "command", "date"] {
        assert!(!doc[key].is_null(), "{key} missing from the results");
    }
    assert!(
        doc["versions"]["hawser"]
            .as_str()
            .unwrap()
            .starts_with("hawser ")
    );
    let results = &doc["results"];
    for name in SCENARIOS {
        let samples = results[name]["samples"].as_array();
        assert!(
            samples.is_some_and(|s| !s.is_empty()),
            "scenario {name} has no samples: {}",
            results[name]
        );
        assert!(
            results[name]["medians"].is_object(),
            "scenario {name} has no medians"
        );
    }
    // A/B scenarios: one pair, both competitors, a ratio for the pair.
    for name in ["apply", "change"] {
        let who: Vec<&str> = results[name]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["competitor"].as_str().unwrap())
            .collect();
        assert_eq!(who, ["hawser", "kubectl"], "{name} runs A then B");
        assert_eq!(
            results[name]["ratios_hawser_over_kubectl"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }
    // Counts come from real logs: the first apply wrote, the Git server saw polls.
    let first = &results["apply"]["samples"][0];
    assert!(first["first_writes"].as_u64().unwrap() >= 10, "{first}");
    for sample in results["poll"]["samples"].as_array().unwrap() {
        assert!(sample["bytes"].as_u64().unwrap() > 0, "{sample}");
    }
    assert!(results["memory"]["binary"]["bytes"].as_u64().unwrap() > 0);
    // The fleet's pollers reached their server and were counted on both sides: the
    // polls made, the bytes through the relay, and hawser beside the ls-remote poll.
    let fleet = results["fleet"]["samples"].as_array().unwrap();
    for sample in fleet {
        assert!(sample["polls"].as_u64().unwrap() >= 1, "{sample}");
        assert_eq!(sample["errors"].as_u64(), Some(0), "{sample}");
        assert!(sample["bytes_per_poll"].as_u64().unwrap() > 0, "{sample}");
    }
    for (server, client) in [
        ("git", "hawser"),
        ("git", "ls-remote"),
        ("static", "hawser"),
        // The OCI case: the registry from tests/env/build-tools (HAWSER_TEST_TOOLS).
        ("registry", "hawser"),
    ] {
        assert!(
            fleet
                .iter()
                .any(|s| s["server"] == server && s["client"] == client),
            "no fleet run of {client} against {server}"
        );
    }

    let md = std::fs::read_to_string(out_dir.path().join("smoke.md")).unwrap();
    assert!(md.contains("## Summary (medians)"), "{md}");
    assert!(md.contains("| measure | target | measured |"), "{md}");
}
