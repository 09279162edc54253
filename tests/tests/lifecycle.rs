//! End-to-end: tab lifecycle — the live-tab cap, discard and exact restore (scroll offset, history, typed text), the form-input protection, freezing, pinning, and the lifecycle commands' errors.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use warren_tests::procs::{self, ancestors_up_to, cpu_ticks, describe, still_alive};
use warren_tests::{
    solid_page, wait_until, wait_web_process, Browser, BrowserOpts, HttpServer, Proc, Xvfb,
    LOAD_TIMEOUT,
};

/// How long a command that must fail at once may take; the protocol's own limit is 10 s, which a
/// command that waits for a stopped or missing renderer would reach.
const AT_ONCE: Duration = Duration::from_secs(5);

/// A page 10000 px tall.
const TALL_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>tall</title></head>\
<body style=\"margin:0\"><div style=\"height:10000px;background:linear-gradient(#ffffff,#8080ff)\"></div>\
</body></html>";

/// A page with one big text input at its top-left corner.
const INPUT_PAGE: &str = "<!doctype html><html style=\"margin:0;height:100%;background:#ffffff\">\
<head><meta charset=\"utf-8\"><title>input</title></head><body style=\"margin:0\">\
<input id=\"i\" autocomplete=\"off\" style=\"position:absolute;left:0;top:0;width:600px;height:250px;\
margin:0;border:0;padding:0;font-size:40px;background:#ffffcc\"></body></html>";

/// A screen point inside the input: the window is at (0,0) and the chrome at most 80 px tall.
const INPUT_POINT: (&str, &str) = ("300", "200");

/// What the tests type into the input.
const TYPED: &str = "warren 42";

/// A web worker that spins forever, posting its counter every so often.
const SPIN_JS: &str = "let n = 0; for (;;) { if (++n % 20000000 === 0) postMessage(n); }";

/// A page that starts the spinning worker and counts its messages in `window.beats` (workers are
/// not throttled like a background tab's timers).
const BUSY_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>busy</title></head>\
<body><script>window.beats = 0; const w = new Worker('/spin.js'); w.onmessage = () => { window.beats++; };</script>\
</body></html>";

/// Starts a browser on `url` with extra `flags` and waits for the page. Every browser here also
/// gets `--low-memory-percent 0`, so memory pressure on a shared machine cannot discard a tab
/// behind a test's back.
fn start(x: &Xvfb, url: &str, flags: &[&str]) -> (Browser, u64) {
    let mut args = vec!["--low-memory-percent".to_owned(), "0".to_owned()];
    args.extend(flags.iter().map(|f| f.to_string()));
    let b = Browser::start(
        x,
        BrowserOpts {
            urls: vec![url.to_owned()],
            args,
            ..Default::default()
        },
    );
    let ids = b.tab_ids();
    assert_eq!(ids.len(), 1, "one tab for one URL: {:?}", b.tabs());
    b.wait_loaded(ids[0], Some(url), LOAD_TIMEOUT);
    (b, ids[0])
}

/// Opens a foreground tab and waits for its page.
fn open(b: &Browser, url: &str) -> u64 {
    let tab = b.new_tab(url);
    b.wait_loaded(tab, Some(url), LOAD_TIMEOUT);
    tab
}

/// Serves `n` small pages and returns their URLs.
fn pages(http: &HttpServer, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| {
            http.html(
                &format!("/p{i}"),
                &solid_page(&format!("page {i}"), "#e0e8f0"),
            )
        })
        .collect()
}

fn pid_of(b: &Browser, tab: u64) -> i32 {
    b.renderer_pid(tab)
        .unwrap_or_else(|| panic!("tab {tab} has no renderer_pid: {:?}", b.tab(tab)))
}

/// One field of a tab's `tabs` row (null when the tab or the field is missing).
fn field(b: &Browser, tab: u64, name: &str) -> Value {
    b.tab(tab)
        .and_then(|t| t.get(name).cloned())
        .unwrap_or(Value::Null)
}

/// `discard` that must succeed; returns `freed_kb`.
fn discard(b: &Browser, tab: u64) -> u64 {
    let reply = b.ok("discard", json!({ "tab_id": tab }));
    reply
        .get("freed_kb")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("`discard` reply without a numeric freed_kb: {reply}"))
}

