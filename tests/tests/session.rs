//! End-to-end: session restore — the tabs come back after `shutdown` and after kill -9, and a garbage or hostile `session.json` is moved aside without opening anything forbidden.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;
use warren_tests::procs::still_alive;
use warren_tests::{solid_page, wait_until, Browser, BrowserOpts, HttpServer, Xvfb, LOAD_TIMEOUT};

/// A page 10000 px tall.
const TALL_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>tall</title></head>\
<body style=\"margin:0\"><div style=\"height:10000px;background:linear-gradient(#ffffff,#8080ff)\"></div>\
</body></html>";

/// The scroll offset the active tab is left at before `shutdown`.
const SCROLL_Y: f64 = 1234.0;

/// A file no restored tab may open: the user never opened a `file:` URL in it.
const FORBIDDEN: &str = "file:///etc/passwd";

/// Creates a profile directory (mode 0700) inside a temporary directory the test owns, so it
/// outlives the browsers started on it.
fn own_profile() -> (TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("warren-session-")
        .tempdir()
        .expect("temp dir");
    let profile = dir.path().join("profile");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&profile)
        .expect("create the profile directory");
    (dir, profile)
}

/// Starts a browser on `profile` with `urls` (and `--low-memory-percent 0`, so memory pressure
/// on a shared machine cannot discard a tab behind the test's back).
fn start(x: &Xvfb, profile: &Path, urls: &[&str]) -> Browser {
    Browser::start(
        x,
        BrowserOpts {
            urls: urls.iter().map(|u| u.to_string()).collect(),
            profile: Some(profile.to_owned()),
            args: vec!["--low-memory-percent".into(), "0".into()],
            ..Default::default()
        },
    )
}

fn open(b: &Browser, url: &str) -> u64 {
    let tab = b.new_tab(url);
    b.wait_loaded(tab, Some(url), LOAD_TIMEOUT);
    tab
}

/// Tabs as (url, pinned), in strip order.
type Strip = Vec<(String, bool)>;

/// The saved session's tabs and its active index, if the file parses.
fn saved(profile: &Path) -> Option<(Strip, Option<u64>)> {
    let bytes = std::fs::read(profile.join("session.json")).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let tabs = v["tabs"]
        .as_array()?
        .iter()
        .map(|t| Some((t["url"].as_str()?.to_owned(), t["pinned"].as_bool()?)))
        .collect::<Option<Vec<_>>>()?;
    Some((tabs, v["active"].as_u64()))
}

/// The browser's tabs.
fn strip(b: &Browser) -> Strip {
    b.tabs()
        .iter()
        .map(|t| {
            (
                t["url"].as_str().unwrap_or_default().to_owned(),
                t["pinned"] == json!(true),
            )
        })
        .collect()
}

/// Checks a relaunched browser: the tabs `want` in that order, the one at `active` restored
/// live and loaded, every other one discarded without a renderer. Returns the active tab's id.
fn assert_restored(b: &Browser, want: &[(String, bool)], active: usize) -> u64 {
    let same = wait_until(Duration::from_secs(10), || (strip(b) == want).then_some(()));
    assert!(
        same.is_some(),
        "the restored tabs (url, pinned) are {:?}, not {want:?}",
        strip(b)
    );
    let tabs = b.tabs();
    let id = tabs[active]["tab_id"].as_u64().expect("tab_id");
    b.wait_loaded(id, Some(&want[active].0), LOAD_TIMEOUT);
    for (i, row) in b.tabs().iter().enumerate() {
        if i == active {
            assert_eq!(row["state"], json!("active"), "{row}");
            assert!(row["renderer_pid"].is_u64(), "no renderer: {row}");
        } else {
            assert_eq!(row["state"], json!("discarded"), "{row}");
            assert_eq!(row["renderer_pid"], Value::Null, "{row}");
        }
    }
    id
}

/// Waits (10 s) until the tab's page is scrolled to [`SCROLL_Y`].
fn wait_scrolled(b: &Browser, tab: u64) {
    let mut last = Err(String::new());
    let scrolled = wait_until(Duration::from_secs(10), || {
        last = b.eval(tab, "window.scrollY");
        (last.as_ref().ok()?.as_f64()? == SCROLL_Y).then_some(())
    });
    assert!(
        scrolled.is_some(),
        "tab {tab} is at scrollY {last:?}, not {SCROLL_Y}"
    );
}

