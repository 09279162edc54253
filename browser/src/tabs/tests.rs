//! Unit tests of [`Tabs`]: every transition, driven with a fake renderer and a fake clock.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use warren_ipc::{
    BrowserToRenderer, FieldValue, FormField, HistoryEntry, PageState, RendererToBrowser,
    SessionHistory, TabId, NEW_TAB_URL,
};

use super::*;
use crate::host::HostEvent;
use crate::policy::{self, Plan};

/// What the fake renderers did, shared by the test and the fakes.
#[derive(Default)]
struct World {
    next_pid: u32,
    /// Every launch: the tab and what it started with.
    launches: Vec<(TabId, Start)>,
    /// Per pid: messages sent down.
    sent: HashMap<u32, Vec<BrowserToRenderer>>,
    /// Per pid: events waiting to be received.
    events: HashMap<u32, VecDeque<HostEvent>>,
    stopped: HashMap<u32, bool>,
    killed: Vec<u32>,
    shutdown_requested: Vec<u32>,
    footprint_kb: Option<u64>,
    /// Per pid: whether `send` fails (the renderer stopped reading).
    full: HashMap<u32, bool>,
    fail_launch: bool,
}

type Shared = Rc<RefCell<World>>;

struct FakeRenderer {
    pid: u32,
    world: Shared,
}

impl Renderer for FakeRenderer {
    fn pid(&self) -> u32 {
        self.pid
    }
    fn send(&self, msg: BrowserToRenderer) -> Result<(), &'static str> {
        let mut w = self.world.borrow_mut();
        if w.full.get(&self.pid).copied().unwrap_or(false) {
            return Err("stopped reading messages from the browser");
        }
        w.sent.entry(self.pid).or_default().push(msg);
        Ok(())
    }
    fn try_recv(&self) -> Option<HostEvent> {
        self.world
            .borrow_mut()
            .events
            .get_mut(&self.pid)
            .and_then(VecDeque::pop_front)
    }
    fn has_events(&self) -> bool {
        self.world
            .borrow()
            .events
            .get(&self.pid)
            .is_some_and(|q| !q.is_empty())
    }
    fn request_shutdown(&self) {
        self.world.borrow_mut().shutdown_requested.push(self.pid);
    }
    fn kill(&mut self) {
        let mut w = self.world.borrow_mut();
        if !w.killed.contains(&self.pid) {
            w.killed.push(self.pid);
        }
    }
    fn mark_reaped(&mut self) {}
    fn stop(&mut self) -> Result<(), String> {
        self.world.borrow_mut().stopped.insert(self.pid, true);
        Ok(())
    }
    fn resume(&mut self) {
        self.world.borrow_mut().stopped.insert(self.pid, false);
    }
    fn footprint_kb(&self) -> Option<u64> {
        self.world.borrow().footprint_kb
    }
}

impl Drop for FakeRenderer {
    fn drop(&mut self) {
        self.kill();
    }
}

struct FakeLauncher(Shared);

impl Launcher for FakeLauncher {
    fn launch(&mut self, id: TabId, start: Start) -> Result<Box<dyn Renderer>, String> {
        let mut w = self.0.borrow_mut();
        if w.fail_launch {
            return Err("no such file".into());
        }
        w.next_pid += 1;
        let pid = 1000 + w.next_pid;
        w.launches.push((id, start));
        Ok(Box::new(FakeRenderer {
            pid,
            world: Rc::clone(&self.0),
        }))
    }
}

/// A `Tabs` with fake renderers and a clock the test moves.
struct Harness {
    tabs: Tabs,
    world: Shared,
    now: Instant,
    next_ticket: u64,
}

impl Harness {
    fn new() -> Self {
        let world: Shared = Rc::default();
        world.borrow_mut().footprint_kb = Some(50_000);
        let now = Instant::now();
        Self {
            tabs: Tabs::new(Box::new(FakeLauncher(Rc::clone(&world))), now),
            world,
            now,
            next_ticket: 1,
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    fn apply(&mut self, verb: Verb) -> Result<Outcome, TabError> {
        self.tabs.apply(verb, None, self.now)
    }

    fn ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        Ticket(self.next_ticket)
    }

    fn open(&mut self, url: &str) -> TabId {
        match self.apply(Verb::Open {
            url: url.into(),
            background: false,
        }) {
            Ok(Outcome::Opened(id)) => id,
            other => panic!("open gave {other:?}"),
        }
    }

    fn open_background(&mut self, url: &str) -> TabId {
        match self.apply(Verb::Open {
            url: url.into(),
            background: true,
        }) {
            Ok(Outcome::Opened(id)) => id,
            other => panic!("open gave {other:?}"),
        }
    }

    fn pid(&self, id: TabId) -> u32 {
        self.tabs
            .get(id)
            .and_then(Tab::renderer_pid)
            .unwrap_or_else(|| panic!("tab {id} has no renderer: {:?}", self.tabs.get(id)))
    }

    /// Delivers events from a renderer and lets the model handle them.
    fn deliver(&mut self, pid: u32, events: impl IntoIterator<Item = HostEvent>) {
        self.world
            .borrow_mut()
            .events
            .entry(pid)
            .or_default()
            .extend(events);
        self.tabs.poll_renderers(self.now);
    }

    fn message(&mut self, id: TabId, msg: RendererToBrowser) {
        let pid = self.pid(id);
        self.deliver(pid, [HostEvent::Message(msg)]);
    }

    /// Makes a tab's renderer report its view built and a page loaded at `url`.
    fn load(&mut self, id: TabId, url: &str) {
        for msg in [
            RendererToBrowser::Ready { landlock: true },
            RendererToBrowser::UrlChanged { url: url.into() },
            RendererToBrowser::Loading(false),
        ] {
            self.message(id, msg);
        }
    }

    fn sent(&self, pid: u32) -> Vec<BrowserToRenderer> {
        self.world
            .borrow()
            .sent
            .get(&pid)
            .cloned()
            .unwrap_or_default()
    }

    fn state(&self, id: TabId) -> TabState {
        self.tabs.state(id).expect("the tab exists")
    }

    fn killed(&self, pid: u32) -> bool {
        self.world.borrow().killed.contains(&pid)
    }

    fn launches(&self) -> usize {
        self.world.borrow().launches.len()
    }

    fn last_launch(&self) -> (TabId, Start) {
        self.world
            .borrow()
            .launches
            .last()
            .cloned()
            .expect("a launch")
    }

    fn effects(&mut self) -> Vec<Effect> {
        self.tabs.take_effects()
    }

    fn answers(&mut self) -> Vec<(Ticket, Result<Answer, String>)> {
        self.effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Answer(t, a) => Some((t, a)),
                _ => None,
            })
            .collect()
    }

    /// Answers the capture request the model sent to `pid` with a state at `url`.
    fn answer_capture(&mut self, id: TabId, pid: u32, urls: &[&str], scroll_y: f64) {
        let request = self
            .sent(pid)
            .iter()
            .rev()
            .find_map(|m| match m {
                BrowserToRenderer::CaptureState { request } => Some(*request),
                _ => None,
            })
            .expect("a CaptureState was sent");
        let history = history(urls, urls.len() as u32 - 1);
        let page = page(urls[urls.len() - 1], scroll_y);
        let _ = id;
        self.deliver(
            pid,
            [HostEvent::Message(RendererToBrowser::StateCaptured {
                request,
                history,
                page,
            })],
        );
    }
}

