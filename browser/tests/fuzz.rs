//! Property-based fuzzing of every input the browser reads from something it does not trust: up
//! frames from renderers, the messages in them, the snapshots a tab is restored from, control
//! socket lines, and the saved session file.
//!
//! cargo-fuzz needs a nightly toolchain, so this uses proptest on stable: each property generates
//! hostile inputs (random bytes, byte-level mutations of valid encodings, and well-typed values at
//! and past every limit: NULs, invalid URLs, NaN, out-of-range indices, thousands of fields),
//! feeds them to the browser's own code, and checks more than "it did not panic": a message, a
//! snapshot or a loaded session is accepted exactly when the rules written in
//! `docs/ARCHITECTURE.md` and the module docs allow it (an oracle written from those rules, not
//! from the code); the frame decoder's result does not depend on how the stream was split, and it
//! never holds more than one frame; no window of time gets more than the message and byte
//! budgets; the control socket answers every request line exactly once, in order; URL fix-up is
//! idempotent; a saved session loads back, and a damaged one is moved aside with its bytes intact.
//! Each property prints how many inputs reached each outcome, so a run shows how deep it got.
//!
//! # Running
//!
//! `make test` runs every property briefly (proptest's default of 256 cases, fewer for the
//! properties that do I/O: a few seconds in all). `make fuzz` runs the same properties long:
//! `PROPTEST_CASES` sets the number of cases and `WARREN_FUZZ_SECONDS` caps each property's time
//! (it stops early, passing, when its time is up). A failing case is shrunk, printed, and saved in
//! `fuzz.proptest-regressions` next to this file, and replayed first on every later run.
//!
//! Descriptors passed with the up frames (SCM_RIGHTS) are refused by `host.rs`'s private receive
//! path; no public entry point reaches it without spawning a renderer, so they are covered by the
//! end-to-end hostile-renderer tests instead (`tests/tests/hostile.rs`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::{
    Config, FileFailurePersistence, TestCaseError, TestCaseResult, TestRunner,
};
use serde_json::{json, Value};
use warren_browser::control::{ControlServer, Request, MAX_LINE_LEN};
use warren_browser::protocol::{self, Answer, Command, EvalResult, RequestId};
use warren_browser::session::{self, Problem, Session, SessionError, SessionTab, MAX_SESSION_TABS};
use warren_browser::tabs::snapshot::{self, Grants};
use warren_browser::tabs::MAX_OPENED_FILES;
use warren_browser::url_input;
use warren_browser::validate::{self, TokenBucket, Validator};
use warren_ipc::frame::{self, FrameDecoder, FrameError, PREFIX_LEN};
use warren_ipc::{
    FieldValue, FormField, HistoryEntry, PageState, RendererToBrowser, SessionHistory, TabId,
    TabSnapshot, UpFrame, MAX_EVAL_RESULT_LEN, MAX_FIELD_VALUE_LEN, MAX_FORM_FIELDS, MAX_FRAME_LEN,
    MAX_HISTORY_ENTRIES, MAX_SELECTED_OPTIONS, MAX_TITLE_LEN, MAX_URL_LEN, MAX_WEBKIT_STATE_LEN,
    SHOWABLE_SCHEMES,
};

// --- Running properties ---------------------------------------------------------------------------

/// Runs `test` on values of `strategy`: `PROPTEST_CASES / share` cases (at least one), in batches
/// so that `WARREN_FUZZ_SECONDS` can end a long run between batches. Panics with the shrunk
/// failing input.
fn fuzz<S>(name: &'static str, share: u32, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    const BATCH: u32 = 100;
    let base = Config::default();
    let total = (base.cases / share).max(1);
    let budget = std::env::var("WARREN_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let start = Instant::now();
    let mut done = 0;
    while done < total && budget.is_none_or(|b| start.elapsed() < b) {
        let cases = BATCH.min(total - done);
        let config = Config {
            cases,
            source_file: Some(file!()),
            test_name: Some(name),
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
                "proptest-regressions",
            ))),
            // A failure is shrunk for at most a minute: the first failing input is printed anyway.
            max_shrink_time: 60_000,
            ..base.clone()
        };
        if let Err(e) = TestRunner::new(config).run(&strategy, &test) {
            panic!("fuzz property {name} failed: {e}");
        }
        done += cases;
    }
    eprintln!(
        "fuzz {name}: {done} cases in {:.1} s{}",
        start.elapsed().as_secs_f64(),
        take_counts()
    );
}

thread_local! {
    /// Outcome counts of the property running on this thread (each test runs on its own): they
    /// show how deep the inputs got (how many frames passed the validator, how many damaged
    /// files still loaded ...).
    static COUNTS: RefCell<BTreeMap<&'static str, u64>> = const { RefCell::new(BTreeMap::new()) };
}

/// Counts one `outcome` for the property running on this thread.
fn count(outcome: &'static str) {
    COUNTS.with(|c| *c.borrow_mut().entry(outcome).or_default() += 1);
}

/// This thread's counts as text ("; outcome n, ..."), forgetting them.
fn take_counts() -> String {
    let counts = COUNTS.with(|c| std::mem::take(&mut *c.borrow_mut()));
    counts
        .iter()
        .enumerate()
        .map(|(i, (outcome, n))| format!("{}{outcome} {n}", if i == 0 { "; " } else { ", " }))
        .collect()
}

fn fail(why: String) -> TestCaseError {
    TestCaseError::fail(why)
}

// --- Hostile values -----------------------------------------------------------------------------

/// A string of exactly `len` bytes: `unit` repeated while it fits, then `a`s.
fn filled(len: usize, unit: char) -> String {
    let mut s = String::with_capacity(len);
    while s.len() + unit.len_utf8() <= len {
        s.push(unit);
    }
    while s.len() < len {
        s.push('a');
    }
    s
}

/// Lengths that matter for a limit: just under, at, just over, and anywhere up to twice it.
fn around(limit: usize) -> BoxedStrategy<usize> {
    prop_oneof![Just(limit - 1), Just(limit), Just(limit + 1), 0..=limit * 2].boxed()
}

/// Characters that make byte lengths and character counts differ, and NUL.
fn unit_char() -> BoxedStrategy<char> {
    prop_oneof![
        Just('a'),
        Just('é'),
        Just('世'),
        Just('😀'),
        Just('\0'),
        Just('\u{202e}')
    ]
    .boxed()
}

/// Any text, often with control characters, sometimes around `limit` bytes.
fn text(limit: usize) -> BoxedStrategy<String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[\\x00-\\x1f\\x7f a-z:/%.\\\\\u{fffd}]{0,24}",
        1 => (around(limit), unit_char()).prop_map(|(len, unit)| filled(len, unit)),
    ]
    .boxed()
}

fn scheme() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop_oneof![
            Just("http"), Just("https"), Just("file"), Just("data"), Just("about"), Just("blob"),
            Just("warren"), Just("javascript"), Just("chrome"), Just("ftp"), Just("HTTPS"),
            Just("WaRReN"), Just("ws"), Just("view-source")
        ]
        .prop_map(str::to_owned),
        1 => "[a-zA-Z][a-zA-Z0-9+.\\-]{0,6}",
    ]
    .boxed()
}

/// URL-like strings: valid and invalid, every scheme Warren knows and some it refuses, and
/// strings around the URL length limit.
fn url() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (scheme(), "[a-z0-9.\\-]{0,12}", "[ -~]{0,20}")
            .prop_map(|(s, host, path)| format!("{s}://{host}/{path}")),
        2 => (scheme(), "[ -~\\x00-\\x1f]{0,30}").prop_map(|(s, rest)| format!("{s}:{rest}")),
        2 => prop_oneof![
            Just("about:blank"), Just("about:config"), Just("about:blank#x"), Just("warren://newtab/"),
            Just("file:///etc/passwd"), Just("file://host/etc/passwd"), Just("data:text/html,hi"),
            Just("blob:https://a.example/0b3c"), Just("javascript:alert(1)"), Just(""), Just(" "),
            Just(" https://a.example/"), Just("https://a.example/\0"), Just("http://[::1"),
            Just("https://a.example/%00"), Just("https://%zz/"), Just("https:"), Just("//a.example/")
        ]
        .prop_map(str::to_owned),
        1 => any::<String>(),
        1 => (around(MAX_URL_LEN), unit_char()).prop_map(|(len, unit)| {
            let head = "https://a.example/";
            format!("{head}{}", filled(len.saturating_sub(head.len()), unit))
        }),
    ]
    .boxed()
}

fn number() -> BoxedStrategy<f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(1.0e8),
        Just(1.0e8 + 1.0),
        Just(-0.0),
        Just(0.0),
        Just(100.0),
        Just(100.000_001),
        Just(f64::MIN_POSITIVE),
        -2.0e8..2.0e8,
        0.0..200.0,
        any::<f64>(),
    ]
    .boxed()
}

fn entry() -> BoxedStrategy<HistoryEntry> {
    (url(), text(MAX_TITLE_LEN))
        .prop_map(|(url, title)| HistoryEntry { url, title })
        .boxed()
}

