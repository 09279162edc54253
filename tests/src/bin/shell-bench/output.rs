//! The benchmark's files: `results.json` (every raw sample and the machine), `results.md`
//! (the targets with PASS/MISS, then a table per section) and PNG charts, in the output
//! directory (`target/bench/` by default).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::newtab::NEW_TAB_TARGET;
use crate::peers_ipc::{ipc_figures, PeersOutcome, IPC_TARGET_US};
use crate::stall::p99_max;
use crate::tree::{CAP, CAPPED_TABS, LEVELS, MARGINAL_TARGET_MIB};
use crate::{
    median, percentile, Report, Section, IDLE_CPU_TARGET, IDLE_CPU_TARGET_NO_WINDOW,
    RESTORE_MS_TARGET, RESTORE_TARGET,
};

/// What the machine is, for the record: CPU, cores, memory, kernel, WebKitGTK, the peers.
pub fn machine(peers: &[(String, String)]) -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string());
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_string());
    let webkit = command_output("pkg-config", &["--modversion", "webkit2gtk-4.1"])
        .map(|v| format!("{v} (pkg-config webkit2gtk-4.1)"))
        .or_else(|| {
            command_output(
                "dpkg-query",
                &["-W", "-f", "${Version}", "libwebkit2gtk-4.1-0"],
            )
            .map(|v| format!("{v} (Debian package libwebkit2gtk-4.1-0)"))
        });
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string());
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "ram_kb": mem_kb,
        "kernel": kernel,
        "os": os,
        "webkitgtk": webkit,
        "warren_commit": command_output("git", &["-C", &warren_tests::workspace_root().to_string_lossy(), "rev-parse", "--short", "HEAD"]),
        "peers": peers.iter().map(|(n, v)| json!({"name": n, "version": v})).collect::<Vec<_>>(),
    })
}

/// The trimmed standard output of a command that succeeded with some output.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn ms_list(samples: &[Duration]) -> Vec<f64> {
    samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect()
}

/// Every raw sample of the run.
pub fn results_json(report: &Report, options: &crate::Options, started_unix: u64) -> Value {
    let peers = match &report.peers {
        None => Value::Null,
        Some(PeersOutcome::Skipped(why)) => json!({ "skipped": why }),
        Some(PeersOutcome::Measured(list)) => {
            json!({ "measured": list.iter().map(|p| p.to_json()).collect::<Vec<_>>() })
        }
    };
    json!({
        "started_unix_s": started_unix,
        "machine": report.machine,
        "options": {
            "runs": options.runs,
            "quick": options.quick,
            "sections": options.sections.iter().map(|s| s.name()).collect::<Vec<_>>(),
        },
        "targets": targets(report).iter().map(|t| json!({
            "figure": t.figure, "target": t.target, "measured": t.measured, "pass": t.pass,
        })).collect::<Vec<_>>(),
        "new_tab": {
            "runs": report.new_tab_runs.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
            "requested_runs": report.new_tab_requested,
        },
        "latencies": {
            "cold_new_tab_loaded_ms": ms_list(&report.new_tab),
            "crash_noticed_ms": ms_list(&report.crash),
            "close_ms": ms_list(&report.close),
        },
        "memory_per_tab": report.memory.iter().map(|l| l.to_json("nested")).chain(
            report.memory_none.iter().map(|l| l.to_json("none"))).collect::<Vec<_>>(),
        "key_latency": report.keys.iter().map(|k| json!({
            "isolation": k.isolation, "delays_ms": k.delays_ms,
        })).collect::<Vec<_>>(),
        "idle": report.idle_cpu.as_ref().map(|c| c.to_json()),
        "tree_memory": report.tree.iter().map(|p| p.to_json()).collect::<Vec<_>>(),
        "peers": peers,
        "discarding": {
            "all_live": report.all_live.as_ref().map(|m| m.to_json()),
            "capped": report.capped.as_ref().map(|m| m.to_json()),
        },
        "restore": report.restore.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        "ipc": report.ipc,
        "ui_stall": report.stall.as_ref().map(|s| s.to_json()),
        "notes": report.notes,
        "problems": report.problems,
    })
}

