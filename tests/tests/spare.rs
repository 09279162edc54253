//! End-to-end: the spare renderer. A browser that may keep one starts it when the machine is idle,
//! with WebKit's web process already running; the next new tab, or the restore of a discarded
//! tab, takes it instead of starting processes, and nothing of its warm-up shows in the tab.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use warren_tests::procs::describe;
use warren_tests::{
    expect_content, solid_page, wait_until, web_processes, Browser, BrowserOpts, HttpServer, Xvfb,
    LOAD_TIMEOUT,
};

/// How long a spare may take to appear: the browser waits for a quiet second before it starts
/// one, and a shared machine may be busy for a while.
const SPARE_TIMEOUT: Duration = Duration::from_secs(90);

fn start(x: &Xvfb, url: &str, flags: &[&str]) -> (Browser, u64) {
    let mut args = vec!["--low-memory-percent".to_owned(), "0".to_owned()];
    args.extend(flags.iter().map(|f| f.to_string()));
    let b = Browser::start(
        x,
        BrowserOpts {
            urls: vec![url.to_owned()],
            args,
            spare: true,
            ..Default::default()
        },
    );
    let ids = b.tab_ids();
    assert_eq!(ids.len(), 1, "one tab for one URL: {:?}", b.tabs());
    b.wait_loaded(ids[0], Some(url), LOAD_TIMEOUT);
    (b, ids[0])
}

/// The pids of the browser's `renderer` processes that no tab owns.
fn spare_renderers(b: &Browser) -> Vec<i32> {
    let owned: BTreeSet<i32> = b
        .tab_ids()
        .into_iter()
        .filter_map(|id| b.renderer_pid(id))
        .collect();
    b.tree()
        .into_iter()
        .filter(|p| p.name() == "renderer" && !owned.contains(&p.pid))
        .map(|p| p.pid)
        .collect()
}

/// Waits for a spare whose web process runs (the warm-up load started it), other than `not`.
fn wait_warm_spare(b: &Browser, not: Option<i32>) -> i32 {
    wait_until(SPARE_TIMEOUT, || {
        let spares = spare_renderers(b);
        assert!(
            spares.len() <= 1,
            "at most one spare: {spares:?}\n{}",
            describe(&b.tree())
        );
        spares
            .first()
            .copied()
            .filter(|&pid| Some(pid) != not && !web_processes(pid).is_empty())
    })
    .unwrap_or_else(|| {
        panic!(
            "no warm spare renderer within {SPARE_TIMEOUT:?}:\n{}\n{}",
            describe(&b.tree()),
            b.log()
        )
    })
}

#[test]
fn a_new_tab_takes_the_warm_spare_and_keeps_no_trace_of_its_warm_up() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let first = http.html("/first", &solid_page("first", "#ffffff"));
    let red = http.html("/red", &solid_page("red", "#ff0000"));
    let (b, _) = start(&x, &first, &[]);

    let spare = wait_warm_spare(&b, None);
    let web_before: Vec<i32> = web_processes(spare).iter().map(|p| p.pid).collect();
    // The Task Manager shows it as the spare, in no tab; its processes are counted.
    let reply = b.ok("task_manager", Value::Null);
    let rows = reply["processes"].as_array().expect("a process list");
    let spare_rows: Vec<&Value> = rows.iter().filter(|r| r["kind"] == "spare").collect();
    assert!(!spare_rows.is_empty(), "no spare row: {reply}");
    assert!(
        spare_rows.iter().all(|r| r["tab_id"].is_null()),
        "a spare row in a tab: {reply}"
    );
    let row_of_spare = rows
        .iter()
        .find(|r| r["pid"] == json!(spare))
        .unwrap_or_else(|| panic!("the spare renderer {spare} has no row: {reply}"));
    assert!(row_of_spare["tab_id"].is_null(), "{row_of_spare}");
    let tab = b.new_tab(&red);
    assert_eq!(
        b.renderer_pid(tab),
        Some(spare),
        "the new tab runs in the spare: {:?}",
        b.tab(tab)
    );
    b.wait_loaded(tab, Some(&red), LOAD_TIMEOUT);
    expect_content(&x, [255, 0, 0], "spare new tab");
    // The page runs in the web process the spare started ahead of it.
    let web_after: Vec<i32> = web_processes(spare).iter().map(|p| p.pid).collect();
    assert_eq!(web_after, web_before, "no new web process for the tab");
    // The warm-up page is not in the tab's history, and was never reported.
    assert_eq!(b.eval(tab, "history.length"), Ok(json!(1)));
    let info = b.tab(tab).expect("the tab");
    assert_eq!(info["url"], json!(red));
    assert_eq!(info["title"], json!("red"));
    assert!(
        !b.log().contains("about:blank"),
        "the warm-up load reached the browser:\n{}",
        b.log()
    );

    // Another spare follows, for the next tab.
    let next = wait_warm_spare(&b, Some(spare));
    assert_ne!(next, spare);
}