/// URLs a tab may well have shown: web pages, local files, data URLs, the new-tab page.
fn plausible_url() -> BoxedStrategy<String> {
    prop_oneof![
        3 => ("https?", "[a-z]{1,8}\\.example", "[a-z0-9/]{0,12}")
            .prop_map(|(scheme, host, path)| format!("{scheme}://{host}/{path}")),
        1 => "file:///[a-z/]{1,16}",
        1 => "data:text/html,[a-z]{0,8}",
        1 => Just(warren_ipc::NEW_TAB_URL.to_owned()),
        1 => Just("about:blank".to_owned()),
    ]
    .boxed()
}

/// A back/forward list: hostile (any URLs and titles, `current` anywhere), plausible (URLs a tab
/// shows, `current` among them), or at the entry limit.
fn history() -> BoxedStrategy<SessionHistory> {
    let plausible =
        (plausible_url(), "[ -~]{0,12}").prop_map(|(url, title)| HistoryEntry { url, title });
    let entries = prop_oneof![
        4 => vec(entry(), 0..5),
        4 => vec(plausible, 1..5),
        1 => (
            MAX_HISTORY_ENTRIES - 1..=MAX_HISTORY_ENTRIES + 1,
            prop_oneof![Just("https://a.example/"), Just("file:///tmp/x"), Just("data:,x")]
        )
            .prop_map(|(n, url)| vec![HistoryEntry { url: url.to_owned(), title: String::new() }; n]),
    ];
    // An index among the entries, usually; sometimes anything.
    let current = (proptest::bool::weighted(0.8), any::<u32>());
    let state = prop_oneof![
        8 => vec(any::<u8>(), 0..48),
        1 => around(MAX_WEBKIT_STATE_LEN).prop_map(|n| vec![0u8; n]),
    ];
    (entries, current, state)
        .prop_map(|(entries, (in_range, n), webkit_state)| SessionHistory {
            current: match entries.len() {
                len @ 1.. if in_range => n % len as u32,
                _ => n,
            },
            entries,
            webkit_state,
        })
        .boxed()
}

fn field() -> BoxedStrategy<FormField> {
    let selected = prop_oneof![
        4 => vec(any::<u32>(), 0..4),
        1 => around(MAX_SELECTED_OPTIONS).prop_map(|n| vec![0u32; n]),
    ];
    let value = prop_oneof![
        text(MAX_FIELD_VALUE_LEN).prop_map(FieldValue::Text),
        any::<bool>().prop_map(FieldValue::Checked),
        selected.prop_map(FieldValue::Selected),
    ];
    (
        any::<u32>(),
        text(MAX_FIELD_VALUE_LEN),
        text(MAX_FIELD_VALUE_LEN),
        value,
    )
        .prop_map(|(index, id, name, value)| FormField {
            index,
            id,
            name,
            value,
        })
        .boxed()
}

/// A page state: NaN and infinite numbers, and thousands of form fields, among others.
fn page() -> BoxedStrategy<PageState> {
    let fields = prop_oneof![
        8 => vec(field(), 0..4),
        1 => (MAX_FORM_FIELDS - 1..=4 * MAX_FORM_FIELDS).prop_map(|n| {
            (0..n)
                .map(|i| FormField {
                    index: i as u32,
                    id: String::new(),
                    name: String::new(),
                    value: FieldValue::Checked(true),
                })
                .collect()
        }),
    ];
    // Numbers of a real page, or anything.
    let offset = prop_oneof![3 => 0.0..1.0e5, 1 => number()];
    let zoom = prop_oneof![3 => 0.3..5.0, 1 => number()];
    (url(), offset.clone(), offset, zoom, fields)
        .prop_map(|(url, scroll_x, scroll_y, zoom, fields)| PageState {
            url,
            scroll_x,
            scroll_y,
            zoom,
            fields,
        })
        .boxed()
}

/// Any message a renderer can send, with hostile field values.
fn message() -> BoxedStrategy<RendererToBrowser> {
    use RendererToBrowser as M;
    prop_oneof![
        Just(M::Hello),
        any::<bool>().prop_map(|landlock| M::Ready { landlock }),
        url().prop_map(|url| M::UrlChanged { url }),
        text(MAX_TITLE_LEN).prop_map(|title| M::TitleChanged { title }),
        any::<bool>().prop_map(M::Loading),
        (any::<bool>(), any::<bool>()).prop_map(|(can_go_back, can_go_forward)| {
            M::HistoryChanged {
                can_go_back,
                can_go_forward,
            }
        }),
        url().prop_map(|url| M::OpenTab { url }),
        (any::<u64>(), any::<bool>(), text(MAX_EVAL_RESULT_LEN)).prop_map(|(request, ok, s)| {
            M::EvalResult {
                request,
                result: if ok { Ok(s) } else { Err(s) },
            }
        }),
        any::<u64>().prop_map(|seq| M::Pong { seq }),
        text(MAX_TITLE_LEN).prop_map(|reason| M::WebProcessCrashed { reason }),
        history().prop_map(M::HistoryState),
        (any::<u64>(), history(), page()).prop_map(|(request, history, page)| {
            M::StateCaptured {
                request,
                history,
                page,
            }
        }),
        any::<bool>().prop_map(M::FormEdited),
        any::<bool>().prop_map(M::PlayingAudio),
    ]
    .boxed()
}

/// Grants, more often given than not (so snapshots with local URLs get past the check too).
fn grants() -> BoxedStrategy<Grants> {
    let granted = || proptest::bool::weighted(0.7);
    (granted(), granted(), granted())
        .prop_map(|(file, data, internal)| Grants {
            file,
            data,
            internal,
        })
        .boxed()
}

/// A snapshot whose page state is usually for its current entry (so the deeper checks are
/// reached) and sometimes for another URL.
fn tab_snapshot() -> BoxedStrategy<TabSnapshot> {
    (history(), option::of(page()), any::<bool>())
        .prop_map(|(history, mut page, same_url)| {
            if let (Some(page), true, Some(current)) =
                (page.as_mut(), same_url, history.current_entry())
            {
                page.url = current.url.clone();
            }
            TabSnapshot { history, page }
        })
        .boxed()
}

// --- The rules, written from the documentation ----------------------------------------------------

/// Why `url` may not be shown in a tab (`UrlChanged`, history entries), or `None`.
fn unshowable(url: &str) -> Option<String> {
    if url.len() > MAX_URL_LEN {
        return Some(format!("a URL of {} bytes", url.len()));
    }
    if url.chars().any(char::is_control) {
        return Some("a URL with a control character".into());
    }
    match url::Url::parse(url) {
        Err(e) => Some(format!("a URL that does not parse ({e})")),
        Ok(parsed) if !SHOWABLE_SCHEMES.contains(&parsed.scheme()) => {
            Some(format!("the scheme {:?}", parsed.scheme()))
        }
        Ok(_) => None,
    }
}

fn over(what: &str, len: usize, max: usize) -> Option<String> {
    (len > max).then(|| format!("{what} of {len} bytes (limit {max})"))
}

/// Why a history's structure breaks its limits (count, state size, lengths, `current`), or
/// `None`. Which URLs it may hold is for the caller.
fn history_problem(history: &SessionHistory) -> Option<String> {
    let n = history.entries.len();
    if n == 0 {
        return Some("an empty history".into());
    }
    if n > MAX_HISTORY_ENTRIES {
        return Some(format!("{n} history entries"));
    }
    if let Some(why) = over(
        "a WebKit state",
        history.webkit_state.len(),
        MAX_WEBKIT_STATE_LEN,
    ) {
        return Some(why);
    }
    if history.current as usize >= n {
        return Some(format!("current entry {} of {n}", history.current));
    }
    history.entries.iter().find_map(|e| {
        over("an entry URL", e.url.len(), MAX_URL_LEN)
            .or_else(|| over("an entry title", e.title.len(), MAX_TITLE_LEN))
    })
}

/// Why a page state breaks its limits, or `None`: scroll offsets are finite and within 1e8
/// pixels, the zoom is a finite factor in (0, 100], and the fields are within their limits.
fn page_problem(page: &PageState) -> Option<String> {
    let offset_ok = |v: f64| v.is_finite() && v.abs() <= 1.0e8;
    if !offset_ok(page.scroll_x) || !offset_ok(page.scroll_y) {
        return Some(format!("scroll ({}, {})", page.scroll_x, page.scroll_y));
    }
    if !(page.zoom.is_finite() && page.zoom > 0.0 && page.zoom <= 100.0) {
        return Some(format!("zoom {}", page.zoom));
    }
    if let Some(why) = over("the page URL", page.url.len(), MAX_URL_LEN) {
        return Some(why);
    }
    if page.fields.len() > MAX_FORM_FIELDS {
        return Some(format!("{} form fields", page.fields.len()));
    }
    page.fields.iter().find_map(|f| {
        over("a field id", f.id.len(), MAX_FIELD_VALUE_LEN)
            .or_else(|| over("a field name", f.name.len(), MAX_FIELD_VALUE_LEN))
            .or_else(|| match &f.value {
                FieldValue::Text(t) => over("a field value", t.len(), MAX_FIELD_VALUE_LEN),
                FieldValue::Checked(_) => None,
                FieldValue::Selected(s) => (s.len() > MAX_SELECTED_OPTIONS)
                    .then(|| format!("{} selected options", s.len())),
            })
    })
}

