//! End-to-end: bad input — garbage and invalid requests on the control socket get error replies on a connection that stays usable, and a missing file:// target shows an error page instead of crashing; plus the command line's `ctl`, `--help` and `--version`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{json, Value};
use warren_tests::browser::split_reply;
use warren_tests::{
    run_browser_once, solid_page, wait_until, Browser, BrowserOpts, HttpServer, Xvfb, LOAD_TIMEOUT,
};

#[test]
fn bad_control_input_gets_error_replies() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let page = http.html("/p", &solid_page("p", "#ffffff"));
    let (b, tab) = Browser::start_on(&x, &page);

    let mode = std::fs::metadata(b.socket())
        .expect("socket exists")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(
        mode, 0o600,
        "the control socket must be mode 0600, is {mode:o}"
    );

    let mut c = b.connect();
    let reply = c.raw("this is not json").expect("a reply to garbage");
    assert_eq!(reply.get("ok"), Some(&json!(false)), "{reply}");
    assert_eq!(
        reply.get("id"),
        Some(&Value::Null),
        "garbage has no id: {reply}"
    );
    assert!(
        reply
            .get("error")
            .and_then(Value::as_str)
            .is_some_and(|e| !e.is_empty()),
        "{reply}"
    );

    for line in [
        "[1, 2, 3]",
        "{\"id\": 5}",
        "{\"id\": 6, \"cmd\": 17}",
        "{\"id\": 7, \"cmd\": \"frobnicate\"}",
    ] {
        let reply = c
            .raw(line)
            .unwrap_or_else(|e| panic!("no reply to {line}: {e}"));
        assert_eq!(reply.get("ok"), Some(&json!(false)), "{line} → {reply}");
    }
    let reply = c.raw("{\"id\": 7, \"cmd\": \"frobnicate\"}").unwrap();
    assert_eq!(
        reply.get("id"),
        Some(&json!(7)),
        "the error reply carries the request id: {reply}"
    );

    let bad: [(&str, Value); 7] = [
        ("navigate", json!({ "tab_id": tab, "url": "javascript:x" })),
        ("new_tab", json!({ "url": "javascript:alert(1)" })),
        ("navigate", json!({ "tab_id": tab })),
        ("eval", json!({ "tab_id": 999_999, "js": "1" })),
        ("close", json!({ "tab_id": 999_999 })),
        ("activate", json!({ "tab_id": "one" })),
        ("eval", json!({ "tab_id": tab })),
    ];
    for (cmd, args) in bad {
        let reply = c
            .request(cmd, args.clone())
            .unwrap_or_else(|e| panic!("no reply to {cmd} {args}: {e}"));
        let result = split_reply(&reply);
        assert!(result.is_err(), "{cmd} {args} must be refused, got {reply}");
        eprintln!("{cmd} {args} → {}", result.unwrap_err());
    }
    // Nothing of that changed the tab.
    assert_eq!(b.tabs().len(), 1);
    assert_eq!(
        b.tab(tab).and_then(|t| t.get("url").cloned()),
        Some(json!(page))
    );

    // Clients that vanish mid-request harm nothing.
    {
        let mut s = UnixStream::connect(b.socket()).unwrap();
        s.write_all(b"{\"id\": 1, \"cmd\": \"tab").unwrap();
    }
    {
        let mut s = UnixStream::connect(b.socket()).unwrap();
        let req = json!({ "id": 1, "cmd": "eval", "tab_id": tab, "js": "new Promise(r => setTimeout(() => r(1), 500))" });
        s.write_all(format!("{req}\n").as_bytes()).unwrap();
    }
    std::thread::sleep(Duration::from_secs(1));

    // The same connection still works.
    let v = c
        .call("version", Value::Null)
        .expect("reply")
        .expect("version ok");
    assert_eq!(v.get("pid").and_then(Value::as_i64), Some(b.pid() as i64));
    for field in ["name", "version", "pid"] {
        assert!(v.get(field).is_some(), "version lacks {field}: {v}");
    }
    assert_eq!(
        c.call("eval", json!({ "tab_id": tab, "js": "6 * 7" }))
            .unwrap(),
        Ok(json!({ "value": 42 }))
    );

    // The command-line client sends one request and prints the reply.
    let socket = b.socket().to_str().unwrap().to_string();
    let out = run_browser_once(
        x.display(),
        &["ctl", "--socket", &socket, "version"],
        Duration::from_secs(15),
    );
    assert!(
        out.status.is_some_and(|s| s.success()),
        "browser ctl version: {out:?}"
    );
    assert!(
        out.output.contains(&b.pid().to_string()),
        "browser ctl version should print the pid: {}",
        out.output
    );
    let args = json!({ "tab_id": tab, "js": "document.title" }).to_string();
    let out = run_browser_once(
        x.display(),
        &["ctl", "--socket", &socket, "eval", &args],
        Duration::from_secs(15),
    );
    assert!(
        out.status.is_some_and(|s| s.success()),
        "browser ctl eval: {out:?}"
    );
    assert!(
        out.output.contains("\"p\""),
        "browser ctl eval should print the title: {}",
        out.output
    );

    let help = run_browser_once(x.display(), &["--help"], Duration::from_secs(10));
    assert!(help.status.is_some_and(|s| s.success()), "--help: {help:?}");
    assert!(
        help.output.contains("--control-socket") && help.output.contains("--profile"),
        "{}",
        help.output
    );
    let version = run_browser_once(x.display(), &["--version"], Duration::from_secs(10));
    assert!(
        version.status.is_some_and(|s| s.success()),
        "--version: {version:?}"
    );
    assert_eq!(b.try_exit_status(), None, "the browser must still run");
}