/// One line of the targets table.
pub struct Target {
    pub figure: String,
    pub target: String,
    pub measured: String,
    /// `None`: not measured in this run.
    pub pass: Option<bool>,
}

fn mib_f(kb: f64) -> String {
    format!("{:.1} MiB", kb / 1024.0)
}

/// The issue's targets, with this run's figures.
pub fn targets(report: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    let none = |figure: &str, target: &str| Target {
        figure: figure.into(),
        target: target.into(),
        measured: "not measured".into(),
        pass: None,
    };
    // New tab to first pixels.
    let fig = "New tab to first pixels (median)";
    let tgt = format!("<= {} ms", NEW_TAB_TARGET.as_millis());
    let pixels: Vec<Duration> = report.new_tab_runs.iter().map(|r| r.pixels).collect();
    out.push(if pixels.is_empty() {
        none(fig, &tgt)
    } else {
        let m = median(&pixels);
        Target {
            figure: fig.into(),
            target: tgt,
            measured: format!("{:.0} ms ({} runs)", m.as_secs_f64() * 1000.0, pixels.len()),
            pass: Some(m <= NEW_TAB_TARGET),
        }
    });
    // Restore: the light page's pixels.
    let light = report
        .restore
        .iter()
        .find(|r| r.page == "light" && !r.restore_pixels.is_empty() && !r.fresh_pixels.is_empty());
    let fig = "Restore of a discarded local page to pixels (median)";
    let tgt = format!(
        "<= {RESTORE_TARGET:.1}x fresh load and <= {} ms",
        RESTORE_MS_TARGET.as_millis()
    );
    out.push(match light {
        None => none(fig, &tgt),
        Some(r) => {
            let (restore, fresh) = (median(&r.restore_pixels), median(&r.fresh_pixels));
            let ratio = restore.as_secs_f64() / fresh.as_secs_f64().max(1e-9);
            Target {
                figure: fig.into(),
                target: tgt,
                measured: format!(
                    "{:.0} ms, {ratio:.2}x the fresh load's {:.0} ms",
                    restore.as_secs_f64() * 1000.0,
                    fresh.as_secs_f64() * 1000.0
                ),
                pass: Some(ratio <= RESTORE_TARGET && restore <= RESTORE_MS_TARGET),
            }
        }
    });
    // Marginal live tab.
    let fig = "Marginal live minimal tab, (PSS at 10 - PSS at 1) / 9";
    let tgt = format!("<= {MARGINAL_TARGET_MIB:.0} MiB");
    let minimal = report.tree.iter().find(|p| p.page == "minimal");
    out.push(match minimal.and_then(|p| p.marginal_kb()) {
        None => none(fig, &tgt),
        Some(kb) => Target {
            figure: fig.into(),
            target: tgt,
            measured: mib_f(kb),
            pass: Some(kb / 1024.0 <= MARGINAL_TARGET_MIB),
        },
    });
    // 20 tabs capped against Epiphany's 20, per page.
    let epiphany = match &report.peers {
        Some(PeersOutcome::Measured(list)) => list
            .iter()
            .find(|p| p.name.to_lowercase().contains("epiphany")),
        _ => None,
    };
    for page in &report.tree {
        let Some(capped) = &page.capped else { continue };
        let fig = format!(
            "{CAPPED_TABS} tabs with --max-live-tabs {CAP}, {} page: total PSS",
            page.page
        );
        let tgt = "<= half of Epiphany's 20 tabs".to_string();
        match epiphany.and_then(|e| e.pss(&page.page, CAPPED_TABS)) {
            Some(e) => out.push(Target {
                figure: fig,
                target: tgt,
                measured: format!(
                    "{} against Epiphany's {} ({:.2})",
                    mib_f(capped.total_kb as f64),
                    mib_f(e as f64),
                    capped.total_kb as f64 / e.max(1) as f64
                ),
                pass: Some(capped.total_kb * 2 <= e),
            }),
            None => out.push(Target {
                figure: fig,
                target: tgt,
                measured: format!(
                    "{}; Epiphany not measured in this run",
                    mib_f(capped.total_kb as f64)
                ),
                pass: None,
            }),
        }
    }
    // IPC.
    let fig = "IPC round trip (p50)";
    let tgt = format!("<= {IPC_TARGET_US:.0} µs");
    out.push(match report.ipc.as_ref().map(ipc_figures) {
        Some((rt, _)) if !rt.is_empty() => {
            let p50 = nearest_rank(&rt, 50);
            Target {
                figure: fig.into(),
                target: tgt,
                measured: format!("{p50:.1} µs"),
                pass: Some(p50 <= IPC_TARGET_US),
            }
        }
        _ => none(fig, &tgt),
    });
    // Idle CPU.
    let (fig1, tgt1) = (
        "Browser idle CPU, 10 idle tabs",
        format!("< {IDLE_CPU_TARGET_NO_WINDOW} % of one core"),
    );
    let (fig2, tgt2) = (
        "Browser idle CPU, 10 idle tabs, Task Manager open",
        format!("< {IDLE_CPU_TARGET} % of one core"),
    );
    match &report.idle_cpu {
        None => {
            out.push(none(fig1, &tgt1));
            out.push(none(fig2, &tgt2));
        }
        Some(c) => {
            out.push(Target {
                figure: fig1.into(),
                target: tgt1,
                measured: format!(
                    "{:.2} % ({:.1} wake-ups/s)",
                    c.without_window, c.without_window_wakeups
                ),
                pass: Some(c.without_window < IDLE_CPU_TARGET_NO_WINDOW),
            });
            out.push(match &c.with_window {
                Ok((p, w)) => Target {
                    figure: fig2.into(),
                    target: tgt2,
                    measured: format!("{p:.2} % ({w:.1} wake-ups/s)"),
                    pass: Some(*p < IDLE_CPU_TARGET),
                },
                Err(why) => Target {
                    measured: format!("not measured: {why}"),
                    ..none(fig2, &tgt2)
                },
            });
        }
    }
    out
}

