//! Shell benchmark: cold new-tab, crash-detection and close latencies, the memory (PSS) of the browser and of each tab's process tree, and the browser's idle CPU, measured on the real binaries under a private Xvfb.
//!
//! Usage: `shell-bench [--runs N]` (default 10 runs, after one warm-up run that is not counted).
//! It uses the end-to-end harness (`warren_tests`): its own Xvfb, a browser with a temporary
//! profile and control socket, pages from a local HTTP server, and `/proc`. Latencies are taken
//! by polling every 10 ms, so each includes up to one poll interval plus one control round trip.
//!
//! * cold new tab: `new_tab` with a local page → `tabs` shows `loading: false` and the page's
//!   title;
//! * crash detection: `kill -9` of a renderer → its tab is `crashed` in `tabs` (target: 1 s);
//! * close: `close` → none of the tab's processes (renderer, WebKitWebProcess,
//!   WebKitNetworkProcess, collected before) is alive (target: 2 s);
//! * memory: PSS from `/proc/PID/smaps_rollup` of the browser and of each tab's whole tree with
//!   1, 5 and 10 idle tabs, in a fresh browser;
//! * idle CPU: the browser process's CPU use with 10 idle tabs, without and with the Task Manager
//!   window (issue 3's target: under 2% of one core with the window open).
//!
//! Everything it starts is stopped when it ends, on a panic (by the harness's `Drop`s) and on
//! SIGINT, SIGTERM or SIGHUP (a watcher thread kills the recorded process trees by pid and
//! process group, never by name).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use warren_tests::browser::{split_reply, Ctl};
use warren_tests::procs::{self, describe, still_alive, Proc};
use warren_tests::{solid_page, Browser, BrowserOpts, HttpServer, Xvfb};

/// How often the benchmark looks at `tabs` or `/proc` while timing.
const POLL: Duration = Duration::from_millis(10);
/// Issue 2: the browser notices a dead renderer within 1 s.
const CRASH_TARGET: Duration = Duration::from_secs(1);
/// Issue 2: closing a tab ends its whole process tree within 2 s.
const CLOSE_TARGET: Duration = Duration::from_secs(2);
/// Issue 3: the browser's CPU with the Task Manager open and 10 idle tabs, in % of one core.
const IDLE_CPU_TARGET: f64 = 2.0;
/// How long one timed step may take before the run counts as failed.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// The tab counts of the memory measurement.
const MEMORY_LEVELS: [usize; 3] = [1, 5, 10];
/// How long the tabs sit idle before memory is read.
const SETTLE: Duration = Duration::from_secs(3);
/// How long the browser's CPU time is sampled for the idle-CPU figure.
const CPU_WINDOW: Duration = Duration::from_secs(10);

const USAGE: &str = "usage: shell-bench [--runs N]\n\
\n\
Measures Warren's shell on the release binaries (target/release, or $WARREN_BIN_DIR) under a\n\
private Xvfb: cold new-tab, crash-detection and close latencies over N runs (default 10, after\n\
one warm-up run), PSS per tab with 1, 5 and 10 idle tabs, and the browser's idle CPU.\n\
Build first: cargo build --release --bins (or run `make bench`).";

fn main() -> ExitCode {
    let runs = match parse_args(std::env::args().skip(1)) {
        Ok(Some(runs)) => runs,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("shell-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    interrupt::install();
    let mut report = Report::default();
    let x = Xvfb::start();
    interrupt::watch(x.pid(), None);
    let http = HttpServer::start();
    eprintln!(
        "shell-bench: Xvfb :{} (pid {}), pages on {}, binaries in {}",
        x.display(),
        x.pid(),
        http.origin(),
        warren_tests::bin_dir().display()
    );
    latencies(&x, &http, runs, &mut report);
    memory_and_idle_cpu(&x, &http, &mut report);
    drop(http);
    interrupt::unwatch(x.pid());
    drop(x);
    print!("{}", report.render(runs));
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `Ok(Some(runs))`, `Ok(None)` for `--help`, or a usage error.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<usize>, String> {
    let mut runs = 10;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(None),
            "--runs" => {
                let value = args.next().ok_or("--runs needs a number")?;
                runs =
                    value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        format!("--runs takes a whole number >= 1, not {value:?}")
                    })?;
            }
            other => {
                if let Some(value) = other.strip_prefix("--runs=") {
                    runs = value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        format!("--runs takes a whole number >= 1, not {value:?}")
                    })?;
                } else {
                    return Err(format!("unknown argument {other:?}"));
                }
            }
        }
    }
    Ok(Some(runs))
}

