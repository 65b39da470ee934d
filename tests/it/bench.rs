//! The benchmark harness runs end to end and reports no errors. Speed is never asserted
//! here: these machines are shared and noisy; `docs/benchmarks.md` holds the numbers.

use crate::harness::{pg_admin_url, postgres_available};
use std::process::Command;

/// Run `ragnos-vault bench` briefly on `backend` and check every workload answered 200s only.
fn smoke(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ragnos-vault"))
        .args([
            "bench",
            "--quick",
            "--backend",
            backend,
            "--connections",
            "4",
        ])
        .args(["--postgres-url", &pg_admin_url()])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let results = report["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["workload"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "baseline",
            "get-hot-1",
            "get-hot-10k",
            "list-100k",
            "mixed-90-10",
            "put",
            "create"
        ]
    );
    for r in results {
        assert!(r["ok"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["errors"], serde_json::json!({}), "{r}");
        if r["workload"] != "baseline" {
            assert!(r["ratio_to_baseline"].as_f64().unwrap() > 0.0, "{r}");
        }
    }
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("| get-hot-1 | ") && md.contains("vs baseline"),
        "{md}"
    );
    // The scratch database or directory is gone afterwards.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("ragnos-bench-"))
        .collect();
    assert!(left.is_empty(), "bench left {left:?}");
}

#[test]
fn bench_smoke_sqlite() {
    smoke("sqlite");
}

#[test]
fn bench_smoke_postgres() {
    if postgres_available() {
        smoke("postgres");
    }
}