/// How the first browser ends.
#[derive(Clone, Copy, PartialEq)]
enum End {
    Shutdown,
    Kill9,
}

/// Opens four tabs, pins the third, activates the second (a tall page, scrolled), ends the
/// browser, and relaunches it on the same profile: the same tabs come back.
fn tabs_come_back_after(end: End) {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let a = http.html("/a", &solid_page("a", "#ffe0e0"));
    let tall = http.html("/tall", TALL_PAGE);
    let c = http.html("/c", &solid_page("c", "#e0ffe0"));
    let d = http.html("/d", &solid_page("d", "#e0e0ff"));
    let (_dir, profile) = own_profile();

    let first = start(&x, &profile, &[&a]);
    first.wait_loaded(first.tab_ids()[0], Some(&a), LOAD_TIMEOUT);
    let tall_tab = open(&first, &tall);
    let c_tab = open(&first, &c);
    open(&first, &d);
    first.ok("pin", json!({ "tab_id": c_tab }));
    first.ok("activate", json!({ "tab_id": tall_tab }));
    first
        .eval(tall_tab, &format!("window.scrollTo(0, {SCROLL_Y})"))
        .expect("scroll");
    wait_scrolled(&first, tall_tab);
    let want: Strip = [(&c, true), (&a, false), (&tall, false), (&d, false)]
        .iter()
        .map(|(u, p)| (u.to_string(), *p))
        .collect();
    assert_eq!(strip(&first), want, "pinning moves the tab first");

    let tree = first.tree();
    match end {
        End::Shutdown => {
            let status = first.shutdown();
            assert!(status.success(), "`shutdown` exit status {status}");
        }
        End::Kill9 => {
            // The session is saved at most once a second after a change: wait until the file
            // shows the last one.
            let expected = Some((want.clone(), Some(2)));
            let written = wait_until(Duration::from_secs(10), || {
                (saved(&profile) == expected).then_some(())
            });
            assert!(
                written.is_some(),
                "session.json does not show the tabs {want:?} with tab 2 active: {:?}",
                saved(&profile)
            );
            first.kill9();
        }
    }
    // The old renderers end with the browser; the next one starts once they are gone.
    let _ = wait_until(Duration::from_secs(10), || {
        still_alive(&tree).is_empty().then_some(())
    });

    let second = start(&x, &profile, &[]);
    let active = assert_restored(&second, &want, 2);
    if end == End::Shutdown {
        wait_scrolled(&second, active);
    }
}

#[test]
fn tabs_come_back_after_shutdown() {
    tabs_come_back_after(End::Shutdown);
}

#[test]
fn tabs_come_back_after_kill_9() {
    tabs_come_back_after(End::Kill9);
}

/// Starts a browser on a profile holding `session` as its `session.json`: it must start with
/// one new tab, keep the file's bytes as `session.json.bad-*`, say so in its log, and load
/// nothing the file names (`never` are URLs it holds; none may be requested from `http`).
fn hostile_session_is_moved_aside(session: &[u8], http: &HttpServer, never: &[&str]) {
    let x = Xvfb::start();
    let (_dir, profile) = own_profile();
    std::fs::write(profile.join("session.json"), session).expect("write session.json");

    let b = start(&x, &profile, &[]);
    let ids = b.tab_ids();
    assert_eq!(ids.len(), 1, "one new tab expected: {:?}", b.tabs());
    b.wait_loaded(ids[0], None, LOAD_TIMEOUT);
    let row = b.tab(ids[0]).expect("the tab");
    assert_eq!(row["url"], json!(warren_ipc::NEW_TAB_URL), "{row}");
    assert_eq!(b.tab_ids(), ids, "no tab opened later: {:?}", b.tabs());

    let bad: Vec<PathBuf> = std::fs::read_dir(&profile)
        .expect("read the profile")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("session.json.bad-"))
        })
        .collect();
    assert_eq!(
        bad.len(),
        1,
        "one session.json.bad-* file expected: {bad:?}"
    );
    assert_eq!(
        std::fs::read(&bad[0]).expect("read the moved file"),
        session,
        "the moved file must hold the original bytes"
    );
    let name = bad[0].file_name().and_then(|n| n.to_str()).unwrap_or("?");
    let logged = wait_until(Duration::from_secs(5), || {
        b.log().contains(name).then_some(())
    });
    assert!(logged.is_some(), "the log does not mention {name}");
    for line in b.log().lines().filter(|l| l.contains(name)) {
        eprintln!("browser log: {line}");
    }

    for row in b.tabs() {
        for url in never {
            assert_ne!(row["url"], json!(url), "a forbidden URL was opened: {row}");
        }
    }
    let fetched: Vec<String> = http.requests().into_iter().map(|r| r.path).collect();
    assert!(
        fetched.is_empty(),
        "pages of the refused session were loaded: {fetched:?}"
    );
}

