//! End-to-end: the task manager — `task_manager` rows checked against /proc (tree, attribution, memory, CPU), `end_process`, `browser ctl top`, and the Shift+Esc window.
//!
//! One browser serves every check of the main test (each tab starts WebKit processes, which is
//! slow on 2 cores); `shutdown` with a freshly opened Task Manager gets a second, one-tab
//! browser. The main test's checks run one after the other, each caught on its own, so one
//! failure does not hide the others; the test fails at the end with the list of failed checks
//! (and the harness prints the browser's log). The Task Manager window's screenshot is saved as
//! `target/warren-test-artifacts/task-manager.png`, and also as `docs/task-manager.png` when
//! `WARREN_UPDATE_DOCS=1` is set.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warren_tests::procs::{self, describe, still_alive};
use warren_tests::{
    run_browser_once, solid_page, wait_until, wait_web_process, Browser, BrowserOpts, HttpServer,
    Proc, XWindow, Xvfb, LOAD_TIMEOUT,
};

/// Every `kind` the protocol defines.
const KINDS: [&str; 7] = [
    "browser", "renderer", "web", "network", "spare", "display", "other",
];

/// Every field each `task_manager` row must carry (it may carry more).
const FIELDS: [&str; 9] = [
    "pid",
    "parent_pid",
    "kind",
    "tab_id",
    "title",
    "memory_kb",
    "pss_kb",
    "cpu_percent",
    "sandboxed",
];

/// A web worker that spins forever, posting a message every so often so the page can tell it runs.
const SPIN_JS: &str = "let n = 0; for (;;) { if (++n % 20000000 === 0) postMessage(n); }";

/// A page that starts the spinning worker (workers are not throttled like background timers).
const BUSY_PAGE: &str = "<!doctype html><html style=\"margin:0;height:100%;background:#fff3e0\">\
<head><meta charset=\"utf-8\"><title>Busy loop</title></head><body style=\"margin:0\">\
<script>window.beats = 0; const w = new Worker('/spin.js'); w.onmessage = () => { window.beats++; };</script>\
</body></html>";

/// One row of the `task_manager` reply, with the fields the checks use.
#[derive(Clone, Debug)]
struct Row {
    pid: i32,
    parent_pid: Option<i32>,
    kind: String,
    tab_id: Option<u64>,
    memory_kb: Option<u64>,
    pss_kb: Option<u64>,
    cpu_percent: f64,
    raw: Value,
}

/// Sends `task_manager` and checks the shape of every row; panics with the reply otherwise.
fn task_manager(b: &Browser) -> Vec<Row> {
    let reply = b.ok("task_manager", Value::Null);
    let list = reply
        .get("processes")
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("`task_manager` result has no \"processes\" list: {reply}"));
    let rows: Vec<Row> = list.iter().map(parse_row).collect();
    let mut pids = BTreeSet::new();
    for r in &rows {
        assert!(pids.insert(r.pid), "pid {} has two rows: {reply}", r.pid);
    }
    rows
}