fn history(urls: &[&str], current: u32) -> SessionHistory {
    SessionHistory {
        entries: urls
            .iter()
            .map(|u| HistoryEntry {
                url: (*u).into(),
                title: format!("title of {u}"),
            })
            .collect(),
        current,
        webkit_state: vec![7; 32],
    }
}

fn page(url: &str, scroll_y: f64) -> PageState {
    PageState {
        url: url.into(),
        scroll_x: 0.0,
        scroll_y,
        zoom: 1.0,
        fields: vec![FormField {
            index: 0,
            id: "note".into(),
            name: String::new(),
            value: FieldValue::Text("typed".into()),
        }],
    }
}

const A: &str = "https://a.example/";
const B: &str = "https://b.example/";
const C: &str = "https://c.example/";

#[test]
fn open_starts_a_renderer_and_activates() {
    let mut h = Harness::new();
    let a = h.open(A);
    assert_eq!(h.state(a), TabState::Active);
    let (launched, start) = h.last_launch();
    assert_eq!(launched, a);
    assert_eq!(start.url, A);
    assert!(start.visible);
    assert!(start.restore.is_none());
    assert!(h.tabs.get(a).unwrap().loading);
    assert!(!h.tabs.view_covers_content());
    h.load(a, A);
    assert!(h.tabs.view_covers_content());
    assert!(h.effects().contains(&Effect::PageReady(a)));
}

#[test]
fn background_open_keeps_the_active_tab() {
    let mut h = Harness::new();
    let a = h.open(A);
    let b = h.open_background(B);
    assert_eq!(h.tabs.active(), Some(a));
    assert_eq!(h.state(b), TabState::Background);
    assert!(!h.last_launch().1.visible);
}

#[test]
fn new_tab_page_focuses_the_address_bar_others_the_page() {
    let mut h = Harness::new();
    h.open(NEW_TAB_URL);
    assert!(h.effects().contains(&Effect::FocusAddressBar));
    h.open(A);
    let effects = h.effects();
    assert!(effects.contains(&Effect::FocusPage));
    assert!(!effects.contains(&Effect::FocusAddressBar));
}

#[test]
fn activate_hides_the_previous_view_and_shows_the_new_one() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let b = h.open(B);
    h.load(b, B);
    let (pa, pb) = (h.pid(a), h.pid(b));
    assert!(h.sent(pa).contains(&BrowserToRenderer::SetVisible(false)));
    h.apply(Verb::Activate(a)).unwrap();
    assert_eq!(
        h.sent(pb).last(),
        Some(&BrowserToRenderer::SetVisible(false))
    );
    let sent_a = h.sent(pa);
    assert!(sent_a.ends_with(&[
        BrowserToRenderer::SetVisible(true),
        BrowserToRenderer::Focus
    ]));
    assert_eq!(
        h.apply(Verb::Activate(TabId(99))),
        Err(TabError::NoTab(TabId(99)))
    );
}

#[test]
fn close_while_starting_retires_the_renderer_and_activates_a_neighbour() {
    let mut h = Harness::new();
    let a = h.open(A);
    let b = h.open(B);
    let pb = h.pid(b);
    h.apply(Verb::Close(b)).unwrap();
    assert!(h.tabs.get(b).is_none());
    assert_eq!(h.tabs.active(), Some(a));
    assert!(h.world.borrow().shutdown_requested.contains(&pb));
    assert!(!h.killed(pb), "killed only after the grace period");
    assert!(h.tabs.retiring());
    assert_eq!(h.tabs.next_deadline(), Some(h.now + CLOSE_GRACE));
    h.advance(CLOSE_GRACE);
    h.tabs.tick(h.now);
    assert!(h.killed(pb));
    assert!(!h.tabs.retiring());
}

#[test]
fn a_closed_renderer_that_exits_is_forgotten_at_once() {
    let mut h = Harness::new();
    let _a = h.open(A);
    let b = h.open(B);
    let pb = h.pid(b);
    h.apply(Verb::Close(b)).unwrap();
    h.tabs.reaped(pb, "exited");
    assert!(!h.tabs.retiring());
    assert!(h.killed(pb), "what is left of its group is killed");
}

#[test]
fn closing_the_last_tab_quits() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.effects();
    h.apply(Verb::Close(a)).unwrap();
    assert!(h.effects().contains(&Effect::Quit));
    assert_eq!(h.apply(Verb::Close(a)), Err(TabError::NoTab(a)));
}

#[test]
fn crash_while_closing_is_harmless() {
    let mut h = Harness::new();
    let _a = h.open(A);
    let b = h.open(B);
    let pb = h.pid(b);
    h.apply(Verb::Close(b)).unwrap();
    // The retiring renderer dies before its grace ends; nothing about it reaches the strip.
    h.tabs.reaped(pb, "was killed by SIGSEGV");
    assert_eq!(h.tabs.strip().len(), 1);
    assert!(h.tabs.iter().all(|t| t.crash().is_none()));
}

#[test]
fn disconnect_crashes_and_the_reaper_refines_the_notice() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let pa = h.pid(a);
    h.deliver(pa, [HostEvent::Disconnected]);
    assert_eq!(h.state(a), TabState::Crashed);
    assert_eq!(
        h.tabs.get(a).unwrap().crash(),
        Some("The renderer process ended unexpectedly.")
    );
    assert!(h.killed(pa));
    h.tabs.reaped(pa, "was killed by SIGKILL");
    assert_eq!(
        h.tabs.get(a).unwrap().crash(),
        Some("The renderer process was killed by SIGKILL.")
    );
}

#[test]
fn violations_end_the_renderer_with_the_reason() {
    let mut h = Harness::new();
    let a = h.open(A);
    let pa = h.pid(a);
    h.deliver(pa, [HostEvent::Violation("sent a bad frame".into())]);
    assert_eq!(
        h.tabs.get(a).unwrap().crash(),
        Some("The renderer was ended because it sent a bad frame.")
    );
}

#[test]
fn unasked_state_ends_the_renderer() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    h.message(
        a,
        RendererToBrowser::StateCaptured {
            request: 77,
            history: history(&[A], 0),
            page: page(A, 0.0),
        },
    );
    assert_eq!(h.state(a), TabState::Crashed);
    assert!(h
        .tabs
        .get(a)
        .unwrap()
        .crash()
        .unwrap()
        .contains("not asked for"));
}

#[test]
fn reload_of_a_crashed_tab_starts_a_fresh_renderer() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let pa = h.pid(a);
    h.apply(Verb::EndProcess(a)).unwrap();
    assert_eq!(h.state(a), TabState::Crashed);
    assert_eq!(
        h.tabs.get(a).unwrap().crash(),
        Some("The renderer was ended from the task manager.")
    );
    assert!(matches!(
        h.apply(Verb::EndProcess(a)),
        Err(TabError::NoProcess { .. })
    ));
    h.apply(Verb::Reload(a)).unwrap();
    assert_eq!(h.state(a), TabState::Active);
    let pa2 = h.pid(a);
    assert_ne!(pa, pa2);
    assert_eq!(h.last_launch().1.url, A);
    // A fresh renderer loads the page itself: no extra reload is sent.
    assert!(!h.sent(pa2).contains(&BrowserToRenderer::Reload));
}

#[test]
fn a_crashed_tab_reloads_only_urls_it_may_load() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    // The renderer claims a local file the user never opened, then dies.
    h.message(
        a,
        RendererToBrowser::UrlChanged {
            url: "file:///etc/shadow".into(),
        },
    );
    h.apply(Verb::EndProcess(a)).unwrap();
    h.apply(Verb::Reload(a)).unwrap();
    assert_eq!(h.last_launch().1.url, A);
}