#[test]
fn missing_file_target_shows_an_error_page_not_a_crash() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let page = http.html("/p", &solid_page("p", "#ffffff"));
    let (b, tab) = Browser::start_on(&x, &page);
    let pid = b.renderer_pid(tab).expect("renderer");

    let missing = "file:///nonexistent/x.html";
    let reply = b.ctl("navigate", json!({ "tab_id": tab, "url": missing }));
    assert!(
        reply.is_ok(),
        "navigate to a missing file must be accepted (WebKit shows its error page): {reply:?}"
    );
    // The tab settles on the failed URL and stays live. The user opened a file its renderer's
    // sandbox was not made to show, so a fresh renderer (with that file's directory in its view)
    // loads it.
    let settled = wait_until(LOAD_TIMEOUT, || {
        let t = b.tab(tab)?;
        (t.get("loading") == Some(&json!(false)) && t.get("url") == Some(&json!(missing)))
            .then_some(t)
    });
    let entry =
        settled.unwrap_or_else(|| panic!("the tab should settle on {missing}: {:?}", b.tab(tab)));
    assert_ne!(entry.get("state"), Some(&json!("crashed")), "{entry}");
    let now = b.renderer_pid(tab);
    assert!(now.is_some(), "the tab keeps a live renderer: {entry}");
    eprintln!("renderer before the file: {pid}, after: {now:?}");
    assert_eq!(
        b.eval(tab, "1 + 1"),
        Ok(json!(2)),
        "the tab still runs script"
    );
    let text = b
        .eval(tab, "document.body ? document.body.innerText : ''")
        .unwrap_or(Value::Null);
    eprintln!("error page text: {text}");

    // And it can leave the error page again.
    b.ok("navigate", json!({ "tab_id": tab, "url": page }));
    b.wait_loaded(tab, Some(&page), LOAD_TIMEOUT);
}

/// A tab whose very first load fails (no such file, connection refused) has no committed address
/// at all; it must show WebKit's error page and stay live, not be ended as a renderer that sent a
/// bad URL.
#[test]
fn a_first_load_that_fails_leaves_a_live_tab() {
    let x = Xvfb::start();
    let b = Browser::start(&x, BrowserOpts::default());
    // A loopback port that was just free: nothing listens there, so the connection is refused at
    // once. (Not a low port such as 1 or 9: WebKit blocks those outright and shows about:blank.)
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        format!(
            "http://127.0.0.1:{}/",
            listener.local_addr().expect("local address").port()
        )
    };
    for url in ["file:///nonexistent/missing.html", refused.as_str()] {
        let tab = b
            .ok("new_tab", json!({ "url": url }))
            .get("tab_id")
            .and_then(Value::as_u64)
            .expect("tab_id");
        let settled = wait_until(LOAD_TIMEOUT, || {
            let t = b.tab(tab)?;
            (t.get("loading") == Some(&json!(false))).then_some(t)
        });
        let entry =
            settled.unwrap_or_else(|| panic!("{url}: the tab never settled: {:?}", b.tab(tab)));
        assert_ne!(
            entry.get("state"),
            Some(&json!("crashed")),
            "{url}: {entry}"
        );
        assert_eq!(
            entry.get("url"),
            Some(&json!(url)),
            "{url}: the address bar keeps the URL"
        );
        assert_eq!(
            b.eval(tab, "1 + 1"),
            Ok(json!(2)),
            "{url}: the tab still runs script"
        );
    }
}
