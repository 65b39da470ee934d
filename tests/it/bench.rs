//! The benchmark harness runs end to end and reports no errors. Speed is never asserted
//! here: these machines are shared and noisy; `docs/benchmarks.md` holds the numbers.

use crate::harness::{pg_admin_url, postgres_available};
use std::process::Command;

/// Run `ragnos-vault bench --quick` on `backend` with `extra` flags, check that it succeeded
/// and that every row answered 200s only, and return the JSON report and the Markdown.
fn run_bench(backend: &str, extra: &[&str]) -> (serde_json::Value, String) {
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
        .args(extra)
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
    for r in report["results"].as_array().unwrap() {
        assert!(r["ok"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["errors"], serde_json::json!({}), "{r}");
        if r["workload"] != "baseline" {
            assert!(r["ratio_to_baseline"].as_f64().unwrap() > 0.0, "{r}");
        }
        // The machine was busy with the load for part of every window, never more than all.
        let busy = r["cpu_busy"].as_f64().expect("cpu_busy on Linux");
        assert!(busy > 0.0 && busy <= 1.0, "{r}");
    }
    // The scratch database or directory is gone afterwards.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("ragnos-bench-"))
        .collect();
    assert!(left.is_empty(), "bench left {left:?}");
    (report, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn workloads(report: &serde_json::Value) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["workload"].as_str().unwrap().to_owned())
        .collect()
}

/// Every default workload runs on `backend`.
fn smoke(backend: &str) {
    let (report, md) = run_bench(backend, &[]);
    assert_eq!(
        workloads(&report),
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
    assert!(
        md.contains("| get-hot-1 | ") && md.contains("vs baseline") && !md.contains("vs small"),
        "{md}"
    );
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

/// The scale reads run after the small hot reads they are compared with, and carry the ratio.
#[test]
fn bench_scale_rows_compare_with_the_small_case() {
    let (report, md) = run_bench(
        "sqlite",
        &["--scale", "--scale-secrets", "2000", "--workload", "scale"],
    );
    assert_eq!(
        workloads(&report),
        [
            "baseline",
            "get-hot-1",
            "get-hot-10k",
            "scale-hot-1",
            "scale-10k",
            "scale-1m"
        ]
    );
    for r in report["results"].as_array().unwrap() {
        let scale = r["workload"].as_str().unwrap().starts_with("scale");
        assert_eq!(
            r["ratio_to_small"].as_f64().is_some_and(|x| x > 0.0),
            scale,
            "{r}"
        );
    }
    assert!(
        md.contains("vs small") && md.contains("| scale-10k | sqlite |"),
        "{md}"
    );
}
