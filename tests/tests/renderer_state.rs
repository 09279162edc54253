//! End-to-end: the real renderer captures a tab's whole state (history, scroll offset, typed form fields) and a fresh renderer brings it back exactly, refusing a forged WebKit state; this test plays the browser.

use std::time::Duration;

use serde_json::json;
use warren_ipc::{
    BrowserToRenderer, FieldValue, FormField, HistoryEntry, PageState, RendererToBrowser,
    SessionHistory, TabSnapshot,
};
use warren_tests::renderer_driver::{Launched, ParentWindow, Renderer};
use warren_tests::{HttpServer, Xvfb, LOAD_TIMEOUT};

/// A page with a title and a colour, nothing else.
fn plain_page(title: &str) -> String {
    warren_tests::solid_page(title, "#ddeeff")
}

/// A 10000 px tall page with a text input and a password input at its top-left corner.
const FORM_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>C</title></head>\
<body style=\"margin:0\">\
<input id=\"q\" name=\"q\" style=\"position:absolute;left:0;top:0;width:600px;height:100px;font-size:40px\">\
<input id=\"pw\" name=\"pw\" type=\"password\" style=\"position:absolute;left:0;top:150px;width:600px;height:100px;font-size:40px\">\
<div style=\"height:10000px\"></div></body></html>";

/// What the test types into the text input, and into the password input.
const TYPED: &str = "hello warren";
const PASSWORD: &str = "hunter2";

/// Clicks at a point of the view (the parent window sits at the screen's top-left corner).
fn click(x: &Xvfb, px: u32, py: u32) {
    x.xdotool(&["mousemove", &px.to_string(), &py.to_string()]);
    std::thread::sleep(Duration::from_millis(200));
    x.xdotool(&["click", "1"]);
    std::thread::sleep(Duration::from_millis(300));
}

/// Launches a renderer on `url` and waits for the load.
fn launch(x: &Xvfb, parent: &ParentWindow, url: &str, restore: Option<TabSnapshot>) -> Renderer {
    let mut r = Renderer::start(
        x,
        parent,
        Launched {
            url: url.to_owned(),
            restore,
        },
    );
    r.wait_loaded(url, LOAD_TIMEOUT);
    r
}

fn navigate(r: &mut Renderer, url: &str) {
    r.send(BrowserToRenderer::Navigate {
        url: url.to_owned(),
    });
    r.wait_loaded(url, LOAD_TIMEOUT);
}

fn urls(history: &SessionHistory) -> Vec<&str> {
    history.entries.iter().map(|e| e.url.as_str()).collect()
}