#[test]
fn a_renderer_that_fails_to_start_is_a_crashed_tab() {
    let mut h = Harness::new();
    h.world.borrow_mut().fail_launch = true;
    let a = h.open(A);
    assert_eq!(h.state(a), TabState::Crashed);
    assert!(h
        .tabs
        .get(a)
        .unwrap()
        .crash()
        .unwrap()
        .contains("no such file"));
}

#[test]
fn a_renderer_that_stops_reading_is_ended() {
    let mut h = Harness::new();
    let a = h.open(A);
    let pa = h.pid(a);
    h.world.borrow_mut().full.insert(pa, true);
    h.apply(Verb::Reload(a)).unwrap();
    assert_eq!(h.state(a), TabState::Crashed);
}

#[test]
fn eval_is_answered_and_dead_tabs_refuse_at_once() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let t = h.ticket();
    h.tabs.eval(a, "1+1".into(), t).unwrap();
    let pa = h.pid(a);
    let request = h
        .sent(pa)
        .iter()
        .find_map(|m| match m {
            BrowserToRenderer::Eval { request, .. } => Some(*request),
            _ => None,
        })
        .unwrap();
    h.message(
        a,
        RendererToBrowser::EvalResult {
            request,
            result: Ok("2".into()),
        },
    );
    assert_eq!(
        h.answers(),
        vec![(t, Ok(Answer::Value(serde_json::json!(2))))]
    );

    // An eval in flight when the renderer dies gets an error.
    let t2 = h.ticket();
    h.tabs.eval(a, "hang()".into(), t2).unwrap();
    h.apply(Verb::EndProcess(a)).unwrap();
    let answers = h.answers();
    assert!(matches!(&answers[..], [(t, Err(e))] if *t == t2 && e.contains("crashed")));
    // To a crashed tab: an immediate error.
    let t3 = h.ticket();
    assert!(matches!(
        h.tabs.eval(a, "1".into(), t3),
        Err(TabError::NotRunning {
            state: "crashed",
            ..
        })
    ));
    assert!(matches!(
        h.tabs.eval(TabId(99), "1".into(), t3),
        Err(TabError::NoTab(_))
    ));
}

#[test]
fn back_without_history_is_an_error_from_every_source() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    assert_eq!(
        h.apply(Verb::Back(a)),
        Err(TabError::NoHistory {
            id: a,
            direction: "back"
        })
    );
    h.message(
        a,
        RendererToBrowser::HistoryChanged {
            can_go_back: true,
            can_go_forward: false,
        },
    );
    h.apply(Verb::Back(a)).unwrap();
    assert_eq!(h.sent(h.pid(a)).last(), Some(&BrowserToRenderer::GoBack));
    assert!(h.apply(Verb::Forward(a)).is_err());
}

#[test]
fn freeze_stops_the_tree_and_exempts_it_from_pings() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let b = h.open(B);
    h.load(b, B);
    let pa = h.pid(a);
    assert_eq!(
        h.apply(Verb::Freeze(b)),
        Err(TabError::ActiveTab {
            id: b,
            what: "frozen"
        })
    );
    let t = h.ticket();
    h.tabs.eval(a, "slow()".into(), t).unwrap();
    h.apply(Verb::Freeze(a)).unwrap();
    assert_eq!(h.state(a), TabState::Frozen);
    assert_eq!(h.world.borrow().stopped.get(&pa), Some(&true));
    // The script in flight cannot finish while frozen: its caller hears so now.
    assert!(matches!(&h.answers()[..], [(tk, Err(e))] if *tk == t && e.contains("frozen")));
    // Frozen: no pings, never marked unresponsive, eval refused at once.
    let before = h.sent(pa).len();
    for _ in 0..30 {
        h.advance(Duration::from_secs(1));
        h.tabs.tick(h.now);
    }
    assert_eq!(h.sent(pa).len(), before);
    assert!(h.tabs.get(a).unwrap().responsive);
    let t2 = h.ticket();
    assert!(matches!(
        h.tabs.eval(a, "1".into(), t2),
        Err(TabError::NotRunning {
            state: "frozen",
            ..
        })
    ));
    // Resizing does not reach it until it is thawed.
    let bounds = warren_ipc::Bounds {
        x: 0,
        y: 80,
        width: 800,
        height: 600,
    };
    h.tabs.set_bounds(bounds);
    assert_eq!(h.sent(pa).len(), before);
    // Freezing twice is fine.
    h.apply(Verb::Freeze(a)).unwrap();
    // Activation thaws.
    h.apply(Verb::Activate(a)).unwrap();
    assert_eq!(h.state(a), TabState::Active);
    assert_eq!(h.world.borrow().stopped.get(&pa), Some(&false));
    let sent = h.sent(pa);
    assert!(sent.contains(&BrowserToRenderer::SetBounds(bounds)));
    assert!(sent.ends_with(&[
        BrowserToRenderer::SetVisible(true),
        BrowserToRenderer::Focus
    ]));
}

#[test]
fn unfreeze_and_what_cannot_be_frozen() {
    let mut h = Harness::new();
    let a = h.open(A);
    let b = h.open(B);
    assert_eq!(h.apply(Verb::Freeze(a)), Err(TabError::Starting(a)));
    h.load(a, A);
    h.apply(Verb::Freeze(a)).unwrap();
    h.apply(Verb::Unfreeze(a)).unwrap();
    assert_eq!(h.state(a), TabState::Background);
    assert_eq!(h.world.borrow().stopped.get(&h.pid(a)), Some(&false));
    h.apply(Verb::Unfreeze(a)).unwrap();
    h.apply(Verb::EndProcess(a)).unwrap();
    assert!(matches!(
        h.apply(Verb::Freeze(a)),
        Err(TabError::NotRunning { .. })
    ));
    assert!(matches!(
        h.apply(Verb::Unfreeze(a)),
        Err(TabError::NotFrozen { .. })
    ));
    let _ = b;
}

#[test]
fn navigate_wakes_a_frozen_tab() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _b = h.open(B);
    h.apply(Verb::Freeze(a)).unwrap();
    h.apply(Verb::Navigate {
        tab: a,
        url: C.into(),
    })
    .unwrap();
    assert_eq!(h.state(a), TabState::Background);
    assert_eq!(
        h.sent(h.pid(a)).last(),
        Some(&BrowserToRenderer::Navigate { url: C.into() })
    );
}