fn parse_row(v: &Value) -> Row {
    for field in FIELDS {
        assert!(v.get(field).is_some(), "row without {field:?}: {v}");
    }
    let kind = v["kind"].as_str().unwrap_or_default().to_string();
    assert!(KINDS.contains(&kind.as_str()), "unknown kind in {v}");
    assert!(v["title"].is_string(), "title must be a string: {v}");
    assert!(v["sandboxed"].is_boolean(), "sandboxed must be a bool: {v}");
    let kb = |f: &str| {
        let x = &v[f];
        assert!(
            x.is_null() || x.is_u64(),
            "{f} must be a whole number or null: {v}"
        );
        x.as_u64()
    };
    let cpu_percent = v["cpu_percent"]
        .as_f64()
        .unwrap_or_else(|| panic!("cpu_percent must be a number: {v}"));
    assert!(cpu_percent >= 0.0, "negative cpu_percent: {v}");
    Row {
        pid: v["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("pid must be a number: {v}")) as i32,
        parent_pid: v["parent_pid"].as_i64().map(|p| p as i32),
        kind,
        tab_id: v["tab_id"].as_u64(),
        memory_kb: kb("memory_kb"),
        pss_kb: kb("pss_kb"),
        cpu_percent,
        raw: v.clone(),
    }
}

/// The rows as a table, for failure messages.
fn table(rows: &[Row]) -> String {
    rows.iter()
        .map(|r| {
            format!(
                "  pid {:>7} ppid {:>7} {:<8} tab {:<5} mem {:>8} pss {:>8} cpu {:>6.1}  {}\n",
                r.pid,
                r.parent_pid.map_or("-".into(), |p| p.to_string()),
                r.kind,
                r.tab_id.map_or("-".into(), |t| t.to_string()),
                r.memory_kb.map_or("-".into(), |m| m.to_string()),
                r.pss_kb.map_or("-".into(), |m| m.to_string()),
                r.cpu_percent,
                r.raw["title"]
            )
        })
        .collect()
}

/// Runs the checks one by one and remembers which failed.
struct Checks {
    failed: Vec<String>,
}

impl Checks {
    fn run(&mut self, name: &str, check: impl FnOnce()) {
        eprintln!("--- check: {name}");
        let started = Instant::now();
        match catch_unwind(AssertUnwindSafe(check)) {
            Ok(()) => eprintln!("--- passed: {name} ({:?})", started.elapsed()),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(no message)".into());
                eprintln!("--- FAILED: {name}");
                self.failed.push(format!("{name}: {msg}"));
            }
        }
    }
}

/// The tabs of the test: their ids and renderer pids.
struct Tabs {
    ids: Vec<u64>,
    pids: Vec<i32>,
}

fn renderer_of(b: &Browser, tab: u64) -> i32 {
    b.renderer_pid(tab)
        .unwrap_or_else(|| panic!("tab {tab} has no renderer_pid: {:?}", b.tab(tab)))
}

/// Waits until a renderer has both WebKit helpers below it; returns its tree.
fn wait_helpers(renderer: i32) -> Vec<Proc> {
    let _ = wait_web_process(renderer);
    wait_until(Duration::from_secs(30), || {
        let tree = procs::process_tree(renderer);
        tree.iter()
            .any(Proc::is_webkit_network_process)
            .then_some(tree)
    })
    .unwrap_or_else(|| {
        panic!(
            "renderer {renderer} has no WebKitNetworkProcess below it after 30 s:\n{}",
            describe(&procs::process_tree(renderer))
        )
    })
}

