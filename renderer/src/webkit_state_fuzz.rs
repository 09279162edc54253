//! Property-based fuzzing of the WebKit session-state checks (`webkit_state.rs`): the state a
//! restoring renderer is handed came from a renderer (possibly a compromised one, through the
//! browser or the session file), so `check`, `sanitize` and `with_current_scroll` get hostile
//! GVariant bytes: random bytes, states of every shape built from a description (child frames
//! nested past the limit, POST bodies at any depth, URLs a tab may not show, other versions,
//! missing current indices), and byte-level mutations of those.
//!
//! For an undamaged state the verdict must be exactly the one the module docs describe (computed
//! here from the description, not from the bytes); for any state `check` accepts, `sanitize` and
//! `with_current_scroll` must give a state that still passes and keeps only the whitelisted
//! fields. A child module of `webkit_state` so that it can build states with the module's own
//! type strings. Case counts: `PROPTEST_CASES` (default 256); `make fuzz` runs it long.

use glib::prelude::*;
use glib::{Variant, VariantTy};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use warren_ipc::HistoryEntry;

use super::*;
use crate::session::reportable_url;

/// Runs `test` on `PROPTEST_CASES` values of `strategy` (in batches, so `WARREN_FUZZ_SECONDS`
/// can end a long run); panics with the shrunk failing input.
fn fuzz<S>(name: &'static str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    const BATCH: u32 = 100;
    let base = Config::default();
    let budget = std::env::var("WARREN_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(std::time::Duration::from_secs);
    let start = std::time::Instant::now();
    let mut done = 0;
    while done < base.cases && budget.is_none_or(|b| start.elapsed() < b) {
        let cases = BATCH.min(base.cases - done);
        let config = Config {
            cases,
            source_file: Some(file!()),
            test_name: Some(name),
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
                "proptest-regressions",
            ))),
            max_shrink_time: 60_000,
            ..base.clone()
        };
        if let Err(e) = TestRunner::new(config).run(&strategy, &test) {
            panic!("fuzz property {name} failed: {e}");
        }
        done += cases;
    }
    eprintln!(
        "fuzz {name}: {done} cases in {:.1} s; {} states accepted",
        start.elapsed().as_secs_f64(),
        ACCEPTED.with(|n| n.replace(0))
    );
}

