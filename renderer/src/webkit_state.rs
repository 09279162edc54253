//! WebKit's serialized session state (`webkit_web_view_session_state_serialize`): checked before it is sent or restored, and built from a plain list of URLs when there is none.
//!
//! The state is a GVariant of WebKitGTK's own format (version 2 since WebKitGTK 2.28, still the
//! one 2.50 writes): a version, the back/forward items — each a title, a frame state (URL,
//! original URL, referrer, target, the form controls' saved state, `history.state`, sequence
//! numbers, scroll position, page scale, the HTTP body of a form POST, child frames) and a
//! policy — and the current index.
//!
//! The browser never decodes it; the renderer does, for three reasons:
//!
//! * A restoring renderer must not restore a state whose items are not the URLs the browser
//!   checked (`SessionHistory::entries`): a forged state could otherwise load anything.
//! * A form POST's body may hold what the user typed into a password field. A state with a body
//!   is never sent to the browser (which keeps it, possibly on disk), and never restored:
//!   going to such an item would send the POST again.
//! * Without a state (too large, trimmed, refused) the entries alone still give the tab its
//!   history: [`synthesize`] builds a state with just their URLs and titles.
//! * Only a whitelist of each item's fields is ever kept ([`sanitize`], on capture and again
//!   before a restore): its title, its URL, its sequence numbers, its scroll position and page
//!   scale. Everything else a state can carry is dropped: child frames (WebKit would load a
//!   restored child item's URL directly into an iframe of the same name, past the tab's grants),
//!   the form controls' saved state (it can restore a file input's path, which a page would then
//!   upload, and it holds card numbers and one-time codes WebKit does not treat as secret), the
//!   `history.state` bytes (deserialized by WebKit), the referrer, and the item's external-URL
//!   policy (always "never open external URLs").
//! * WebKit saves an item's scroll position only when the page is left, so the current item of
//!   a captured state still says (0, 0); and going to a restored item scrolls the page there a
//!   moment after it loaded, undoing the renderer's own scroll. [`with_current_scroll`] writes
//!   the captured offset into the current item first.

use glib::prelude::*;
use glib::{Variant, VariantTy};
use warren_ipc::HistoryEntry;

use crate::session::reportable_url;

/// The type of a version-2 session state.
const SESSION_TYPE: &str = "(qa(s(ssssasmayxx(ii)dm(sa(uaysxmxmds))av)u)mu)";

/// The type of one back/forward item: its title, its main frame's state, its policy.
const ITEM_TYPE: &str = "(s(ssssasmayxx(ii)dm(sa(uaysxmxmds))av)u)";

/// The type of one frame state (an item's main frame, and each child frame).
const FRAME_TYPE: &str = "(ssssasmayxx(ii)dm(sa(uaysxmxmds))av)";

/// The type of an HTTP body (`m(...)`: absent for a GET).
const HTTP_BODY_TYPE: &str = "(sa(uaysxmxmds))";

/// The format version this module reads and writes.
const VERSION: u16 = 2;

/// WebKit's "never open external URLs" policy value.
const POLICY_NOT_ALLOW: u32 = 2;

/// Child frames nested deeper than this are refused (pages cannot nest frames this deep anyway).
const MAX_FRAME_DEPTH: usize = 32;

/// Indices of the frame state's fields.
const FRAME_URL: usize = 0;
const FRAME_TARGET: usize = 3;
const FRAME_DOCUMENT_SEQUENCE: usize = 6;
const FRAME_ITEM_SEQUENCE: usize = 7;
const FRAME_SCROLL: usize = 8;
const FRAME_PAGE_SCALE: usize = 9;
const FRAME_HTTP_BODY: usize = 10;
const FRAME_CHILDREN: usize = 11;

/// Why a session state may not be sent or restored as it is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateProblem {
    #[error("it is not a version-{VERSION} WebKit session state in normal form (another WebKit version wrote it, or it was damaged); the tab restores from its URLs instead")]
    Undecodable,
    #[error("it lists {got} entries where the history has {expected}")]
    Length { got: usize, expected: usize },
    #[error("its entry {0} is not the history's URL there")]
    Url(usize),
    #[error("its current entry is {got:?}, the history's is {expected}")]
    Current { got: Option<u32>, expected: u32 },
    #[error("its entry {0} carries a form POST body, which Warren never keeps or sends again")]
    HttpBody(usize),
    #[error("a frame of its entry {0} has a URL a tab may not show, or is malformed")]
    Frame(usize),
}