/// Three idle tabs and a busy one: the rows, the figures, `ctl top`, the window, `end_process`.
#[test]
fn task_manager_reports_every_tabs_processes_and_ends_them() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let urls: Vec<String> = [
        ("news", "Morning news", "#dfe9f7"),
        ("inbox", "Inbox (3)", "#e6f4e6"),
        ("recipes", "Bread recipes", "#f7efdf"),
    ]
    .iter()
    .map(|(path, title, colour)| http.html(&format!("/{path}"), &solid_page(title, colour)))
    .collect();
    http.route("/spin.js", "text/javascript", SPIN_JS, &[]);
    let busy_url = http.html("/busy", BUSY_PAGE);

    let b = Browser::start(
        &x,
        BrowserOpts {
            urls: vec![urls[0].clone()],
            ..Default::default()
        },
    );
    let mut ids = b.tab_ids();
    for url in &urls[1..] {
        ids.push(b.new_tab_with(url, true));
    }
    for (id, url) in ids.iter().zip(&urls) {
        b.wait_loaded(*id, Some(url), LOAD_TIMEOUT);
    }
    let pids: Vec<i32> = ids.iter().map(|t| renderer_of(&b, *t)).collect();
    for pid in &pids {
        let _ = wait_helpers(*pid);
    }
    let _ = b.tree();
    let tabs = Tabs { ids, pids };

    let mut checks = Checks { failed: Vec::new() };
    checks.run("rows follow the process tree", || {
        rows_follow_the_tree(&b, &tabs)
    });
    checks.run("memory_kb matches /proc (RssAnon + VmSwap)", || {
        memory_matches_proc(&b, &tabs)
    });
    checks.run("`browser ctl top` and `ctl task_manager`", || {
        ctl_top_lists_renderers(&b, &tabs)
    });
    let busy = b.new_tab(&busy_url);
    checks.run(
        "a busy tab's web process > 50 % CPU, an idle tab < 5 %",
        || busy_and_idle_cpu(&b, &tabs, busy),
    );
    checks.run("Shift+Esc opens the Task Manager window", || {
        shift_escape_opens_the_window(&x, &b)
    });
    checks.run(
        "closing the Task Manager window leaves the browser running",
        || closing_the_window_keeps_the_browser(&x, &b),
    );
    checks.run("end_process crashes the tab and ends its processes", || {
        end_process_crashes_the_tab(&b, &tabs, busy)
    });
    checks.run(
        "end_process on unknown and crashed tabs is an error",
        || end_process_errors(&b, busy),
    );
    checks.run("shutdown with the Task Manager open exits cleanly", || {
        shutdown_with_the_window_open(&x, &b)
    });

    assert!(
        checks.failed.is_empty(),
        "{} task manager check(s) failed:\n{}",
        checks.failed.len(),
        checks.failed.join("\n")
    );
}