/// The nearest-rank percentile of sorted, non-empty samples.
fn nearest_rank(sorted: &[f64], pct: usize) -> f64 {
    sorted[(pct * sorted.len()).div_ceil(100).clamp(1, sorted.len()) - 1]
}

fn pass_text(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "-",
    }
}

fn mib_cell(kb: Option<u64>) -> String {
    kb.map_or("-".into(), |kb| format!("{:.1}", kb as f64 / 1024.0))
}

fn ms_cell(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

/// The markdown report: targets, a table per section, notes and problems, and the console
/// report of the older sections verbatim.
pub fn results_md(report: &Report, options: &crate::Options, console: &str) -> String {
    let mut md = String::new();
    let m = &report.machine;
    let _ = writeln!(md, "# Warren benchmark results\n");
    let _ = writeln!(
        md,
        "Machine: {} ({} cores), {:.1} GiB RAM, Linux {}, {}; WebKitGTK {}; Warren {}. Under Xvfb, \
         with the sandbox and the nested display on.\n",
        m["cpu"].as_str().unwrap_or("unknown CPU"),
        m["cores"],
        m["ram_kb"].as_f64().unwrap_or(0.0) / 1024.0 / 1024.0,
        m["kernel"].as_str().unwrap_or("?"),
        m["os"].as_str().unwrap_or("?"),
        m["webkitgtk"].as_str().unwrap_or("unknown"),
        m["warren_commit"].as_str().unwrap_or("?"),
    );
    if let Some(peers) = m["peers"].as_array().filter(|p| !p.is_empty()) {
        let list: Vec<String> = peers
            .iter()
            .map(|p| {
                format!(
                    "{} ({})",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?")
                )
            })
            .collect();
        let _ = writeln!(md, "Peers: {}.\n", list.join(", "));
    }
    if options.quick {
        let _ = writeln!(
            md,
            "**Quick run** (a harness check, not figures to quote).\n"
        );
    }
    let _ = writeln!(md, "## Targets\n");
    let _ = writeln!(
        md,
        "| Figure | Target | Measured | Result |\n|---|---|---|---|"
    );
    for t in targets(report) {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            t.figure,
            t.target,
            t.measured,
            pass_text(t.pass)
        );
    }
    let wanted = |s: Section| options.sections.contains(&s);
    if wanted(Section::NewTab) {
        new_tab_md(&mut md, report);
    }
    if wanted(Section::TreeMemory) || wanted(Section::Peers) {
        memory_md(&mut md, report);
    }
    if wanted(Section::Restore) {
        let _ = writeln!(
            md,
            "\n## Restore of a discarded tab against a fresh load (medians, ms)\n"
        );
        let _ = writeln!(
            md,
            "| Page | Fresh: loaded | Fresh: pixels | Restore: loaded | Restore: pixels | Ratio (pixels, else loaded) | Runs |\n|---|---|---|---|---|---|---|"
        );
        for r in &report.restore {
            if r.fresh.is_empty() || r.restore.is_empty() {
                let _ = writeln!(md, "| {} | - | - | - | - | - | 0 |", r.page);
                continue;
            }
            let px = |v: &[Duration]| {
                if v.is_empty() {
                    "-".into()
                } else {
                    ms_cell(median(v))
                }
            };
            let ratio = if !r.restore_pixels.is_empty() && !r.fresh_pixels.is_empty() {
                median(&r.restore_pixels).as_secs_f64() / median(&r.fresh_pixels).as_secs_f64()
            } else {
                median(&r.restore).as_secs_f64() / median(&r.fresh).as_secs_f64()
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {ratio:.2} | {} |",
                r.page,
                ms_cell(median(&r.fresh)),
                px(&r.fresh_pixels),
                ms_cell(median(&r.restore)),
                px(&r.restore_pixels),
                r.fresh.len().min(r.restore.len())
            );
        }
    }
    if wanted(Section::Ipc) {
        let _ = writeln!(md, "\n## IPC (browser ↔ renderer)\n");
        match report.ipc.as_ref().map(ipc_figures) {
            Some((rt, rate)) if !rt.is_empty() => {
                let pick = |pct: usize| nearest_rank(&rt, pct);
                let _ = writeln!(
                    md,
                    "| Round trips | p50 | p99 | max | One way |\n|---|---|---|---|---|\n| {} | {:.1} µs | {:.1} µs | {:.1} µs | {} |",
                    rt.len(),
                    pick(50),
                    pick(99),
                    rt[rt.len() - 1],
                    rate.map_or("-".into(), |r| format!("{r:.0} messages/s"))
                );
            }
            _ => {
                let _ = writeln!(md, "Not measured (see problems).");
            }
        }
    }
    if wanted(Section::Memory) {
        if let Some(c) = &report.idle_cpu {
            let _ = writeln!(
                md,
                "\n## Idle cost ({} idle tabs, {} s)\n\n| Task Manager | Browser CPU (% of one core) | Wake-ups/s |\n|---|---|---|\n| closed | {:.2} | {:.1} |",
                c.tabs,
                crate::CPU_WINDOW.as_secs(),
                c.without_window,
                c.without_window_wakeups
            );
            match &c.with_window {
                Ok((p, w)) => {
                    let _ = writeln!(md, "| open | {p:.2} | {w:.1} |");
                }
                Err(why) => {
                    let _ = writeln!(md, "| open | not measured: {why} | |");
                }
            }
        }
    }
    if wanted(Section::Stall) {
        let _ = writeln!(
            md,
            "\n## UI thread stalls (`version` every 10 ms for 10 s)\n"
        );
        match &report.stall {
            Some(s) => {
                let _ = writeln!(
                    md,
                    "| Task Manager ({} tabs) | Replies | p50 | p99 | max |\n|---|---|---|---|---|",
                    s.tabs
                );
                let row = |md: &mut String, name: &str, v: &[f64]| {
                    let mut sorted = v.to_vec();
                    sorted.sort_by(f64::total_cmp);
                    let p50 = sorted
                        .get(sorted.len().saturating_sub(1) / 2)
                        .copied()
                        .unwrap_or(0.0);
                    let (p99, max) = p99_max(v);
                    let _ = writeln!(
                        md,
                        "| {name} | {} | {p50:.2} ms | {p99:.2} ms | {max:.2} ms |",
                        v.len()
                    );
                };
                row(&mut md, "closed", &s.without_window_ms);
                match &s.with_window_ms {
                    Ok(v) => row(&mut md, "open", v),
                    Err(why) => {
                        let _ = writeln!(md, "| open | not measured: {why} | | | |");
                    }
                }
            }
            None => {
                let _ = writeln!(md, "Not measured (see problems).");
            }
        }
    }
    for (title, list) in [("Notes", &report.notes), ("Problems", &report.problems)] {
        if !list.is_empty() {
            let _ = writeln!(md, "\n## {title}\n");
            for n in list {
                let _ = writeln!(md, "- {}", n.replace('\n', " "));
            }
        }
    }
    let _ = writeln!(md, "\n## Console report\n\n```text{}```", console);
    md
}

