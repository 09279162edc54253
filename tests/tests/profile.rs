//! End-to-end: the profile — cookies shared by the tabs of a profile, and a second launch on the same profile handing its URL to the running browser.

use std::time::Duration;

use serde_json::{json, Value};
use warren_tests::procs::pid_namespace;
use warren_tests::{
    run_browser_once, solid_page, wait_until, Browser, BrowserOpts, HttpServer, Xvfb, LOAD_TIMEOUT,
};

/// Cookies set in one tab (header and script) are seen by a later tab, whose renderer has its own
/// network process, and by a browser started later on the same profile: the cookie store works
/// from inside the renderer sandbox (on by default).
#[test]
fn cookie_set_in_one_tab_is_seen_by_a_later_tab() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    // One cookie from a Set-Cookie header, one from script, both persistent.
    http.route(
        "/set",
        "text/html; charset=utf-8",
        "<!doctype html><title>set</title><script>\
         document.cookie = 'warren_js=xyz789; expires=' + new Date(Date.now() + 3600e3).toUTCString() + '; path=/';\
         </script>",
        &[("Set-Cookie", "warren_http=abc123; Max-Age=3600; Path=/")],
    );
    let set = http.url("/set");
    let read = http.html("/read", "<!doctype html><title>read</title>");
    // The profile outlives the first browser (whose own temporary directory goes with it).
    let profile_dir = tempfile::tempdir().expect("temp dir");
    let profile = profile_dir.path().join("profile");
    let b = Browser::start(
        &x,
        BrowserOpts {
            profile: Some(profile.clone()),
            urls: vec![set.clone()],
            ..Default::default()
        },
    );
    let first = b.tab_ids()[0];
    b.wait_loaded(first, Some(&set), LOAD_TIMEOUT);
    // The cookie store must work from inside the sandbox (on by default): the renderer runs in a
    // PID namespace of its own, with only the profile's website data writable.
    let renderer = b.renderer_pid(first).expect("a renderer");
    assert_ne!(
        pid_namespace(renderer),
        pid_namespace(b.pid()),
        "the renderer must run sandboxed"
    );
    let own = b.eval(first, "document.cookie").unwrap_or(Value::Null);
    let own = own.as_str().unwrap_or_default();
    assert!(
        own.contains("warren_http=abc123") && own.contains("warren_js=xyz789"),
        "the setting tab should see its own cookies: {own:?}"
    );
    // Let the network process write its cookie store.
    std::thread::sleep(Duration::from_secs(2));

    let second = b.new_tab(&read);
    b.wait_loaded(second, Some(&read), LOAD_TIMEOUT);
    let seen = b.eval(second, "document.cookie").unwrap_or(Value::Null);
    let seen = seen.as_str().unwrap_or_default().to_string();
    let sent = http
        .requests()
        .iter()
        .rev()
        .find(|r| r.path == "/read")
        .and_then(|r| r.header("cookie").map(str::to_string));
    assert!(
        seen.contains("warren_http=abc123") && seen.contains("warren_js=xyz789"),
        "a tab opened later on the same origin should see both cookies; document.cookie = {seen:?}, \
         Cookie header of its request = {sent:?}"
    );
    assert!(
        sent.as_deref()
            .unwrap_or_default()
            .contains("warren_http=abc123"),
        "the later tab's request should carry the cookie: {sent:?}"
    );

    // And they persist: a new browser on the same profile sends them.
    assert!(b.shutdown().success(), "shutdown");
    drop(b);
    let b = Browser::start(
        &x,
        BrowserOpts {
            profile: Some(profile),
            urls: vec![read.clone()],
            args: vec!["--no-restore".into()],
            ..Default::default()
        },
    );
    let tab = b.tab_ids()[0];
    b.wait_loaded(tab, Some(&read), LOAD_TIMEOUT);
    let seen = b.eval(tab, "document.cookie").unwrap_or(Value::Null);
    assert!(
        seen.as_str()
            .is_some_and(|c| c.contains("warren_http=abc123") && c.contains("warren_js=xyz789")),
        "after a restart on the same profile the cookies are still there: {seen:?}"
    );
}

#[test]
fn second_launch_hands_its_url_to_the_running_browser() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let first = http.html("/first", &solid_page("first", "#ffffff"));
    let second = http.html("/second", &solid_page("second", "#eeeeee"));
    let b = Browser::start(
        &x,
        BrowserOpts {
            urls: vec![first.clone()],
            ..Default::default()
        },
    );
    b.wait_loaded(b.tab_ids()[0], Some(&first), LOAD_TIMEOUT);

    let profile = b
        .profile()
        .to_str()
        .expect("UTF-8 profile path")
        .to_string();
    let out = run_browser_once(
        x.display(),
        &["--profile", &profile, &second],
        Duration::from_secs(20),
    );
    match out.status {
        Some(status) => assert!(
            status.success(),
            "the second launch should exit 0, got {status}; its output:\n{}",
            out.output
        ),
        None => panic!(
            "the second launch was still running after 20 s; its output:\n{}",
            out.output
        ),
    }
    let added = wait_until(Duration::from_secs(15), || {
        b.tabs()
            .into_iter()
            .find(|t| t.get("url") == Some(&json!(second)))
    });
    let added = added.unwrap_or_else(|| {
        panic!(
            "the running browser did not open {second}; tabs: {:?}; second launch said:\n{}",
            b.tabs(),
            out.output
        )
    });
    assert_eq!(b.tabs().len(), 2, "exactly one tab added: {:?}", b.tabs());
    let tab = added.get("tab_id").and_then(Value::as_u64).expect("tab_id");
    b.wait_loaded(tab, Some(&second), LOAD_TIMEOUT);
    assert_eq!(b.eval(tab, "document.title"), Ok(json!("second")));
}