/// The `browser` row, one `renderer` row per tab with its `renderer_pid`, and `web` and
/// `network` rows below each renderer; every live process of a tab's tree appears with its tab.
fn rows_follow_the_tree(b: &Browser, tabs: &Tabs) {
    let before: Vec<Vec<Proc>> = tabs.pids.iter().map(|p| procs::process_tree(*p)).collect();
    let rows = task_manager(b);
    let after: Vec<Vec<Proc>> = tabs.pids.iter().map(|p| procs::process_tree(*p)).collect();
    let shown = table(&rows);
    eprintln!("task_manager with 3 tabs:\n{shown}");
    let by_pid: BTreeMap<i32, &Row> = rows.iter().map(|r| (r.pid, r)).collect();

    let browsers: Vec<&Row> = rows.iter().filter(|r| r.kind == "browser").collect();
    assert_eq!(browsers.len(), 1, "one browser row expected:\n{shown}");
    assert_eq!(browsers[0].pid, b.pid(), "the browser row's pid:\n{shown}");
    assert_eq!(
        browsers[0].tab_id, None,
        "the browser row has no tab:\n{shown}"
    );

    for r in &rows {
        if let Some(t) = r.tab_id {
            assert!(
                tabs.ids.contains(&t),
                "row for an unknown tab {t}:\n{shown}"
            );
        }
    }

    for (i, (&tab, &renderer)) in tabs.ids.iter().zip(&tabs.pids).enumerate() {
        let renderers: Vec<&Row> = rows
            .iter()
            .filter(|r| r.kind == "renderer" && r.tab_id == Some(tab))
            .collect();
        assert_eq!(
            renderers.len(),
            1,
            "one renderer row for tab {tab}:\n{shown}"
        );
        assert_eq!(
            renderers[0].pid, renderer,
            "tab {tab}'s renderer row must carry its renderer_pid:\n{shown}"
        );
        // The renderer runs below the browser; when sandboxed (the default) its parent chain
        // goes through bubblewrap, whose rows belong to the same tab.
        let mut at = renderers[0].pid;
        let mut hops = 0;
        while at != b.pid() {
            let parent = by_pid
                .get(&at)
                .and_then(|r| r.parent_pid)
                .unwrap_or_else(|| panic!("tab {tab}'s renderer chain breaks at {at}:\n{shown}"));
            if parent != b.pid() {
                let row = by_pid.get(&parent).unwrap_or_else(|| {
                    panic!(
                        "tab {tab}'s renderer chain leads to {parent}, which has no row:\n{shown}"
                    )
                });
                assert_eq!(
                    row.raw["name"], "bwrap",
                    "only bubblewrap sits between the browser and tab {tab}'s renderer:\n{shown}"
                );
                assert_eq!(
                    row.tab_id,
                    Some(tab),
                    "tab {tab}'s sandbox row {parent} carries its tab:\n{shown}"
                );
            }
            at = parent;
            hops += 1;
            assert!(hops < 8, "renderer chain loop at {at}:\n{shown}");
        }
        for kind in ["web", "network"] {
            let helpers: Vec<&Row> = rows
                .iter()
                .filter(|r| r.kind == kind && r.tab_id == Some(tab))
                .collect();
            assert!(!helpers.is_empty(), "no {kind} row for tab {tab}:\n{shown}");
            for h in helpers {
                // Follow parent_pid through the rows up to the renderer.
                let mut at = h.pid;
                let mut hops = 0;
                while at != renderer {
                    let parent = by_pid
                        .get(&at)
                        .and_then(|r| r.parent_pid)
                        .unwrap_or_else(|| {
                            panic!(
                                "the parent chain of {kind} row {} breaks at {at}:\n{shown}",
                                h.pid
                            )
                        });
                    assert!(
                        by_pid.contains_key(&parent),
                        "the parent chain of {kind} row {} leads to {parent}, which has no row:\n{shown}",
                        h.pid
                    );
                    at = parent;
                    hops += 1;
                    assert!(hops < 16, "parent chain loop at {}:\n{shown}", h.pid);
                }
                let proc = Proc::read(h.pid)
                    .unwrap_or_else(|| panic!("{kind} row {} is no process", h.pid));
                let right = match kind {
                    "web" => proc.is_webkit_web_process(),
                    _ => proc.is_webkit_network_process(),
                };
                assert!(right, "{kind} row {} is {proc}", h.pid);
            }
        }
        // Every process that was in the tab's tree both before and after the reply has a row
        // with that tab and the right kind.
        let stable: Vec<&Proc> = before[i]
            .iter()
            .filter(|p| {
                after[i]
                    .iter()
                    .any(|q| q.pid == p.pid && q.start_time == p.start_time)
            })
            .collect();
        for p in stable {
            let row = by_pid
                .get(&p.pid)
                .unwrap_or_else(|| panic!("process {p} of tab {tab} has no row:\n{shown}"));
            assert_eq!(
                row.tab_id,
                Some(tab),
                "process {p} is attributed wrongly:\n{shown}"
            );
            let kind = if p.pid == renderer {
                "renderer"
            } else if p.is_webkit_web_process() {
                "web"
            } else if p.is_webkit_network_process() {
                "network"
            } else {
                "other"
            };
            assert_eq!(row.kind, kind, "process {p} has the wrong kind:\n{shown}");
        }
    }
}