fn new_tab_md(md: &mut String, report: &Report) {
    let runs = &report.new_tab_runs;
    let _ = writeln!(
        md,
        "\n## New tab ({} of {} runs; `new_tab` of a local page)\n",
        runs.len(),
        report.new_tab_requested
    );
    let _ = writeln!(
        md,
        "| Browser | To | median | p90 | min | max |\n|---|---|---|---|---|---|"
    );
    let row = |md: &mut String, browser: &str, to: &str, v: &[Duration]| {
        if v.is_empty() {
            let _ = writeln!(md, "| {browser} | {to} | - | - | - | - |");
            return;
        }
        let mut s = v.to_vec();
        s.sort();
        let _ = writeln!(
            md,
            "| {browser} | {to} | {} ms | {} ms | {} ms | {} ms |",
            ms_cell(percentile(&s, 50)),
            ms_cell(percentile(&s, 90)),
            ms_cell(s[0]),
            ms_cell(s[s.len() - 1])
        );
    };
    let loaded: Vec<Duration> = runs.iter().map(|r| r.loaded).collect();
    let pixels: Vec<Duration> = runs.iter().map(|r| r.pixels).collect();
    row(md, "Warren", "loaded", &loaded);
    row(md, "Warren", "pixels", &pixels);
    if let Some(PeersOutcome::Measured(list)) = &report.peers {
        for p in list {
            match &p.new_tab {
                Ok(v) => row(md, &p.name, "pixels", v),
                Err(e) => {
                    let _ = writeln!(
                        md,
                        "| {} | pixels | failed: {} | | | |",
                        p.name,
                        e.replace('\n', " ")
                    );
                }
            }
        }
    }
    let with_spare = runs.iter().filter(|r| r.spare_at_start).count();
    let mut spare: Vec<u64> = runs.iter().filter_map(|r| r.spare_kb).collect();
    spare.sort_unstable();
    let _ = writeln!(
        md,
        "\nA spare renderer was ready at the start of {with_spare} of {} runs{}; the machine was idle at the start of {} runs.",
        runs.len(),
        spare
            .get(spare.len().saturating_sub(1) / 2)
            .map_or(String::new(), |kb| format!(
                " (the spare's tree: {:.1} MiB PSS, median; counted in the memory figures, not a live tab)",
                *kb as f64 / 1024.0
            )),
        runs.iter().filter(|r| r.idle_at_start).count()
    );
}