#[test]
fn capture_then_restore_in_a_fresh_renderer() {
    let x = Xvfb::start();
    let parent = ParentWindow::create(&x);
    let http = HttpServer::start();
    let a = http.html("/a", &plain_page("A"));
    let b = http.html("/b", &plain_page("B"));
    let c = http.html("/c", FORM_PAGE);

    // (a) A → B → C, type into C's inputs, scroll it, capture.
    let mut r = launch(&x, &parent, &a, None);
    navigate(&mut r, &b);
    navigate(&mut r, &c);
    // The history is pushed unasked (at most once a second, the latest always arrives).
    r.wait_for(
        "HistoryState with A, B, C",
        Duration::from_secs(5),
        |m| match m {
            RendererToBrowser::HistoryState(h) if h.entries.len() == 3 && h.current == 2 => {
                Some(())
            }
            _ => None,
        },
    );

    click(&x, 300, 50);
    x.xdotool(&["type", "--delay", "40", TYPED]);
    r.wait_for(
        "FormEdited(true) after typing",
        Duration::from_secs(10),
        |m| (*m == RendererToBrowser::FormEdited(true)).then_some(()),
    );
    click(&x, 300, 200);
    x.xdotool(&["type", "--delay", "40", PASSWORD]);
    assert_eq!(
        r.eval("[document.getElementById('q').value, document.getElementById('pw').value]"),
        Ok(json!([TYPED, PASSWORD])),
        "typing reached both inputs"
    );
    // A "show password" toggle turns the password field into a text field, and the page names an
    // element after the document method the capture uses: neither may change what is captured.
    assert_eq!(
        r.eval(
            "document.getElementById('pw').type = 'text';\
             const img = document.createElement('img'); img.name = 'querySelectorAll';\
             document.body.appendChild(img); typeof document.querySelectorAll"
        ),
        Ok(json!("object")),
        "the page's element shadows document.querySelectorAll"
    );
    assert_eq!(
        r.eval("window.scrollTo(0, 3210); window.__marker = 1; window.scrollY"),
        Ok(json!(3210))
    );

    let (history, page) = r.capture();
    assert_eq!(urls(&history), vec![a.as_str(), b.as_str(), c.as_str()]);
    assert_eq!(history.current, 2);
    assert_eq!(history.entries[1].title, "B");
    assert!(
        !history.webkit_state.is_empty(),
        "WebKit's session state is kept"
    );
    assert_eq!(page.url, c);
    assert_eq!((page.scroll_x, page.scroll_y), (0.0, 3210.0));
    assert_eq!(page.zoom, 1.0);
    assert_eq!(
        page.fields.len(),
        1,
        "only the text field: {:?}",
        page.fields
    );
    let field = &page.fields[0];
    assert_eq!(
        (field.index, field.id.as_str(), field.name.as_str()),
        (0, "q", "q")
    );
    assert_eq!(field.value, FieldValue::Text(TYPED.to_owned()));
    let everything = format!("{history:?} {page:?}");
    assert!(
        !everything.contains(PASSWORD),
        "the password is in the captured state"
    );
    assert!(
        !history
            .webkit_state
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes()),
        "the password is in WebKit's session state"
    );
    r.kill();

    // (b) A fresh renderer brings the tab back.
    let mut page = page;
    page.zoom = 1.5;
    let snapshot = TabSnapshot {
        history: history.clone(),
        page: Some(page),
    };
    let mut r = launch(&x, &parent, &c, Some(snapshot));
    // Right after Loading(false): the restore script ran before this one.
    assert_eq!(
        r.eval(
            "[window.scrollY, document.getElementById('q').value, \
             document.getElementById('pw').value, history.length, typeof window.__marker]"
        ),
        Ok(json!([3210, TYPED, "", 3, "undefined"]))
    );
    r.wait_seen(
        "FormEdited(true) after the restore",
        Duration::from_secs(5),
        |m| *m == RendererToBrowser::FormEdited(true),
    );
    // WebKit scrolls a page it goes to from the back/forward list to its item's position a
    // moment after the load: that must not undo the restore.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(r.eval("window.scrollY"), Ok(json!(3210)));
    // The restored tab's own capture gives the same state back, zoom included.
    let (again, page) = r.capture();
    assert_eq!(urls(&again), urls(&history));
    assert_eq!(again.current, 2);
    assert_eq!((page.scroll_y, page.zoom), (3210.0, 1.5));
    assert_eq!(page.fields.len(), 1);
    assert_eq!(page.fields[0].value, FieldValue::Text(TYPED.to_owned()));
    r.send(BrowserToRenderer::GoBack);
    r.wait_loaded(&b, LOAD_TIMEOUT);
    // Leaving the page with the restored edits reports them gone.
    assert!(
        r.seen().contains(&RendererToBrowser::FormEdited(false)),
        "{}",
        r.report()
    );
    assert_eq!(
        r.eval("[history.length, document.title]"),
        Ok(json!([3, "B"]))
    );
    r.send(BrowserToRenderer::GoBack);
    r.wait_loaded(&a, LOAD_TIMEOUT);
}

/// Captures the WebKit state of a real tab that went from `first` to `second`.
fn real_webkit_state(x: &Xvfb, parent: &ParentWindow, first: &str, second: &str) -> Vec<u8> {
    let mut r = launch(x, parent, first, None);
    navigate(&mut r, second);
    let (history, _) = r.capture();
    assert_eq!(urls(&history), vec![first, second]);
    assert!(!history.webkit_state.is_empty());
    history.webkit_state
}

fn entries(list: &[&str]) -> Vec<HistoryEntry> {
    list.iter()
        .map(|u| HistoryEntry {
            url: (*u).to_owned(),
            title: String::new(),
        })
        .collect()
}

/// How many requests the server answered for `path`.
fn hits(http: &HttpServer, path: &str) -> usize {
    http.requests().iter().filter(|r| r.path == path).count()
}