/// Why the browser must refuse `msg` from a renderer that has said Hello, or `None` when it must
/// accept it. `OpenTab`'s scheme is checked later, against its opener ([`validate::check_open_tab`]).
fn refusal(msg: &RendererToBrowser) -> Option<String> {
    use RendererToBrowser as M;
    match msg {
        M::Hello => Some("a second Hello".into()),
        M::UrlChanged { url } => unshowable(url),
        M::TitleChanged { title } => over("a title", title.len(), MAX_TITLE_LEN),
        M::OpenTab { url } => over("a URL", url.len(), MAX_URL_LEN),
        M::EvalResult { result, .. } => {
            let (Ok(s) | Err(s)) = result;
            over("a script result", s.len(), MAX_EVAL_RESULT_LEN)
        }
        M::WebProcessCrashed { reason } => over("a crash reason", reason.len(), MAX_TITLE_LEN),
        M::HistoryState(history) => history_problem(history)
            .or_else(|| history.entries.iter().find_map(|e| unshowable(&e.url))),
        M::StateCaptured { history, page, .. } => history_problem(history)
            .or_else(|| history.entries.iter().find_map(|e| unshowable(&e.url)))
            .or_else(|| page_problem(page))
            .or_else(|| unshowable(&page.url)),
        M::Ready { .. }
        | M::Loading(_)
        | M::HistoryChanged { .. }
        | M::Pong { .. }
        | M::FormEdited(_)
        | M::PlayingAudio(_) => None,
    }
}

/// Whether `url` is one a tab with `grants` may load: web URLs always, local ones when granted.
fn loadable(url: &str, grants: Grants) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    if url.chars().any(char::is_control) {
        return false;
    }
    url.len() <= MAX_URL_LEN
        && match parsed.scheme() {
            "http" | "https" | "blob" => true,
            "about" => parsed.as_str() == "about:blank",
            "file" => grants.file,
            "data" => grants.data,
            "warren" => grants.internal,
            _ => false,
        }
}

/// Why a snapshot may not be restored in a tab with `grants`, or `None`.
fn snapshot_problem(snapshot: &TabSnapshot, grants: Grants) -> Option<String> {
    let history = &snapshot.history;
    if let Some(why) = history_problem(history) {
        return Some(why);
    }
    if let Some(e) = history.entries.iter().find(|e| !loadable(&e.url, grants)) {
        return Some(format!(
            "the entry {:?} in a tab with {grants:?}",
            short(&e.url)
        ));
    }
    let page = snapshot.page.as_ref()?;
    if let Some(why) = page_problem(page) {
        return Some(why);
    }
    let current = &history.entries[history.current as usize].url;
    (page.url != *current).then(|| "a page state for another URL".into())
}

fn short(s: &str) -> &str {
    warren_ipc::truncate_str(s, 80)
}

// --- 1. Up-channel bytes -----------------------------------------------------------------------

/// The tab every fuzzed renderer channel belongs to.
const TAB: TabId = TabId(7);

/// A byte-level change to an encoded frame; positions wrap around its length.
#[derive(Clone, Debug)]
enum Edit {
    Set(usize, u8),
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> BoxedStrategy<Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), 0u8..8).prop_map(|(i, bit)| Edit::Flip(i, 1 << bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
    .boxed()
}

fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let n = bytes.len();
        match *e {
            Edit::Set(i, b) if n > 0 => bytes[i % n] = b,
            Edit::Flip(i, mask) if n > 0 => bytes[i % n] ^= mask,
            Edit::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Edit::Delete(i) if n > 0 => {
                bytes.remove(i % n);
            }
            Edit::Truncate(i) => bytes.truncate(i % (n + 1)),
            _ => {}
        }
    }
}

/// One piece of an up stream.
#[derive(Clone, Debug)]
enum Segment {
    /// A correctly encoded frame.
    Frame(UpFrame),
    /// An encoded frame changed at byte level: with its length prefix fixed up afterwards
    /// (`reprefix`, so the damage reaches the message decoder) or not (the framing is damaged).
    Mutated {
        frame: UpFrame,
        edits: Vec<Edit>,
        reprefix: bool,
    },
    /// Random bytes.
    Garbage(Vec<u8>),
    /// A bare length prefix, often past the limit, with nothing behind it yet.
    Prefix(u32),
    /// A frame whose payload is exactly the limit, or one byte over it.
    AtLimit { over: bool },
}

fn up_frame() -> BoxedStrategy<UpFrame> {
    let tab = prop_oneof![9 => Just(TAB), 1 => any::<u64>().prop_map(TabId)];
    (tab, message())
        .prop_map(|(tab_id, msg)| UpFrame { tab_id, msg })
        .boxed()
}

fn segment() -> BoxedStrategy<Segment> {
    let limit = MAX_FRAME_LEN as u32;
    prop_oneof![
        6 => up_frame().prop_map(Segment::Frame),
        4 => (up_frame(), vec(edit(), 1..6), any::<bool>())
            .prop_map(|(frame, edits, reprefix)| Segment::Mutated { frame, edits, reprefix }),
        2 => vec(any::<u8>(), 0..64).prop_map(Segment::Garbage),
        1 => prop_oneof![Just(limit), Just(limit + 1), Just(u32::MAX), any::<u32>(), 0..64u32]
            .prop_map(Segment::Prefix),
        1 => any::<bool>().prop_map(|over| Segment::AtLimit { over }),
    ]
    .boxed()
}

/// A title frame whose payload is exactly `MAX_FRAME_LEN` bytes, plus `extra` more.
fn frame_at_limit(extra: usize) -> Vec<u8> {
    let title_frame = |len: usize| UpFrame {
        tab_id: TAB,
        msg: RendererToBrowser::TitleChanged {
            title: "t".repeat(len),
        },
    };
    // The string's length is a varint of 3 bytes for any length near the limit, so the payload
    // is the title plus a fixed overhead.
    let probe = MAX_FRAME_LEN / 2;
    let overhead = frame::encode(&title_frame(probe))
        .expect("half the limit encodes")
        .len()
        - PREFIX_LEN
        - probe;
    let title_len = MAX_FRAME_LEN - overhead;
    let mut bytes = frame::encode(&title_frame(title_len)).expect("exactly the limit encodes");
    assert_eq!(bytes.len(), PREFIX_LEN + MAX_FRAME_LEN);
    if extra > 0 {
        bytes.extend(std::iter::repeat_n(b't', extra));
        let len = (bytes.len() - PREFIX_LEN) as u32;
        bytes[..PREFIX_LEN].copy_from_slice(&len.to_le_bytes());
    }
    bytes
}

fn encode_segment(segment: &Segment, out: &mut Vec<u8>) {
    match segment {
        Segment::Frame(frame) => {
            // A message too large for one frame cannot be sent at all; its prefix alone is.
            match frame::encode(frame) {
                Ok(bytes) => out.extend(bytes),
                Err(FrameError::TooLong(len)) => out.extend((len as u32).to_le_bytes()),
                Err(e) => panic!("a message does not encode: {e}"),
            }
        }
        Segment::Mutated {
            frame,
            edits,
            reprefix,
        } => {
            let Ok(mut bytes) = frame::encode(frame) else {
                return;
            };
            if *reprefix {
                let mut payload = bytes.split_off(PREFIX_LEN);
                apply(&mut payload, edits);
                out.extend((payload.len() as u32).to_le_bytes());
                out.extend(payload);
            } else {
                apply(&mut bytes, edits);
                out.extend(bytes);
            }
        }
        Segment::Garbage(bytes) => out.extend(bytes),
        Segment::Prefix(len) => out.extend(len.to_le_bytes()),
        Segment::AtLimit { over } => out.extend(frame_at_limit(usize::from(*over))),
    }
}

/// What the stream holds, read whole and by the rules of the frame format: each frame up to the
/// first bad one, with its size on the wire, and the error that one gives (if any).
fn frames_by_the_rules(stream: &[u8]) -> (Vec<(UpFrame, usize)>, Option<FrameError>) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while rest.len() >= PREFIX_LEN {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > MAX_FRAME_LEN {
            // Refused on the prefix alone: nothing behind it is waited for.
            return (frames, Some(FrameError::TooLong(len)));
        }
        if rest.len() < PREFIX_LEN + len {
            break;
        }
        match frame::decode_payload(&rest[PREFIX_LEN..PREFIX_LEN + len]) {
            Ok(frame) => frames.push((frame, PREFIX_LEN + len)),
            Err(e) => return (frames, Some(e)),
        }
        rest = &rest[PREFIX_LEN + len..];
    }
    (frames, None)
}