#[test]
fn discard_captures_state_ends_the_tree_and_restores_on_activation() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let b = h.open(B);
    h.load(b, B);
    let pa = h.pid(a);
    assert_eq!(
        h.apply(Verb::Discard(b)),
        Err(TabError::ActiveTab {
            id: b,
            what: "discarded"
        })
    );
    let t = h.ticket();
    assert_eq!(
        h.tabs.apply(Verb::Discard(a), Some(t), h.now),
        Ok(Outcome::Pending)
    );
    // Until the state arrives the tab keeps its renderer.
    assert_eq!(h.state(a), TabState::Background);
    assert!(!h.killed(pa));
    h.answer_capture(a, pa, &[A, B, C], 3210.0);
    assert_eq!(h.state(a), TabState::Discarded);
    assert!(h.killed(pa));
    assert_eq!(h.tabs.get(a).unwrap().renderer_pid(), None);
    assert_eq!(h.tabs.get(a).unwrap().freed_kb(), Some(50_000));
    assert_eq!(
        h.answers(),
        vec![(t, Ok(Answer::Discarded { freed_kb: 50_000 }))]
    );
    // Discarding again is a no-op that frees nothing.
    assert_eq!(
        h.apply(Verb::Discard(a)),
        Ok(Outcome::Discarded { freed_kb: 0 })
    );
    let t2 = h.ticket();
    assert!(matches!(
        h.tabs.eval(a, "1".into(), t2),
        Err(TabError::NotRunning {
            state: "discarded",
            ..
        })
    ));

    // Activation starts a renderer that restores the captured state.
    let launches = h.launches();
    h.apply(Verb::Activate(a)).unwrap();
    assert_eq!(h.launches(), launches + 1);
    let (id, start) = h.last_launch();
    assert_eq!(id, a);
    assert_eq!(start.url, C);
    assert!(start.visible);
    let restore = start.restore.expect("a restore");
    assert_eq!(restore.history.entries.len(), 3);
    assert_eq!(restore.history.current, 2);
    assert_eq!(restore.page.as_ref().unwrap().scroll_y, 3210.0);
    assert_ne!(h.pid(a), pa);
    assert_eq!(h.tabs.get(a).unwrap().restored_at, Some(h.now));
}

#[test]
fn a_discard_that_gets_no_state_ends_the_renderer_at_the_deadline() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    h.message(a, RendererToBrowser::HistoryState(history(&[A], 0)));
    let _b = h.open(B);
    let pa = h.pid(a);
    h.apply(Verb::Discard(a)).unwrap();
    assert_eq!(h.tabs.next_deadline(), Some(h.now + CAPTURE_TIMEOUT));
    h.advance(CAPTURE_TIMEOUT);
    h.tabs.tick(h.now);
    assert_eq!(h.state(a), TabState::Discarded);
    assert!(h.killed(pa));
    // It keeps the history it reported before.
    let snapshot = h.tabs.get(a).unwrap().snapshot.clone().unwrap();
    assert_eq!(snapshot.history.entries.len(), 1);
    assert!(snapshot.page.is_none());
}

#[test]
fn activating_a_tab_being_discarded_cancels_the_discard() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _b = h.open(B);
    let pa = h.pid(a);
    let t = h.ticket();
    h.tabs.apply(Verb::Discard(a), Some(t), h.now).unwrap();
    h.apply(Verb::Activate(a)).unwrap();
    assert_eq!(h.state(a), TabState::Active);
    assert_eq!(h.pid(a), pa);
    assert!(matches!(&h.answers()[..], [(tk, Err(e))] if *tk == t && e.contains("cancelled")));
    // The state still arrives, and is kept without ending anything.
    h.answer_capture(a, pa, &[A], 10.0);
    assert_eq!(h.state(a), TabState::Active);
    assert!(!h.killed(pa));
    assert_eq!(
        h.tabs
            .get(a)
            .unwrap()
            .snapshot
            .as_ref()
            .unwrap()
            .page
            .as_ref()
            .unwrap()
            .scroll_y,
        10.0
    );
}

#[test]
fn discarding_a_frozen_tab_thaws_it_to_capture() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _b = h.open(B);
    let pa = h.pid(a);
    h.apply(Verb::Freeze(a)).unwrap();
    h.apply(Verb::Discard(a)).unwrap();
    assert_eq!(h.world.borrow().stopped.get(&pa), Some(&false));
    h.answer_capture(a, pa, &[A], 0.0);
    assert_eq!(h.state(a), TabState::Discarded);
}

#[test]
fn a_starting_tab_is_discarded_at_once_and_a_crashed_one_not_at_all() {
    let mut h = Harness::new();
    let _a = h.open(A);
    let b = h.open_background(B);
    assert_eq!(
        h.apply(Verb::Discard(b)),
        Ok(Outcome::Discarded { freed_kb: 50_000 })
    );
    assert_eq!(h.state(b), TabState::Discarded);
    h.apply(Verb::Reload(b)).unwrap();
    h.apply(Verb::EndProcess(b)).unwrap();
    assert!(matches!(
        h.apply(Verb::Discard(b)),
        Err(TabError::NoProcess { .. })
    ));
}

#[test]
fn a_renderer_dying_while_discarded_leaves_the_tab_discarded() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _b = h.open(B);
    let pa = h.pid(a);
    let t = h.ticket();
    h.tabs.apply(Verb::Discard(a), Some(t), h.now).unwrap();
    h.deliver(pa, [HostEvent::Disconnected]);
    assert_eq!(h.state(a), TabState::Discarded);
    assert!(matches!(&h.answers()[..], [(tk, Ok(Answer::Discarded { .. }))] if *tk == t));
}

#[test]
fn back_on_a_discarded_tab_restores_then_goes_back() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    h.message(
        a,
        RendererToBrowser::HistoryChanged {
            can_go_back: true,
            can_go_forward: false,
        },
    );
    let _b = h.open(B);
    let pa = h.pid(a);
    h.apply(Verb::Discard(a)).unwrap();
    h.answer_capture(a, pa, &[A, B, C], 0.0);
    h.apply(Verb::Back(a)).unwrap();
    let pa2 = h.pid(a);
    assert_eq!(h.sent(pa2).last(), Some(&BrowserToRenderer::GoBack));
    assert!(h.last_launch().1.restore.is_some());
}

#[test]
fn a_snapshot_with_a_forbidden_url_is_not_restored() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _b = h.open(B);
    let pa = h.pid(a);
    h.apply(Verb::Discard(a)).unwrap();
    h.answer_capture(a, pa, &["file:///etc/passwd", A], 0.0);
    h.apply(Verb::Activate(a)).unwrap();
    let (_, start) = h.last_launch();
    assert!(start.restore.is_none());
    assert_eq!(start.url, A);
}

#[test]
fn page_state_for_another_url_is_dropped() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _b = h.open(B);
    let pa = h.pid(a);
    h.apply(Verb::Discard(a)).unwrap();
    let request = h
        .sent(pa)
        .iter()
        .find_map(|m| match m {
            BrowserToRenderer::CaptureState { request } => Some(*request),
            _ => None,
        })
        .unwrap();
    h.deliver(
        pa,
        [HostEvent::Message(RendererToBrowser::StateCaptured {
            request,
            history: history(&[A], 0),
            page: page(B, 5.0),
        })],
    );
    let snapshot = h.tabs.get(a).unwrap().snapshot.clone().unwrap();
    assert!(snapshot.page.is_none());
}

#[test]
fn history_state_replaces_the_snapshot_and_forgets_the_old_page() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let generation = h.tabs.generation();
    h.message(a, RendererToBrowser::HistoryState(history(&[A, B], 1)));
    assert!(h.tabs.generation() > generation);
    let snapshot = h.tabs.get(a).unwrap().snapshot.clone().unwrap();
    assert_eq!(snapshot.history.current, 1);
    assert!(snapshot.page.is_none());
}

#[test]
fn pin_moves_tabs_and_is_persisted() {
    let mut h = Harness::new();
    let a = h.open(A);
    let b = h.open(B);
    let generation = h.tabs.generation();
    h.apply(Verb::Pin(b)).unwrap();
    assert!(h.tabs.generation() > generation);
    let order: Vec<TabId> = h.tabs.iter().map(|t| t.id).collect();
    assert_eq!(order, vec![b, a]);
    assert!(h.tabs.get(b).unwrap().pinned);
    h.apply(Verb::Unpin(b)).unwrap();
    assert!(!h.tabs.get(b).unwrap().pinned);
    assert_eq!(
        h.apply(Verb::Pin(TabId(99))),
        Err(TabError::NoTab(TabId(99)))
    );
}