thread_local! {
    /// States `check` accepted on this test thread: how deep the inputs got.
    static ACCEPTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_accepted() {
    ACCEPTED.with(|n| n.set(n.get() + 1));
}

fn fail(why: String) -> TestCaseError {
    TestCaseError::fail(why)
}

/// One frame of a back/forward item, as WebKit serializes it.
#[derive(Clone, Debug)]
struct FrameSpec {
    url: String,
    original_url: String,
    referrer: String,
    target: String,
    document_state: Vec<String>,
    state_object: Option<Vec<u8>>,
    document_sequence: i64,
    item_sequence: i64,
    scroll: (i32, i32),
    scale: f64,
    /// A form POST's data.
    body: Option<Vec<u8>>,
    children: Vec<FrameSpec>,
}

/// A whole session state.
#[derive(Clone, Debug)]
struct StateSpec {
    version: u16,
    /// Each item's title, main frame and external-URL policy.
    items: Vec<(String, FrameSpec, u32)>,
    current: Option<u32>,
}

impl FrameSpec {
    fn variant(&self) -> Variant {
        let body_type = VariantTy::new(HTTP_BODY_TYPE).expect("the body type is valid");
        let body = match &self.body {
            None => Variant::from_none(body_type),
            Some(data) => {
                let element = Variant::tuple_from_iter([
                    0u32.to_variant(),
                    Variant::array_from_fixed_array(data),
                    "".to_variant(),
                    0i64.to_variant(),
                    Variant::from_none(VariantTy::INT64),
                    Variant::from_none(VariantTy::DOUBLE),
                    "".to_variant(),
                ]);
                let element_type = element.type_().to_owned();
                Variant::from_some(&Variant::tuple_from_iter([
                    "application/x-www-form-urlencoded".to_variant(),
                    Variant::array_from_iter_with_type(&element_type, [element]),
                ]))
            }
        };
        let state_object = match &self.state_object {
            None => Variant::from_none(VariantTy::BYTE_STRING),
            Some(bytes) => Variant::from_some(&Variant::array_from_fixed_array(bytes)),
        };
        Variant::tuple_from_iter([
            self.url.to_variant(),
            self.original_url.to_variant(),
            self.referrer.to_variant(),
            self.target.to_variant(),
            Variant::array_from_iter_with_type(
                VariantTy::STRING,
                self.document_state.iter().map(|s| s.to_variant()),
            ),
            state_object,
            self.document_sequence.to_variant(),
            self.item_sequence.to_variant(),
            self.scroll.to_variant(),
            self.scale.to_variant(),
            body,
            Variant::array_from_iter_with_type(
                VariantTy::VARIANT,
                self.children
                    .iter()
                    .map(|c| Variant::from_variant(&c.variant())),
            ),
        ])
    }

    /// Whether this frame's children are acceptable at `depth` (see `check_children`).
    fn children_ok(&self, depth: usize) -> bool {
        if !self.children.is_empty() && depth >= MAX_FRAME_DEPTH {
            return false;
        }
        self.children
            .iter()
            .all(|c| (c.url.is_empty() || reportable_url(&c.url)) && c.children_ok(depth + 1))
    }

    fn body_below(&self) -> bool {
        self.children
            .iter()
            .any(|c| c.body.is_some() || c.body_below())
    }
}

impl StateSpec {
    fn bytes(&self) -> Vec<u8> {
        let item_type = VariantTy::new(ITEM_TYPE).expect("the item type is valid");
        let items = self.items.iter().map(|(title, frame, policy)| {
            Variant::tuple_from_iter([title.to_variant(), frame.variant(), policy.to_variant()])
        });
        let current = match self.current {
            Some(c) => Variant::from_some(&c.to_variant()),
            None => Variant::from_none(VariantTy::UINT32),
        };
        Variant::tuple_from_iter([
            self.version.to_variant(),
            Variant::array_from_iter_with_type(item_type, items),
            current,
        ])
        .data()
        .to_vec()
    }

    /// The verdict the module docs give for this state against `entries` and `current`.
    fn verdict(&self, entries: &[HistoryEntry], current: u32) -> Result<(), StateProblem> {
        if self.version != VERSION {
            return Err(StateProblem::Undecodable);
        }
        if self.items.len() != entries.len() {
            return Err(StateProblem::Length {
                got: self.items.len(),
                expected: entries.len(),
            });
        }
        for (index, ((_, frame, _), entry)) in self.items.iter().zip(entries).enumerate() {
            if frame.url != entry.url {
                return Err(StateProblem::Url(index));
            }
            if frame.body.is_some() {
                return Err(StateProblem::HttpBody(index));
            }
            if !frame.children_ok(0) {
                return Err(StateProblem::Frame(index));
            }
            if frame.body_below() {
                return Err(StateProblem::HttpBody(index));
            }
        }
        if self.current != Some(current) {
            return Err(StateProblem::Current {
                got: self.current,
                expected: current,
            });
        }
        Ok(())
    }
}

/// Text without NUL (GVariant strings cannot hold one), often empty or URL-like.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => Just(String::new()),
        3 => "[^\\x00]{0,16}",
        1 => "[ -~]{0,40}",
    ]
    .boxed()
}