impl StateProblem {
    /// Whether the state says something other than the history (forged, or a renderer bug), as
    /// opposed to a state this renderer cannot read or will not keep.
    pub fn contradicts_history(&self) -> bool {
        matches!(
            self,
            Self::Length { .. } | Self::Url(_) | Self::Current { .. } | Self::Frame(_)
        )
    }
}

/// Checks that `bytes` is a version-2 session state whose items are exactly the URLs of
/// `entries`, in order, with the current one at `current`; that no item carries a form POST
/// body; and that every child frame's URL is one a tab may show.
pub fn check(bytes: &[u8], entries: &[HistoryEntry], current: u32) -> Result<(), StateProblem> {
    let session_type = VariantTy::new(SESSION_TYPE).map_err(|_| StateProblem::Undecodable)?;
    let state = Variant::from_bytes_with_type(&glib::Bytes::from(bytes), session_type);
    if !state.is_normal_form() {
        return Err(StateProblem::Undecodable);
    }
    if state.child_value(0).get::<u16>() != Some(VERSION) {
        return Err(StateProblem::Undecodable);
    }
    let items = state.child_value(1);
    if items.n_children() != entries.len() {
        return Err(StateProblem::Length {
            got: items.n_children(),
            expected: entries.len(),
        });
    }
    for (index, (item, entry)) in items.iter().zip(entries).enumerate() {
        let frame = item.child_value(1);
        if frame.child_value(FRAME_URL).str() != Some(entry.url.as_str()) {
            return Err(StateProblem::Url(index));
        }
        if frame.child_value(FRAME_HTTP_BODY).as_maybe().is_some() {
            return Err(StateProblem::HttpBody(index));
        }
        check_children(&frame, 0).map_err(|()| StateProblem::Frame(index))?;
        if has_body_below(&frame) {
            return Err(StateProblem::HttpBody(index));
        }
    }
    let got = state.child_value(2).as_maybe().and_then(|v| v.get::<u32>());
    if got != Some(current) {
        return Err(StateProblem::Current {
            got,
            expected: current,
        });
    }
    Ok(())
}

/// Checks a frame's children: each is a variant holding a frame state, with a URL a tab may show
/// (or none), nested at most [`MAX_FRAME_DEPTH`] deep.
fn check_children(frame: &Variant, depth: usize) -> Result<(), ()> {
    let children = frame.child_value(FRAME_CHILDREN);
    if children.n_children() > 0 && depth >= MAX_FRAME_DEPTH {
        return Err(());
    }
    let frame_type = VariantTy::new(FRAME_TYPE).map_err(|_| ())?;
    for child in children.iter() {
        let child = child.as_variant().ok_or(())?;
        if !child.is_type(frame_type) {
            return Err(());
        }
        let url = child.child_value(FRAME_URL);
        let url = url.str().ok_or(())?;
        if !url.is_empty() && !reportable_url(url) {
            return Err(());
        }
        check_children(&child, depth + 1)?;
    }
    Ok(())
}

/// Whether any child frame (at any depth) carries an HTTP body. Only called after
/// [`check_children`] accepted the tree.
fn has_body_below(frame: &Variant) -> bool {
    frame.child_value(FRAME_CHILDREN).iter().any(|child| {
        child.as_variant().is_some_and(|child| {
            child.child_value(FRAME_HTTP_BODY).as_maybe().is_some() || has_body_below(&child)
        })
    })
}