#[test]
fn pages_open_tabs_within_their_budget_and_rules() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let before = h.tabs.strip().len();
    h.message(a, RendererToBrowser::OpenTab { url: B.into() });
    assert_eq!(h.tabs.strip().len(), before + 1);
    // A web page cannot open a local file.
    h.message(
        a,
        RendererToBrowser::OpenTab {
            url: "file:///etc/passwd".into(),
        },
    );
    assert_eq!(h.tabs.strip().len(), before + 1);
    // Nor can a renderer that merely claims to show a local file.
    h.message(
        a,
        RendererToBrowser::UrlChanged {
            url: "file:///home/".into(),
        },
    );
    h.message(
        a,
        RendererToBrowser::OpenTab {
            url: "file:///etc/shadow".into(),
        },
    );
    assert_eq!(h.tabs.strip().len(), before + 1);
    // A local page the user opened may open local pages.
    let f = h.open("file:///tmp/a.html");
    h.load(f, "file:///tmp/a.html");
    let n = h.tabs.strip().len();
    h.message(
        f,
        RendererToBrowser::OpenTab {
            url: "file:///tmp/b.html".into(),
        },
    );
    assert_eq!(h.tabs.strip().len(), n + 1);
    // Bursts are cut.
    for _ in 0..20 {
        h.message(f, RendererToBrowser::OpenTab { url: C.into() });
    }
    assert!(h.tabs.strip().len() < n + 1 + 20);
}

#[test]
fn unresponsive_renderers_are_marked_and_recover() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let pa = h.pid(a);
    let mut ping = None;
    for _ in 0..25 {
        h.advance(Duration::from_secs(1));
        h.tabs.tick(h.now);
        ping = ping.or_else(|| {
            h.sent(pa).iter().find_map(|m| match m {
                BrowserToRenderer::Ping { seq } => Some(*seq),
                _ => None,
            })
        });
    }
    assert!(!h.tabs.get(a).unwrap().responsive);
    h.message(a, RendererToBrowser::Pong { seq: ping.unwrap() });
    assert!(h.tabs.get(a).unwrap().responsive);
}

#[test]
fn renderer_strings_are_made_printable() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.message(
        a,
        RendererToBrowser::TitleChanged {
            title: "evil\ntitle\u{1b}[2J".into(),
        },
    );
    assert_eq!(h.tabs.get(a).unwrap().title, "evil title [2J");
}

#[test]
fn form_input_and_audio_protect_a_tab() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _b = h.open(B);
    h.advance(Duration::from_secs(30));
    assert_eq!(h.tabs.protection(a, h.now), None);
    h.message(a, RendererToBrowser::PlayingAudio(true));
    assert_eq!(h.tabs.protection(a, h.now), Some(Protection::PlayingAudio));
    h.message(a, RendererToBrowser::FormEdited(true));
    assert_eq!(h.tabs.protection(a, h.now), Some(Protection::FormInput));
    h.message(a, RendererToBrowser::FormEdited(false));
    h.message(a, RendererToBrowser::PlayingAudio(false));
    assert_eq!(h.tabs.protection(a, h.now), None);
    h.apply(Verb::Pin(a)).unwrap();
    assert_eq!(h.tabs.protection(a, h.now), Some(Protection::Pinned));
}

#[test]
fn the_policy_plan_is_carried_out() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let b = h.open(B);
    h.load(b, B);
    let c = h.open(C);
    h.load(c, C);
    h.advance(Duration::from_secs(60));
    let config = policy::Config {
        max_live_tabs: Some(2),
        ..policy::Config::default()
    };
    let facts = h.tabs.facts(h.now, &HashMap::new());
    let plan: Plan = policy::decide(&config, &facts, &policy::Readings::default(), h.now);
    h.tabs.enforce(plan, h.now);
    // The least recently used tab is being discarded; its state arrives and it is gone.
    let pa = h.pid(a);
    h.answer_capture(a, pa, &[A], 0.0);
    assert_eq!(h.state(a), TabState::Discarded);
    assert_eq!(h.state(b), TabState::Background);
    assert_eq!(h.state(c), TabState::Active);
}

#[test]
fn session_round_trip_restores_discarded_tabs_and_the_active_one() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    h.message(a, RendererToBrowser::HistoryState(history(&[C, A], 1)));
    let f = h.open("file:///tmp/page.html");
    h.load(f, "file:///tmp/page.html");
    h.apply(Verb::Pin(f)).unwrap();
    let b = h.open(B);
    h.load(b, B);
    h.apply(Verb::Activate(a)).unwrap();
    let wall = SystemTime::now();
    let session = h.tabs.session(wall, h.now);
    assert_eq!(session.tabs.len(), 3);
    assert_eq!(session.tabs[0].url, "file:///tmp/page.html");
    assert!(session.tabs[0].pinned);
    assert!(session.tabs[0].grants.file);
    assert_eq!(session.active, Some(1));

    let mut h2 = Harness::new();
    h2.tabs.restore_session(session.clone(), true, wall, h2.now);
    let ids: Vec<TabId> = h2.tabs.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(h2.state(ids[0]), TabState::Discarded);
    assert_eq!(h2.state(ids[2]), TabState::Discarded);
    assert_eq!(h2.state(ids[1]), TabState::Active);
    assert_eq!(h2.launches(), 1, "only the active tab gets a renderer");
    let (_, start) = h2.last_launch();
    assert_eq!(start.url, A);
    assert_eq!(start.restore.unwrap().history.entries.len(), 2);
    assert!(h2.tabs.get(ids[1]).unwrap().can_go_back);
    assert!(h2.tabs.get(ids[0]).unwrap().pinned);
    // A restored session is not the user restoring a tab: the storm guard does not apply.
    assert_eq!(h2.tabs.get(ids[1]).unwrap().restored_at, None);

    // With URLs to open, no tab of the session is started.
    let mut h3 = Harness::new();
    h3.tabs.restore_session(session, false, wall, h3.now);
    assert_eq!(h3.launches(), 0);
}

#[test]
fn the_session_never_holds_what_a_restore_would_refuse() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    // A renderer claims a local page and reports a history with one.
    h.message(
        a,
        RendererToBrowser::UrlChanged {
            url: "file:///etc/passwd".into(),
        },
    );
    h.message(
        a,
        RendererToBrowser::HistoryState(history(&[A, "file:///etc/passwd"], 1)),
    );
    let session = h.tabs.session(SystemTime::now(), h.now);
    assert_eq!(session.tabs[0].url, A);
    assert!(session.tabs[0].snapshot.is_none());
}

#[test]
fn shutdown_capture_asks_every_view_and_waits_for_the_answers() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let b = h.open(B);
    h.load(b, B);
    let _c = h.open_background(C);
    h.apply(Verb::Freeze(a)).unwrap();
    h.tabs.capture_all(h.now);
    assert!(h.tabs.capturing());
    let (pa, pb) = (h.pid(a), h.pid(b));
    assert_eq!(
        h.world.borrow().stopped.get(&pa),
        Some(&false),
        "thawed to answer"
    );
    h.answer_capture(a, pa, &[A], 1.0);
    assert!(h.tabs.capturing());
    h.answer_capture(b, pb, &[B], 2.0);
    assert!(!h.tabs.capturing());
    let session = h.tabs.session(SystemTime::now(), h.now);
    let scrolls: Vec<Option<f64>> = session
        .tabs
        .iter()
        .map(|t| {
            t.snapshot
                .as_ref()
                .and_then(|s| s.page.as_ref())
                .map(|p| p.scroll_y)
        })
        .collect();
    assert_eq!(scrolls, vec![Some(1.0), Some(2.0), None]);
    h.tabs.close_renderers(h.now);
    assert!(h.tabs.retiring());
    h.tabs.kill_all();
    assert!(!h.tabs.retiring());
}