/// Per process, `memory_kb` within 10 % of RssAnon + VmSwap read right after the reply; a
/// process whose memory moves gets up to four tries.
fn memory_matches_proc(b: &Browser, tabs: &Tabs) {
    let mut pending: Option<BTreeSet<i32>> = None;
    let mut mismatches = BTreeMap::new();
    for attempt in 0..4 {
        let rows = task_manager(b);
        let ours: BTreeMap<i32, Option<u64>> = rows
            .iter()
            .map(|r| (r.pid, procs::footprint_kb(r.pid)))
            .collect();
        let wanted: BTreeSet<i32> = pending.clone().unwrap_or_else(|| {
            rows.iter()
                .filter(|r| ["browser", "renderer", "web", "network"].contains(&r.kind.as_str()))
                .map(|r| r.pid)
                .collect()
        });
        if attempt == 0 {
            // Every tab's renderer and helpers take part.
            for pid in &tabs.pids {
                assert!(
                    wanted.contains(pid),
                    "renderer {pid} has no row:\n{}",
                    table(&rows)
                );
            }
            assert!(wanted.len() > 3 * tabs.pids.len(), "{}", table(&rows));
        }
        mismatches.clear();
        for r in rows.iter().filter(|r| wanted.contains(&r.pid)) {
            let theirs = r.memory_kb;
            let mine = ours[&r.pid];
            let ok = match (theirs, mine) {
                (Some(t), Some(m)) => t.abs_diff(m) * 10 <= m,
                _ => false,
            };
            if !ok {
                mismatches.insert(r.pid, (r.kind.clone(), theirs, mine));
            }
            // PSS, when given, is a positive share of the resident set.
            if let (Some(pss), Some(rss)) = (r.pss_kb, procs::rss_kb(r.pid)) {
                assert!(
                    pss > 0 && pss <= rss + rss / 10,
                    "pss_kb {pss} of {} {} is not within its VmRSS {rss}",
                    r.kind,
                    r.pid
                );
            }
        }
        if attempt == 0 {
            eprintln!("memory_kb vs RssAnon+VmSwap:");
            for r in rows.iter().filter(|r| wanted.contains(&r.pid)) {
                eprintln!(
                    "  {:<8} {:>7}: task manager {:?} kB, /proc {:?} kB",
                    r.kind, r.pid, r.memory_kb, ours[&r.pid]
                );
            }
        }
        if mismatches.is_empty() {
            return;
        }
        pending = Some(mismatches.keys().copied().collect());
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!(
        "memory_kb is not within 10 % of RssAnon + VmSwap after 4 tries for (kind, task manager, /proc): {mismatches:?}"
    );
}

/// `browser ctl --socket S top` prints a table with every renderer pid; `ctl task_manager`
/// prints the raw reply.
fn ctl_top_lists_renderers(b: &Browser, tabs: &Tabs) {
    let socket = b.socket().to_str().expect("UTF-8 socket path").to_string();
    let top = run_browser_once(
        b.display(),
        &["ctl", "--socket", &socket, "top"],
        Duration::from_secs(20),
    );
    eprintln!("browser ctl top:\n{}", top.output);
    assert!(
        top.status.is_some_and(|s| s.success()),
        "`browser ctl top` failed ({:?}):\n{}",
        top.status,
        top.output
    );
    let lines: Vec<&str> = top.output.lines().collect();
    assert!(lines.len() >= 2, "`top` printed no table:\n{}", top.output);
    for pid in tabs.pids.iter().chain([&b.pid()]) {
        let listed = lines
            .iter()
            .any(|l| l.split_whitespace().any(|w| w == pid.to_string()));
        assert!(listed, "`top` does not list pid {pid}:\n{}", top.output);
    }

    let raw = run_browser_once(
        b.display(),
        &["ctl", "--socket", &socket, "task_manager"],
        Duration::from_secs(20),
    );
    assert!(
        raw.status.is_some_and(|s| s.success()),
        "`browser ctl task_manager` failed ({:?}):\n{}",
        raw.status,
        raw.output
    );
    let reply: Value = raw
        .output
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("`ctl task_manager` printed no JSON:\n{}", raw.output));
    let count = reply["result"]["processes"].as_array().map_or(0, Vec::len);
    assert!(
        reply["ok"] == json!(true) && count > 3 * tabs.pids.len(),
        "`ctl task_manager` printed {reply}"
    );
}