#[test]
fn a_forged_webkit_state_is_refused() {
    let x = Xvfb::start();
    let parent = ParentWindow::create(&x);
    let http = HttpServer::start();
    let secret1 = http.html("/secret1", &plain_page("S1"));
    let secret2 = http.html("/secret2", &plain_page("S2"));
    let p = http.html("/p", &plain_page("P"));
    let q = http.html("/q", &plain_page("Q"));
    let blob = real_webkit_state(&x, &parent, &secret1, &secret2);
    let before = (hits(&http, "/secret1"), hits(&http, "/secret2"));

    // The blob restores secret1 and secret2, the entries name p and q: the renderer loads q
    // afresh, with no history behind it.
    let forged = TabSnapshot {
        history: SessionHistory {
            entries: entries(&[&p, &q]),
            current: 1,
            webkit_state: blob.clone(),
        },
        page: None,
    };
    let mut r = launch(&x, &parent, &q, Some(forged));
    assert_eq!(
        r.eval("[history.length, document.title]"),
        Ok(json!([1, "Q"]))
    );
    assert!(
        r.report()
            .contains("not restoring the snapshot's WebKit state"),
        "{}",
        r.report()
    );
    r.kill();

    // The same URLs with another current entry are refused too.
    let moved = TabSnapshot {
        history: SessionHistory {
            entries: entries(&[&secret1, &secret2]),
            current: 0,
            webkit_state: blob,
        },
        page: None,
    };
    let mut r = launch(&x, &parent, &secret1, Some(moved));
    assert_eq!(
        r.eval("[history.length, document.title]"),
        Ok(json!([1, "S1"]))
    );
    r.kill();
    assert_eq!(
        (hits(&http, "/secret1"), hits(&http, "/secret2")),
        (before.0 + 1, before.1),
        "only the launch URL was loaded"
    );
}

#[test]
fn entries_alone_restore_the_history() {
    let x = Xvfb::start();
    let parent = ParentWindow::create(&x);
    let http = HttpServer::start();
    let a = http.html("/a", &plain_page("A"));
    let b = http.html("/b", &plain_page("B"));
    let c = http.html("/c", &plain_page("C"));
    // No WebKit state (too large, or dropped to fit a frame): the renderer builds one from the
    // URLs, so Back and Forward still work.
    let snapshot = TabSnapshot {
        history: SessionHistory {
            entries: entries(&[&a, &b, &c]),
            current: 1,
            webkit_state: Vec::new(),
        },
        page: None,
    };
    let mut r = launch(&x, &parent, &b, Some(snapshot));
    assert_eq!(
        r.eval("[history.length, document.title]"),
        Ok(json!([3, "B"]))
    );
    assert_eq!(
        hits(&http, "/a") + hits(&http, "/c"),
        0,
        "only the current entry loads"
    );
    r.send(BrowserToRenderer::GoForward);
    r.wait_loaded(&c, LOAD_TIMEOUT);
    r.send(BrowserToRenderer::GoBack);
    r.wait_loaded(&b, LOAD_TIMEOUT);
    r.send(BrowserToRenderer::GoBack);
    r.wait_loaded(&a, LOAD_TIMEOUT);
    // Its own capture now has a real WebKit state for the same list.
    let (history, _) = r.capture();
    assert_eq!(urls(&history), vec![a.as_str(), b.as_str(), c.as_str()]);
    assert_eq!(history.current, 0);
    assert!(!history.webkit_state.is_empty());
}

/// A page with a GET form: a text input and a submit button.
const SUBMIT_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>F</title></head>\
<body style=\"margin:0\"><form action=\"/done\" method=\"get\">\
<input id=\"q\" name=\"q\" style=\"position:absolute;left:0;top:0;width:600px;height:100px;font-size:40px\">\
<input type=\"submit\" style=\"position:absolute;left:0;top:150px;width:200px;height:60px\">\
</form></body></html>";

#[test]
fn form_edits_are_reported_until_submitted() {
    let x = Xvfb::start();
    let parent = ParentWindow::create(&x);
    let http = HttpServer::start();
    let form = http.html("/form", SUBMIT_PAGE);
    let done = http.html("/done", &plain_page("done"));
    let mut r = launch(&x, &parent, &form, None);
    // A script setting a value is not the user editing: no message.
    r.eval(
        "const q = document.getElementById('q'); q.value = 'by script'; \
            q.dispatchEvent(new Event('input', {bubbles: true})); q.value = ''",
    )
    .unwrap();
    click(&x, 300, 50);
    x.xdotool(&["type", "--delay", "40", "abc"]);
    r.wait_for("FormEdited(true)", Duration::from_secs(10), |m| {
        (*m == RendererToBrowser::FormEdited(true)).then_some(())
    });
    x.xdotool(&["key", "Return"]);
    r.wait_loaded(&format!("{done}?q=abc"), LOAD_TIMEOUT);
    let edited: Vec<bool> = r
        .seen()
        .iter()
        .filter_map(|m| match m {
            RendererToBrowser::FormEdited(e) => Some(*e),
            _ => None,
        })
        .collect();
    assert_eq!(edited, vec![true, false], "{}", r.report());
}