/// Checks that a tab is discarded right after `discard` answered, and waits (5 s) until every
/// process of its old renderer tree has exited.
fn assert_discarded(b: &Browser, tab: u64, old_tree: &[Proc]) {
    let row = b.tab(tab).expect("the discarded tab is still listed");
    assert_eq!(row["state"], json!("discarded"), "{row}");
    assert_eq!(row["renderer_pid"], Value::Null, "{row}");
    let gone = wait_until(Duration::from_secs(5), || {
        still_alive(old_tree).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "5 s after `discard` these processes of tab {tab} are alive:\n{}",
        describe(&still_alive(old_tree))
    );
}

/// Activates a discarded tab, waits until its fresh renderer has loaded `url`, and returns the
/// new renderer's pid, checked to differ from `old_pid`.
fn restore(b: &Browser, tab: u64, url: &str, old_pid: i32) -> i32 {
    b.ok("activate", json!({ "tab_id": tab }));
    b.wait_loaded(tab, Some(url), LOAD_TIMEOUT);
    let pid = pid_of(b, tab);
    assert_ne!(pid, old_pid, "a restored tab must get a fresh renderer");
    pid
}

/// Waits (10 s) until `js` evaluates to the number `want` in the tab.
fn wait_number(b: &Browser, tab: u64, js: &str, want: f64) {
    let mut last = Err(String::new());
    let ok = wait_until(Duration::from_secs(10), || {
        last = b.eval(tab, js);
        (last.as_ref().ok()?.as_f64()? == want).then_some(())
    });
    assert!(ok.is_some(), "`{js}` in tab {tab} is {last:?}, not {want}");
}

/// Clicks into the input of [`INPUT_PAGE`] until the page has focus on it, types [`TYPED`] with
/// real X key events, and waits until the input holds it.
fn type_into_input(x: &Xvfb, b: &Browser, tab: u64) {
    let focus = "document.hasFocus() && document.activeElement.id === 'i'";
    x.xdotool(&["mousemove", INPUT_POINT.0, INPUT_POINT.1]);
    // The view may not be mapped yet right after the load: click until the input has focus.
    let focused = wait_until(Duration::from_secs(15), || {
        x.xdotool(&["click", "1"]);
        std::thread::sleep(Duration::from_millis(300));
        (b.eval(tab, focus) == Ok(json!(true))).then_some(())
    });
    assert!(
        focused.is_some(),
        "clicks did not focus the input: {:?}",
        b.eval(tab, "[document.hasFocus(), document.activeElement.id]")
    );
    x.xdotool(&["type", "--delay", "60", TYPED]);
    let typed = wait_until(Duration::from_secs(10), || {
        (input_value(b, tab) == json!(TYPED)).then_some(())
    });
    assert!(
        typed.is_some(),
        "typing left the input at {}",
        input_value(b, tab)
    );
}

fn input_value(b: &Browser, tab: u64) -> Value {
    b.eval(tab, "document.getElementById('i').value")
        .unwrap_or(Value::Null)
}

/// The current Unix time in milliseconds.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as u64
}

/// Each process's CPU ticks so far (`None` once it is gone), by pid.
fn ticks(procs: &[Proc]) -> Vec<(i32, Option<u64>)> {
    procs.iter().map(|p| (p.pid, cpu_ticks(p.pid))).collect()
}

/// The processes of `tree` (re-read now; exited ones left out) that are not stopped (state `T`)
/// when `stopped`, or that are stopped when not.
fn not_in_state(tree: &[Proc], stopped: bool) -> Vec<Proc> {
    tree.iter()
        .filter_map(|p| Proc::read(p.pid).filter(|now| now.start_time == p.start_time))
        .filter(|p| (p.state == 'T') != stopped)
        .collect()
}