#[test]
fn last_active_times_survive_a_session_round_trip() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.advance(Duration::from_secs(100));
    let _b = h.open(B);
    h.advance(Duration::from_secs(50));
    let wall = SystemTime::now();
    let session = h.tabs.session(wall, h.now);
    let ms_a = session.tabs[0].last_active_ms;
    assert_eq!(
        ms_a,
        last_active_ms(h.tabs.get(a).unwrap(), false, wall, h.now)
    );
    let now_ms = wall
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!((now_ms - ms_a).abs_diff(50_000) <= 1, "{}", now_ms - ms_a);
    let mut h2 = Harness::new();
    h2.tabs.restore_session(session, false, wall, h2.now);
    let restored = h2.tabs.iter().next().unwrap();
    let ago = h2.now - restored.last_active;
    assert!(
        ago.abs_diff(Duration::from_secs(50)) < Duration::from_millis(2),
        "{ago:?}"
    );
}

#[test]
fn a_cancelled_discard_and_a_shutdown_capture_are_both_welcome() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _b = h.open(B);
    let pa = h.pid(a);
    h.apply(Verb::Discard(a)).unwrap();
    h.apply(Verb::Activate(a)).unwrap();
    h.tabs.capture_all(h.now);
    let requests: Vec<u64> = h
        .sent(pa)
        .iter()
        .filter_map(|m| match m {
            BrowserToRenderer::CaptureState { request } => Some(*request),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 2);
    // The cancelled discard's answer arrives after the shutdown capture was asked for.
    for request in requests {
        h.deliver(
            pa,
            [HostEvent::Message(RendererToBrowser::StateCaptured {
                request,
                history: history(&[A], 0),
                page: page(A, 7.0),
            })],
        );
    }
    assert_eq!(h.state(a), TabState::Active, "{:?}", h.tabs.get(a));
    assert!(!h.tabs.capturing());
}

#[test]
fn a_cancelled_discard_of_a_frozen_tab_restarts_its_hang_detector() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _b = h.open(B);
    // A ping goes out and is never answered; then the tab is frozen for a long time.
    h.advance(Duration::from_secs(5));
    h.tabs.tick(h.now);
    h.apply(Verb::Freeze(a)).unwrap();
    h.advance(Duration::from_secs(60));
    h.apply(Verb::Discard(a)).unwrap();
    h.apply(Verb::Activate(a)).unwrap();
    h.tabs.tick(h.now);
    assert!(h.tabs.get(a).unwrap().responsive);
}

#[test]
fn waking_a_discarded_tab_in_any_way_is_guarded_against_a_new_discard() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _b = h.open(B);
    let pa = h.pid(a);
    h.apply(Verb::Discard(a)).unwrap();
    h.answer_capture(a, pa, &[A], 0.0);
    h.advance(Duration::from_secs(120));
    // Reload from the tab's menu, while it stays in the background.
    h.apply(Verb::Reload(a)).unwrap();
    assert_eq!(h.tabs.get(a).unwrap().restored_at, Some(h.now));
    assert_eq!(
        h.tabs.protection(a, h.now),
        Some(Protection::RecentlyRestored)
    );
}

#[test]
fn a_history_report_for_the_same_entry_keeps_the_page_state() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _b = h.open(B);
    let pa = h.pid(a);
    h.apply(Verb::Discard(a)).unwrap();
    h.answer_capture(a, pa, &[A, B], 3210.0);
    h.apply(Verb::Activate(a)).unwrap();
    // The restored page reports its history before its fields and scroll offset are back.
    h.message(a, RendererToBrowser::HistoryState(history(&[A, B], 1)));
    let kept = h.tabs.get(a).unwrap().snapshot.clone().unwrap();
    assert_eq!(kept.page.as_ref().map(|p| p.scroll_y), Some(3210.0));
    // After a navigation it describes nothing.
    h.message(a, RendererToBrowser::HistoryState(history(&[A, B, C], 2)));
    let moved = h.tabs.get(a).unwrap().snapshot.clone().unwrap();
    assert!(moved.page.is_none());
}

#[test]
fn low_memory_discards_wait_for_the_readings_to_catch_up() {
    let mut h = Harness::new();
    let mut ids = Vec::new();
    for url in [A, B, C] {
        let id = h.open(url);
        h.load(id, url);
        ids.push(id);
    }
    let plan = |id| Plan {
        discard: vec![(id, policy::Reason::LowMemory)],
        freeze: Vec::new(),
        over_cap: None,
    };
    h.tabs.enforce(plan(ids[0]), h.now);
    assert!(matches!(
        h.tabs.get(ids[0]).unwrap().life(),
        Life::Discarding { .. }
    ));
    h.advance(policy::LOW_MEMORY_COOLDOWN / 2);
    h.tabs.enforce(plan(ids[1]), h.now);
    assert_eq!(h.state(ids[1]), TabState::Background);
    h.advance(policy::LOW_MEMORY_COOLDOWN);
    h.tabs.enforce(plan(ids[1]), h.now);
    assert!(matches!(
        h.tabs.get(ids[1]).unwrap().life(),
        Life::Discarding { .. }
    ));
}

#[test]
fn titles_alone_do_not_make_the_session_dirty() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let generation = h.tabs.generation();
    h.message(
        a,
        RendererToBrowser::TitleChanged {
            title: "(3) unread".into(),
        },
    );
    assert_eq!(h.tabs.generation(), generation);
    assert_eq!(
        h.tabs.session(SystemTime::now(), h.now).tabs[0].title,
        "(3) unread"
    );
}

#[test]
fn a_session_restored_under_new_urls_keeps_its_last_active_times() {
    let mut h = Harness::new();
    let _a = h.open(A);
    let _b = h.open(B);
    h.advance(Duration::from_secs(100));
    let wall = SystemTime::now();
    let session = h.tabs.session(wall, h.now);
    let mut h2 = Harness::new();
    h2.tabs.restore_session(session, false, wall, h2.now);
    assert_eq!(h2.tabs.active(), None);
    let c = h2.open(C);
    assert_eq!(h2.tabs.active(), Some(c));
    // Opening the new tab did not count as using the first restored one: it was last active
    // 100 s before the session was saved, and stays the least recently used.
    let first = h2.tabs.iter().next().unwrap();
    let ago = h2.now.saturating_duration_since(first.last_active);
    assert!(ago >= Duration::from_secs(99), "{ago:?}");
}

// ----- budgets (issue 7: coalesced title and URL updates, the browser-wide budget of new tabs) -----