#[test]
fn history_state_is_coalesced_and_the_latest_arrives() {
    let x = Xvfb::start();
    let parent = ParentWindow::create(&x);
    let http = HttpServer::start();
    let a = http.html("/a", &plain_page("A"));
    let mut r = launch(&x, &parent, &a, None);
    r.wait_seen(
        "the first HistoryState",
        Duration::from_secs(5),
        |m| matches!(m, RendererToBrowser::HistoryState(h) if h.entries.len() == 1),
    );
    std::thread::sleep(Duration::from_millis(1200));
    let before = r.seen().len();
    // Twenty entries in a burst.
    r.eval("for (let i = 1; i <= 20; i++) history.pushState(null, '', '?' + i); history.length")
        .unwrap();
    r.wait_for(
        "HistoryState with 21 entries",
        Duration::from_secs(5),
        |m| match m {
            RendererToBrowser::HistoryState(h) if h.entries.len() == 21 => Some(()),
            _ => None,
        },
    );
    let sent = r.seen()[before..]
        .iter()
        .filter(|m| matches!(m, RendererToBrowser::HistoryState(_)))
        .count();
    assert!(
        sent <= 2,
        "{sent} HistoryState messages for one burst: {}",
        r.report()
    );
    let Some(RendererToBrowser::HistoryState(last)) = r
        .seen()
        .iter()
        .rev()
        .find(|m| matches!(m, RendererToBrowser::HistoryState(_)))
    else {
        unreachable!("one was just received");
    };
    assert_eq!(last.current, 20);
    assert_eq!(last.entries[20].url, format!("{a}?20"));
}

#[test]
fn a_hung_page_does_not_block_later_messages() {
    let x = Xvfb::start();
    let parent = ParentWindow::create(&x);
    let http = HttpServer::start();
    let a = http.html("/a", &plain_page("A"));
    let mut r = launch(&x, &parent, &a, None);
    r.send(BrowserToRenderer::Eval {
        request: 900,
        js: "while (true) {}".into(),
    });
    r.send(BrowserToRenderer::CaptureState { request: 901 });
    r.send(BrowserToRenderer::Ping { seq: 5 });
    r.wait_for("Pong 5", Duration::from_secs(10), |m| {
        (*m == RendererToBrowser::Pong { seq: 5 }).then_some(())
    });
    r.send(BrowserToRenderer::Ping { seq: 6 });
    r.wait_for("Pong 6", Duration::from_secs(10), |m| {
        (*m == RendererToBrowser::Pong { seq: 6 }).then_some(())
    });
    assert!(
        !r.seen()
            .iter()
            .any(|m| matches!(m, RendererToBrowser::StateCaptured { .. })),
        "a page stuck in a loop cannot have run the capture script"
    );
}

