//! End-to-end: renderers that break the up-channel contract end up crashed while the browser stays up and responsive.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warren_tests::procs::{describe, rss_kb};
use warren_tests::{wait_until, Browser, BrowserOpts, HttpServer, Proc, Xvfb};

/// Every hostile mode, one tab each.
const MODES: [&str; 10] = [
    "garbage",
    "oversize",
    "fds",
    "flood",
    "silent",
    "wrong-tab",
    "bad-server-name",
    "bad-server-name-dotdot",
    "bad-server-name-symlink",
    "bad-scheme",
];

/// How long a request may take while hostile renderers attack; far above a healthy reply, far
/// below the 15 s at which the harness gives up on the connection.
const PROMPT: Duration = Duration::from_secs(3);

#[test]
fn hostile_renderers_crash_only_their_tabs() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let page = http.html("/p", "<!doctype html><title>p</title>");
    let scratch = tempfile::tempdir().expect("temp dir");
    // Tab ids count from 1 in opening order: the command-line tab gets MODES[0], and so on.
    let spec = MODES
        .iter()
        .enumerate()
        .map(|(i, mode)| format!("{}={mode}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let b = Browser::start(
        &x,
        BrowserOpts {
            renderer: Some(env!("CARGO_BIN_EXE_hostile-renderer").into()),
            urls: vec![page.clone()],
            renderer_env: vec![
                ("WARREN_HOSTILE_MODE".into(), format!("by-tab:{spec}")),
                (
                    "WARREN_HOSTILE_OUTSIDE_DIR".into(),
                    scratch.path().join("outside").display().to_string(),
                ),
            ],
            ..Default::default()
        },
    );
    let rss_before = rss_kb(b.pid()).unwrap_or(0);
    let devnull_before = devnull_descriptors(b.pid());
    let mut tabs = b.tab_ids();
    assert_eq!(tabs.len(), 1);
    let mut worst = Duration::ZERO;
    let mut timed = |what: &str, f: &mut dyn FnMut() -> Value| {
        let start = Instant::now();
        let v = f();
        let took = start.elapsed();
        worst = worst.max(took);
        assert!(
            took < PROMPT,
            "`{what}` took {took:?} while hostile renderers ran"
        );
        v
    };
    for _ in 1..MODES.len() {
        let r = timed("new_tab", &mut || {
            b.ok("new_tab", json!({ "url": page, "background": true }))
        });
        tabs.push(r.get("tab_id").and_then(Value::as_u64).expect("tab_id"));
    }

    // Which tab got which mode: each renderer says so on its first line.
    let modes: BTreeMap<u64, String> = wait_until(Duration::from_secs(20), || {
        let map = started_modes(&b.log());
        (map.len() == MODES.len()).then_some(map)
    })
    .unwrap_or_else(|| {
        panic!(
            "not every tab started a hostile renderer; tabs: {:?}",
            b.tabs()
        )
    });
    for (i, mode) in MODES.iter().enumerate() {
        assert_eq!(
            modes.get(&(i as u64 + 1)).map(String::as_str),
            Some(*mode),
            "tab {} runs the wrong mode: {modes:?}",
            i + 1
        );
    }
    eprintln!("modes by tab: {modes:?}");

    // Until every tab is crashed: the browser answers `version` and `tabs` promptly throughout.
    let deadline = Instant::now() + Duration::from_secs(25);
    let mut crashed_at: BTreeMap<u64, Duration> = BTreeMap::new();
    let started = Instant::now();
    loop {
        let v = timed("version", &mut || b.ok("version", Value::Null));
        assert_eq!(v.get("pid").and_then(Value::as_i64), Some(b.pid() as i64));
        let list = timed("tabs", &mut || b.ok("tabs", Value::Null));
        let list = list.as_array().expect("tabs is a list").clone();
        assert_eq!(list.len(), MODES.len(), "no tab may disappear: {list:?}");
        for t in &list {
            let id = t.get("tab_id").and_then(Value::as_u64).unwrap_or(0);
            if t.get("state") == Some(&json!("crashed")) {
                crashed_at.entry(id).or_insert_with(|| started.elapsed());
            }
        }
        if crashed_at.len() == MODES.len() {
            break;
        }
        if Instant::now() > deadline {
            let missing: Vec<String> = list
                .iter()
                .filter(|t| t.get("state") != Some(&json!("crashed")))
                .map(|t| {
                    let id = t.get("tab_id").and_then(Value::as_u64).unwrap_or(0);
                    format!(
                        "tab {id} ({}) is {}",
                        modes.get(&id).map_or("?", String::as_str),
                        t
                    )
                })
                .collect();
            panic!(
                "25 s on, these hostile tabs are not crashed:\n{}",
                missing.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    for (tab, at) in &crashed_at {
        eprintln!(
            "tab {tab} ({}) crashed by {at:?}",
            modes.get(tab).map_or("?", String::as_str)
        );
    }
    eprintln!("slowest control reply while under attack: {worst:?}");

    // A crashed tab has no renderer and refuses eval quickly.
    for tab in &tabs {
        let entry = b.tab(*tab).expect("tab still listed");
        assert_eq!(
            entry.get("renderer_pid"),
            Some(&Value::Null),
            "crashed tab {entry}"
        );
        assert!(
            b.eval(*tab, "1").is_err(),
            "eval in crashed tab {tab} must fail"
        );
    }

    // No hostile renderer survives, and the browser did not balloon on the flood.
    let hostile_left = wait_until(Duration::from_secs(5), || {
        let left: Vec<Proc> = b
            .tree()
            .into_iter()
            .filter(|p| p.name() == "hostile-renderer")
            .collect();
        left.is_empty().then_some(())
    });
    assert!(
        hostile_left.is_some(),
        "hostile renderers still alive:\n{}",
        describe(
            &b.tree()
                .into_iter()
                .filter(|p| p.name() == "hostile-renderer")
                .collect::<Vec<_>>()
        )
    );
    let rss_after = rss_kb(b.pid()).unwrap_or(0);
    eprintln!("browser RSS: {rss_before} KiB before, {rss_after} KiB after");
    assert!(
        rss_after < rss_before + 300 * 1024,
        "the browser grew from {rss_before} KiB to {rss_after} KiB under hostile renderers"
    );
    // The `fds` renderer sent 64 descriptors of /dev/null: none may stay open in the browser.
    let devnull_after = devnull_descriptors(b.pid());
    assert!(
        devnull_after <= devnull_before,
        "the browser holds {devnull_after} descriptors of /dev/null, {devnull_before} before the hostile renderers"
    );
    let log = b.log();
    assert!(
        !log.contains("HOSTILE-RENDERER-UNCAUGHT"),
        "the browser went along with a hostile renderer:\n{}",
        log.lines()
            .filter(|l| l.contains("HOSTILE-RENDERER-UNCAUGHT"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(b.try_exit_status(), None, "the browser must still run");
    // Shown with --nocapture: why the browser ended each renderer.
    eprintln!("browser log:\n{log}");
}

/// The mode each hostile renderer reported starting with (`hostile-renderer: tab N pid P mode M`),
/// by tab.
fn started_modes(log: &str) -> BTreeMap<u64, String> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split_once("hostile-renderer: tab ")?.1;
            let (tab, rest) = rest.split_once(" pid ")?;
            let (_, mode) = rest.split_once(" mode ")?;
            Some((tab.parse().ok()?, mode.trim().to_owned()))
        })
        .collect()
}

/// How many of a process's open descriptors refer to /dev/null.
fn devnull_descriptors(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t == std::path::Path::new("/dev/null"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// A renderer that claims its tab shows a local file the user never opened (in its URL, its
/// history and the state it reports for a discard) gets nothing of it back: the renderer that
/// restores the tab, the one that reloads it after a crash, and the saved session only ever see
/// the page the user opened.
#[test]
fn forged_history_is_never_restored_reloaded_or_saved() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let page = http.html("/start", "<!doctype html><title>start</title>");
    let b = Browser::start(
        &x,
        BrowserOpts {
            renderer: Some(env!("CARGO_BIN_EXE_hostile-renderer").into()),
            urls: vec![page.clone()],
            renderer_env: vec![("WARREN_HOSTILE_MODE".into(), "forge-state".into())],
            ..Default::default()
        },
    );
    let tab = b.tab_ids()[0];
    let claimed = wait_until(Duration::from_secs(20), || {
        b.tab(tab)
            .filter(|t| t["url"] == "file:///etc/passwd")
            .map(|_| ())
    });
    assert!(
        claimed.is_some(),
        "the hostile renderer's claim never arrived"
    );
    let other = b.new_tab(&page);
    b.ok("activate", json!({ "tab_id": other }));

    // Discard: the renderer answers the capture with the forged history.
    let discarded = b.ok("discard", json!({ "tab_id": tab }));
    assert!(discarded.get("freed_kb").is_some(), "{discarded}");
    assert_eq!(b.state(tab).as_deref(), Some("discarded"));

    // Restore: the new renderer is launched on the page the user opened, with no forged history.
    let launches_before = launches(&b.log(), tab).len();
    b.ok("activate", json!({ "tab_id": tab }));
    let launch = wait_until(Duration::from_secs(20), || {
        launches(&b.log(), tab).get(launches_before).cloned()
    })
    .expect("the restored tab's renderer was launched");
    assert_eq!(launch, format!("url={page} restore=none"), "{}", b.log());

    // Reload after a crash: the same.
    b.ok("end_process", json!({ "tab_id": tab }));
    let launches_before = launches(&b.log(), tab).len();
    b.ok("reload", json!({ "tab_id": tab }));
    let launch = wait_until(Duration::from_secs(20), || {
        launches(&b.log(), tab).get(launches_before).cloned()
    })
    .expect("the reloaded tab's renderer was launched");
    assert_eq!(launch, format!("url={page} restore=none"), "{}", b.log());

    // The saved session holds the page, and nothing of the forged file.
    let profile = b.profile().to_path_buf();
    b.shutdown();
    let session = std::fs::read_to_string(profile.join("session.json")).expect("session saved");
    assert!(!session.contains("passwd"), "{session}");
    assert!(session.contains(&page), "{session}");
}

/// What each `forge-state` renderer of `tab` printed about its launch, oldest first.
fn launches(log: &str, tab: u64) -> Vec<String> {
    let prefix = format!("hostile-renderer: tab {tab} launched with ");
    log.lines()
        .filter_map(|l| l.split_once(&prefix).map(|(_, rest)| rest.to_owned()))
        .collect()
}
