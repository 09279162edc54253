//! End-to-end: real X input (xdotool) — a click and typed keys reach a page's input, and the browser's Ctrl+T works while a page has focus, even one that swallows every key.

use std::time::Duration;

use serde_json::{json, Value};
use warren_tests::{wait_until, Browser, BrowserOpts, HttpServer, Xvfb, LOAD_TIMEOUT};

/// A page with a big input at its top-left corner; it records every keydown it sees.
const INPUT_PAGE: &str = "<!doctype html><html style=\"margin:0;height:100%;background:#ffffff\">\
<head><meta charset=\"utf-8\"><title>input</title></head><body style=\"margin:0\">\
<input id=\"i\" autocomplete=\"off\" style=\"position:absolute;left:0;top:0;width:600px;height:250px;\
margin:0;border:0;padding:0;font-size:40px;background:#ffffcc\">\
<script>window.keys = []; document.addEventListener('keydown', e => keys.push(e.key), true);</script>\
</body></html>";

/// A page that swallows every key on window and document (capture phase), counting them.
const SWALLOW_PAGE: &str = "<!doctype html><html style=\"margin:0;height:100%;background:#ccffcc\">\
<head><meta charset=\"utf-8\"><title>swallow</title></head><body style=\"margin:0;height:100%\">\
<script>window.seen = 0; for (const t of [window, document]) { for (const k of ['keydown', 'keypress', 'keyup']) {\
t.addEventListener(k, e => { if (k === 'keydown') window.seen++; e.preventDefault(); e.stopPropagation(); }, true); } }\
</script></body></html>";

/// A screen point inside the input: the window is at (0,0), the chrome at most 80 px tall, so
/// page y 120..200 lies here whatever the chrome's height.
const INPUT_POINT: (&str, &str) = ("300", "200");

fn click(x: &Xvfb, (px, py): (&str, &str)) {
    x.xdotool(&["mousemove", px, py]);
    std::thread::sleep(Duration::from_millis(200));
    x.xdotool(&["click", "1"]);
    std::thread::sleep(Duration::from_millis(500));
}

fn input_value(b: &Browser, tab: u64) -> Value {
    b.eval(tab, "document.getElementById('i').value")
        .unwrap_or(Value::Null)
}

/// What the page knows about focus, for failure messages.
fn focus_report(b: &Browser, tab: u64) -> String {
    format!(
        "{:?}",
        b.eval(
            tab,
            "({focus: document.hasFocus(), active: document.activeElement && document.activeElement.id, \
              keys: window.keys || null, seen: window.seen === undefined ? null : window.seen})"
        )
    )
}

fn start(x: &Xvfb, url: &str) -> (Browser, u64) {
    let b = Browser::start(
        x,
        BrowserOpts {
            urls: vec![url.to_string()],
            ..Default::default()
        },
    );
    let tab = b.tab_ids()[0];
    b.wait_loaded(tab, Some(url), LOAD_TIMEOUT);
    // Give the view a moment to be mapped and painted before clicking into it.
    std::thread::sleep(Duration::from_secs(1));
    (b, tab)
}

#[test]
fn click_and_typing_reach_a_pages_input() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let url = http.html("/input", INPUT_PAGE);
    let (b, tab) = start(&x, &url);

    click(&x, INPUT_POINT);
    x.xdotool(&["type", "--delay", "60", "hello"]);
    let typed = wait_until(Duration::from_secs(5), || {
        (input_value(&b, tab) == json!("hello")).then_some(())
    });
    assert!(
        typed.is_some(),
        "typing `hello` after a click into the input left it at {}; page: {}",
        input_value(&b, tab),
        focus_report(&b, tab)
    );
}

