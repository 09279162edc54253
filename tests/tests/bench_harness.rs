//! The benchmark harness (`tests/src/bin/shell-bench/`) works: its quick case (two new-tab runs
//! timed to pixels, the whole-tree memory of one tab, a short IPC run) completes on the real
//! binaries and writes well-formed raw JSON, a markdown table and PNG charts. The figures
//! themselves are not judged here: a benchmark never fails the test suite, a broken harness does.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The width and height in a PNG's header, after checking its signature and that it has image
/// data and an end.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR", "{}: no IHDR first", path.display());
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let has = |chunk: &[u8]| bytes.windows(4).any(|w| w == chunk);
    assert!(has(b"IDAT"), "{}: no image data", path.display());
    assert!(
        bytes.ends_with(b"IEND\xaeB`\x82"),
        "{}: truncated",
        path.display()
    );
    (be(16), be(20))
}

#[test]
fn quick_run_writes_json_markdown_and_charts() {
    // The browser and renderer the benchmark starts must be fresh, as for every end-to-end test.
    let _ = warren_tests::bin_path("browser");
    let out = tempfile::tempdir().expect("temporary directory");
    let mut bench = Command::new(env!("CARGO_BIN_EXE_shell-bench"));
    bench.args(["--quick", "--out"]).arg(out.path());
    // Where several harnesses share a machine, each may be given its own displays (FROM-TO).
    if let Some(range) = std::env::var_os("WARREN_BENCH_DISPLAYS") {
        bench.arg("--displays").arg(range);
    }
    let run = bench.output().expect("run shell-bench");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "shell-bench --quick failed ({}):\n{stdout}\n{stderr}",
        run.status
    );

    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("results.json")).expect("results.json"),
    )
    .expect("results.json is JSON");
    assert!(
        json["machine"]["cores"].as_u64().unwrap_or(0) >= 1,
        "{json}"
    );
    assert!(json["machine"]["kernel"].is_string(), "{json}");
    let runs = json["new_tab"]["runs"].as_array().expect("new-tab runs");
    assert_eq!(runs.len(), 2, "two counted new-tab runs: {json}");
    for r in runs {
        let (loaded, pixels) = (r["loaded_ms"].as_f64(), r["pixels_ms"].as_f64());
        assert!(
            loaded.is_some_and(|v| v > 0.0 && v < 30_000.0),
            "loaded_ms: {r}"
        );
        assert!(
            pixels.is_some_and(|v| v > 0.0 && v < 30_000.0),
            "pixels_ms: {r}"
        );
        assert!(r["spare_at_start"].is_boolean(), "{r}");
    }
    let minimal = &json["tree_memory"][0];
    assert_eq!(minimal["page"], "minimal", "{json}");
    let level = &minimal["levels"][0];
    assert_eq!(
        (level["tabs"].as_u64(), level["live"].as_u64()),
        (Some(1), Some(1)),
        "{level}"
    );
    // A browser, a renderer with WebKit's two processes and a nested display: well over 20 MiB,
    // and a figure that was summed, not defaulted.
    let total = level["total_pss_kb"].as_u64().unwrap_or(0);
    assert!(total > 20 * 1024, "whole-tree PSS of one tab: {level}");
    let by_kind: u64 = level["pss_kb_by_kind"]
        .as_object()
        .expect("PSS by kind")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(by_kind, total, "the kinds add up to the total: {level}");
    let rt = json["ipc"]["round_trip_us"]
        .as_array()
        .expect("IPC round trips");
    assert!(!rt.is_empty() && rt.iter().all(|v| v.as_f64().is_some_and(|v| v > 0.0)));
    assert!(json["ipc"]["one_way_per_sec"]
        .as_f64()
        .is_some_and(|v| v > 0.0));
    assert!(
        json["problems"].as_array().is_some_and(Vec::is_empty),
        "{json}"
    );

    let md = std::fs::read_to_string(out.path().join("results.md")).expect("results.md");
    assert!(md.starts_with("# Warren benchmark results"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| New tab to first pixels"))
        .unwrap_or_else(|| panic!("no new-tab target row:\n{md}"));
    assert!(
        row.ends_with("| PASS |") || row.ends_with("| MISS |"),
        "{row}"
    );
    assert!(md.contains("| Warren | minimal |"), "{md}");

    for chart in ["new-tab.png", "memory-minimal.png"] {
        assert_eq!(png_size(&out.path().join(chart)), (1000, 640), "{chart}");
    }
}