/// URLs for frames: ones a tab may show, ones it may not, empty, and malformed.
fn frame_url() -> BoxedStrategy<String> {
    prop_oneof![
        6 => proptest::sample::select(vec![
            "https://a.example/", "https://b.example/x?y#z", "http://127.0.0.1:8000/",
            "about:blank", "about:srcdoc", "data:text/html,hi", "file:///tmp/a.html",
            "warren://newtab/", "blob:https://a.example/1",
        ])
        .prop_map(str::to_owned),
        2 => proptest::sample::select(vec![
            "", "javascript:alert(1)", "chrome://settings", "ftp://a.example/", "not a url",
            "file:///home/u/.ssh/id_rsa",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z]{1,6}:[ -~]{0,20}",
    ]
    .boxed()
}

fn scale() -> BoxedStrategy<f64> {
    prop_oneof![
        Just(1.0),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(0.0),
        Just(-1.0),
        Just(10.0),
        Just(10.000_001),
        any::<f64>(),
    ]
    .boxed()
}

/// Frames with children nested up to past `MAX_FRAME_DEPTH`, POST bodies here and there.
fn frame_spec() -> BoxedStrategy<FrameSpec> {
    let leaf = (
        (frame_url(), frame_url(), text(), text()),
        (
            vec(text(), 0..3),
            proptest::option::of(vec(any::<u8>(), 0..8)),
            any::<i64>(),
            any::<i64>(),
        ),
        (
            any::<(i32, i32)>(),
            scale(),
            proptest::option::weighted(0.1, vec(any::<u8>(), 0..16)),
        ),
    )
        .prop_map(
            |(
                (url, original_url, referrer, target),
                (document_state, state_object, document_sequence, item_sequence),
                (scroll, scale, body),
            )| FrameSpec {
                url,
                original_url,
                referrer,
                target,
                document_state,
                state_object,
                document_sequence,
                item_sequence,
                scroll,
                scale,
                body,
                children: Vec::new(),
            },
        )
        .boxed();
    let parent = leaf.clone();
    let nested = leaf.prop_recursive(3, 12, 3, move |inner| {
        (parent.clone(), vec(inner, 0..3)).prop_map(|(mut frame, children)| {
            frame.children = children;
            frame
        })
    });
    // A chain around the depth limit, with the last link's URL and body chosen like any other.
    let chain = (nested.clone(), MAX_FRAME_DEPTH - 1..=MAX_FRAME_DEPTH + 1).prop_map(
        |(mut frame, depth)| {
            for _ in 0..depth {
                let mut parent = frame.clone();
                parent.body = None;
                parent.url = "https://f.example/".into();
                parent.children = vec![frame];
                frame = parent;
            }
            frame
        },
    );
    prop_oneof![8 => nested, 1 => chain].boxed()
}

fn state_spec() -> BoxedStrategy<StateSpec> {
    let version = prop_oneof![8 => Just(VERSION), 1 => any::<u16>()];
    let item = (
        text(),
        frame_spec(),
        prop_oneof![Just(0u32), Just(POLICY_NOT_ALLOW), any::<u32>()],
    );
    let current = prop_oneof![
        6 => (0u32..4).prop_map(Some),
        1 => Just(None),
        1 => any::<u32>().prop_map(Some),
    ];
    (version, vec(item, 0..4), current)
        .prop_map(|(version, items, current)| StateSpec {
            version,
            items,
            current,
        })
        .boxed()
}

/// How the entries a state is checked against relate to it.
#[derive(Clone, Debug)]
enum Entries {
    /// The state's own URLs and current index.
    Same,
    /// One URL changed.
    OtherUrl(usize, String),
    /// One entry fewer or more.
    Dropped,
    Added(String),
    /// Another current index.
    OtherCurrent(u32),
}

fn entries_change() -> BoxedStrategy<Entries> {
    prop_oneof![
        6 => Just(Entries::Same),
        1 => (any::<usize>(), frame_url()).prop_map(|(i, u)| Entries::OtherUrl(i, u)),
        1 => Just(Entries::Dropped),
        1 => frame_url().prop_map(Entries::Added),
        1 => (0u32..5).prop_map(Entries::OtherCurrent),
    ]
    .boxed()
}

fn entries_for(spec: &StateSpec, change: &Entries) -> (Vec<HistoryEntry>, u32) {
    let mut entries: Vec<HistoryEntry> = spec
        .items
        .iter()
        .map(|(title, frame, _)| HistoryEntry {
            url: frame.url.clone(),
            title: title.clone(),
        })
        .collect();
    let mut current = spec.current.unwrap_or(0);
    match change {
        Entries::Same => {}
        Entries::OtherUrl(i, url) => {
            if !entries.is_empty() {
                let n = entries.len();
                entries[i % n].url = url.clone();
            }
        }
        Entries::Dropped => {
            entries.pop();
        }
        Entries::Added(url) => entries.push(HistoryEntry {
            url: url.clone(),
            title: String::new(),
        }),
        Entries::OtherCurrent(c) => current = *c,
    }
    (entries, current)
}

/// A byte-level change; positions wrap around the length.
#[derive(Clone, Debug)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edits() -> BoxedStrategy<Vec<Edit>> {
    vec(
        prop_oneof![
            (any::<usize>(), 0u8..8).prop_map(|(i, bit)| Edit::Flip(i, 1 << bit)),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
            any::<usize>().prop_map(Edit::Delete),
            any::<usize>().prop_map(Edit::Truncate),
        ],
        0..6,
    )
    .boxed()
}

fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let n = bytes.len();
        match *e {
            Edit::Flip(i, mask) if n > 0 => bytes[i % n] ^= mask,
            Edit::Set(i, b) if n > 0 => bytes[i % n] = b,
            Edit::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Edit::Delete(i) if n > 0 => {
                bytes.remove(i % n);
            }
            Edit::Truncate(i) => bytes.truncate(i % (n + 1)),
            _ => {}
        }
    }
}

fn decode(bytes: &[u8]) -> Variant {
    Variant::from_bytes_with_type(
        &glib::Bytes::from(bytes),
        VariantTy::new(SESSION_TYPE).expect("the session type is valid"),
    )
}

/// What must hold of a state `check` accepted against `entries` and `current`: sanitizing it
/// gives a state that still passes, is its own sanitized form, and keeps only the whitelisted
/// fields; moving its current item's scroll position gives a state that still passes, with the
/// new position on that item alone.
fn accepted_state_is_sound(
    bytes: &[u8],
    entries: &[HistoryEntry],
    current: u32,
    scroll: (i32, i32),
) -> Result<(), TestCaseError> {
    count_accepted();
    let clean =
        sanitize(bytes).ok_or_else(|| fail("an accepted state does not sanitize".into()))?;
    prop_assert_eq!(check(&clean, entries, current), Ok(()));
    prop_assert_eq!(sanitize(&clean), Some(clean.clone()));
    let state = decode(&clean);
    for (index, item) in state.child_value(1).iter().enumerate() {
        let frame = item.child_value(1);
        let url = frame.child_value(FRAME_URL);
        prop_assert_eq!(url.str(), Some(entries[index].url.as_str()));
        let (original, referrer) = (frame.child_value(1), frame.child_value(2));
        prop_assert_eq!(original.str(), url.str(), "original URL");
        prop_assert_eq!(referrer.str(), Some(""), "referrer");
        prop_assert_eq!(frame.child_value(4).n_children(), 0, "document state");
        prop_assert!(frame.child_value(5).as_maybe().is_none(), "state object");
        prop_assert!(frame.child_value(FRAME_HTTP_BODY).as_maybe().is_none());
        prop_assert_eq!(frame.child_value(FRAME_CHILDREN).n_children(), 0);
        let scale = frame.child_value(FRAME_PAGE_SCALE).get::<f64>();
        prop_assert!(
            scale.is_some_and(|s| s.is_finite() && s > 0.0 && s <= 10.0),
            "page scale {:?}",
            scale
        );
        prop_assert_eq!(item.child_value(2).get::<u32>(), Some(POLICY_NOT_ALLOW));
    }

    let scrolls = |bytes: &[u8]| -> Vec<Option<(i32, i32)>> {
        decode(bytes)
            .child_value(1)
            .iter()
            .map(|item| item.child_value(1).child_value(FRAME_SCROLL).get())
            .collect()
    };
    // `check` trusts its caller's `current` to be one of `entries` (both callers make sure of
    // it); a state checked against an index past the end has no current item to move.
    let moved = with_current_scroll(bytes, scroll.0, scroll.1);
    if current as usize >= entries.len() {
        prop_assert_eq!(moved, None);
        return Ok(());
    }
    let moved = moved.ok_or_else(|| fail("an accepted state's scroll cannot be set".into()))?;
    prop_assert_eq!(check(&moved, entries, current), Ok(()));
    let mut expected = scrolls(bytes);
    expected[current as usize] = Some(scroll);
    prop_assert_eq!(scrolls(&moved), expected);
    Ok(())
}