#[test]
fn playing_audio_is_reported_on_changes() {
    // Xvfb has no sound card; WebKit's media stack plays into a null sink and still reports it.
    let x = Xvfb::start();
    let parent = ParentWindow::create(&x);
    let http = HttpServer::start();
    let a = http.html("/a", &plain_page("A"));
    let mut r = launch(&x, &parent, &a, None);
    r.eval(
        "window.ctx = new AudioContext(); const o = ctx.createOscillator(); \
         o.connect(ctx.destination); o.start(); ctx.state",
    )
    .unwrap();
    r.wait_seen("PlayingAudio(true)", Duration::from_secs(10), |m| {
        *m == RendererToBrowser::PlayingAudio(true)
    });
    r.eval("ctx.close(); null").unwrap();
    r.wait_seen("PlayingAudio(false)", Duration::from_secs(10), |m| {
        *m == RendererToBrowser::PlayingAudio(false)
    });
    let playing: Vec<bool> = r
        .seen()
        .iter()
        .filter_map(|m| match m {
            RendererToBrowser::PlayingAudio(p) => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(playing, vec![true, false], "{}", r.report());
}

/// A page with a login form that POSTs a user name and a password.
const LOGIN_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>L</title></head>\
<body style=\"margin:0\"><form action=\"/welcome\" method=\"post\">\
<input id=\"user\" name=\"user\" value=\"ann\">\
<input id=\"pw\" name=\"pw\" type=\"password\" style=\"position:absolute;left:0;top:0;width:600px;height:100px\">\
<input type=\"submit\" value=\"Log in\"></form></body></html>";

#[test]
fn a_posted_password_never_leaves_in_the_webkit_state() {
    let x = Xvfb::start();
    let parent = ParentWindow::create(&x);
    let http = HttpServer::start();
    let login = http.html("/login", LOGIN_PAGE);
    let welcome = http.html("/welcome", &plain_page("welcome"));
    let mut r = launch(&x, &parent, &login, None);
    click(&x, 300, 50);
    x.xdotool(&["type", "--delay", "40", PASSWORD]);
    x.xdotool(&["key", "Return"]);
    r.wait_loaded(&welcome, LOAD_TIMEOUT);
    assert!(
        !r.seen().contains(&RendererToBrowser::FormEdited(true)),
        "typing a password is not a form edit Warren keeps"
    );
    assert!(
        http.requests()
            .iter()
            .any(|q| q.method == "POST" && q.path == "/welcome"),
        "the form was posted"
    );
    let (history, _) = r.capture();
    assert_eq!(urls(&history), vec![login.as_str(), welcome.as_str()]);
    assert!(
        history.webkit_state.is_empty(),
        "a state holding a POST body is not sent"
    );
    assert!(r.report().contains("form POST body"), "{}", r.report());
    for m in r.seen() {
        if let RendererToBrowser::HistoryState(h) = m {
            assert!(
                !h.webkit_state
                    .windows(PASSWORD.len())
                    .any(|w| w == PASSWORD.as_bytes()),
                "the password went up in a HistoryState"
            );
        }
    }
    r.kill();
    // The tab still comes back with its history, rebuilt from the URLs; the POST is not sent again.
    let posts = http
        .requests()
        .iter()
        .filter(|q| q.method == "POST")
        .count();
    let snapshot = TabSnapshot {
        history,
        page: None,
    };
    let mut r = launch(&x, &parent, &welcome, Some(snapshot));
    assert_eq!(r.eval("history.length"), Ok(json!(2)));
    assert_eq!(
        http.requests()
            .iter()
            .filter(|q| q.method == "POST")
            .count(),
        posts
    );
}

/// A page whose fields moved since the capture (a new input comes first) and which grows to its
/// full height only 700 ms after it loaded.
const MOVED_PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>G</title></head>\
<body style=\"margin:0\"><input id=\"extra\"><input id=\"q\" name=\"q\">\
<input type=\"password\" name=\"pw\"><input name=\"only\">\
<input type=\"radio\" name=\"r\" value=\"1\"><input type=\"radio\" name=\"r\" value=\"2\">\
<select id=\"s\"><option>a</option><option>b</option><option>c</option></select>\
<div id=\"grow\" style=\"height:100px\"></div>\
<script>setTimeout(() => { document.getElementById('grow').style.height = '10000px'; }, 700);</script>\
</body></html>";

#[test]
fn restored_fields_are_found_again_and_scrolling_waits_for_the_page_to_grow() {
    let x = Xvfb::start();
    let parent = ParentWindow::create(&x);
    let http = HttpServer::start();
    let g = http.html("/g", MOVED_PAGE);
    let field = |index: u32, id: &str, name: &str, value: FieldValue| FormField {
        index,
        id: id.to_owned(),
        name: name.to_owned(),
        value,
    };
    let snapshot = TabSnapshot {
        history: SessionHistory {
            entries: entries(&[&g]),
            current: 0,
            webkit_state: Vec::new(),
        },
        page: Some(PageState {
            url: g.clone(),
            scroll_x: 0.0,
            scroll_y: 3210.0,
            zoom: 1.0,
            fields: vec![
                // Index 0 is now another input: found by its id.
                field(0, "q", "q", FieldValue::Text("moved".into())),
                // Index 2 is a password field with that name: never filled.
                field(2, "", "pw", FieldValue::Text("stolen".into())),
                // Index 7 is past the end: found by its name, which only it has.
                field(7, "", "only", FieldValue::Text("unique".into())),
                // Two radio buttons share the name: neither is guessed.
                field(9, "", "r", FieldValue::Checked(true)),
                field(6, "s", "", FieldValue::Selected(vec![2])),
            ],
        }),
    };
    let mut r = launch(&x, &parent, &g, Some(snapshot));
    assert_eq!(
        r.eval(
            "const v = (s) => document.querySelector(s); \
             [v('#extra').value, v('#q').value, v('[name=pw]').value, v('[name=only]').value, \
              document.querySelectorAll('[name=r]:checked').length, v('#s').selectedIndex]"
        ),
        Ok(json!(["", "moved", "", "unique", 0, 2]))
    );
    r.wait_seen("FormEdited(true)", Duration::from_secs(5), |m| {
        *m == RendererToBrowser::FormEdited(true)
    });
    let scrolled = warren_tests::wait_until(Duration::from_secs(3), || {
        (r.eval("window.scrollY") == Ok(json!(3210))).then_some(())
    });
    assert!(
        scrolled.is_some(),
        "the page was not scrolled once it grew: {:?}",
        r.eval("[window.scrollY, document.documentElement.scrollHeight]")
    );
}