/// The frames the decoder gives for `stream` pushed in chunks of the given sizes (cycled), each
/// with its size on the wire measured as the host's reader measures it (what `buffered` lost),
/// and its buffer checked after every drain: once drained it holds only the start of one frame,
/// never more than `PREFIX_LEN + MAX_FRAME_LEN` bytes.
#[allow(clippy::type_complexity)]
fn decode_in_chunks(
    stream: &[u8],
    sizes: &[usize],
) -> Result<(Vec<(UpFrame, usize)>, Option<FrameError>), TestCaseError> {
    let mut decoder = FrameDecoder::new();
    let mut frames = Vec::new();
    let mut pushed = 0;
    for &size in sizes.iter().cycle() {
        if pushed == stream.len() {
            break;
        }
        let chunk = &stream[pushed..stream.len().min(pushed + size)];
        let before = decoder.buffered();
        decoder.push(chunk);
        pushed += chunk.len();
        prop_assert_eq!(decoder.buffered(), before + chunk.len());
        loop {
            let buffered = decoder.buffered();
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push((frame, buffered - decoder.buffered())),
                Ok(None) => break,
                Err(e) => return Ok((frames, Some(e))),
            }
        }
        let held = decoder.buffered();
        let pending = &stream[pushed - held..pushed];
        prop_assert!(
            held < PREFIX_LEN + MAX_FRAME_LEN,
            "the decoder holds {} bytes after a drain",
            held
        );
        if held >= PREFIX_LEN {
            let declared = u32::from_le_bytes([pending[0], pending[1], pending[2], pending[3]]);
            prop_assert!(
                held < PREFIX_LEN + declared as usize,
                "the decoder holds {} bytes of a complete {}-byte frame",
                held,
                declared
            );
        }
    }
    Ok((frames, None))
}

/// A comparable form of decoded frames (NaN != NaN, so `PartialEq` cannot compare them).
fn shown_frames(frames: &[(UpFrame, usize)]) -> Vec<String> {
    frames.iter().map(|f| format!("{f:?}")).collect()
}

fn chunk_sizes() -> BoxedStrategy<Vec<usize>> {
    vec(
        prop_oneof![4 => 1usize..8, 4 => 1usize..512, 1 => Just(64 * 1024)],
        1..8,
    )
    .boxed()
}

/// Up streams: a Hello for the right tab first (usually, so the validator gets past the
/// handshake), then a mix of valid, damaged and hostile frames, pushed in random chunks. The
/// decoder gives what the format says whatever the chunks, and the validator then accepts exactly
/// the frames the documented rules allow.
#[test]
fn up_stream_decoding_is_split_invariant_bounded_and_validated() {
    let stream = (any::<bool>(), vec(segment(), 0..8), chunk_sizes());
    fuzz("up_stream", 1, stream, |(hello_first, segments, sizes)| {
        let mut bytes = Vec::new();
        if hello_first {
            let hello = UpFrame {
                tab_id: TAB,
                msg: RendererToBrowser::Hello,
            };
            encode_segment(&Segment::Frame(hello), &mut bytes);
        }
        for s in &segments {
            encode_segment(s, &mut bytes);
        }

        let (expected, expected_error) = frames_by_the_rules(&bytes);
        let (frames, error) = decode_in_chunks(&bytes, &sizes)?;
        prop_assert_eq!(shown_frames(&frames), shown_frames(&expected));
        prop_assert_eq!(&error, &expected_error);
        if error.is_some() {
            count("streams ended by a bad frame");
        }

        // Every decoded frame goes through the validator, as on the reader thread, until the
        // first violation ends the renderer. Frames are 10 s apart, so the budgets are full for
        // each (they have a property of their own below).
        let t0 = Instant::now();
        let mut validator = Validator::new(TAB, t0);
        let mut greeted = false;
        for (i, (frame, wire_len)) in frames.iter().enumerate() {
            let now = t0 + Duration::from_secs(10 * (i as u64 + 1));
            let verdict = validator.check(frame, *wire_len, now);
            let must_refuse = if frame.tab_id != TAB {
                Some(format!("a frame for tab {}", frame.tab_id))
            } else if !greeted {
                (!matches!(frame.msg, RendererToBrowser::Hello))
                    .then(|| "a first frame that is not Hello".into())
            } else {
                refusal(&frame.msg)
            };
            match (&verdict, &must_refuse) {
                (Ok(()), Some(why)) => {
                    return Err(fail(format!(
                        "frame {i} accepted with {why}: {}",
                        frame.msg.kind()
                    )))
                }
                (Err(v), None) => {
                    return Err(fail(format!(
                        "frame {i} ({}) refused: {v}",
                        frame.msg.kind()
                    )))
                }
                (Err(_), Some(_)) => {
                    count("frames refused");
                    break;
                }
                (Ok(()), None) => {
                    count(if greeted {
                        "frames accepted"
                    } else {
                        "Hellos accepted"
                    });
                    greeted = true;
                }
            }
        }
        Ok(())
    });
}

/// Well-typed messages with hostile values, each checked by a validator past its handshake:
/// accepted exactly when the documented limits hold; and every message survives its own
/// encoding.
#[test]
fn messages_are_accepted_exactly_when_within_the_rules() {
    fuzz("messages", 1, message(), |msg| {
        let frame = UpFrame { tab_id: TAB, msg };
        let bytes = match frame::encode(&frame) {
            Ok(bytes) => bytes,
            // Larger than any frame: no renderer can send it, so the validator never sees it.
            Err(FrameError::TooLong(_)) => {
                count("too large to send");
                return Ok(());
            }
            Err(e) => return Err(fail(format!("a message does not encode: {e}"))),
        };
        let decoded = frame::decode_payload(&bytes[PREFIX_LEN..])
            .map_err(|e| fail(format!("an encoded message does not decode: {e}")))?;
        prop_assert_eq!(format!("{decoded:?}"), format!("{frame:?}"));

        let t0 = Instant::now();
        let mut validator = Validator::new(TAB, t0);
        let hello = UpFrame {
            tab_id: TAB,
            msg: RendererToBrowser::Hello,
        };
        validator
            .check(&hello, 8, t0)
            .map_err(|v| fail(format!("Hello refused: {v}")))?;
        let verdict = validator.check(&frame, bytes.len(), t0 + Duration::from_secs(10));
        match (verdict, refusal(&frame.msg)) {
            (Ok(()), Some(why)) => Err(fail(format!("accepted {} with {why}", frame.msg.kind()))),
            (Err(v), None) => Err(fail(format!("refused a valid {}: {v}", frame.msg.kind()))),
            (Ok(()), None) => {
                count("accepted");
                Ok(())
            }
            (Err(_), Some(_)) => {
                count("refused");
                Ok(())
            }
        }
    });
}

/// A page may open a new tab only at a web URL, or at a file from a file page.
#[test]
fn pages_open_only_web_urls_and_files_from_files() {
    let opener = prop_oneof![url(), Just("file:///home/u/a.html".to_owned())];
    fuzz("open_tab", 1, (url(), opener), |(url, opener)| {
        if validate::check_open_tab(&url, &opener).is_err() {
            count("refused");
            return Ok(());
        }
        count("allowed");
        prop_assert!(url.len() <= MAX_URL_LEN);
        let parsed = url::Url::parse(&url).map_err(|e| fail(format!("accepted {url:?}: {e}")))?;
        let allowed = match parsed.scheme() {
            "http" | "https" => true,
            "about" => parsed.as_str() == "about:blank",
            "file" => opener.starts_with("file:"),
            _ => false,
        };
        prop_assert!(allowed, "{:?} opened {:?}", short(&opener), short(&url));
        Ok(())
    });
}

/// One step of a renderer's traffic: after `gap_us` microseconds, `count` frames of `wire_len`
/// bytes each, script results or not (those are not counted in bytes).
#[derive(Clone, Debug)]
struct Burst {
    gap_us: u64,
    count: usize,
    wire_len: usize,
    eval: bool,
}

fn burst() -> BoxedStrategy<Burst> {
    let wire_len = prop_oneof![
        4 => PREFIX_LEN..64,
        2 => PREFIX_LEN..64 * 1024,
        1 => Just(PREFIX_LEN + MAX_FRAME_LEN),
    ];
    (
        0u64..5000,
        1usize..400,
        wire_len,
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(gap_us, count, wire_len, eval)| Burst {
            gap_us,
            count,
            wire_len,
            eval,
        })
        .boxed()
}

