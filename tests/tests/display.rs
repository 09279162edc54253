//! End-to-end: what the user sees — the active tab's page in the content area (X screenshots), and titles and URLs reaching the tab list.

use std::time::Duration;

use serde_json::{json, Value};
use warren_tests::{
    expect_content, solid_page, wait_until, Browser, BrowserOpts, HttpServer, Xvfb, LOAD_TIMEOUT,
};

const RED: [u8; 3] = [0xff, 0x00, 0x00];
const BLUE: [u8; 3] = [0x00, 0x00, 0xff];

fn state(b: &Browser, tab: u64) -> String {
    b.state(tab).unwrap_or_default()
}

#[test]
fn activate_shows_that_tabs_page() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let red = http.html("/red", &solid_page("red", "#ff0000"));
    let blue = http.html("/blue", &solid_page("blue", "#0000ff"));
    let (b, red_tab) = Browser::start_on(&x, &red);
    expect_content(&x, RED, "display first tab");

    let blue_tab = b.new_tab(&blue);
    b.wait_loaded(blue_tab, Some(&blue), LOAD_TIMEOUT);
    assert_eq!(
        state(&b, blue_tab),
        "active",
        "a new foreground tab is active"
    );
    assert_eq!(state(&b, red_tab), "background");
    expect_content(&x, BLUE, "display new foreground tab");

    b.ok("activate", json!({ "tab_id": red_tab }));
    assert_eq!(state(&b, red_tab), "active");
    expect_content(&x, RED, "display after activating the red tab");

    b.ok("activate", json!({ "tab_id": blue_tab }));
    assert_eq!(state(&b, blue_tab), "active");
    expect_content(&x, BLUE, "display after activating the blue tab again");

    // A background tab does not take over the content area.
    let bg = b.new_tab_with(&red, true);
    b.wait_loaded(bg, Some(&red), LOAD_TIMEOUT);
    assert_eq!(state(&b, bg), "background");
    std::thread::sleep(Duration::from_secs(1));
    expect_content(&x, BLUE, "display after opening a background tab");
}

#[test]
fn title_and_url_reach_tabs() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let first_title = "Grüße — 世界";
    let first = http.html("/first", &solid_page(first_title, "#ffffff"));
    let second_title = "Zweite Seite ✓ ñ 🦀";
    let second = http.html(
        "/second",
        &format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>placeholder</title></head>\
             <body style=\"margin:0\"><script>\
             addEventListener('load', () => setTimeout(() => {{ document.title = {}; }}, 200));\
             </script></body></html>",
            json!(second_title)
        ),
    );
    let b = Browser::start(
        &x,
        BrowserOpts {
            urls: vec![first.clone()],
            ..Default::default()
        },
    );
    let tab = b.tab_ids()[0];

    let wait_tab = |url: &str, title: &str| {
        let mut last = None;
        let ok = wait_until(LOAD_TIMEOUT, || {
            let t = b.tab(tab);
            last = t.clone();
            let t = t?;
            (t.get("url") == Some(&json!(url)) && t.get("title") == Some(&json!(title)))
                .then_some(t)
        });
        ok.unwrap_or_else(|| {
            panic!("tab {tab} should show url {url:?} and title {title:?}; last entry: {last:?}")
        })
    };
    let entry = wait_tab(&first, first_title);
    for field in [
        "tab_id",
        "index",
        "url",
        "title",
        "state",
        "loading",
        "responsive",
        "pinned",
        "renderer_pid",
    ] {
        assert!(
            entry.get(field).is_some(),
            "`tabs` entry lacks {field:?}: {entry}"
        );
    }
    assert_eq!(entry.get("index"), Some(&json!(0)));
    assert_eq!(entry.get("pinned"), Some(&json!(false)));
    assert_eq!(entry.get("responsive"), Some(&json!(true)));

    b.ok("navigate", json!({ "tab_id": tab, "url": second }));
    wait_tab(&second, second_title);
    let loading = wait_until(Duration::from_secs(10), || {
        (b.tab(tab)?.get("loading") == Some(&Value::Bool(false))).then_some(())
    });
    assert!(
        loading.is_some(),
        "the tab should stop loading: {:?}",
        b.tab(tab)
    );

    // History: back shows the first page's title and URL again, forward the second's.
    b.ok("back", json!({ "tab_id": tab }));
    wait_tab(&first, first_title);
    b.ok("forward", json!({ "tab_id": tab }));
    wait_tab(&second, second_title);
}