#[test]
fn ctrl_t_opens_a_tab_while_a_page_has_focus() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let url = http.html("/input", INPUT_PAGE);
    let swallow = http.html("/swallow", SWALLOW_PAGE);
    let (b, tab) = start(&x, &url);

    // Focus is in the page: a typed key lands in the input.
    click(&x, INPUT_POINT);
    x.xdotool(&["type", "--delay", "60", "a"]);
    let focused = wait_until(Duration::from_secs(5), || {
        (input_value(&b, tab) == json!("a")).then_some(())
    });
    assert!(
        focused.is_some(),
        "the page did not get keyboard focus: {}",
        focus_report(&b, tab)
    );
    assert!(
        ctrl_t_opens_a_tab(&x, &b),
        "Ctrl+T in a focused page did not open a tab: {:?}",
        b.tabs()
    );
    let keys = b.eval(tab, "window.keys").unwrap_or(Value::Null);
    eprintln!("keys the input page saw: {keys}");

    // A page that calls preventDefault on every key cannot swallow the shortcut.
    let eater = b.new_tab(&swallow);
    b.wait_loaded(eater, Some(&swallow), LOAD_TIMEOUT);
    std::thread::sleep(Duration::from_secs(1));
    click(&x, ("500", "400"));
    x.xdotool(&["type", "--delay", "60", "xy"]);
    let seen = wait_until(Duration::from_secs(5), || {
        let n = b.eval(eater, "window.seen").ok()?.as_u64()?;
        (n > 0).then_some(n)
    });
    assert!(
        seen.is_some(),
        "the swallowing page never saw a key, so it had no focus: {}",
        focus_report(&b, eater)
    );
    assert!(
        ctrl_t_opens_a_tab(&x, &b),
        "Ctrl+T in a page that swallows keys did not open a tab: {:?}; page: {}",
        b.tabs(),
        focus_report(&b, eater)
    );
}

/// A page whose top-left corner is one big `target=_blank` link.
fn link_page(target: &str) -> String {
    format!(
        "<!doctype html><html style=\"margin:0;height:100%;background:#ffffff\">\
         <head><meta charset=\"utf-8\"><title>link</title></head><body style=\"margin:0\">\
         <a href=\"{target}\" target=\"_blank\" style=\"display:block;position:absolute;left:0;top:0;\
         width:600px;height:250px;background:#ccccff\">open</a></body></html>"
    )
}

fn active_tab(b: &Browser) -> Option<u64> {
    b.tabs()
        .into_iter()
        .find(|t| t.get("state") == Some(&json!("active")))?
        .get("tab_id")?
        .as_u64()
}

fn wait_active(b: &Browser, tab: u64, after: &str) {
    let ok = wait_until(Duration::from_secs(10), || {
        (active_tab(b) == Some(tab)).then_some(())
    });
    assert!(
        ok.is_some(),
        "after {after}, tab {tab} should be active: {:?}",
        b.tabs()
    );
}

#[test]
fn tab_shortcuts_and_target_blank_links_work_from_a_focused_page() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let target = http.html("/target", "<!doctype html><title>target</title>");
    let link = http.html("/link", &link_page(&target));
    let input = http.html("/input", INPUT_PAGE);
    let (b, first) = start(&x, &link);
    let second = b.new_tab(&input);
    b.wait_loaded(second, Some(&input), LOAD_TIMEOUT);
    std::thread::sleep(Duration::from_secs(1));
    click(&x, INPUT_POINT);
    x.xdotool(&["type", "--delay", "60", "a"]);
    let focused = wait_until(Duration::from_secs(5), || {
        (input_value(&b, second) == json!("a")).then_some(())
    });
    assert!(
        focused.is_some(),
        "the page did not get keyboard focus: {}",
        focus_report(&b, second)
    );

    x.xdotool(&["key", "ctrl+1"]);
    wait_active(&b, first, "Ctrl+1");
    x.xdotool(&["key", "ctrl+Tab"]);
    wait_active(&b, second, "Ctrl+Tab");
    x.xdotool(&["key", "ctrl+w"]);
    let closed = wait_until(Duration::from_secs(10), || {
        (b.tab_ids() == vec![first]).then_some(())
    });
    assert!(
        closed.is_some(),
        "Ctrl+W should close the active tab: {:?}",
        b.tabs()
    );
    wait_active(&b, first, "closing the last tab with Ctrl+W");
    assert_eq!(
        input_value(&b, second),
        Value::Null,
        "the closed tab is gone"
    );

    // A click on a target=_blank link opens the target in a new tab.
    std::thread::sleep(Duration::from_secs(1));
    click(&x, INPUT_POINT);
    let opened = wait_until(Duration::from_secs(15), || {
        b.tabs()
            .into_iter()
            .find(|t| t.get("url") == Some(&json!(target)))
    });
    assert!(
        opened.is_some(),
        "clicking a target=_blank link should open {target} in a tab: {:?}",
        b.tabs()
    );
    assert_eq!(b.tabs().len(), 2, "{:?}", b.tabs());
}

/// Types Ctrl+T and waits for exactly one more tab.
fn ctrl_t_opens_a_tab(x: &Xvfb, b: &Browser) -> bool {
    let before = b.tabs().len();
    x.xdotool(&["key", "ctrl+t"]);
    wait_until(Duration::from_secs(10), || {
        (b.tabs().len() == before + 1).then_some(())
    })
    .is_some()
}