/// Everything measured, printed at the end.
#[derive(Default)]
struct Report {
    new_tab: Vec<Duration>,
    crash: Vec<Duration>,
    close: Vec<Duration>,
    memory: Vec<MemoryLevel>,
    idle_cpu: Option<IdleCpu>,
    /// Runs that failed or anything the browser got wrong on the way, in words.
    problems: Vec<String>,
    /// Observations that are not failures (warm-up timings, lingering processes).
    notes: Vec<String>,
}

/// PSS (KiB) of the browser and of each tab's tree with `tabs` idle tabs.
struct MemoryLevel {
    tabs: usize,
    browser_kb: u64,
    per_tab: Vec<TabMemory>,
    /// Processes below the browser that belong to no tab (a spare renderer, orphans).
    outside_kb: u64,
    outside: Vec<Proc>,
}

/// One tab's tree, PSS in KiB by kind of process.
struct TabMemory {
    tab_id: u64,
    renderer_kb: u64,
    web_kb: u64,
    network_kb: u64,
    other_kb: u64,
    processes: usize,
}

impl TabMemory {
    fn total(&self) -> u64 {
        self.renderer_kb + self.web_kb + self.network_kb + self.other_kb
    }
}

/// The browser's CPU use, % of one core, over [`CPU_WINDOW`].
struct IdleCpu {
    tabs: usize,
    without_window: f64,
    /// `Err` says why the Task Manager window could not be measured.
    with_window: Result<f64, String>,
}