/// The same state with only the whitelisted fields of each item (see the module docs): title, URL,
/// sequence numbers, scroll position and page scale; the original URL becomes the URL, a page
/// scale out of range becomes 1, everything else is emptied. `None` if `bytes` is not a readable
/// state. Call it on a state [`check`] accepted.
pub fn sanitize(bytes: &[u8]) -> Option<Vec<u8>> {
    let session_type = VariantTy::new(SESSION_TYPE).ok()?;
    let state = Variant::from_bytes_with_type(&glib::Bytes::from(bytes), session_type);
    if !state.is_normal_form() {
        return None;
    }
    let item_type = VariantTy::new(ITEM_TYPE).ok()?;
    let body_type = VariantTy::new(HTTP_BODY_TYPE).ok()?;
    let items = state.child_value(1);
    let items = Variant::array_from_iter_with_type(
        item_type,
        items.iter().map(|item| {
            let frame = item.child_value(1);
            let url = frame.child_value(FRAME_URL);
            let scale = frame
                .child_value(FRAME_PAGE_SCALE)
                .get::<f64>()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 10.0)
                .unwrap_or(1.0);
            let frame = Variant::tuple_from_iter([
                url.clone(),
                url,
                "".to_variant(),
                frame.child_value(FRAME_TARGET),
                Variant::array_from_iter_with_type(VariantTy::STRING, [] as [Variant; 0]),
                Variant::from_none(VariantTy::BYTE_STRING),
                frame.child_value(FRAME_DOCUMENT_SEQUENCE),
                frame.child_value(FRAME_ITEM_SEQUENCE),
                frame.child_value(FRAME_SCROLL),
                scale.to_variant(),
                Variant::from_none(body_type),
                Variant::array_from_iter_with_type(VariantTy::VARIANT, [] as [Variant; 0]),
            ]);
            Variant::tuple_from_iter([item.child_value(0), frame, POLICY_NOT_ALLOW.to_variant()])
        }),
    );
    let state = Variant::tuple_from_iter([state.child_value(0), items, state.child_value(2)]);
    Some(state.data().to_vec())
}

/// The same state with the current item's scroll position set to (`x`, `y`) (in WebKit's
/// units: CSS pixels times the page zoom). `None` if `bytes` is not a readable state with a
/// current item. Call it on a state [`check`] accepted.
pub fn with_current_scroll(bytes: &[u8], x: i32, y: i32) -> Option<Vec<u8>> {
    let session_type = VariantTy::new(SESSION_TYPE).ok()?;
    let state = Variant::from_bytes_with_type(&glib::Bytes::from(bytes), session_type);
    if !state.is_normal_form() {
        return None;
    }
    let current = state.child_value(2).as_maybe()?.get::<u32>()? as usize;
    let items = state.child_value(1);
    if current >= items.n_children() {
        return None;
    }
    let item_type = VariantTy::new(ITEM_TYPE).ok()?;
    let items = Variant::array_from_iter_with_type(
        item_type,
        items.iter().enumerate().map(|(index, item)| {
            if index != current {
                return item;
            }
            let frame = item.child_value(1);
            let frame = replace_child(&frame, FRAME_SCROLL, (x, y).to_variant());
            replace_child(&item, 1, frame)
        }),
    );
    let state = Variant::tuple_from_iter([state.child_value(0), items, state.child_value(2)]);
    Some(state.data().to_vec())
}

/// A tuple with its child at `index` replaced.
fn replace_child(tuple: &Variant, index: usize, child: Variant) -> Variant {
    let mut child = Some(child);
    Variant::tuple_from_iter((0..tuple.n_children()).map(|i| {
        if i == index {
            child.take().unwrap_or_else(|| tuple.child_value(i))
        } else {
            tuple.child_value(i)
        }
    }))
}