fn entries_of(urls: &[String]) -> Vec<HistoryEntry> {
    urls.iter()
        .map(|url| HistoryEntry {
            url: url.clone(),
            title: String::new(),
        })
        .collect()
}

/// Random bytes against random entries: refused, or accepted and sound; never a panic.
#[test]
fn random_bytes_are_refused_or_sound() {
    let input = (
        vec(any::<u8>(), 0..512),
        vec(frame_url(), 0..3),
        0u32..3,
        any::<(i32, i32)>(),
    );
    fuzz(
        "webkit_random_bytes",
        input,
        |(bytes, urls, current, scroll)| {
            let entries = entries_of(&urls);
            if check(&bytes, &entries, current).is_ok() {
                accepted_state_is_sound(&bytes, &entries, current, scroll)?;
            }
            // Neither may panic on what `check` refused.
            let _ = sanitize(&bytes);
            let _ = with_current_scroll(&bytes, scroll.0, scroll.1);
            Ok(())
        },
    );
}

/// States of every shape: an undamaged one gets exactly the documented verdict; a damaged one is
/// refused or sound.
#[test]
fn states_get_the_documented_verdict_and_damaged_ones_are_refused_or_sound() {
    let input = (state_spec(), entries_change(), edits(), any::<(i32, i32)>());
    fuzz("webkit_states", input, |(spec, change, edits, scroll)| {
        let (entries, current) = entries_for(&spec, &change);
        let mut bytes = spec.bytes();
        let verdict = check(&bytes, &entries, current);
        prop_assert_eq!(&verdict, &spec.verdict(&entries, current));
        if verdict.is_ok() {
            accepted_state_is_sound(&bytes, &entries, current, scroll)?;
        }
        apply(&mut bytes, &edits);
        if check(&bytes, &entries, current).is_ok() {
            accepted_state_is_sound(&bytes, &entries, current, scroll)?;
        }
        let _ = sanitize(&bytes);
        let _ = with_current_scroll(&bytes, scroll.0, scroll.1);
        Ok(())
    });
}

/// Entries whose strings hold anything, NUL and other control characters included when
/// `with_nul` (the browser accepts a URL with a raw NUL, since `url::Url::parse` does), as many as
/// a test asks for, with a current index among them.
fn any_entries(with_nul: bool) -> BoxedStrategy<(Vec<HistoryEntry>, u32)> {
    let string = if with_nul {
        prop_oneof![any::<String>(), "[\\x00-\\x1f a-z:/]{0,12}"].boxed()
    } else {
        prop_oneof![any::<String>(), "[\\x01-\\x1f a-z:/]{0,12}"].boxed()
    };
    (vec((string.clone(), string), 1..6), any::<u32>())
        .prop_map(|(pairs, current)| {
            let current = current % pairs.len() as u32;
            let entries = pairs
                .into_iter()
                .map(|(url, title)| HistoryEntry { url, title })
                .collect();
            (entries, current)
        })
        .boxed()
}

/// A state built from entries alone passes the check against those entries, whatever their
/// strings hold (control characters included), as the restore path expects.
#[test]
fn synthesized_states_pass_against_their_entries() {
    fuzz(
        "webkit_synthesize",
        any_entries(false),
        |(entries, current)| {
            let bytes = synthesize(&entries, current);
            prop_assert_eq!(check(&bytes, &entries, current), Ok(()));
            count_accepted();
            Ok(())
        },
    );
}

// Strings with a NUL never reach `synthesize`: the browser refuses URLs with control characters
// (`validate::check_url`, `Grants::allows`), and GLib strings end at a NUL.