/// A tab whose worker spins shows its web process above 50 % while an idle tab's processes stay
/// below 5 %. `cpu_percent` covers the interval since the previous reading, so the figures are
/// taken from a second reading about 2 s after the first (up to three tries).
fn busy_and_idle_cpu(b: &Browser, tabs: &Tabs, busy: u64) {
    b.wait_loaded(busy, None, LOAD_TIMEOUT);
    let spinning = wait_until(Duration::from_secs(15), || {
        let beats = b.eval(busy, "window.beats").ok()?.as_u64()?;
        (beats > 0).then_some(beats)
    });
    assert!(
        spinning.is_some(),
        "the busy page's worker never reported: {:?}",
        b.eval(busy, "window.beats")
    );
    let busy_renderer = renderer_of(b, busy);
    let busy_tree = wait_helpers(busy_renderer);
    let web: Vec<i32> = busy_tree
        .iter()
        .filter(|p| p.is_webkit_web_process())
        .map(|p| p.pid)
        .collect();
    let idle = tabs.ids[0];
    let mut last = String::new();
    let _ = task_manager(b);
    for attempt in 0..3 {
        let ticks_before: Vec<Option<u64>> = web.iter().map(|p| procs::cpu_ticks(*p)).collect();
        let started = Instant::now();
        std::thread::sleep(Duration::from_secs(2));
        let rows = task_manager(b);
        let elapsed = started.elapsed().as_secs_f64();
        let ours: Vec<String> = web
            .iter()
            .zip(&ticks_before)
            .map(|(p, before)| {
                let used = procs::cpu_ticks(*p)
                    .unwrap_or(0)
                    .saturating_sub(before.unwrap_or(0));
                let pct = 100.0 * used as f64 / procs::clock_ticks_per_second() as f64 / elapsed;
                format!("{p}: {pct:.0} %")
            })
            .collect();
        let busy_web: Vec<&Row> = rows
            .iter()
            .filter(|r| r.kind == "web" && r.tab_id == Some(busy))
            .collect();
        let idle_rows: Vec<&Row> = rows.iter().filter(|r| r.tab_id == Some(idle)).collect();
        last = format!(
            "attempt {attempt}: busy tab {busy} web rows {:?} (from /proc over the same 2 s: {ours:?}); idle tab {idle} rows {:?}\n{}",
            busy_web.iter().map(|r| (r.pid, r.cpu_percent)).collect::<Vec<_>>(),
            idle_rows.iter().map(|r| (r.pid, r.kind.clone(), r.cpu_percent)).collect::<Vec<_>>(),
            table(&rows)
        );
        eprintln!("{last}");
        let busy_ok = busy_web.iter().any(|r| r.cpu_percent > 50.0);
        let idle_ok = idle_rows.len() >= 3 && idle_rows.iter().all(|r| r.cpu_percent < 5.0);
        if busy_ok && idle_ok {
            return;
        }
    }
    panic!("CPU figures wrong after 3 tries; last: {last}");
}