/// The documented budgets (`validate.rs`, "Budgets"): however a renderer times and sizes its
/// frames, no window of time sees more frames accepted than the message burst plus the rate
/// times the window, nor more bytes (script results aside) than the byte burst plus the byte
/// rate times the window.
#[test]
fn no_window_of_time_accepts_more_than_the_budgets() {
    let messages = (
        f64::from(validate::BURST),
        f64::from(validate::RATE_PER_SECOND),
    );
    let bytes = (
        f64::from(validate::BYTE_BURST),
        f64::from(validate::BYTES_PER_SECOND),
    );
    fuzz("budgets", 4, vec(burst(), 1..60), |bursts| {
        let t0 = Instant::now();
        let mut validator = Validator::new(TAB, t0);
        let hello = UpFrame {
            tab_id: TAB,
            msg: RendererToBrowser::Hello,
        };
        validator
            .check(&hello, PREFIX_LEN, t0)
            .map_err(|v| fail(format!("Hello refused: {v}")))?;
        let pong = UpFrame {
            tab_id: TAB,
            msg: RendererToBrowser::Pong { seq: 1 },
        };
        let eval = UpFrame {
            tab_id: TAB,
            msg: RendererToBrowser::EvalResult {
                request: 1,
                result: Ok("1".into()),
            },
        };
        let mut now = t0;
        // (time, frames accepted, bytes counted) per step, until the first refusal; the Hello
        // is the first step.
        let mut steps: Vec<(Instant, f64, f64)> = vec![(t0, 1.0, PREFIX_LEN as f64)];
        'bursts: for b in bursts {
            now += Duration::from_micros(b.gap_us);
            let frame = if b.eval { &eval } else { &pong };
            let counted = if b.eval { 0.0 } else { b.wire_len as f64 };
            let (mut frames, mut sent) = (0.0, 0.0);
            for _ in 0..b.count {
                if validator.check(frame, b.wire_len, now).is_err() {
                    count("renderers ended by a budget");
                    steps.push((now, frames, sent));
                    break 'bursts;
                }
                frames += 1.0;
                sent += counted;
            }
            steps.push((now, frames, sent));
        }
        for (i, &(start, _, _)) in steps.iter().enumerate() {
            let (mut frames, mut sent) = (0.0, 0.0);
            for &(end, f, b) in &steps[i..] {
                frames += f;
                sent += b;
                let window = end.duration_since(start).as_secs_f64();
                let frame_budget = messages.0 + messages.1 * window;
                let byte_budget = bytes.0 + bytes.1 * window;
                prop_assert!(
                    frames <= frame_budget + 1e-6,
                    "{} frames accepted in {:.6} s (budget {:.0})",
                    frames,
                    window,
                    frame_budget
                );
                prop_assert!(
                    sent <= byte_budget + 1e-3,
                    "{} bytes accepted in {:.6} s (budget {:.0})",
                    sent,
                    window,
                    byte_budget
                );
            }
        }
        Ok(())
    });
}

/// The token bucket behind every budget: whatever was taken before and however time moved
/// (backwards too), waiting from the latest time it saw as long as `wait_for` says is enough for
/// what was asked, and it never asks for more than a refill from empty would take.
#[test]
fn a_token_bucket_keeps_its_promised_wait() {
    let op = (0u64..3_000_000, 0.0f64..50.0);
    let bucket = (1u32..100, 0.01f64..1000.0, vec(op, 0..20), 0.0f64..120.0);
    fuzz("token_bucket", 1, bucket, |(burst, rate, ops, ask)| {
        let t0 = Instant::now() + Duration::from_secs(3600);
        let mut bucket = TokenBucket::new(f64::from(burst), rate, t0);
        let (mut now, mut latest) = (t0, t0);
        for (gap_us, take) in ops {
            // Gaps are sometimes backwards: `Instant`s taken on different threads can be.
            now = if gap_us % 7 == 0 {
                now - Duration::from_micros(gap_us)
            } else {
                now + Duration::from_micros(gap_us)
            };
            latest = latest.max(now);
            bucket.take(take, now);
        }
        let now = latest;
        match bucket.wait_for(ask, now) {
            None => prop_assert!(ask > f64::from(burst)),
            Some(wait) => {
                prop_assert!(ask <= f64::from(burst));
                prop_assert!(
                    wait.as_secs_f64() <= ask / rate + 1e-6,
                    "waits {:?} for {} tokens at {}/s",
                    wait,
                    ask,
                    rate
                );
                let later = now + wait + Duration::from_micros(1);
                prop_assert!(
                    bucket.take(ask, later),
                    "{} tokens are not there after the promised {:?}",
                    ask,
                    wait
                );
            }
        }
        Ok(())
    });
}

/// The snapshot check a restore passes: accepted exactly when the snapshot is within its limits,
/// every entry is a URL the tab may load, and the page state belongs to the current entry; more
/// grants never refuse more; `restorable` agrees with it.
#[test]
fn snapshots_are_restorable_exactly_when_within_the_rules() {
    fuzz(
        "snapshots",
        1,
        (tab_snapshot(), grants(), grants()),
        |(snapshot, grants, more)| {
            let verdict = snapshot::check_snapshot(&snapshot, grants);
            match (&verdict, snapshot_problem(&snapshot, grants)) {
                (Ok(()), Some(why)) => return Err(fail(format!("accepted with {why}"))),
                (Err(e), None) => return Err(fail(format!("refused a valid snapshot: {e}"))),
                _ => {}
            }
            count(if verdict.is_ok() {
                "restorable"
            } else {
                "refused"
            });
            let restored = snapshot::restorable(&snapshot, grants);
            prop_assert_eq!(restored.is_some(), verdict.is_ok());
            if let Some(restored) = restored {
                prop_assert_eq!(format!("{restored:?}"), format!("{snapshot:?}"));
            }
            let union = Grants {
                file: grants.file || more.file,
                data: grants.data || more.data,
                internal: grants.internal || more.internal,
            };
            if verdict.is_ok() {
                prop_assert!(snapshot::check_snapshot(&snapshot, union).is_ok());
            }
            Ok(())
        },
    );
}

/// What the user opens is granted, and grants allow nothing beyond the web and what was granted.
#[test]
fn grants_allow_what_the_user_opened_and_nothing_else() {
    fuzz("grants", 1, (url(), grants()), |(url, grants)| {
        prop_assert_eq!(grants.allows(&url), loadable(&url, grants));
        let opened = Grants::for_user_url(&url);
        let user_openable = !url.chars().any(char::is_control)
            && url::Url::parse(&url).is_ok_and(|u| {
                matches!(
                    u.scheme(),
                    "http" | "https" | "file" | "data" | "warren" | "blob"
                ) || u.as_str() == "about:blank"
            });
        if user_openable && url.len() <= MAX_URL_LEN {
            prop_assert!(
                opened.allows(&url),
                "opening {:?} does not allow it",
                short(&url)
            );
        }
        Ok(())
    });
}

// --- 3. Control socket lines ---------------------------------------------------------------------

/// JSON values of every shape, nested a few levels.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map("[a-z_]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A field value for a request: right type, wrong type, out of range.
fn request_field(right: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![
        4 => right,
        1 => json_value(),
        1 => prop_oneof![
            Just(json!(-1)), Just(json!(1.5)), Just(json!(1e300)), Just(json!(u64::MAX)),
            Just(json!("7")), Just(Value::Null), Just(json!([])), Just(json!({}))
        ],
    ]
    .boxed()
}

/// Request objects: known and unknown commands, ids of every type, arguments of the right and
/// wrong types, unknown fields.
fn request_object() -> BoxedStrategy<Value> {
    let id = option::of(request_field(
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            "[ -~]{0,8}".prop_map(Value::String)
        ]
        .boxed(),
    ));
    let cmd = prop_oneof![
        6 => proptest::sample::select(Command::NAMES.to_vec()).prop_map(Value::from),
        1 => "[a-z_]{0,12}".prop_map(Value::String),
        1 => json_value(),
    ];
    let tab_id = option::of(request_field(
        prop_oneof![0u64..4, any::<u64>()]
            .prop_map(Value::from)
            .boxed(),
    ));
    let url_arg = option::of(request_field(url().prop_map(Value::String).boxed()));
    let js = option::of(request_field(text(64).prop_map(Value::String).boxed()));
    let background = option::of(request_field(any::<bool>().prop_map(Value::Bool).boxed()));
    let extra = btree_map("[a-z_]{1,8}", json_value(), 0..3);
    (id, cmd, tab_id, url_arg, js, background, extra)
        .prop_map(|(id, cmd, tab_id, url, js, background, extra)| {
            let mut map: serde_json::Map<String, Value> = extra.into_iter().collect();
            map.insert("cmd".into(), cmd);
            for (key, value) in [
                ("id", id),
                ("tab_id", tab_id),
                ("url", url),
                ("js", js),
                ("background", background),
            ] {
                if let Some(value) = value {
                    map.insert(key.into(), value);
                }
            }
            Value::Object(map)
        })
        .boxed()
}

/// Request lines: objects, any JSON, any text, deep nesting, huge numbers.
fn request_line() -> BoxedStrategy<String> {
    prop_oneof![
        6 => request_object().prop_map(|v| v.to_string()),
        2 => json_value().prop_map(|v| v.to_string()),
        2 => any::<String>(),
        1 => (1usize..20_000, prop_oneof![Just("["), Just("{\"a\":"), Just("[{\"cmd\":")])
            .prop_map(|(depth, open)| open.repeat(depth)),
        1 => (1usize..200, Just("[")).prop_map(|(depth, open)| {
            format!("{}1{}", open.repeat(depth), "]".repeat(depth))
        }),
        1 => "-?[0-9]{1,400}(\\.[0-9]{0,40})?([eE][+-]?[0-9]{1,5})?".prop_map(|n| {
            format!("{{\"id\":{n},\"cmd\":\"close\",\"tab_id\":{n}}}")
        }),
    ]
    .boxed()
}