fn memory_md(md: &mut String, report: &Report) {
    let _ = writeln!(
        md,
        "\n## Memory: whole process tree PSS (MiB)\n\nEvery process of the browser: browser, renderers, WebKit's web and network processes, sandboxes, nested displays, the spare renderer and the web processes' headless Xvfb.\n"
    );
    let mut header = String::from("| Browser | Page |");
    let mut rule = String::from("|---|---|");
    for l in LEVELS {
        let _ = write!(header, " {l} tab{} |", if l == 1 { "" } else { "s" });
        rule.push_str("---|");
    }
    let _ = writeln!(md, "{header} {CAPPED_TABS} tabs, --max-live-tabs {CAP} | marginal live tab | spare (in the totals) |\n{rule}---|---|---|");
    for p in &report.tree {
        let mut line = format!("| Warren | {} |", p.page);
        for l in LEVELS {
            let _ = write!(line, " {} |", mib_cell(p.level(l).map(|x| x.total_kb)));
        }
        let spare = p.levels.iter().map(|l| l.spare_kb).max();
        let _ = writeln!(
            md,
            "{line} {} | {} | {} |",
            mib_cell(p.capped.as_ref().map(|c| c.total_kb)),
            p.marginal_kb()
                .map_or("-".into(), |kb| format!("{:.1}", kb / 1024.0)),
            mib_cell(spare.filter(|kb| *kb > 0))
        );
    }
    match &report.peers {
        Some(PeersOutcome::Measured(list)) => {
            for peer in list {
                let mut pages: Vec<&str> = peer.memory.iter().map(|l| l.page.as_str()).collect();
                pages.dedup();
                for page in pages {
                    let mut line = format!("| {} | {page} |", peer.name);
                    for l in LEVELS {
                        let _ = write!(line, " {} |", mib_cell(peer.pss(page, l)));
                    }
                    let _ = writeln!(
                        md,
                        "{line} - | {} | - |",
                        peer.marginal_kb(page)
                            .map_or("-".into(), |kb| format!("{:.1}", kb / 1024.0))
                    );
                }
            }
        }
        Some(PeersOutcome::Skipped(why)) => {
            let _ = writeln!(md, "\nPeers (Epiphany, surf, Chromium): {why}.");
        }
        None => {}
    }
    if !report.tree.is_empty() {
        let _ = writeln!(md, "\nWarren by kind of process (MiB):\n");
        let _ = writeln!(
            md,
            "| Page | Tabs | Live | Processes | By kind |\n|---|---|---|---|---|"
        );
        for p in &report.tree {
            for l in p.levels.iter().chain(p.capped.iter()) {
                let kinds: Vec<String> = l
                    .by_kind
                    .iter()
                    .map(|(k, kb)| format!("{k} {:.1}", *kb as f64 / 1024.0))
                    .collect();
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    p.page,
                    l.tabs,
                    l.live,
                    l.processes,
                    kinds.join(", ")
                );
            }
        }
    }
}

/// Writes `results.json`, `results.md` and the charts into `dir`; the paths written.
pub fn write_all(
    dir: &Path,
    json: &Value,
    md: &str,
    report: &Report,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    let path = dir.join("results.json");
    let text = serde_json::to_string_pretty(json).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n").map_err(|e| format!("write {}: {e}", path.display()))?;
    written.push(path);
    let path = dir.join("results.md");
    std::fs::write(&path, md).map_err(|e| format!("write {}: {e}", path.display()))?;
    written.push(path);
    written.extend(crate::charts::draw_all(dir, report)?);
    Ok(written)
}