/// One tab of a session file in the format of `browser/src/session.rs`, without grants.
fn session_tab(url: &str, snapshot: Value) -> Value {
    json!({
        "url": url, "title": "t", "pinned": false, "last_active_ms": 1_767_225_600_000_u64,
        "grants": { "file": false, "data": false, "internal": false },
        "snapshot": snapshot,
    })
}

#[test]
fn garbage_session_file_is_moved_aside() {
    let http = HttpServer::start();
    hostile_session_is_moved_aside(b"this is {not JSON", &http, &[]);
}

#[test]
fn session_naming_a_file_the_tab_never_opened_is_moved_aside() {
    let http = HttpServer::start();
    let page = http.html("/page", &solid_page("page", "#ffffff"));
    let session = json!({
        "version": 1,
        "active": 1,
        "tabs": [session_tab(&page, Value::Null), session_tab(FORBIDDEN, Value::Null)],
    });
    hostile_session_is_moved_aside(session.to_string().as_bytes(), &http, &[FORBIDDEN]);
}

#[test]
fn session_whose_history_leads_to_a_file_is_moved_aside() {
    let http = HttpServer::start();
    let page = http.html("/page", &solid_page("page", "#ffffff"));
    // A web page whose Back entry is a local file the user never opened in the tab.
    let snapshot = json!({
        "history": {
            "entries": [{ "url": FORBIDDEN, "title": "passwd" }, { "url": page, "title": "page" }],
            "current": 1,
            "webkit_state": "",
        },
        "page": null,
    });
    let session = json!({ "version": 1, "active": 0, "tabs": [session_tab(&page, snapshot)] });
    hostile_session_is_moved_aside(session.to_string().as_bytes(), &http, &[FORBIDDEN]);
}

/// URLs on the command line open as new tabs after the restored ones, the first of them active;
/// the saved session's active tab then stays discarded. `--no-restore` starts with only the new
/// tab page, and the next save replaces the old session.
#[test]
fn command_line_urls_join_the_session_and_no_restore_starts_empty() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let a = http.html("/a", &solid_page("a", "#ffe0e0"));
    let b_url = http.html("/b", &solid_page("b", "#e0ffe0"));
    let extra = http.html("/extra", &solid_page("extra", "#e0e0ff"));
    let (_dir, profile) = own_profile();

    let first = start(&x, &profile, &[&a]);
    open(&first, &b_url);
    first.shutdown();

    let second = start(&x, &profile, &[&extra]);
    let want = [
        (a.clone(), false),
        (b_url.clone(), false),
        (extra.clone(), false),
    ];
    let id = assert_restored(&second, &want, 2);
    assert!(second.eval(id, "document.title").is_ok());
    second.shutdown();

    let third = Browser::start(
        &x,
        BrowserOpts {
            profile: Some(profile.clone()),
            args: vec![
                "--low-memory-percent".into(),
                "0".into(),
                "--no-restore".into(),
            ],
            ..Default::default()
        },
    );
    let tabs = third.tabs();
    assert_eq!(tabs.len(), 1, "{tabs:?}");
    assert_eq!(tabs[0]["url"], json!("warren://newtab/"));
    third.shutdown();
    let (saved_tabs, _) = saved(&profile).expect("a session was saved");
    assert_eq!(
        saved_tabs,
        vec![("warren://newtab/".to_owned(), false)],
        "the session saved after --no-restore is the new one"
    );
}