/// The control protocol's parser: an error never echoes more than the line itself plus a fixed
/// text, carries the request's id when it had a usable one, and an accepted request reads back
/// the same from its own serialization.
#[test]
fn request_lines_parse_or_are_refused_with_their_id() {
    let cwd = std::env::current_dir().expect("a current directory");
    fuzz("request_lines", 1, request_line(), |line| {
        match protocol::parse_request(&line, &cwd) {
            Ok(request) => {
                count("parsed");
                let again = serde_json::to_string(&request)
                    .map_err(|e| fail(format!("an accepted request does not serialize: {e}")))?;
                let reparsed = protocol::parse_request(&again, &cwd)
                    .map_err(|e| fail(format!("{again:?} is refused: {e}")))?;
                prop_assert_eq!(reparsed, request);
            }
            Err(bad) => {
                count("refused");
                prop_assert!(!bad.message.is_empty());
                prop_assert!(
                    bad.message.len() <= line.len() + 1024,
                    "a {}-byte error for a {}-byte line",
                    bad.message.len(),
                    line.len()
                );
                // A JSON object whose id is a number or a string is answered with that id.
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&line) {
                    let usable = match map.get("id") {
                        Some(Value::Number(n)) => Some(RequestId::Number(n.clone())),
                        Some(Value::String(s)) => Some(RequestId::String(s.clone())),
                        _ => None,
                    };
                    if usable.is_some() {
                        prop_assert_eq!(bad.id, usable);
                    }
                }
            }
        }
        Ok(())
    });
}

/// What the address bar and the control socket turn into a URL: normalised (fixing it up again
/// changes nothing, as its docs promise), within the length limit, free of control characters,
/// and with a scheme Warren loads.
#[test]
fn url_fixup_is_idempotent_and_yields_loadable_urls() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    fs::write(dir.path().join("a.html"), "<p>a").expect("a file");
    fs::create_dir(dir.path().join("d")).expect("a directory");
    let cwd = dir.path().to_owned();
    let input = prop_oneof![
        4 => url(),
        2 => "[a-z0-9.\\-]{1,16}(:[0-9]{1,6})?(/[ -~]{0,10})?",
        2 => prop_oneof![
            Just("./a.html"), Just("a.html"), Just("./d"), Just("../"), Just("/"), Just("~"),
            Just("~/"), Just("/etc/passwd"), Just("localhost:8000"), Just("[::1]:80/x"),
            Just("127.0.0.1"), Just("example.org:99999"), Just("user@example.org"),
            Just("  example.org  "), Just("about:BLANK"), Just("file:///tmp/../etc")
        ]
        .prop_map(str::to_owned),
        1 => "(\\./|\\.\\./|/|~/)[ -~]{0,16}",
        1 => any::<String>(),
    ];
    fuzz("url_fixup", 1, input, |input| {
        let Ok(fixed) = url_input::fixup(&input, &cwd) else {
            count("refused");
            return Ok(());
        };
        count("fixed up");
        prop_assert!(fixed.len() <= MAX_URL_LEN);
        prop_assert!(!fixed.chars().any(char::is_control), "{:?}", fixed);
        let parsed = url::Url::parse(&fixed).map_err(|e| fail(format!("{fixed:?}: {e}")))?;
        prop_assert!(
            ["http", "https", "file", "data", "about", "warren"].contains(&parsed.scheme()),
            "{:?}",
            fixed
        );
        prop_assert_eq!(url_input::fixup(&fixed, &cwd), Ok(fixed.clone()));
        Ok(())
    });
}

/// One piece of what a control client writes.
#[derive(Clone, Debug)]
enum Piece {
    /// A request line and its line ending.
    Line { text: String, crlf: bool },
    /// Any bytes: invalid UTF-8, stray newlines and carriage returns.
    Raw(Vec<u8>),
    /// `len` copies of `byte`, then maybe a newline: lines around and far past the length cap.
    Long { len: usize, byte: u8, newline: bool },
}

fn piece() -> BoxedStrategy<Piece> {
    let long_len = prop_oneof![
        Just(MAX_LINE_LEN - 1),
        Just(MAX_LINE_LEN),
        Just(MAX_LINE_LEN + 1),
        MAX_LINE_LEN..3 * MAX_LINE_LEN
    ];
    prop_oneof![
        12 => (request_line(), any::<bool>()).prop_map(|(text, crlf)| Piece::Line { text, crlf }),
        3 => vec(any::<u8>(), 0..40).prop_map(Piece::Raw),
        1 => prop_oneof![Just(Piece::Raw(b"\n".to_vec())), Just(Piece::Raw(b" \t\r\n".to_vec()))],
        1 => (long_len, prop_oneof![Just(b'x'), Just(b' '), Just(0xff)], any::<bool>())
            .prop_map(|(len, byte, newline)| Piece::Long { len, byte, newline }),
    ]
    .boxed()
}

fn pieces_to_bytes(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Line { text, crlf } => {
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
            Piece::Raw(bytes) => out.extend_from_slice(bytes),
            Piece::Long { len, byte, newline } => {
                out.extend(std::iter::repeat_n(*byte, *len));
                if *newline {
                    out.push(b'\n');
                }
            }
        }
    }
    out
}

