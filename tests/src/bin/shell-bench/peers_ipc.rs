//! The sections that call the harness's measurement modules: the peer browsers (Epiphany, surf,
//! Chromium) on the same pages as Warren, and the browser↔renderer IPC.

use std::time::Duration;

use serde_json::{json, Value};
use warren_tests::{ipc_bench, peers, Xvfb};

use crate::newtab::{hex, run_colour};
use crate::tree::{PageSet, LEVELS};
use crate::{ms, Report};

/// One peer's figures.
#[derive(Clone, Debug)]
pub struct PeerResult {
    pub name: String,
    pub version: String,
    /// (page, tabs, whole-tree PSS in KiB or why not, the raw `PeerMemory`).
    pub memory: Vec<PeerLevel>,
    pub new_tab: Result<Vec<Duration>, String>,
}

#[derive(Clone, Debug)]
pub struct PeerLevel {
    pub page: String,
    pub tabs: usize,
    pub pss_kb: Result<u64, String>,
    pub raw: Value,
}

impl PeerResult {
    pub fn pss(&self, page: &str, tabs: usize) -> Option<u64> {
        self.memory
            .iter()
            .find(|l| l.page == page && l.tabs == tabs)
            .and_then(|l| l.pss_kb.as_ref().ok().copied())
    }

    /// (PSS at 10 − PSS at 1) / 9, KiB.
    pub fn marginal_kb(&self, page: &str) -> Option<f64> {
        Some((self.pss(page, 10)? as f64 - self.pss(page, 1)? as f64) / 9.0)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "version": self.version,
            "memory": self.memory.iter().map(|l| json!({
                "page": l.page,
                "tabs": l.tabs,
                "total_pss_kb": l.pss_kb.as_ref().ok(),
                "error": l.pss_kb.as_ref().err(),
                "raw": l.raw,
            })).collect::<Vec<_>>(),
            "marginal_live_tab_kb": self.marginal_kb("minimal"),
            "new_tab_ms": self.new_tab.as_ref().ok().map(|v| v.iter().map(|d| d.as_secs_f64() * 1000.0).collect::<Vec<_>>()),
            "new_tab_error": self.new_tab.as_ref().err(),
        })
    }
}

/// What the peers section found.
#[derive(Clone, Debug)]
pub enum PeersOutcome {
    Skipped(String),
    Measured(Vec<PeerResult>),
}

/// The same memory levels and the new-tab figure for each installed peer, driven by
/// `warren_tests::peers` on the benchmark's Xvfb.
pub fn peers_section(
    x: &Xvfb,
    sets: &[PageSet],
    levels: &[usize],
    new_tab_runs: usize,
    http: &warren_tests::HttpServer,
    report: &mut Report,
) {
    let installed = peers::installed();
    if installed.is_empty() {
        report.peers = Some(PeersOutcome::Skipped(
            "skipped: not installed (make bench-peers installs them)".into(),
        ));
        return;
    }
    let display = format!(":{}", x.display());
    let mut results = Vec::new();
    for peer in &installed {
        let mut r = PeerResult {
            name: peer.name().to_string(),
            version: peer.version(),
            memory: Vec::new(),
            new_tab: Err("not measured".into()),
        };
        // A peer that cannot open even one tab of the first page is not tried on the others, and
        // a page whose first level failed is not tried with more tabs: each attempt waits out
        // the peer's timeouts, and a broken peer would hold the whole benchmark up for long.
        let mut broken: Option<String> = None;
        for (page_index, set) in sets.iter().enumerate() {
            let mut page_failed: Option<String> = None;
            for &tabs in levels.iter().filter(|t| LEVELS.contains(t)) {
                if let Some(why) = broken.as_ref().or(page_failed.as_ref()) {
                    r.memory.push(PeerLevel {
                        page: set.name.to_string(),
                        tabs,
                        pss_kb: Err(format!("not tried: {why}")),
                        raw: Value::Null,
                    });
                    continue;
                }
                eprintln!(
                    "shell-bench: peer {} ({}), {} page, {tabs} tabs",
                    r.name, r.version, set.name
                );
                let measured = peers::memory(peer, &display, &set.urls[..tabs]);
                let (pss_kb, raw) = match measured {
                    Ok(m) => {
                        let raw = json!({
                            "tabs": m.tabs,
                            "pss_kb": m.pss_kb,
                            "processes": m.processes,
                            "notes": m.notes,
                        });
                        if m.tabs == tabs {
                            eprintln!(
                                "  {} MiB in {} processes",
                                crate::mib(m.pss_kb),
                                m.processes
                            );
                            (Ok(m.pss_kb), raw)
                        } else {
                            (
                                Err(format!("the peer opened {} tabs, not {tabs}", m.tabs)),
                                raw,
                            )
                        }
                    }
                    Err(e) => (Err(e), Value::Null),
                };
                if let Err(e) = &pss_kb {
                    eprintln!("  failed: {e}");
                    report.notes.push(format!(
                        "peer {}, {} page, {tabs} tabs: {e}",
                        r.name, set.name
                    ));
                    if r.memory.iter().all(|l| l.page != set.name) {
                        page_failed =
                            Some(format!("the {} page failed with {tabs} tabs", set.name));
                        if page_index == 0 {
                            broken = page_failed.clone();
                        }
                    }
                }
                r.memory.push(PeerLevel {
                    page: set.name.to_string(),
                    tabs,
                    pss_kb,
                    raw,
                });
            }
        }
        eprintln!("shell-bench: peer {}, new tab, {new_tab_runs} runs", r.name);
        let url_of_run = |run: usize| {
            let rgb = run_colour(run);
            let title = format!("peer new tab {run}");
            let url = http.html(
                &format!("/peer-newtab-{run}"),
                &warren_tests::solid_page(&title, &hex(rgb)),
            );
            (url, rgb)
        };
        r.new_tab = peers::new_tab(peer, &display, &url_of_run, new_tab_runs);
        match &r.new_tab {
            Ok(times) => eprintln!(
                "  {}",
                times.iter().map(|t| ms(*t)).collect::<Vec<_>>().join(", ")
            ),
            Err(e) => report.notes.push(format!("peer {}, new tab: {e}", r.name)),
        }
        results.push(r);
    }
    report.peers = Some(PeersOutcome::Measured(results));
}

/// Issue 9: the IPC round trip's median, µs.
pub const IPC_TARGET_US: f64 = 50.0;

/// The IPC figures: round trips (pings) and one-way messages.
pub fn ipc_section(x: &Xvfb, quick: bool, report: &mut Report) {
    let (pings, one_way) = if quick {
        (500, 5_000)
    } else {
        (10_000, 100_000)
    };
    eprintln!("shell-bench: IPC, {pings} round trips and {one_way} one-way messages");
    let display = format!(":{}", x.display());
    match ipc_bench::measure(&display, pings, one_way) {
        Ok(f) => {
            if f.round_trip_us.is_empty() {
                report
                    .problems
                    .push("IPC: the measurement returned no round trips".into());
            } else {
                report.ipc = Some(json!({
                    "round_trip_us": f.round_trip_us,
                    "one_way_per_sec": f.one_way_per_sec,
                    "pings": pings,
                    "one_way_messages": one_way,
                }));
            }
        }
        Err(e) => report.problems.push(format!("IPC: {e}")),
    }
}

/// The round trips (µs) and one-way rate of the raw IPC figures.
pub fn ipc_figures(raw: &Value) -> (Vec<f64>, Option<f64>) {
    let mut rt: Vec<f64> = raw["round_trip_us"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    rt.sort_by(f64::total_cmp);
    (rt, raw["one_way_per_sec"].as_f64())
}