/// `--max-live-tabs 3` with 8 tabs opened one after the other: the 3 most recently used keep
/// their renderer trees (checked in /proc), the 5 others are discarded and their trees are gone.
#[test]
fn max_live_tabs_keeps_only_the_three_most_recently_used_tabs_live() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let urls = pages(&http, 8);
    let (b, first) = start(&x, &urls[0], &["--max-live-tabs", "3"]);
    let mut tabs = vec![first];
    let mut trees = vec![b.renderer_tree(pid_of(&b, first))];
    for url in &urls[1..] {
        let tab = open(&b, url);
        trees.push(b.renderer_tree(pid_of(&b, tab)));
        tabs.push(tab);
    }
    let (old, recent) = tabs.split_at(5);

    let settled = wait_until(Duration::from_secs(30), || {
        let rows = b.tabs();
        let live = rows.iter().filter(|t| !t["renderer_pid"].is_null()).count();
        let old_discarded = rows
            .iter()
            .filter(|t| old.iter().any(|id| t["tab_id"] == json!(id)))
            .all(|t| t["state"] == json!("discarded") && t["renderer_pid"].is_null());
        (live == 3 && old_discarded).then_some(())
    });
    assert!(
        settled.is_some(),
        "with --max-live-tabs 3, tabs {old:?} should be discarded and exactly 3 tabs live: {}",
        Value::Array(b.tabs())
    );
    for &tab in recent {
        let state = field(&b, tab, "state");
        assert!(
            state == json!("active") || state == json!("background"),
            "recently used tab {tab} is {state}"
        );
    }
    assert_eq!(field(&b, recent[2], "state"), json!("active"));

    // In /proc: each live tab's renderer runs below the browser (through bubblewrap alone, when
    // sandboxed) with its own WebKit process.
    let live: BTreeSet<i32> = recent.iter().map(|&t| pid_of(&b, t)).collect();
    assert_eq!(live.len(), 3, "distinct renderers: {live:?}");
    let mut live_trees = Vec::new();
    for &pid in &live {
        let p = Proc::read(pid).unwrap_or_else(|| panic!("renderer {pid} is not running"));
        let chain = ancestors_up_to(&p, b.pid());
        assert!(
            chain.iter().all(|a| a.name() == "bwrap"),
            "renderer {p} must run below the browser, through bubblewrap only; between them:\n{}",
            describe(&chain)
        );
        live_trees.extend(wait_web_process(pid));
    }
    let tree = b.tree();
    let renderers: BTreeSet<i32> = tree
        .iter()
        .filter(|p| p.name() == "renderer")
        .map(|p| p.pid)
        .collect();
    assert_eq!(
        renderers,
        live,
        "the browser's renderer processes must be exactly the live tabs' ones:\n{}",
        describe(&tree)
    );
    let stray: Vec<Proc> = tree
        .iter()
        .filter(|p| p.is_webkit_web_process() && !live_trees.iter().any(|l| l.pid == p.pid))
        .cloned()
        .collect();
    assert!(
        stray.is_empty(),
        "WebKit processes outside the live tabs' trees:\n{}",
        describe(&stray)
    );
    eprintln!("the browser's tree:\n{}", describe(&tree));
    let old_procs: Vec<Proc> = trees[..5].concat();
    let gone = wait_until(Duration::from_secs(10), || {
        still_alive(&old_procs).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "processes of the discarded tabs are alive:\n{}",
        describe(&still_alive(&old_procs))
    );
}

/// A discarded tab comes back in a fresh renderer at its scroll offset, and the restore is real:
/// no renderer while discarded, the old processes gone, the page's script state (a marker) lost.
#[test]
fn discarded_tab_is_restored_at_its_scroll_offset_in_a_fresh_renderer() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let tall = http.html("/tall", TALL_PAGE);
    let other = http.html("/other", &solid_page("other", "#d0ffd0"));
    let (b, tab) = start(&x, &tall, &[]);
    b.eval(tab, "window.scrollTo(0, 3210)")
        .expect("scroll the page");
    b.eval(tab, "window.__marker = 42").expect("set the marker");
    wait_number(&b, tab, "window.scrollY", 3210.0);
    let old_pid = pid_of(&b, tab);
    let old_tree = wait_web_process(old_pid);
    let _ = b.tree();

    open(&b, &other);
    let freed = discard(&b, tab);
    assert!(freed > 0, "`discard` of a live tab freed {freed} KiB");
    assert_discarded(&b, tab, &old_tree);

    restore(&b, tab, &tall, old_pid);
    wait_number(&b, tab, "window.scrollY", 3210.0);
    assert_eq!(
        b.eval(tab, "window.__marker ?? null"),
        Ok(Value::Null),
        "the marker survived: the page was not reloaded"
    );
    assert_eq!(field(&b, tab, "state"), json!("active"));
}