/// What the protocol says the server answers to `stream` (written whole, then the write side
/// closed): one reply per non-blank line, in order. A line over the cap gets an error and is
/// skipped (even unterminated); an unterminated last line within the cap is dropped. Valid
/// requests are answered by the fuzz UI with their own command (see `control_server`).
fn expected_replies(stream: &[u8], cwd: &Path) -> Vec<Value> {
    let too_long = json!({"id": null, "ok": false});
    let mut replies = Vec::new();
    let mut lines: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let last = lines.pop().unwrap_or_default();
    if last.len() > MAX_LINE_LEN {
        lines.push(last);
    }
    for line in lines {
        if line.len() > MAX_LINE_LEN {
            replies.push(too_long.clone());
            continue;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(text) = std::str::from_utf8(line) else {
            replies.push(json!({"id": null, "ok": false}));
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        replies.push(match protocol::parse_request(text, cwd) {
            Ok(request) => json!({
                "id": request.id,
                "ok": true,
                "result": {"value": command_value(&request.command)},
            }),
            Err(bad) => json!({"id": bad.id, "ok": false, "error": bad.message}),
        });
    }
    replies
}

fn command_value(command: &Command) -> Value {
    serde_json::to_value(command).unwrap_or(Value::Null)
}

/// A control server whose UI answers every request at once with the command it received.
fn control_server(dir: &Path) -> ControlServer {
    let deliver = Box::new(|request: Request| {
        let value = command_value(&request.command);
        let _ = request.reply.send(Ok(Answer::Eval(EvalResult { value })));
    });
    ControlServer::start(&dir.join("control.sock"), deliver).expect("the control socket starts")
}

/// Writes `stream` to a new connection in chunks (then closes the write side) while reading every
/// reply line until the server closes.
fn exchange(path: &Path, stream: Vec<u8>, sizes: Vec<usize>) -> Result<Vec<Value>, String> {
    let conn = UnixStream::connect(path).map_err(|e| format!("cannot connect: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let mut writer = conn.try_clone().map_err(|e| e.to_string())?;
    let writing = thread::spawn(move || -> std::io::Result<()> {
        let mut rest = &stream[..];
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            writer.write_all(chunk)?;
            rest = tail;
        }
        writer.shutdown(std::net::Shutdown::Write)
    });
    let mut replies = Vec::new();
    for line in BufReader::new(conn).lines() {
        let line =
            line.map_err(|e| format!("reading replies: {e} (after {} replies)", replies.len()))?;
        let value: Value =
            serde_json::from_str(&line).map_err(|e| format!("reply {line:?} is not JSON: {e}"))?;
        replies.push(value);
    }
    writing
        .join()
        .map_err(|_| "the writing thread panicked".to_owned())?
        .map_err(|e| format!("writing the requests: {e}"))?;
    Ok(replies)
}

/// Whether `reply` is what `expected` says: the same id and outcome, and for requests the server
/// answered from the parser, the same error or result.
fn reply_matches(reply: &Value, expected: &Value) -> bool {
    let same = |key: &str| expected.get(key).is_none_or(|v| reply.get(key) == Some(v));
    let error_ok = reply
        .get("error")
        .map_or(reply.get("ok") == Some(&json!(true)), |e| {
            e.as_str().is_some_and(|s| !s.is_empty())
        });
    same("id") && same("ok") && same("error") && same("result") && error_ok
}

/// The control socket, through a real connection: every non-blank line is answered exactly once
/// and in order (bad JSON, invalid UTF-8, lines past the cap, with or without their newline),
/// and the server keeps serving the next connection.
#[test]
fn the_control_socket_answers_every_line_once_in_order() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let server = control_server(dir.path());
    let path = server.path().to_owned();
    let cwd = std::env::current_dir().expect("a current directory");
    let sizes = vec(prop_oneof![1usize..16, 1usize..4096, Just(1 << 20)], 1..6);
    fuzz(
        "control_socket",
        8,
        (vec(piece(), 0..12), sizes),
        |(pieces, sizes)| {
            let stream = pieces_to_bytes(&pieces);
            let expected = expected_replies(&stream, &cwd);
            let replies = exchange(&path, stream, sizes).map_err(fail)?;
            prop_assert_eq!(replies.len(), expected.len(), "replies: {:?}", replies);
            for reply in &replies {
                count(if reply["ok"] == json!(true) {
                    "requests answered"
                } else {
                    "errors answered"
                });
            }
            for (i, (reply, want)) in replies.iter().zip(&expected).enumerate() {
                prop_assert!(
                    reply_matches(reply, want),
                    "reply {} is {}, expected {}",
                    i,
                    reply,
                    want
                );
            }
            Ok(())
        },
    );
    drop(server);
}

// --- 4. Session files -------------------------------------------------------------------------------

/// Paths of files the user opened: absolute or not, with NUL and other control characters, past
/// the URL limit, and with `non_utf8` names that are not UTF-8 (a file named in another encoding,
/// or `file:///tmp/%FF`).
fn opened_file(non_utf8: bool) -> BoxedStrategy<PathBuf> {
    let odd_bytes = if non_utf8 {
        vec(any::<u8>(), 0..12).boxed()
    } else {
        prop_oneof![any::<String>(), "[\\x00-\\x1f]{0,4}"]
            .prop_map(String::into_bytes)
            .boxed()
    };
    prop_oneof![
        6 => "/[ -~]{0,20}".prop_map(PathBuf::from),
        1 => "[a-z./]{0,8}".prop_map(PathBuf::from),
        1 => odd_bytes.prop_map(|bytes| {
            let mut path = b"/tmp/".to_vec();
            path.extend(bytes);
            PathBuf::from(std::ffi::OsString::from_vec(path))
        }),
        1 => around(MAX_URL_LEN).prop_map(|len| PathBuf::from(format!("/{}", "f".repeat(len)))),
    ]
    .boxed()
}

fn session_tab(non_utf8: bool) -> BoxedStrategy<SessionTab> {
    let title = prop_oneof![4 => "[ -~]{0,12}", 1 => text(MAX_TITLE_LEN)];
    let files = prop_oneof![
        6 => vec(opened_file(non_utf8), 0..3),
        1 => (MAX_OPENED_FILES - 1..=MAX_OPENED_FILES + 1)
            .prop_map(|n| (0..n).map(|i| PathBuf::from(format!("/tmp/{i}"))).collect()),
    ];
    (
        (
            prop_oneof![url(), plausible_url()],
            title,
            any::<bool>(),
            any::<u64>(),
        ),
        (
            grants(),
            files,
            option::of(tab_snapshot().prop_map(Arc::new)),
        ),
    )
        .prop_map(
            |((url, title, pinned, last_active_ms), (grants, files, snapshot))| SessionTab {
                url,
                title,
                pinned,
                last_active_ms,
                grants,
                files,
                snapshot,
            },
        )
        .boxed()
}

/// Whether a tab's list of opened files is one a session may hold: at most
/// `MAX_OPENED_FILES`, each an absolute path no longer than a URL may be.
fn files_ok(files: &[PathBuf]) -> bool {
    files.len() <= MAX_OPENED_FILES
        && files
            .iter()
            .all(|f| f.is_absolute() && f.as_os_str().len() <= MAX_URL_LEN)
}

/// Sessions of a few tabs; `non_utf8`: their opened files may have names that are not UTF-8.
fn a_session(non_utf8: bool) -> BoxedStrategy<Session> {
    (vec(session_tab(non_utf8), 0..5), option::of(0usize..6))
        .prop_map(|(tabs, active)| Session { tabs, active })
        .boxed()
}

/// What the session file's docs say a save keeps of `session`, as a load gives it back: tabs
/// whose URL their grants allow (and whose opened files are within their limits), titles cut to the limit, snapshots that fail the restore check
/// dropped, pinned tabs first (stably), the active tab followed.
fn as_loaded(session: &Session) -> Session {
    let mut kept: Vec<(SessionTab, bool)> = Vec::new();
    for (index, tab) in session.tabs.iter().enumerate() {
        if kept.len() == MAX_SESSION_TABS {
            break;
        }
        if !loadable(&tab.url, tab.grants) || !files_ok(&tab.files) {
            continue;
        }
        let mut tab = tab.clone();
        tab.title = warren_ipc::truncate_str(&tab.title, MAX_TITLE_LEN).to_owned();
        if tab
            .snapshot
            .as_deref()
            .is_some_and(|s| snapshot_problem(s, tab.grants).is_some())
        {
            tab.snapshot = None;
        }
        kept.push((tab, session.active == Some(index)));
    }
    kept.sort_by_key(|(tab, _)| !tab.pinned);
    Session {
        active: kept.iter().position(|(_, active)| *active),
        tabs: kept.into_iter().map(|(tab, _)| tab).collect(),
    }
}

/// Why a loaded session breaks what the session file's docs promise, or `None`.
fn loaded_problem(session: &Session) -> Option<String> {
    let n = session.tabs.len();
    if n > MAX_SESSION_TABS {
        return Some(format!("{n} tabs"));
    }
    if session.active.is_some_and(|a| a >= n) {
        return Some(format!("active tab {:?} of {n}", session.active));
    }
    if session.tabs.windows(2).any(|w| !w[0].pinned && w[1].pinned) {
        return Some("a pinned tab after an unpinned one".into());
    }
    session.tabs.iter().enumerate().find_map(|(i, tab)| {
        let why = over("a title", tab.title.len(), MAX_TITLE_LEN)
            .or_else(|| {
                (!loadable(&tab.url, tab.grants)).then(|| format!("the URL {:?}", short(&tab.url)))
            })
            .or_else(|| {
                tab.snapshot
                    .as_deref()
                    .and_then(|s| snapshot_problem(s, tab.grants))
            })?;
        Some(format!("tab {i} has {why}"))
    })
}

/// Saves `session` and loads it back: it must come back as the docs say.
fn save_and_load(session: Session) -> TestCaseResult {
    let dir = tempfile::tempdir().map_err(|e| fail(e.to_string()))?;
    session::save(dir.path(), &session).map_err(|e| fail(format!("save: {e}")))?;
    let loaded = match session::load(dir.path()) {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return Err(fail("the saved session is not found".into())),
        Err(e) => return Err(fail(format!("the saved session is refused: {e}"))),
    };
    prop_assert_eq!(format!("{loaded:?}"), format!("{:?}", as_loaded(&session)));
    for tab in &loaded.tabs {
        count(if tab.snapshot.is_some() {
            "tabs back with a snapshot"
        } else {
            "tabs back without"
        });
    }
    Ok(())
}

/// Any session the browser holds (hostile snapshots and URLs included) is saved as a file that
/// loads back as the docs say: the save never writes what a load would refuse.
#[test]
fn a_saved_session_loads_back_as_documented() {
    fuzz("session_round_trip", 4, a_session(false), save_and_load);
}

/// The same with opened files whose names are not UTF-8. serde cannot write such a `PathBuf` as
/// JSON, so the whole save fails ("cannot encode the session: path contains invalid UTF-8
/// characters") for as long as such a tab is open, and the session file goes stale. Minimal
/// input: one tab at `http:///a` whose `files` is `["/tmp/\x80"]`.
#[test]
fn a_saved_session_with_non_utf8_files_loads_back_as_documented() {
    fuzz(
        "session_round_trip_non_utf8",
        4,
        a_session(true),
        save_and_load,
    );
}

/// A change to a session file.
#[derive(Clone, Debug)]
enum Damage {
    /// Byte-level edits.
    Bytes(Vec<Edit>),
    /// Values replaced in the JSON tree (see `replace_node`).
    Json(Vec<(usize, Value, bool)>),
    /// Something else entirely.
    Replace(Vec<u8>),
    /// Arrays nested `n` deep, under a key the format does not have.
    Deep(usize),
}

fn hostile_json() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => json_value(),
        1 => prop_oneof![
            Just(json!(-1)), Just(json!(1e308)), Just(json!(u64::MAX)), Just(json!(1.5)),
            Just(json!(2)), Just(json!(0)), Just(json!(true)), Just(Value::Null), Just(json!([])),
            Just(json!({})), Just(json!("file:///etc/passwd")), Just(json!("javascript:alert(1)")),
            Just(json!("not*base64!")), Just(json!("AAAA")), Just(json!("warren://newtab/"))
        ],
        1 => url().prop_map(Value::String),
    ]
    .boxed()
}

/// Strings, numbers and booleans a session file's fields should not hold, or might.
fn hostile_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        2 => url().prop_map(Value::String),
        1 => text(MAX_TITLE_LEN).prop_map(Value::String),
        1 => "[A-Za-z0-9+/=]{0,12}".prop_map(Value::String),
        1 => prop_oneof![0u64..4, Just(u64::MAX), any::<u64>()].prop_map(Value::from),
        1 => prop_oneof![Just(-1.0), Just(1e308), Just(0.5), -1.0e9..1.0e9].prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::Bool),
    ]
    .boxed()
}

fn damage() -> BoxedStrategy<Damage> {
    prop_oneof![
        3 => vec(edit(), 1..4).prop_map(Damage::Bytes),
        4 => vec(
            prop_oneof![
                3 => (any::<usize>(), hostile_scalar(), Just(true)),
                1 => (any::<usize>(), hostile_json(), any::<bool>()),
            ],
            1..4
        )
        .prop_map(Damage::Json),
        1 => vec(any::<u8>(), 0..256).prop_map(Damage::Replace),
        1 => (1usize..100_000).prop_map(Damage::Deep),
    ]
    .boxed()
}

/// The JSON pointer of every node of `value` under `at`, in pre-order.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            out.push(at.clone());
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            out.push(at.clone());
            for (key, item) in map {
                let key = key.replace('~', "~0").replace('/', "~1");
                pointers(item, format!("{at}/{key}"), out);
            }
        }
        _ => out.push(at),
    }
}