/// Shift+Esc over the browser window opens a top-level window titled "Task Manager"; its
/// screenshot (with the test's tabs in it) is saved.
fn shift_escape_opens_the_window(x: &Xvfb, b: &Browser) {
    let before = task_manager_windows(x);
    assert!(
        before.is_empty(),
        "a Task Manager window exists already: {before:?}"
    );
    let found = open_with_shift_escape(x);
    // Give a second window, if one were opened, the time to appear.
    std::thread::sleep(Duration::from_millis(500));
    let windows = found.map(|_| task_manager_windows(x)).unwrap_or_else(|| {
        panic!(
            "no window titled \"Task Manager\" 10 s after Shift+Esc; windows: {:?}",
            x.windows()
                .iter()
                .filter(|w| w.depth == 1)
                .map(|w| (&w.id, &w.name, w.width, w.height))
                .collect::<Vec<_>>()
        )
    });
    assert_eq!(windows.len(), 1, "one Task Manager window: {windows:?}");
    let tm = &windows[0];
    assert_eq!(
        tm.depth, 1,
        "the Task Manager must be a top-level window: {tm:?}"
    );
    assert!(
        tm.width >= 300 && tm.height >= 200,
        "the Task Manager window is tiny: {tm:?}"
    );
    // Two refreshes, so every figure (CPU needs a previous sample) is shown; for the picture in
    // docs/, enough refreshes to draw the memory sparklines and chart.
    let update_docs = std::env::var_os("WARREN_UPDATE_DOCS").is_some_and(|v| v == "1");
    std::thread::sleep(Duration::from_millis(if update_docs {
        20_000
    } else {
        2500
    }));
    let img = x.screenshot();
    let mut colours = BTreeSet::new();
    let (x0, y0) = (tm.x.max(0) as u32, tm.y.max(0) as u32);
    let x1 = (x0 + tm.width).min(img.width);
    let y1 = (y0 + tm.height).min(img.height);
    for yy in (y0..y1).step_by(3) {
        for xx in (x0..x1).step_by(3) {
            colours.insert(img.pixel(xx, yy));
        }
    }
    let dir = warren_tests::artifacts_dir();
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    let shot = dir.join("task-manager.png");
    warren_tests::window_png(x.display(), &tm.id, &shot)
        .unwrap_or_else(|e| panic!("screenshot of the Task Manager window: {e}"));
    eprintln!("Task Manager window {tm:?}; screenshot {}", shot.display());
    if update_docs {
        let docs = warren_tests::workspace_root()
            .join("docs")
            .join("task-manager.png");
        std::fs::copy(&shot, &docs).expect("copy the screenshot into docs/");
        eprintln!("updated {}", docs.display());
    }
    assert!(
        colours.len() > 8,
        "the Task Manager window looks blank ({} colours): {}",
        colours.len(),
        shot.display()
    );
    // The browser window still answers.
    assert!(!b.tabs().is_empty());
}

/// `shutdown` right after Shift+Esc opened the Task Manager: the browser exits with status 0 and
/// leaves no process. A browser of its own, as the main test closes and reopens the window first.
#[test]
fn shutdown_with_the_task_manager_open_exits_cleanly() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let url = http.html("/page", &solid_page("A page", "#e0f0ff"));
    let (b, _tab) = Browser::start_on(&x, &url);
    assert!(
        open_with_shift_escape(&x).is_some(),
        "Shift+Esc did not open the Task Manager"
    );
    std::thread::sleep(Duration::from_secs(1));
    shutdown_with_the_window_open(&x, &b);
}

/// The Task Manager windows on the screen.
fn task_manager_windows(x: &Xvfb) -> Vec<XWindow> {
    x.windows()
        .into_iter()
        .filter(|w| w.name.as_deref() == Some("Task Manager"))
        .collect()
}

/// Shift+Esc with the pointer over the browser window; waits (10 s) for the Task Manager window.
fn open_with_shift_escape(x: &Xvfb) -> Option<XWindow> {
    x.xdotool(&["mousemove", "500", "400"]);
    std::thread::sleep(Duration::from_millis(300));
    x.xdotool(&["key", "shift+Escape"]);
    wait_until(Duration::from_secs(10), || {
        task_manager_windows(x).into_iter().next()
    })
}

/// Closing the window as a window manager's close button does (WM_DELETE_WINDOW) removes it and
/// nothing else: the browser keeps running and answering, and Shift+Esc opens it again.
fn closing_the_window_keeps_the_browser(x: &Xvfb, b: &Browser) {
    let tm = task_manager_windows(x)
        .into_iter()
        .next()
        .expect("the Task Manager window is open");
    warren_tests::request_close(x.display(), &tm.id).expect("send WM_DELETE_WINDOW");
    let closed = wait_until(Duration::from_secs(10), || {
        task_manager_windows(x).is_empty().then_some(())
    });
    assert!(closed.is_some(), "WM_DELETE_WINDOW did not close {tm:?}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        b.try_exit_status().is_none(),
        "the browser exited when its Task Manager window was closed ({:?}); the end of its log:\n{}",
        b.try_exit_status(),
        log_tail(b, 5)
    );
    assert!(
        !b.tabs().is_empty(),
        "the browser answers after the window closed"
    );
    assert!(
        open_with_shift_escape(x).is_some(),
        "Shift+Esc did not open the Task Manager again after it was closed"
    );
}