/// A tab's history survives a discard: after A → B → C, discard and restore, Back goes to B and
/// Forward to C.
#[test]
fn discarded_tab_keeps_its_back_and_forward_history() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let urls = pages(&http, 4);
    let (b, tab) = start(&x, &urls[0], &[]);
    for url in &urls[1..3] {
        b.ok("navigate", json!({ "tab_id": tab, "url": url }));
        b.wait_loaded(tab, Some(url), LOAD_TIMEOUT);
    }
    let old_pid = pid_of(&b, tab);
    let old_tree = b.renderer_tree(old_pid);
    open(&b, &urls[3]);
    discard(&b, tab);
    assert_discarded(&b, tab, &old_tree);

    let pid = restore(&b, tab, &urls[2], old_pid);
    b.ok("back", json!({ "tab_id": tab }));
    b.wait_loaded(tab, Some(&urls[1]), LOAD_TIMEOUT);
    b.ok("forward", json!({ "tab_id": tab }));
    b.wait_loaded(tab, Some(&urls[2]), LOAD_TIMEOUT);
    assert_eq!(b.eval(tab, "document.title"), Ok(json!("page 3")));
    assert_eq!(
        b.renderer_pid(tab),
        Some(pid),
        "Back and Forward stay in the restored renderer"
    );
}

/// Text typed with real key events into an input survives a discard and restore.
#[test]
fn typed_text_survives_discard_and_restore() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let input = http.html("/input", INPUT_PAGE);
    let other = http.html("/other", &solid_page("other", "#d0ffd0"));
    let (b, tab) = start(&x, &input, &[]);
    type_into_input(&x, &b, tab);
    let old_pid = pid_of(&b, tab);
    let old_tree = b.renderer_tree(old_pid);

    open(&b, &other);
    discard(&b, tab);
    assert_discarded(&b, tab, &old_tree);
    restore(&b, tab, &input, old_pid);
    let back = wait_until(Duration::from_secs(10), || {
        (input_value(&b, tab) == json!(TYPED)).then_some(())
    });
    assert!(
        back.is_some(),
        "after the restore the input holds {}, not {TYPED:?}",
        input_value(&b, tab)
    );
}

/// With `--discard-after 2`, the automatic policy discards an idle background tab but not an
/// older one with edited form input, which reports `"protected": "form input"`.
#[test]
fn policy_skips_a_tab_with_edited_input_and_reports_it_protected() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let input = http.html("/input", INPUT_PAGE);
    let urls = pages(&http, 2);
    let (b, form) = start(&x, &input, &["--discard-after", "2"]);
    type_into_input(&x, &b, form);
    let form_pid = pid_of(&b, form);
    let plain = open(&b, &urls[0]);
    open(&b, &urls[1]);

    // Both background tabs are "recently visible" for 10 s, then idle; the form tab has been
    // idle longer, so only its protection keeps it from being discarded first.
    b.wait_state(plain, "discarded", Duration::from_secs(40));
    let row = b.tab(form).expect("the form tab is listed");
    assert_eq!(row["state"], json!("background"), "{row}");
    assert_eq!(row["renderer_pid"], json!(form_pid), "{row}");
    assert_eq!(row["protected"], json!("form input"), "{row}");
    assert_eq!(input_value(&b, form), json!(TYPED));
}

/// A frozen tab's whole renderer tree is stopped (state `T`, no CPU time while a worker would
/// spin), `eval` on it fails at once, and activation thaws it: the worker goes on.
#[test]
fn frozen_tab_is_stopped_until_activated() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    http.route("/spin.js", "text/javascript", SPIN_JS, &[]);
    let busy = http.html("/busy", BUSY_PAGE);
    let other = http.html("/other", &solid_page("other", "#d0ffd0"));
    let (b, tab) = start(&x, &busy, &[]);
    let beats = |b: &Browser| b.eval(tab, "window.beats").ok()?.as_u64();
    assert!(
        wait_until(Duration::from_secs(15), || (beats(&b)? > 0).then_some(())).is_some(),
        "the worker never posted"
    );
    open(&b, &other);
    let tree = wait_web_process(pid_of(&b, tab));
    let _ = b.tree();
    // The worker uses CPU while the tab runs, so the check below is not empty.
    let running = ticks(&tree);
    let busy_cpu = wait_until(Duration::from_secs(10), || {
        (ticks(&tree) != running).then_some(())
    });
    assert!(busy_cpu.is_some(), "the busy tab's processes use no CPU");

    assert_eq!(b.ctl("freeze", json!({ "tab_id": tab })), Ok(json!({})));
    b.wait_state(tab, "frozen", Duration::from_secs(5));
    let stopped = wait_until(Duration::from_secs(5), || {
        not_in_state(&tree, true).is_empty().then_some(())
    });
    assert!(
        stopped.is_some(),
        "processes of the frozen tab that are not stopped (T):\n{}",
        describe(&not_in_state(&tree, true))
    );
    let now_tree = procs::process_tree(tree[0].pid);
    assert!(
        not_in_state(&now_tree, true).is_empty(),
        "its tree now:\n{}",
        describe(&now_tree)
    );
    eprintln!("the frozen tab's tree:\n{}", describe(&now_tree));
    let before = ticks(&tree);
    // The measurement interval itself: a stopped process gains no CPU time in it.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        ticks(&tree),
        before,
        "CPU ticks (pid, ticks) of the frozen tab's processes changed over 3 s"
    );

    let asked = Instant::now();
    let reply = b.eval(tab, "window.beats");
    assert!(reply.is_err(), "eval on a frozen tab must fail: {reply:?}");
    assert!(
        asked.elapsed() < AT_ONCE,
        "eval on a frozen tab took {:?}",
        asked.elapsed()
    );

    b.ok("activate", json!({ "tab_id": tab }));
    let thawed = wait_until(Duration::from_secs(10), || {
        not_in_state(&tree, false).is_empty().then_some(())
    });
    assert!(
        thawed.is_some(),
        "processes still stopped after activation:\n{}",
        describe(&not_in_state(&tree, false))
    );
    assert_eq!(field(&b, tab, "state"), json!("active"));
    let after = wait_until(Duration::from_secs(10), || beats(&b)).expect("eval after thawing");
    let grows = wait_until(Duration::from_secs(15), || {
        (beats(&b)? > after).then_some(())
    });
    assert!(
        grows.is_some(),
        "the worker's counter stays at {after} after thawing"
    );
}