/// Replaces the `n`th node (wrapping) of `tree` with `new`; with `same_kind`, the `n`th of the
/// nodes of `new`'s JSON type (a string for a string ...), so the file keeps its shape and gets
/// past the parser to the checks. Returns whether a node was replaced.
fn replace_node(tree: &mut Value, n: usize, new: &Value, same_kind: bool) -> bool {
    let mut all = Vec::new();
    pointers(tree, String::new(), &mut all);
    let kind = std::mem::discriminant(new);
    let candidates: Vec<&String> = all
        .iter()
        .filter(|p| {
            !same_kind
                || tree
                    .pointer(p)
                    .is_some_and(|v| std::mem::discriminant(v) == kind)
        })
        .collect();
    if candidates.is_empty() {
        return false;
    }
    let pointer = candidates[n % candidates.len()].clone();
    match tree.pointer_mut(&pointer) {
        Some(node) => {
            *node = new.clone();
            true
        }
        None => false,
    }
}

fn damaged(file: &[u8], damage: &Damage) -> Vec<u8> {
    match damage {
        Damage::Bytes(edits) => {
            let mut bytes = file.to_vec();
            apply(&mut bytes, edits);
            bytes
        }
        Damage::Json(changes) => {
            let mut tree: Value = serde_json::from_slice(file).expect("a saved session is JSON");
            for (n, new, same_kind) in changes {
                replace_node(&mut tree, *n, new, *same_kind);
            }
            serde_json::to_vec(&tree).expect("JSON serializes")
        }
        Damage::Replace(bytes) => bytes.clone(),
        Damage::Deep(depth) => {
            let deep = format!("{}{}", "[".repeat(*depth), "]".repeat(*depth));
            format!(r#"{{"deep":{deep},"version":1,"active":null,"tabs":[]}}"#).into_bytes()
        }
    }
}

/// A damaged session file is either loaded as a sound session or moved aside with its bytes
/// intact (never deleted, never half-loaded), and then the profile has no session file.
#[test]
fn a_damaged_session_file_is_loaded_soundly_or_moved_aside_intact() {
    fuzz(
        "session_damage",
        4,
        (a_session(false), damage()),
        |(session, damage)| {
            let dir = tempfile::tempdir().map_err(|e| fail(e.to_string()))?;
            let path = dir.path().join(session::SESSION_FILE);
            session::save(dir.path(), &session).map_err(|e| fail(format!("save: {e}")))?;
            let file = fs::read(&path).map_err(|e| fail(e.to_string()))?;
            let bytes = damaged(&file, &damage);
            fs::write(&path, &bytes).map_err(|e| fail(e.to_string()))?;
            match session::load(dir.path()) {
                Ok(Some(loaded)) => {
                    count("damaged files loaded");
                    if let Some(why) = loaded_problem(&loaded) {
                        return Err(fail(format!("a loaded session has {why}")));
                    }
                    prop_assert_eq!(fs::read(&path).ok(), Some(bytes));
                }
                Ok(None) => return Err(fail("the session file was not found".into())),
                Err(SessionError::MovedAside {
                    moved_to, problem, ..
                }) => {
                    count(match problem {
                        Problem::Json(_) => "moved aside: not a session's JSON",
                        Problem::WrongVersion { .. } => "moved aside: version",
                        Problem::ActiveOutOfRange { .. } => "moved aside: active tab",
                        Problem::TooLong { .. } | Problem::TooManyTabs { .. } => {
                            "moved aside: limits"
                        }
                        Problem::ForbiddenUrl { .. } => "moved aside: URL",
                        Problem::BadSnapshot { .. } | Problem::BadBase64 { .. } => {
                            "moved aside: snapshot"
                        }
                        _ => "moved aside: other",
                    });
                    prop_assert_eq!(fs::read(&moved_to).ok(), Some(bytes));
                    prop_assert!(!path.exists(), "the damaged file is still in place");
                    prop_assert!(matches!(session::load(dir.path()), Ok(None)));
                }
                Err(e) => return Err(fail(format!("load failed: {e}"))),
            }
            Ok(())
        },
    );
}

/// Only to keep the rules above honest: each is checked against a few values whose verdict is
/// known, so a rule that accepted or refused everything would fail here.
#[test]
fn the_oracles_tell_good_from_bad() {
    let good_history = SessionHistory {
        entries: vec![HistoryEntry {
            url: "https://a.example/".into(),
            title: "A".into(),
        }],
        current: 0,
        webkit_state: Vec::new(),
    };
    assert_eq!(
        refusal(&RendererToBrowser::HistoryState(good_history.clone())),
        None
    );
    let mut bad_history = good_history.clone();
    bad_history.current = 1;
    assert!(refusal(&RendererToBrowser::HistoryState(bad_history)).is_some());
    assert!(refusal(&RendererToBrowser::UrlChanged {
        url: "javascript:alert(1)".into()
    })
    .is_some());
    let snapshot = TabSnapshot {
        history: good_history,
        page: None,
    };
    assert_eq!(snapshot_problem(&snapshot, Grants::default()), None);
    let mut local = snapshot.clone();
    local.history.entries[0].url = "file:///etc/passwd".into();
    assert!(snapshot_problem(&local, Grants::default()).is_some());
    assert!(!loadable("about:config", Grants::default()));
    assert!(loadable("about:blank", Grants::default()));
    assert_eq!(
        expected_replies(b"{\"id\":1,\"cmd\":\"version\"}\n \n{\n", Path::new("/")).len(),
        2
    );
    let mut tree = json!({"a": [1, 2], "b/c": 3});
    assert!(replace_node(&mut tree, 3, &json!("x"), false));
    assert_eq!(tree, json!({"a": [1, "x"], "b/c": 3}));
    assert!(replace_node(&mut tree, 1, &json!(7), true));
    assert_eq!(tree, json!({"a": [1, "x"], "b/c": 7}));
    assert!(!replace_node(&mut tree, 0, &json!(true), true));
}

/// Descriptors a renderer sends (SCM_RIGHTS, 1 to 253 of them, with any chunk of an up stream)
/// end it with "sent file descriptors" unless its bytes before them already broke a rule, and
/// none of them stays open in the browser.
#[test]
fn passed_descriptors_end_the_renderer_and_none_leaks() {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let input = (
        vec(segment(), 0..4),
        vec(1usize..=126, 1..=2),
        any::<usize>(),
    );
    fuzz("passed_descriptors", 4, input, |(segments, groups, at)| {
        let mut bytes = Vec::new();
        let hello = UpFrame {
            tab_id: TAB,
            msg: RendererToBrowser::Hello,
        };
        encode_segment(&Segment::Frame(hello), &mut bytes);
        for s in &segments {
            encode_segment(s, &mut bytes);
        }
        let split = at % (bytes.len() + 1);
        let devnull = fs::File::open("/dev/null").map_err(|e| fail(e.to_string()))?;
        let before = open_dev_null();
        let (browser, mut renderer) = UnixStream::pair().map_err(|e| fail(e.to_string()))?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let reader =
            thread::spawn(move || warren_browser::host::read_up_channel(browser, TAB, &tx));
        // The reader may already have ended the renderer on these bytes (then the write fails
        // with EPIPE, and the descriptors below are never passed).
        let _ = renderer.write_all(&bytes[..split]);
        let fds: Vec<Vec<i32>> = groups
            .iter()
            .map(|&n| vec![devnull.as_raw_fd(); n])
            .collect();
        let cmsgs: Vec<ControlMessage> = fds.iter().map(|f| ControlMessage::ScmRights(f)).collect();
        // At least one byte must travel with the descriptors; the reader never decodes it.
        let with = if split < bytes.len() {
            &bytes[split..]
        } else {
            &b"x"[..]
        };
        // The reader may have ended the renderer already (EPIPE): then nothing was passed.
        let passed = sendmsg::<()>(
            renderer.as_raw_fd(),
            &[std::io::IoSlice::new(with)],
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .is_ok();
        drop(renderer);
        let last = reader
            .join()
            .map_err(|_| fail("the reader panicked".into()))?;
        let _: Vec<_> = rx.try_iter().collect();
        // Whether the bytes before the descriptors already ended the renderer: a bad frame, a
        // message the validator refuses, or a script result nobody asked for.
        let (frames, error) = frames_by_the_rules(&bytes[..split]);
        let mut validator = Validator::new(TAB, Instant::now());
        let broke_a_rule = error.is_some()
            || frames.iter().any(|(frame, wire_len)| {
                validator.check(frame, *wire_len, Instant::now()).is_err()
                    || matches!(frame.msg, RendererToBrowser::EvalResult { .. })
            });
        if passed && !broke_a_rule {
            prop_assert!(
                matches!(&last, warren_browser::host::HostEvent::Violation(why) if why == "sent file descriptors"),
                "{:?}",
                last
            );
        }
        prop_assert_eq!(open_dev_null(), before, "descriptors leaked");
        Ok(())
    });
}

/// How many descriptors of this process are open on /dev/null (no other test opens it).
fn open_dev_null() -> usize {
    fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter(|e| fs::read_link(e.path()).is_ok_and(|t| t == Path::new("/dev/null")))
                .count()
        })
        .unwrap_or(0)
}