#[test]
fn a_discarded_tab_is_restored_in_the_spare_with_its_history() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let one = http.html("/one", &solid_page("one", "#ffffff"));
    let two = http.html("/two", &solid_page("two", "#0000ff"));
    let other = http.html("/other", &solid_page("other", "#00ff00"));
    let (b, tab) = start(&x, &one, &[]);
    b.ok("navigate", json!({ "tab_id": tab, "url": two }));
    b.wait_loaded(tab, Some(&two), LOAD_TIMEOUT);
    let second = b.new_tab(&other);
    b.wait_loaded(second, Some(&other), LOAD_TIMEOUT);
    b.ok("discard", json!({ "tab_id": tab }));
    assert_eq!(b.state(tab).as_deref(), Some("discarded"));

    let spare = wait_warm_spare(&b, None);
    b.ok("activate", json!({ "tab_id": tab }));
    assert_eq!(b.renderer_pid(tab), Some(spare), "restored in the spare");
    b.wait_loaded(tab, Some(&two), LOAD_TIMEOUT);
    expect_content(&x, [0, 0, 255], "restored in the spare");
    assert_eq!(b.eval(tab, "history.length"), Ok(json!(2)));
    b.ok("back", json!({ "tab_id": tab }));
    b.wait_loaded(tab, Some(&one), LOAD_TIMEOUT);
    expect_content(&x, [255, 255, 255], "back after the restore");
}

#[test]
fn a_killed_spare_is_not_a_tab_and_new_tabs_still_open() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let first = http.html("/first", &solid_page("first", "#ffffff"));
    let red = http.html("/red", &solid_page("red", "#ff0000"));
    let (b, first_tab) = start(&x, &first, &[]);
    let spare = wait_warm_spare(&b, None);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(spare),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the spare");
    wait_until(Duration::from_secs(10), || {
        spare_renderers(&b).is_empty().then_some(())
    })
    .expect("the killed spare's tree is gone");
    assert_eq!(b.tab_ids(), vec![first_tab], "no tab came or went");
    assert_eq!(b.state(first_tab).as_deref(), Some("active"));

    let tab = b.new_tab(&red);
    b.wait_loaded(tab, Some(&red), LOAD_TIMEOUT);
    expect_content(&x, [255, 0, 0], "new tab after the spare died");
    assert!(b.try_exit_status().is_none(), "the browser runs on");
}

#[test]
fn no_spare_with_no_spare_renderer() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let first = http.html("/first", &solid_page("first", "#ffffff"));
    let (b, _) = start(&x, &first, &["--no-spare-renderer"]);
    // The browser looks every second; several quiet seconds would have started one.
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        spare_renderers(&b).is_empty(),
        "a spare despite --no-spare-renderer:\n{}",
        describe(&b.tree())
    );
}