/// `shutdown` while the Task Manager window is open: exit status 0, and no process of the tree
/// survives.
fn shutdown_with_the_window_open(x: &Xvfb, b: &Browser) {
    if b.try_exit_status().is_some() {
        panic!(
            "the browser is not running any more: {:?}",
            b.try_exit_status()
        );
    }
    if task_manager_windows(x).is_empty() {
        assert!(
            open_with_shift_escape(x).is_some(),
            "Shift+Esc did not open the Task Manager"
        );
    }
    let tree = b.tree();
    let status = b.shutdown();
    let gone = wait_until(Duration::from_secs(5), || {
        still_alive(&tree).is_empty().then_some(())
    });
    assert!(
        status.success(),
        "the browser exited with {status} on `shutdown` with the Task Manager open; the end of its log:\n{}",
        log_tail(b, 5)
    );
    assert!(
        gone.is_some(),
        "5 s after `shutdown` these processes are alive:\n{}",
        describe(&still_alive(&tree))
    );
}

/// The last `n` lines of the browser's log.
fn log_tail(b: &Browser, n: usize) -> String {
    let log = b.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `end_process` on a live tab: `{}`, the tab turns `crashed`, and every process of its tree
/// disappears, from /proc and from `task_manager`; the other tabs carry on.
fn end_process_crashes_the_tab(b: &Browser, tabs: &Tabs, busy: u64) {
    let renderer = renderer_of(b, busy);
    let tree = procs::process_tree(renderer);
    let _ = b.tree();
    assert!(tree.len() >= 3, "busy tab's tree:\n{}", describe(&tree));
    let reply = b.ctl("end_process", json!({ "tab_id": busy }));
    assert_eq!(reply, Ok(json!({})), "end_process on a live tab");
    let crashed = b.wait_state(busy, "crashed", Duration::from_secs(5));
    assert_eq!(crashed["renderer_pid"], Value::Null, "{crashed}");
    let gone = wait_until(Duration::from_secs(5), || {
        still_alive(&tree).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "5 s after end_process these processes of tab {busy} are alive:\n{}",
        describe(&still_alive(&tree))
    );
    let rows = task_manager(b);
    let left: Vec<&Row> = rows
        .iter()
        .filter(|r| r.tab_id == Some(busy) || tree.iter().any(|p| p.pid == r.pid))
        .collect();
    assert!(
        left.is_empty(),
        "task_manager still lists the ended tab's processes:\n{}",
        table(&rows)
    );
    for &tab in &tabs.ids {
        assert_eq!(
            b.eval(tab, "1 + 1"),
            Ok(json!(2)),
            "tab {tab} after end_process"
        );
    }
}

/// `end_process` on a tab without a process, on an unknown tab and without a tab is an error.
fn end_process_errors(b: &Browser, crashed: u64) {
    assert_eq!(b.state(crashed).as_deref(), Some("crashed"));
    for (args, what) in [
        (json!({ "tab_id": crashed }), "a crashed tab"),
        (json!({ "tab_id": 987_654 }), "an unknown tab"),
        (json!({}), "no tab_id"),
        (json!({ "tab_id": "one" }), "a string tab_id"),
    ] {
        let reply = b.ctl("end_process", args.clone());
        eprintln!("end_process {args} ({what}): {reply:?}");
        match reply {
            Err(e) => assert!(!e.trim().is_empty(), "empty error for {what}"),
            Ok(v) => panic!("end_process on {what} must be an error, got {v}"),
        }
    }
    assert_eq!(b.state(crashed).as_deref(), Some("crashed"));
}