/// A session state with just the URLs and titles of `entries` and `current` as the current
/// item: what a restoring renderer gives WebKit when the snapshot has no usable state of its own.
/// Each item gets its own sequence numbers, so going between them loads each page (equal
/// document sequence numbers would make WebKit treat them as one document).
pub fn synthesize(entries: &[HistoryEntry], current: u32) -> Vec<u8> {
    let item_type =
        VariantTy::new(ITEM_TYPE).expect("the item type string is a valid GVariant type");
    let body_type =
        VariantTy::new(HTTP_BODY_TYPE).expect("the body type string is a valid GVariant type");
    let items = entries.iter().enumerate().map(|(i, entry)| {
        let sequence = i as i64 + 1;
        let frame = Variant::tuple_from_iter([
            entry.url.to_variant(),
            entry.url.to_variant(),
            "".to_variant(),
            "".to_variant(),
            Variant::array_from_iter_with_type(VariantTy::STRING, [] as [Variant; 0]),
            Variant::from_none(VariantTy::BYTE_STRING),
            sequence.to_variant(),
            sequence.to_variant(),
            (0i32, 0i32).to_variant(),
            1.0f64.to_variant(),
            Variant::from_none(body_type),
            Variant::array_from_iter_with_type(VariantTy::VARIANT, [] as [Variant; 0]),
        ]);
        Variant::tuple_from_iter([
            entry.title.to_variant(),
            frame,
            POLICY_NOT_ALLOW.to_variant(),
        ])
    });
    let state = Variant::tuple_from_iter([
        VERSION.to_variant(),
        Variant::array_from_iter_with_type(item_type, items),
        Variant::from_some(&current.to_variant()),
    ]);
    state.data().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(urls: &[&str]) -> Vec<HistoryEntry> {
        urls.iter()
            .map(|u| HistoryEntry {
                url: (*u).to_owned(),
                title: format!("title of {u}"),
            })
            .collect()
    }

    /// A version-2 state like WebKit writes, with the given frames (built by `frame`).
    fn state_with(frames: Vec<Variant>, current: Option<u32>) -> Vec<u8> {
        let item_type = VariantTy::new(ITEM_TYPE).unwrap();
        assert_eq!(SESSION_TYPE, format!("(qa{ITEM_TYPE}mu)"));
        assert_eq!(ITEM_TYPE, format!("(s{FRAME_TYPE}u)"));
        let items = frames
            .into_iter()
            .map(|f| Variant::tuple_from_iter(["t".to_variant(), f, 0u32.to_variant()]));
        let current = match current {
            Some(c) => Variant::from_some(&c.to_variant()),
            None => Variant::from_none(VariantTy::UINT32),
        };
        Variant::tuple_from_iter([
            VERSION.to_variant(),
            Variant::array_from_iter_with_type(item_type, items),
            current,
        ])
        .data()
        .to_vec()
    }

    fn frame(url: &str, body: bool, children: Vec<Variant>) -> Variant {
        let body_type = VariantTy::new(HTTP_BODY_TYPE).unwrap();
        let body = if body {
            let element = Variant::tuple_from_iter([
                0u32.to_variant(),
                Variant::array_from_fixed_array(b"user=a&password=hunter2"),
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
        } else {
            Variant::from_none(body_type)
        };
        Variant::tuple_from_iter([
            url.to_variant(),
            url.to_variant(),
            "".to_variant(),
            "".to_variant(),
            Variant::array_from_iter_with_type(VariantTy::STRING, ["name=q".to_variant()]),
            Variant::from_none(VariantTy::BYTE_STRING),
            7i64.to_variant(),
            8i64.to_variant(),
            (0i32, 120i32).to_variant(),
            1.0f64.to_variant(),
            body,
            Variant::array_from_iter_with_type(
                VariantTy::VARIANT,
                children.iter().map(Variant::from_variant),
            ),
        ])
    }

    #[test]
    fn synthesized_state_checks_against_its_own_entries() {
        let list = entries(&[
            "https://a.example/",
            "https://b.example/x",
            "file:///tmp/c.html",
        ]);
        let bytes = synthesize(&list, 1);
        assert_eq!(check(&bytes, &list, 1), Ok(()));
        assert_eq!(
            check(&bytes, &list, 2),
            Err(StateProblem::Current {
                got: Some(1),
                expected: 2
            })
        );
        let other = entries(&[
            "https://a.example/",
            "https://evil.example/",
            "file:///tmp/c.html",
        ]);
        assert_eq!(check(&bytes, &other, 1), Err(StateProblem::Url(1)));
        assert_eq!(
            check(&bytes, &list[..2], 1),
            Err(StateProblem::Length {
                got: 3,
                expected: 2
            })
        );
    }

    /// The scroll position of each item of a state.
    fn scrolls(bytes: &[u8]) -> Vec<(i32, i32)> {
        let state = Variant::from_bytes_with_type(
            &glib::Bytes::from(bytes),
            VariantTy::new(SESSION_TYPE).unwrap(),
        );
        state
            .child_value(1)
            .iter()
            .map(|item| {
                item.child_value(1)
                    .child_value(FRAME_SCROLL)
                    .get::<(i32, i32)>()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn the_current_items_scroll_position_is_rewritten_alone() {
        let list = entries(&[
            "https://a.example/",
            "https://b.example/",
            "https://c.example/",
        ]);
        let real = state_with(
            vec![
                frame("https://a.example/", false, vec![]),
                frame(
                    "https://b.example/",
                    false,
                    vec![frame("about:blank", false, vec![])],
                ),
                frame("https://c.example/", false, vec![]),
            ],
            Some(1),
        );
        assert_eq!(scrolls(&real), vec![(0, 120); 3]);
        let moved = with_current_scroll(&real, 5, 4815).unwrap();
        assert_eq!(check(&moved, &list, 1), Ok(()));
        assert_eq!(scrolls(&moved), vec![(0, 120), (5, 4815), (0, 120)]);
        let synthesized = with_current_scroll(&synthesize(&list, 2), 0, 3210).unwrap();
        assert_eq!(check(&synthesized, &list, 2), Ok(()));
        assert_eq!(scrolls(&synthesized), vec![(0, 0), (0, 0), (0, 3210)]);
        assert_eq!(with_current_scroll(b"garbage", 0, 1), None);
        let no_current = state_with(vec![frame("https://a.example/", false, vec![])], None);
        assert_eq!(with_current_scroll(&no_current, 0, 1), None);
    }

    #[test]
    fn garbage_and_other_versions_are_undecodable() {
        let list = entries(&["https://a.example/"]);
        assert_eq!(check(&[], &list, 0), Err(StateProblem::Undecodable));
        assert_eq!(
            check(b"not a state", &list, 0),
            Err(StateProblem::Undecodable)
        );
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in [1usize, 7, 64, 300, 4096] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            assert!(check(&bytes, &list, 0).is_err());
        }
        // The version is the state's first member (a little-endian u16 at offset 0): a later
        // format with the same layout is not read as this one either.
        let mut v3 = synthesize(&list, 0);
        assert_eq!(&v3[..2], &VERSION.to_le_bytes());
        v3[0] = 3;
        assert_eq!(check(&v3, &list, 0), Err(StateProblem::Undecodable));
    }

    #[test]
    fn a_post_body_anywhere_is_refused() {
        let list = entries(&["https://a.example/", "https://b.example/"]);
        let plain = state_with(
            vec![
                frame("https://a.example/", false, vec![]),
                frame("https://b.example/", false, vec![]),
            ],
            Some(1),
        );
        assert_eq!(check(&plain, &list, 1), Ok(()));
        let posted = state_with(
            vec![
                frame("https://a.example/", false, vec![]),
                frame("https://b.example/", true, vec![]),
            ],
            Some(1),
        );
        assert_eq!(check(&posted, &list, 1), Err(StateProblem::HttpBody(1)));
        let posted_in_frame = state_with(
            vec![
                frame(
                    "https://a.example/",
                    false,
                    vec![frame("https://login.example/", true, vec![])],
                ),
                frame("https://b.example/", false, vec![]),
            ],
            Some(1),
        );
        assert_eq!(
            check(&posted_in_frame, &list, 1),
            Err(StateProblem::HttpBody(0))
        );
    }

    #[test]
    fn child_frames_must_be_showable() {
        let list = entries(&["https://a.example/"]);
        let ok = state_with(
            vec![frame(
                "https://a.example/",
                false,
                vec![
                    frame("about:srcdoc", false, vec![]),
                    frame("", false, vec![]),
                ],
            )],
            Some(0),
        );
        assert_eq!(check(&ok, &list, 0), Ok(()));
        let bad = state_with(
            vec![frame(
                "https://a.example/",
                false,
                vec![frame("javascript:alert(1)", false, vec![])],
            )],
            Some(0),
        );
        assert_eq!(check(&bad, &list, 0), Err(StateProblem::Frame(0)));
        assert!(StateProblem::Frame(0).contradicts_history());
        assert!(!StateProblem::HttpBody(0).contradicts_history());
    }

    #[test]
    fn a_missing_current_index_is_refused() {
        let list = entries(&["https://a.example/"]);
        let none = state_with(vec![frame("https://a.example/", false, vec![])], None);
        assert_eq!(
            check(&none, &list, 0),
            Err(StateProblem::Current {
                got: None,
                expected: 0
            })
        );
    }

    #[test]
    fn deep_frame_nesting_is_refused() {
        let list = entries(&["https://a.example/"]);
        let mut child = frame("https://f.example/", false, vec![]);
        for _ in 0..MAX_FRAME_DEPTH + 1 {
            child = frame("https://f.example/", false, vec![child]);
        }
        let deep = state_with(
            vec![frame("https://a.example/", false, vec![child])],
            Some(0),
        );
        assert_eq!(check(&deep, &list, 0), Err(StateProblem::Frame(0)));
    }

    #[test]
    fn sanitize_keeps_only_the_whitelisted_fields() {
        let list = entries(&["https://a.example/", "https://b.example/"]);
        // A child frame naming a local file, saved form state, history.state bytes, a referrer,
        // an external-URL policy that allows opening: all must go.
        let child = frame("file:///home/u/.ssh/id_rsa", false, vec![]);
        let mut forged = frame("https://a.example/", false, vec![child]);
        forged = replace_child(&forged, 2, "https://referrer.example/".to_variant());
        forged = replace_child(
            &forged,
            5,
            Variant::from_some(&Variant::array_from_fixed_array(b"state")),
        );
        forged = replace_child(&forged, FRAME_PAGE_SCALE, f64::NAN.to_variant());
        let item_type = VariantTy::new(ITEM_TYPE).unwrap();
        let items = [forged, frame("https://b.example/", false, vec![])]
            .into_iter()
            .map(|f| Variant::tuple_from_iter(["t".to_variant(), f, 0u32.to_variant()]));
        let bytes = Variant::tuple_from_iter([
            VERSION.to_variant(),
            Variant::array_from_iter_with_type(item_type, items),
            Variant::from_some(&1u32.to_variant()),
        ])
        .data()
        .to_vec();
        assert_eq!(check(&bytes, &list, 1), Ok(()));

        let clean = sanitize(&bytes).expect("a readable state");
        assert_eq!(check(&clean, &list, 1), Ok(()));
        let state = Variant::from_bytes_with_type(
            &glib::Bytes::from(&clean[..]),
            VariantTy::new(SESSION_TYPE).unwrap(),
        );
        assert_eq!(
            state.child_value(2).as_maybe().unwrap().get::<u32>(),
            Some(1)
        );
        for (item, url) in state
            .child_value(1)
            .iter()
            .zip(["https://a.example/", "https://b.example/"])
        {
            assert_eq!(item.child_value(0).str(), Some("t"));
            assert_eq!(item.child_value(2).get::<u32>(), Some(POLICY_NOT_ALLOW));
            let frame = item.child_value(1);
            assert_eq!(frame.child_value(FRAME_URL).str(), Some(url));
            assert_eq!(frame.child_value(1).str(), Some(url), "original URL");
            assert_eq!(frame.child_value(2).str(), Some(""), "referrer");
            assert_eq!(frame.child_value(4).n_children(), 0, "document state");
            assert!(frame.child_value(5).as_maybe().is_none(), "state object");
            assert_eq!(frame.child_value(FRAME_ITEM_SEQUENCE).get::<i64>(), Some(8));
            assert_eq!(
                frame.child_value(FRAME_SCROLL).get::<(i32, i32)>(),
                Some((0, 120))
            );
            assert_eq!(frame.child_value(FRAME_PAGE_SCALE).get::<f64>(), Some(1.0));
            assert!(frame.child_value(FRAME_HTTP_BODY).as_maybe().is_none());
            assert_eq!(
                frame.child_value(FRAME_CHILDREN).n_children(),
                0,
                "children"
            );
        }
        assert_eq!(sanitize(b"not a state"), None);
    }
}

#[cfg(test)]
#[path = "webkit_state_fuzz.rs"]
mod fuzz;