#[test]
fn a_burst_of_title_and_url_changes_costs_one_update_and_one_redraw() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let _ = h.effects();
    let pid = h.pid(a);
    let burst = (0..EVENTS_PER_WAKE / 2).flat_map(|i| {
        [
            HostEvent::Message(RendererToBrowser::TitleChanged {
                title: format!("title {i}"),
            }),
            HostEvent::Message(RendererToBrowser::UrlChanged {
                url: format!("{A}#{i}"),
            }),
        ]
    });
    let generation = h.tabs.generation();
    h.deliver(pid, burst);
    let last = EVENTS_PER_WAKE / 2 - 1;
    let tab = h.tabs.get(a).unwrap();
    assert_eq!(tab.title, format!("title {last}"));
    assert_eq!(tab.url, format!("{A}#{last}"));
    assert_eq!(h.tabs.generation(), generation + 1, "one URL update");
    let effects = h.effects();
    let redraws = effects.iter().filter(|e| **e == Effect::Redraw).count();
    let addresses = effects
        .iter()
        .filter(|e| **e == Effect::AddressChanged)
        .count();
    assert_eq!((redraws, addresses), (1, 1), "{effects:?}");
}

#[test]
fn one_renderer_gets_a_bounded_share_of_each_wake() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let b = h.open_background(B);
    h.load(b, B);
    let (pa, pb) = (h.pid(a), h.pid(b));
    // Renderer a floods; renderer b sends one message.
    h.world.borrow_mut().events.entry(pa).or_default().extend(
        (0..EVENTS_PER_WAKE as u64 * 3)
            .map(|seq| HostEvent::Message(RendererToBrowser::Pong { seq })),
    );
    h.world
        .borrow_mut()
        .events
        .entry(pb)
        .or_default()
        .push_back(HostEvent::Message(RendererToBrowser::TitleChanged {
            title: "b".into(),
        }));
    assert!(h.tabs.poll_renderers(h.now), "more is left after one wake");
    assert_eq!(
        h.tabs.get(b).unwrap().title,
        "b",
        "b was served in the same wake"
    );
    let left = h.world.borrow().events[&pa].len();
    assert_eq!(left, EVENTS_PER_WAKE * 2);
    // Two more wakes handle the rest.
    let mut wakes = 1;
    loop {
        wakes += 1;
        if !h.tabs.poll_renderers(h.now) {
            break;
        }
    }
    assert_eq!(wakes, 3);
    assert!(h.world.borrow().events[&pa].is_empty());
}

#[test]
fn held_back_url_changes_apply_before_the_next_other_message() {
    let mut h = Harness::new();
    let f = h.open("file:///tmp/a.html");
    h.load(f, "file:///tmp/a.html");
    let pid = h.pid(f);
    let n = h.tabs.strip().len();
    // The page left for a web page, then asked for a local file: by then the opener is a web
    // page, which may not open local files, even though both came in the same wake.
    h.deliver(
        pid,
        [
            HostEvent::Message(RendererToBrowser::UrlChanged {
                url: "https://x.example/".into(),
            }),
            HostEvent::Message(RendererToBrowser::OpenTab {
                url: "file:///tmp/b.html".into(),
            }),
        ],
    );
    assert_eq!(h.tabs.strip().len(), n);
    assert_eq!(h.tabs.get(f).unwrap().url, "https://x.example/");
}

#[test]
fn new_tabs_have_a_browser_wide_budget_from_every_source() {
    let mut h = Harness::new();
    // The first SPAWN_BURST open at once, from the control socket, the keyboard or a hand-over.
    for i in 0..validate::SPAWN_BURST {
        h.open_background(&format!("{A}{i}"));
    }
    let refused = h.apply(Verb::Open {
        url: B.into(),
        background: false,
    });
    assert_eq!(refused, Err(TabError::TooManyNewTabs { retry_after_s: 1 }));
    assert_eq!(
        refused.unwrap_err().to_string(),
        "too many new tabs; try again in 1 s"
    );
    assert_eq!(h.launches(), validate::SPAWN_BURST as usize);
    // Pages are held to it too, on top of their own budgets.
    let opener = h.tabs.active().unwrap();
    h.load(opener, A);
    let n = h.tabs.strip().len();
    h.message(opener, RendererToBrowser::OpenTab { url: C.into() });
    assert_eq!(h.tabs.strip().len(), n);
    // Then one every SPAWN_INTERVAL.
    h.advance(validate::SPAWN_INTERVAL);
    h.open(B);
    assert!(h
        .apply(Verb::Open {
            url: C.into(),
            background: true
        })
        .is_err());
    // Tabs that exist get their renderers back whatever the budget says.
    let restored = h.tabs.iter().next().unwrap().id;
    h.apply(Verb::EndProcess(restored)).unwrap();
    h.apply(Verb::Reload(restored)).unwrap();
    assert!(h.tabs.get(restored).unwrap().renderer_pid().is_some());
}

// ----- the files a renderer's sandbox shows -----

#[test]
fn a_renderer_sees_the_files_opened_in_its_tab_and_a_new_folder_gets_a_new_renderer() {
    let mut h = Harness::new();
    let a = h.open("file:///srv/site/index.html");
    let (_, start) = h.last_launch();
    assert_eq!(
        start.files,
        [std::path::PathBuf::from("/srv/site/index.html")]
    );
    h.load(a, "file:///srv/site/index.html");
    let first = h.pid(a);

    // A neighbour is in the same view: the same renderer navigates.
    h.apply(Verb::Navigate {
        tab: a,
        url: "file:///srv/site/b.html".into(),
    })
    .unwrap();
    assert_eq!(h.pid(a), first);
    assert_eq!(h.world.borrow().launches.len(), 1);
    h.message(
        a,
        RendererToBrowser::HistoryState(history(
            &["file:///srv/site/index.html", "file:///srv/site/b.html"],
            1,
        )),
    );

    // A file in another folder: a fresh renderer whose view has both.
    h.apply(Verb::Navigate {
        tab: a,
        url: "file:///srv/other/c.html".into(),
    })
    .unwrap();
    assert_ne!(h.pid(a), first);
    // The old one is retired as a closed tab's is: asked to exit, killed after its grace.
    assert!(h.world.borrow().shutdown_requested.contains(&first));
    let (launched, start) = h.last_launch();
    assert_eq!(launched, a);
    // The history comes along (restored first, then the navigation), without the page state of
    // the page being left.
    let restored = start
        .restore
        .as_ref()
        .expect("the tab's history is restored");
    assert_eq!(
        restored.history.entries.last().map(|e| e.url.as_str()),
        Some("file:///srv/site/b.html")
    );
    assert!(restored.page.is_none());
    assert_eq!(start.url, "file:///srv/site/b.html");
    let second = h.pid(a);
    assert_eq!(
        h.world
            .borrow()
            .sent
            .get(&second)
            .and_then(|m| m.last().cloned()),
        Some(BrowserToRenderer::Navigate {
            url: "file:///srv/other/c.html".into()
        })
    );
    assert!(start.files.contains(&"/srv/other/c.html".into()));
    assert!(start.files.contains(&"/srv/site/index.html".into()));

    // A URL a renderer reports is never a file the view shows: only what the user opened.
    let now = h.pid(a);
    h.message(
        a,
        RendererToBrowser::UrlChanged {
            url: "file:///home/u/.ssh/id_ed25519".into(),
        },
    );
    h.apply(Verb::Reload(a)).unwrap();
    assert_eq!(h.pid(a), now, "a reload keeps the renderer and its view");
    assert!(!h
        .tabs
        .get(a)
        .unwrap()
        .files
        .iter()
        .any(|f| f.starts_with("/home")));

    // A page's new tab from a local page sees what its opener's view shows; from the web, nothing.
    h.message(
        a,
        RendererToBrowser::OpenTab {
            url: "file:///srv/site/b.html".into(),
        },
    );
    let (_, popup) = h.last_launch();
    assert_eq!(popup.files, h.tabs.get(a).unwrap().files);
}