/// Pinning moves a tab among the pinned ones at the start, unpinning to the start of the others;
/// `freeze` and `discard` refuse the active tab; `eval` on a discarded tab fails at once;
/// `last_active_ms` is now for the active tab and older for background ones.
#[test]
fn pin_unpin_errors_and_last_active() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let urls = pages(&http, 3);
    let started = unix_ms();
    let (b, t1) = start(&x, &urls[0], &[]);
    let t2 = open(&b, &urls[1]);
    let t2_opened = unix_ms();
    let t3 = open(&b, &urls[2]);

    let order = |b: &Browser| -> Vec<(u64, u64, bool)> {
        b.tabs()
            .iter()
            .map(|t| {
                (
                    t["tab_id"].as_u64().unwrap_or(0),
                    t["index"].as_u64().unwrap_or(99),
                    t["pinned"] == json!(true),
                )
            })
            .collect()
    };
    b.ok("pin", json!({ "tab_id": t3 }));
    assert_eq!(
        order(&b),
        [(t3, 0, true), (t1, 1, false), (t2, 2, false)],
        "pin moves the tab first"
    );
    b.ok("pin", json!({ "tab_id": t2 }));
    assert_eq!(
        order(&b),
        [(t3, 0, true), (t2, 1, true), (t1, 2, false)],
        "a second pinned tab goes after the first"
    );
    b.ok("unpin", json!({ "tab_id": t3 }));
    assert_eq!(
        order(&b),
        [(t2, 0, true), (t3, 1, false), (t1, 2, false)],
        "unpin moves the tab to the start of the unpinned ones"
    );

    let pid = pid_of(&b, t3);
    for cmd in ["freeze", "discard"] {
        let reply = b.ctl(cmd, json!({ "tab_id": t3 }));
        assert!(
            reply.is_err(),
            "{cmd} on the active tab must fail: {reply:?}"
        );
    }
    assert_eq!(field(&b, t3, "state"), json!("active"));
    assert_eq!(b.renderer_pid(t3), Some(pid));

    let now = unix_ms();
    let last = |tab: u64| field(&b, tab, "last_active_ms").as_u64().unwrap_or(0);
    let (l1, l2, l3) = (last(t1), last(t2), last(t3));
    assert!(
        l3 + 5_000 >= now && l3 <= now + 5_000,
        "the active tab's last_active_ms {l3} is not now ({now})"
    );
    assert!(
        started <= l1 + 1_000 && l1 <= t2_opened && l1 < l2 && l2 < l3,
        "last_active_ms: tab 1 {l1} (active from {started} until {t2_opened}), tab 2 {l2}, \
         active tab 3 {l3}"
    );

    discard(&b, t1);
    let asked = Instant::now();
    let reply = b.eval(t1, "1 + 1");
    assert!(
        reply.is_err(),
        "eval on a discarded tab must fail: {reply:?}"
    );
    assert!(
        asked.elapsed() < AT_ONCE,
        "eval on a discarded tab took {:?}",
        asked.elapsed()
    );
    assert_eq!(field(&b, t1, "state"), json!("discarded"));
}