impl Report {
    fn render(&self, runs: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nWarren shell benchmark: {runs} runs after 1 warm-up run; latencies polled every {} ms",
            POLL.as_millis()
        );
        let _ = writeln!(
            out,
            "{:<34} {:>9} {:>9} {:>9}   {:<12} met",
            "latency", "median", "p90", "max", "target"
        );
        let rows: [(&str, &[Duration], Option<Duration>); 3] = [
            ("cold new tab (new_tab -> loaded)", &self.new_tab, None),
            (
                "crash noticed (kill -9 -> crashed)",
                &self.crash,
                Some(CRASH_TARGET),
            ),
            (
                "close (close -> tree gone)",
                &self.close,
                Some(CLOSE_TARGET),
            ),
        ];
        for (name, samples, target) in rows {
            let _ = writeln!(out, "{}", latency_row(name, samples, runs, target));
        }
        for level in &self.memory {
            let _ = writeln!(
                out,
                "\nmemory with {} idle tab{} (PSS, MiB)",
                level.tabs,
                if level.tabs == 1 { "" } else { "s" }
            );
            let _ = writeln!(
                out,
                "  {:<8} {:>9} {:>9} {:>9} {:>9} {:>9}",
                "tab", "renderer", "web", "network", "other", "total"
            );
            for t in &level.per_tab {
                let _ = writeln!(
                    out,
                    "  {:<8} {:>9} {:>9} {:>9} {:>9} {:>9}   ({} processes)",
                    t.tab_id,
                    mib(t.renderer_kb),
                    mib(t.web_kb),
                    mib(t.network_kb),
                    mib(t.other_kb),
                    mib(t.total()),
                    t.processes
                );
            }
            let tabs_kb: u64 = level.per_tab.iter().map(TabMemory::total).sum();
            let n = level.per_tab.len().max(1) as u64;
            let _ = writeln!(
                out,
                "  browser process          {:>9}",
                mib(level.browser_kb)
            );
            let _ = writeln!(
                out,
                "  all tabs                 {:>9}   (mean {} per tab)",
                mib(tabs_kb),
                mib(tabs_kb / n)
            );
            if !level.outside.is_empty() {
                let _ = writeln!(
                    out,
                    "  in no tab                {:>9}   ({} processes: {})",
                    mib(level.outside_kb),
                    level.outside.len(),
                    level
                        .outside
                        .iter()
                        .map(|p| format!("{} {}", p.pid, p.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let _ = writeln!(
                out,
                "  total                    {:>9}",
                mib(level.browser_kb + tabs_kb + level.outside_kb)
            );
        }
        if let Some(cpu) = &self.idle_cpu {
            let _ = writeln!(
                out,
                "\nbrowser CPU with {} idle tabs over {} s (% of one core)",
                cpu.tabs,
                CPU_WINDOW.as_secs()
            );
            let _ = writeln!(
                out,
                "  without the Task Manager window  {:>6.2}",
                cpu.without_window
            );
            match &cpu.with_window {
                Ok(p) => {
                    let _ = writeln!(
                        out,
                        "  with the Task Manager window     {p:>6.2}   target < {IDLE_CPU_TARGET} %   met: {}",
                        yes_no(*p < IDLE_CPU_TARGET)
                    );
                }
                Err(why) => {
                    let _ = writeln!(
                        out,
                        "  with the Task Manager window     not measured: {why}"
                    );
                }
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\nnotes:");
            for n in &self.notes {
                let _ = writeln!(out, "  - {n}");
            }
        }
        if !self.problems.is_empty() {
            let _ = writeln!(out, "\nproblems:");
            for p in &self.problems {
                let _ = writeln!(out, "  - {p}");
            }
        }
        out
    }
}

fn latency_row(name: &str, samples: &[Duration], runs: usize, target: Option<Duration>) -> String {
    let target_text = target.map_or("-".to_string(), |t| format!("<= {} ms", t.as_millis()));
    if samples.is_empty() {
        return format!(
            "{name:<34} {:>9} {:>9} {:>9}   {target_text:<12} no data",
            "-", "-", "-"
        );
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let median = percentile(&sorted, 50);
    let p90 = percentile(&sorted, 90);
    let max = *sorted.last().expect("not empty");
    let met = match target {
        None => "-".to_string(),
        Some(_) if samples.len() < runs => {
            format!("no ({} of {runs} runs failed)", runs - samples.len())
        }
        Some(t) => {
            let within = sorted.iter().filter(|s| **s <= t).count();
            if within == sorted.len() {
                "yes (every run)".to_string()
            } else {
                format!("no ({within} of {} runs within)", sorted.len())
            }
        }
    };
    format!(
        "{name:<34} {:>9} {:>9} {:>9}   {target_text:<12} {met}",
        ms(median),
        ms(p90),
        ms(max)
    )
}

/// The nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn mib(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

// ----- the control socket, on the benchmark's own connection -----

/// `tabs` on `ctl`.
fn tabs(ctl: &mut Ctl) -> Result<Vec<Value>, String> {
    match call(ctl, "tabs", Value::Null)? {
        Value::Array(tabs) => Ok(tabs),
        other => Err(format!("`tabs` returned {other}, not a list")),
    }
}

/// One request: its result, or the error reply or transport failure in words.
fn call(ctl: &mut Ctl, cmd: &str, args: Value) -> Result<Value, String> {
    let reply = ctl
        .request(cmd, args)
        .map_err(|e| format!("`{cmd}` got no reply: {e}"))?;
    split_reply(&reply).map_err(|e| format!("`{cmd}` failed: {e}"))
}

fn tab_entry(tabs: &[Value], id: u64) -> Option<&Value> {
    tabs.iter().find(|t| t["tab_id"].as_u64() == Some(id))
}

/// Polls every [`POLL`] until `check` gives `Some`, for at most `timeout` after `start`; returns
/// the value and the time since `start` when it was seen.
fn poll<T>(
    start: Instant,
    timeout: Duration,
    mut check: impl FnMut() -> Result<Option<T>, String>,
) -> Result<(T, Duration), String> {
    loop {
        if let Some(v) = check()? {
            return Ok((v, start.elapsed()));
        }
        if start.elapsed() > timeout {
            return Err(format!("not reached within {timeout:?}"));
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until tab `id` has finished loading the page titled `title`; returns the tab's entry.
fn wait_loaded(
    ctl: &mut Ctl,
    id: u64,
    title: &str,
    start: Instant,
) -> Result<(Value, Duration), String> {
    let mut last = Value::Null;
    poll(start, STEP_TIMEOUT, || {
        let tabs = tabs(ctl)?;
        let Some(tab) = tab_entry(&tabs, id) else {
            return Err(format!("tab {id} vanished from `tabs`"));
        };
        last = tab.clone();
        if tab["state"] == "crashed" {
            return Err(format!("tab {id} crashed while loading: {tab}"));
        }
        Ok((tab["loading"] == false && tab["title"] == title).then(|| tab.clone()))
    })
    .map_err(|e| format!("tab {id} did not load {title:?}: {e}; last entry {last}"))
}

/// Waits (up to 30 s) until a renderer has both WebKit helpers below it; returns its whole tree.
fn wait_helpers(renderer: i32) -> Result<Vec<Proc>, String> {
    poll(Instant::now(), STEP_TIMEOUT, || {
        let tree = procs::process_tree(renderer);
        let complete = tree.iter().any(Proc::is_webkit_web_process)
            && tree.iter().any(Proc::is_webkit_network_process);
        Ok(complete.then_some(tree))
    })
    .map(|(tree, _)| tree)
    .map_err(|e| {
        format!(
            "renderer {renderer} lacks a WebKitWebProcess or WebKitNetworkProcess: {e}; its tree:\n{}",
            describe(&procs::process_tree(renderer))
        )
    })
}

fn renderer_pid(tab: &Value) -> Result<i32, String> {
    tab["renderer_pid"]
        .as_i64()
        .map(|p| p as i32)
        .ok_or_else(|| format!("tab without renderer_pid: {tab}"))
}

fn open_tab(ctl: &mut Ctl, url: &str, background: bool) -> Result<u64, String> {
    let r = call(
        ctl,
        "new_tab",
        json!({ "url": url, "background": background }),
    )?;
    r["tab_id"]
        .as_u64()
        .ok_or_else(|| format!("new_tab result without tab_id: {r}"))
}

// ----- latencies -----

fn latencies(x: &Xvfb, http: &HttpServer, runs: usize, report: &mut Report) {
    let base = http.html("/base", &solid_page("base", "#f4f4f4"));
    let b = Browser::start(
        x,
        BrowserOpts {
            urls: vec![base],
            ..Default::default()
        },
    );
    interrupt::watch(b.pid(), Some(b.dir()));
    let mut ctl = b.connect();
    let base_tab = b.tab_ids()[0];
    if let Err(e) = wait_loaded(&mut ctl, base_tab, "base", Instant::now()) {
        report
            .problems
            .push(format!("the first tab did not load: {e}"));
        interrupt::unwatch(b.pid());
        return;
    }
    eprintln!("shell-bench: latencies, 1 warm-up run + {runs} runs");
    for run in 0..=runs {
        let warm_up = run == 0;
        match one_run(&b, &mut ctl, http, run) {
            Ok(r) => {
                eprintln!(
                    "  run {run}{}: new tab {}, close {}, crash {}",
                    if warm_up { " (warm-up)" } else { "" },
                    ms(r.new_tab),
                    ms(r.close),
                    ms(r.crash)
                );
                if warm_up {
                    report.notes.push(format!(
                        "warm-up run (not counted): new tab {}, close {}, crash {}",
                        ms(r.new_tab),
                        ms(r.close),
                        ms(r.crash)
                    ));
                } else {
                    report.new_tab.push(r.new_tab);
                    report.close.push(r.close);
                    report.crash.push(r.crash);
                }
                report.notes.extend(r.notes);
            }
            Err(e) => {
                eprintln!("  run {run} failed: {e}");
                report.problems.push(format!("run {run}: {e}"));
                // The connection may be out of step after a transport failure.
                ctl = b.connect();
                // Leave only the base tab for the next run.
                for id in b.tab_ids().into_iter().filter(|id| *id != base_tab) {
                    let _ = b.ctl("close", json!({ "tab_id": id }));
                }
            }
        }
        // Let exits, reaping and the browser's bookkeeping finish before the next run.
        std::thread::sleep(Duration::from_millis(300));
    }
    shut_down(&b, report);
}

/// Sends `shutdown`, and reports an unclean exit with the end of the browser's log.
fn shut_down(b: &Browser, report: &mut Report) {
    let status = b.shutdown();
    if !status.success() {
        let log = b.log();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        report.problems.push(format!(
            "the browser exited with {status} after `shutdown`; the end of its log:\n      {}",
            tail.join("\n      ")
        ));
    }
    interrupt::unwatch(b.pid());
}

struct RunTimes {
    new_tab: Duration,
    close: Duration,
    crash: Duration,
    notes: Vec<String>,
}

fn one_run(b: &Browser, ctl: &mut Ctl, http: &HttpServer, run: usize) -> Result<RunTimes, String> {
    let mut notes = Vec::new();

    // Cold new tab, then close it.
    let title = format!("bench page {run}");
    let url = http.html(&format!("/page-{run}"), &solid_page(&title, "#d0e8ff"));
    let start = Instant::now();
    let tab = open_tab(ctl, &url, false)?;
    let (entry, new_tab) = wait_loaded(ctl, tab, &title, start)?;
    let tree = wait_helpers(renderer_pid(&entry)?)?;
    let _ = b.tree();
    let start = Instant::now();
    call(ctl, "close", json!({ "tab_id": tab }))?;
    let (_, close) = poll(start, STEP_TIMEOUT, || {
        Ok(still_alive(&tree).is_empty().then_some(()))
    })
    .map_err(|e| {
        format!(
            "after `close` of tab {tab} its processes stayed alive ({e}):\n{}",
            describe(&still_alive(&tree))
        )
    })?;

    // Crash detection: a loaded tab whose renderer is killed.
    let title = format!("bench crash {run}");
    let url = http.html(&format!("/crash-{run}"), &solid_page(&title, "#ffe0d0"));
    let tab = open_tab(ctl, &url, false)?;
    let (entry, _) = wait_loaded(ctl, tab, &title, Instant::now())?;
    let pid = renderer_pid(&entry)?;
    let tree = wait_helpers(pid)?;
    let _ = b.tree();
    let start = Instant::now();
    kill(Pid::from_raw(pid), Signal::SIGKILL).map_err(|e| format!("kill -9 {pid}: {e}"))?;
    let (_, crash) = poll(start, STEP_TIMEOUT, || {
        let tabs = tabs(ctl)?;
        let state = tab_entry(&tabs, tab).map(|t| t["state"].clone());
        Ok((state == Some(json!("crashed"))).then_some(()))
    })
    .map_err(|e| format!("tab {tab} was not `crashed` after kill -9 of renderer {pid}: {e}"))?;
    // The killed renderer's WebKit helpers must follow it; note how long they took.
    let helpers_gone = poll(start, Duration::from_secs(10), || {
        Ok(still_alive(&tree).is_empty().then_some(()))
    });
    match helpers_gone {
        Ok((_, t)) if t > CLOSE_TARGET => notes.push(format!(
            "run {run}: the WebKit helpers of the killed renderer {pid} took {} to exit",
            ms(t)
        )),
        Ok(_) => {}
        Err(_) => notes.push(format!(
            "run {run}: 10 s after kill -9 of renderer {pid} these of its processes were alive:\n{}",
            describe(&still_alive(&tree))
        )),
    }
    call(ctl, "close", json!({ "tab_id": tab }))?;
    Ok(RunTimes {
        new_tab,
        close,
        crash,
        notes,
    })
}

// ----- memory and idle CPU -----

fn memory_and_idle_cpu(x: &Xvfb, http: &HttpServer, report: &mut Report) {
    let idle_url = |n: usize| {
        http.html(
            &format!("/idle-{n}"),
            &solid_page(&format!("idle {n}"), "#ffffff"),
        )
    };
    let b = Browser::start(
        x,
        BrowserOpts {
            urls: vec![idle_url(1)],
            ..Default::default()
        },
    );
    interrupt::watch(b.pid(), Some(b.dir()));
    let mut ctl = b.connect();
    // Each tab with the title its page has.
    let mut open: Vec<(u64, String)> = b
        .tab_ids()
        .into_iter()
        .map(|id| (id, "idle 1".to_string()))
        .collect();
    eprintln!("shell-bench: memory with {MEMORY_LEVELS:?} idle tabs");
    for level in MEMORY_LEVELS {
        while open.len() < level {
            let n = open.len() + 1;
            match open_tab(&mut ctl, &idle_url(n), true) {
                Ok(id) => open.push((id, format!("idle {n}"))),
                Err(e) => {
                    report
                        .problems
                        .push(format!("memory: opening tab {n}: {e}"));
                    return finish(b, report);
                }
            }
        }
        match measure_memory(&b, &mut ctl, &open) {
            Ok(m) => report.memory.push(m),
            Err(e) => {
                report
                    .problems
                    .push(format!("memory with {level} tabs: {e}"));
                return finish(b, report);
            }
        }
    }
    let tabs = b.tab_ids().len();
    eprintln!("shell-bench: browser CPU with {tabs} idle tabs");
    let without_window = browser_cpu(b.pid());
    let with_window = open_task_manager(x).map(|_| {
        // Let the window draw and settle into its once-a-second refresh first.
        std::thread::sleep(Duration::from_secs(2));
        browser_cpu(b.pid())
    });
    report.idle_cpu = Some(IdleCpu {
        tabs,
        without_window,
        with_window,
    });
    finish(b, report);
}

fn finish(b: Browser, report: &mut Report) {
    shut_down(&b, report);
}

/// Waits until every tab of `open` (id, title) has loaded and has both WebKit helpers, lets them
/// settle, and reads the PSS of every process.
fn measure_memory(
    b: &Browser,
    ctl: &mut Ctl,
    open: &[(u64, String)],
) -> Result<MemoryLevel, String> {
    let mut trees = Vec::new();
    for (id, title) in open {
        let id = *id;
        let (entry, _) = wait_loaded(ctl, id, title, Instant::now())?;
        let pid = renderer_pid(&entry)?;
        trees.push((id, wait_helpers(pid)?));
    }
    std::thread::sleep(SETTLE);
    let _ = b.tree();
    let mut per_tab = Vec::new();
    let mut in_tabs = std::collections::BTreeSet::new();
    for (id, tree) in &trees {
        // Re-read the tree: a helper may have been replaced while settling.
        let tree = procs::process_tree(tree[0].pid);
        let mut m = TabMemory {
            tab_id: *id,
            renderer_kb: 0,
            web_kb: 0,
            network_kb: 0,
            other_kb: 0,
            processes: tree.len(),
        };
        for (i, p) in tree.iter().enumerate() {
            in_tabs.insert(p.pid);
            let pss = procs::pss_kb(p.pid).unwrap_or(0);
            if i == 0 {
                m.renderer_kb += pss;
            } else if p.is_webkit_web_process() {
                m.web_kb += pss;
            } else if p.is_webkit_network_process() {
                m.network_kb += pss;
            } else {
                m.other_kb += pss;
            }
        }
        per_tab.push(m);
    }
    let outside: Vec<Proc> = procs::descendants(b.pid())
        .into_iter()
        .filter(|p| !in_tabs.contains(&p.pid))
        .collect();
    let outside_kb = outside.iter().filter_map(|p| procs::pss_kb(p.pid)).sum();
    let browser_kb = procs::pss_kb(b.pid()).ok_or("the browser's smaps_rollup is unreadable")?;
    Ok(MemoryLevel {
        tabs: open.len(),
        browser_kb,
        per_tab,
        outside_kb,
        outside,
    })
}

/// The browser's CPU use over [`CPU_WINDOW`], in % of one core.
fn browser_cpu(pid: i32) -> f64 {
    let before = procs::cpu_ticks(pid).unwrap_or(0);
    let start = Instant::now();
    std::thread::sleep(CPU_WINDOW);
    let after = procs::cpu_ticks(pid).unwrap_or(before);
    let seconds = (after - before) as f64 / procs::clock_ticks_per_second() as f64;
    100.0 * seconds / start.elapsed().as_secs_f64()
}

/// Opens the Task Manager with Shift+Esc over the browser window and waits for its window.
fn open_task_manager(x: &Xvfb) -> Result<(), String> {
    x.xdotool(&["mousemove", "500", "400"]);
    std::thread::sleep(Duration::from_millis(200));
    x.xdotool(&["key", "shift+Escape"]);
    poll(Instant::now(), Duration::from_secs(10), || {
        Ok(x.windows()
            .iter()
            .any(|w| w.name.as_deref() == Some("Task Manager"))
            .then_some(()))
    })
    .map(|_| ())
    .map_err(|e| format!("Shift+Esc opened no window titled \"Task Manager\" ({e})"))
}

/// Stops what the benchmark started when it is interrupted by a signal, where no `Drop` runs.
mod interrupt {
    use std::io::Read;
    use std::os::fd::{FromRawFd, IntoRawFd};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::sync::Mutex;

    use nix::fcntl::OFlag;
    use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    use nix::unistd::Pid;
    use warren_tests::procs;

    /// The write end of the self-pipe the signal handler writes the signal number to.
    static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
    /// The roots of the process trees to kill on a signal (Xvfb, the browser), each with the
    /// temporary directory to remove after it (the browser's profile, socket and log).
    static ROOTS: Mutex<Vec<(i32, Option<PathBuf>)>> = Mutex::new(Vec::new());

    extern "C" fn on_signal(signal: libc::c_int) {
        let fd = WRITE_FD.load(Ordering::SeqCst);
        if fd >= 0 {
            let byte = signal as u8;
            // SAFETY: write(2) is async-signal-safe; the buffer is a live local byte.
            unsafe {
                libc::write(fd, (&byte as *const u8).cast(), 1);
            }
        }
    }

    /// Installs handlers for SIGINT, SIGTERM and SIGHUP and the thread that acts on them.
    /// Handlers are reset on exec, so the processes the benchmark starts are not affected.
    pub fn install() {
        let (read_end, write_end) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("create the signal pipe");
        WRITE_FD.store(write_end.into_raw_fd(), Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            // SAFETY: the handler only loads an atomic and calls write(2).
            unsafe { sigaction(signal, &action) }.expect("install a signal handler");
        }
        std::thread::Builder::new()
            .name("signal-watch".into())
            .spawn(move || {
                // SAFETY: the read end is owned by this thread alone from here on.
                let mut pipe = unsafe { std::fs::File::from_raw_fd(read_end.into_raw_fd()) };
                let mut byte = [0u8; 1];
                if pipe.read_exact(&mut byte).is_ok() {
                    stop_everything();
                    eprintln!(
                        "shell-bench: interrupted by signal {}; stopped every process it started",
                        byte[0]
                    );
                    std::process::exit(128 + i32::from(byte[0]));
                }
            })
            .expect("spawn the signal watcher");
    }

    /// Kills each recorded root's whole live tree (and the process groups in it).
    fn stop_everything() {
        let roots = ROOTS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // The browser first, so its renderers die before Xvfb goes.
        for (root, dir) in roots.iter().rev() {
            let tree = procs::process_tree(*root);
            let _ = kill(Pid::from_raw(*root), nix::sys::signal::Signal::SIGKILL);
            procs::kill_all(&tree);
            if let Some(dir) = dir {
                // Give the killed processes a moment to release their files.
                std::thread::sleep(std::time::Duration::from_millis(200));
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    /// Records a process whose tree must die if the benchmark is interrupted, and the temporary
    /// directory to remove then.
    pub fn watch(pid: i32, dir: Option<&Path>) {
        ROOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((pid, dir.map(Path::to_path_buf)));
    }

    /// Forgets a process that was stopped normally (its pid may be reused).
    pub fn unwatch(pid: i32) {
        ROOTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(p, _)| *p != pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<usize>, String> {
        parse_args(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_runs() {
        assert_eq!(args(&[]), Ok(Some(10)));
        assert_eq!(args(&["--runs", "3"]), Ok(Some(3)));
        assert_eq!(args(&["--runs=4"]), Ok(Some(4)));
        assert_eq!(args(&["--help"]), Ok(None));
        assert!(args(&["--runs", "0"]).is_err());
        assert!(args(&["--runs"]).is_err());
        assert!(args(&["--bogus"]).is_err());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile(&s, 50), Duration::from_millis(5));
        assert_eq!(percentile(&s, 90), Duration::from_millis(9));
        assert_eq!(percentile(&s[..1], 90), Duration::from_millis(1));
    }

    #[test]
    fn target_column() {
        let ok = [Duration::from_millis(100), Duration::from_millis(900)];
        assert!(latency_row("x", &ok, 2, Some(CRASH_TARGET)).ends_with("yes (every run)"));
        let slow = [Duration::from_millis(100), Duration::from_millis(1100)];
        assert!(latency_row("x", &slow, 2, Some(CRASH_TARGET)).contains("no (1 of 2 runs within)"));
        assert!(latency_row("x", &ok, 3, Some(CRASH_TARGET)).contains("1 of 3 runs failed"));
    }
}