// ----- the spare renderer -----

/// The pid of the spare the last launch started (asserting it was one).
fn spare_pid(h: &Harness) -> (TabId, u32) {
    let (id, start) = h.last_launch();
    assert!(start.spare, "the last launch is a spare: {start:?}");
    assert!(!start.visible && start.files.is_empty() && start.restore.is_none());
    let pid = h.tabs.spare_pids().expect("a spare").0;
    (id, pid)
}

#[test]
fn a_new_tab_takes_the_spare_and_its_id() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    h.tabs.prewarm(h.now);
    let (spare, pid) = spare_pid(&h);
    assert_eq!(h.launches(), 2);
    // A second call keeps the one spare.
    h.tabs.prewarm(h.now);
    assert_eq!(h.launches(), 2);

    let b = h.open(B);
    assert_eq!(b, spare, "the new tab takes the spare's reserved id");
    assert_eq!(h.launches(), 2, "no process was started for it");
    assert_eq!(h.pid(b), pid);
    assert!(!h.tabs.has_spare());
    let sent = h.sent(pid);
    assert_eq!(
        sent[0],
        BrowserToRenderer::Start {
            url: B.into(),
            restore: None,
            visible: true,
        }
    );
    assert!(sent.contains(&BrowserToRenderer::SetVisible(true)));
    assert_eq!(h.tabs.get(b).unwrap().life.name(), "starting");
    h.load(b, B);
    assert_eq!(h.state(b), TabState::Active);
    assert_eq!(h.tabs.tab_of_channel(b), Some(b));

    // Without a spare, ids go on from the counter.
    let c = h.open(C);
    assert!(c.0 > b.0);
    assert_eq!(h.launches(), 3);
}

#[test]
fn a_file_tab_does_not_take_the_spare() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    h.tabs.prewarm(h.now);
    let (spare, _) = spare_pid(&h);
    let f = h.open("file:///srv/site/index.html");
    assert_ne!(f, spare);
    assert_eq!(h.launches(), 3);
    assert!(h.tabs.has_spare(), "the spare waits for a tab it may serve");
}

#[test]
fn a_restore_takes_the_spare_and_the_broker_follows_its_channel() {
    let mut h = Harness::new();
    let a = h.open(A);
    h.load(a, A);
    let b = h.open(B);
    h.load(b, B);
    let pa = h.pid(a);
    h.apply(Verb::Discard(a)).unwrap();
    h.answer_capture(a, pa, &[A, C], 120.0);
    assert_eq!(h.state(a), TabState::Discarded);
    h.tabs.prewarm(h.now);
    let (spare, pid) = spare_pid(&h);
    let launches = h.launches();

    h.apply(Verb::Activate(a)).unwrap();
    assert_eq!(h.launches(), launches, "the restore used the spare");
    assert_eq!(h.pid(a), pid);
    match &h.sent(pid)[0] {
        BrowserToRenderer::Start { url, restore, .. } => {
            assert_eq!(url, C);
            let restore = restore.as_ref().expect("the snapshot goes along");
            assert_eq!(restore.history.entries.len(), 2);
            assert_eq!(restore.page.as_ref().unwrap().scroll_y, 120.0);
        }
        other => panic!("first message {other:?}"),
    }
    // The tab keeps its id; its renderer (and display) go by the spare's.
    assert_ne!(spare, a);
    assert_eq!(h.tabs.tab_of_channel(spare), Some(a));
    assert_eq!(h.tabs.tab_of_channel(a), None);
    h.load(a, C);
    assert_eq!(h.tabs.active_channel(), Some(spare));
}

#[test]
fn the_spare_follows_the_content_area_and_ends_with_the_browser() {
    let mut h = Harness::new();
    h.tabs.prewarm(h.now);
    let (_, pid) = spare_pid(&h);
    let bounds = warren_ipc::Bounds {
        x: 0,
        y: 80,
        width: 900,
        height: 600,
    };
    h.tabs.set_bounds(bounds);
    assert_eq!(h.sent(pid), vec![BrowserToRenderer::SetBounds(bounds)]);
    h.tabs.kill_all();
    assert!(h.killed(pid));
    assert!(!h.tabs.has_spare());
}

#[test]
fn a_spare_that_dies_is_replaced_only_after_a_pause() {
    let mut h = Harness::new();
    h.tabs.prewarm(h.now);
    let (_, pid) = spare_pid(&h);
    h.tabs.reaped(pid, "was killed by SIGKILL");
    assert!(!h.tabs.has_spare());
    h.tabs.prewarm(h.now);
    assert!(!h.tabs.has_spare(), "no new spare right after one died");
    h.advance(crate::spare::RETRY_AFTER);
    h.tabs.prewarm(h.now);
    assert!(h.tabs.has_spare());

    // A launch that fails waits too.
    h.tabs.drop_spare("test");
    h.world.borrow_mut().fail_launch = true;
    h.tabs.prewarm(h.now);
    h.world.borrow_mut().fail_launch = false;
    h.tabs.prewarm(h.now);
    assert!(!h.tabs.has_spare());
    h.advance(crate::spare::RETRY_AFTER);
    h.tabs.prewarm(h.now);
    assert!(h.tabs.has_spare());
}

#[test]
fn a_spare_that_cannot_take_messages_gives_way_to_a_new_renderer() {
    let mut h = Harness::new();
    h.tabs.prewarm(h.now);
    let (_, pid) = spare_pid(&h);
    h.world.borrow_mut().full.insert(pid, true);
    let a = h.open(A);
    assert!(h.killed(pid));
    assert_ne!(h.pid(a), pid);
    assert_eq!(h.tabs.get(a).unwrap().life.name(), "starting");
}

#[test]
fn a_spare_whose_connection_closed_is_never_given_a_tab() {
    let mut h = Harness::new();
    h.tabs.prewarm(h.now);
    let (_, pid) = spare_pid(&h);
    // Its socket closed; the reaper has not said so yet.
    h.world
        .borrow_mut()
        .events
        .entry(pid)
        .or_default()
        .push_back(HostEvent::Disconnected);
    let a = h.open(A);
    assert_ne!(h.pid(a), pid, "the dead spare was not used");
    assert!(h.killed(pid));
    assert_eq!(h.tabs.get(a).unwrap().life.name(), "starting");
    // It counts as a spare that died: the next waits.
    h.tabs.prewarm(h.now);
    assert!(!h.tabs.has_spare());
}

#[test]
fn a_spare_that_dies_after_it_took_a_tab_gives_it_a_fresh_renderer() {
    let mut h = Harness::new();
    h.tabs.prewarm(h.now);
    let (_, pid) = spare_pid(&h);
    let a = h.open(A);
    assert_eq!(h.pid(a), pid);
    // It died before its view was up: no crash notice, a new renderer for the same page.
    h.deliver(pid, [HostEvent::Disconnected]);
    assert!(h.killed(pid));
    let (id, start) = h.last_launch();
    assert_eq!(id, a);
    assert!(!start.spare);
    assert_eq!(start.url, A);
    assert_ne!(h.pid(a), pid);
    assert_eq!(h.tabs.get(a).unwrap().life.name(), "starting");
    // That one is not a spare: if it dies too, the tab shows the crash.
    let fresh = h.pid(a);
    h.deliver(fresh, [HostEvent::Disconnected]);
    assert_eq!(h.state(a), TabState::Crashed);
}
