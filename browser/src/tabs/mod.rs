//! The tab model: the strip, each tab's renderer life, and every transition between them, with no
//! UI and no OS calls of its own.
//!
//! [`Tabs`] owns the tabs and their renderers. Its inputs are [`Verb`]s (what a user can do to a
//! tab, from any source: chrome clicks, shortcuts, the Task Manager, the control socket), the
//! renderers' events, the reaper's reports, the policy's plans and a clock. Its outputs are
//! [`Effect`]s the window acts on (redraw, move the keyboard, answer a waiting request, quit).
//! Renderers are started through the [`Launcher`] trait, so unit tests drive the whole model with
//! a fake renderer and a fake clock.
//!
//! ```text
//!             open / restore                    freeze
//!  (new) ──▶ Starting ──Ready──▶ Live ◀──────────────────▶ Frozen
//!               │                 │ ▲   activate, unfreeze  │
//!               │          discard│ │activate               │ discard
//!               │                 ▼ │(cancels)              ▼
//!               │              Discarding ──state or 2 s──▶ Discarded ──activate──▶ Starting
//!               └──────────────── any live state ──renderer died / ended──▶ Crashed ──reload──▶ Starting
//! ```
//!
//! Every renderer message is hostile input that [`crate::validate`] has checked for shape and
//! size; this module checks it against the tab's state (a `StateCaptured` nobody asked for ends
//! the renderer) and makes its strings printable before anything shows them.

mod life;
pub mod snapshot;
mod strip;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use warren_ipc::{
    Bounds, BrowserToRenderer, PageState, RendererToBrowser, SessionHistory, TabId, TabSnapshot,
    NEW_TAB_URL,
};

use life::Spare;
pub use life::{CrashCause, Launcher, Life, Renderer, Start, Ticket};
pub use strip::{Tab, TabState, TabStrip, MAX_OPENED_FILES};

use crate::host::HostEvent;
use crate::policy::{self, Protection};
use crate::session::{Session, SessionTab};
use crate::validate::{self, PopupLimiter, TokenBucket};
use life::Live;
use snapshot::Grants;

/// Events a renderer may deliver per wake before the loop yields to the window (and to the other
/// renderers): a renderer that sends more waits for the next wake, so one renderer cannot hold
/// the UI thread, however fast it sends.
pub const EVENTS_PER_WAKE: usize = 64;

/// How long a closing renderer gets to exit on its own before its tree is killed.
pub const CLOSE_GRACE: Duration = Duration::from_millis(800);

/// How long a renderer gets to report its state before a discard ends it anyway (a hung page
/// cannot answer; the tab then keeps the state it reported last).
pub const CAPTURE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a user can do to a tab. The chrome, the keyboard shortcuts, the Task Manager and the
/// control socket translate their input into these, so a command means the same from every
/// source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    /// Open `url` in a new tab at the end of the strip; it becomes active unless `background`.
    Open { url: String, background: bool },
    /// Load `url` in the tab.
    Navigate { tab: TabId, url: String },
    /// Make the tab the active one (a frozen tab is thawed, a discarded one restored).
    Activate(TabId),
    /// Close the tab; closing the last one quits.
    Close(TabId),
    /// Reload the page (a crashed or discarded tab gets a fresh renderer).
    Reload(TabId),
    /// Stop loading.
    Stop(TabId),
    /// One step back in the tab's history; an error when there is none.
    Back(TabId),
    /// One step forward in the tab's history; an error when there is none.
    Forward(TabId),
    /// Kill the tab's renderer tree; the tab shows the crash notice.
    EndProcess(TabId),
    /// End the tab's renderer, keeping its state to restore it on activation.
    Discard(TabId),
    /// Stop the tab's renderer tree until the tab is activated or unfrozen.
    Freeze(TabId),
    /// Continue a frozen tab's renderer tree.
    Unfreeze(TabId),
    /// Pin the tab: it moves to the pinned tabs at the start of the strip and is never
    /// discarded or frozen automatically.
    Pin(TabId),
    /// Unpin the tab.
    Unpin(TabId),
}

/// What a verb did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// A tab was opened.
    Opened(TabId),
    /// The tab is discarded; its renderer tree held this much memory (0 when it had none).
    Discarded {
        freed_kb: u64,
    },
    /// The verb completes later; the ticket given with it is answered by [`Effect::Answer`].
    Pending,
}

/// A late answer to a request that waited (an `eval`, a `discard`).
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A script's value.
    Value(serde_json::Value),
    /// The tab is discarded.
    Discarded { freed_kb: u64 },
}

/// What the window must do after the model changed.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Something the chrome shows changed.
    Redraw,
    /// The active tab or its URL changed: the address bar shows the new URL and forgets its
    /// error.
    AddressChanged,
    /// The page has (or will get when its view is ready) the keyboard: the address bar lets go.
    FocusPage,
    /// The address bar takes the keyboard (the new-tab page is shown).
    FocusAddressBar,
    /// The active tab's view was just built: give it the keyboard unless the user is typing in
    /// the address bar ([`Tabs::focus_page`]).
    PageReady(TabId),
    /// A waiting request is answered.
    Answer(Ticket, Result<Answer, String>),
    /// The last tab was closed.
    Quit,
}

/// Why a verb could not be carried out. The messages are shown to users and control clients.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TabError {
    #[error("no tab {0}")]
    NoTab(TabId),
    #[error("tab {id} is the active tab and cannot be {what}; activate another tab first")]
    ActiveTab { id: TabId, what: &'static str },
    #[error("tab {id} has no running renderer (it is {state}){hint}")]
    NotRunning {
        id: TabId,
        state: &'static str,
        hint: &'static str,
    },
    #[error("tab {id} has no renderer process (it is {state})")]
    NoProcess { id: TabId, state: &'static str },
    #[error("tab {0} is still starting; try again once it has loaded")]
    Starting(TabId),
    #[error("tab {id} has no page to go {direction} to")]
    NoHistory { id: TabId, direction: &'static str },
    #[error("tab {id} is {state}, not frozen")]
    NotFrozen { id: TabId, state: &'static str },
    #[error("tab {id} cannot be frozen: {reason}")]
    FreezeFailed { id: TabId, reason: String },
    #[error("too many new tabs; try again in {retry_after_s} s")]
    TooManyNewTabs { retry_after_s: u64 },
}

/// The latest title and URL change of a renderer not applied yet (see [`Tabs::poll_renderers`]).
#[derive(Default)]
struct Coalesced {
    title: Option<RendererToBrowser>,
    url: Option<RendererToBrowser>,
}

/// A closed tab's renderer, asked to exit and killed at its deadline.
struct Retiring {
    renderer: Box<dyn Renderer>,
    deadline: Instant,
}

/// The tabs of the browser window and their renderers.
pub struct Tabs {
    strip: TabStrip,
    launcher: Box<dyn Launcher>,
    retiring: Vec<Retiring>,
    effects: Vec<Effect>,
    /// The budget of tabs that all pages together may open.
    popups: PopupLimiter,
    /// The budget of new tabs, whoever asks ([`validate::SPAWN_BURST`]).
    spawns: TokenBucket,
    /// The content area, where every view sits.
    bounds: Bounds,
    next_request: u64,
    /// Bumped on every change the session file holds.
    generation: u64,
    /// Why the policy's caps are exceeded, from its last run.
    over_cap: Option<String>,
    /// When the policy last discarded a tab for low memory.
    last_low_memory_discard: Option<Instant>,
    /// A prewarmed renderer the next new tab or restore takes ([`Tabs::prewarm`]).
    spare: Option<Spare>,
    /// Holds off the next spare after one failed to start or died waiting.
    spare_backoff: crate::spare::Backoff,
    /// A spare died waiting: the backoff starts at the next [`Tabs::prewarm`].
    spare_died: bool,
}

impl Tabs {
    pub fn new(launcher: Box<dyn Launcher>, now: Instant) -> Self {
        Self {
            strip: TabStrip::new(),
            launcher,
            retiring: Vec::new(),
            effects: Vec::new(),
            popups: PopupLimiter::with_budget(
                validate::ALL_POPUPS_BURST,
                validate::ALL_POPUPS_INTERVAL,
                now,
            ),
            spawns: TokenBucket::with_budget(validate::SPAWN_BURST, validate::SPAWN_INTERVAL, now),
            bounds: Bounds::default(),
            next_request: 1,
            generation: 0,
            over_cap: None,
            last_low_memory_discard: None,
            spare: None,
            spare_backoff: crate::spare::Backoff::default(),
            spare_died: false,
        }
    }

    // ----- reading -----

    pub fn strip(&self) -> &TabStrip {
        &self.strip
    }

    pub fn get(&self, id: TabId) -> Option<&Tab> {
        self.strip.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tab> {
        self.strip.iter()
    }

    pub fn active(&self) -> Option<TabId> {
        self.strip.active()
    }

    pub fn active_tab(&self) -> Option<&Tab> {
        self.strip.active_tab()
    }

    pub fn is_empty(&self) -> bool {
        self.strip.is_empty()
    }

    /// The control protocol's state of a tab.
    pub fn state(&self, id: TabId) -> Option<TabState> {
        self.strip.state(id)
    }

    /// Whether the active tab's view covers the content area (so the browser need not paint it).
    pub fn view_covers_content(&self) -> bool {
        self.active_tab().is_some_and(Tab::has_view)
    }

    /// Every tab's renderer pid, for the process monitor.
    pub fn renderers(&self) -> Vec<(TabId, u32)> {
        self.strip
            .iter()
            .filter_map(|t| t.renderer_pid().map(|pid| (t.id, pid)))
            .collect()
    }

    /// Each live tab with the process of its nested display (bubblewrap or Xephyr).
    pub fn displays(&self) -> Vec<(TabId, u32)> {
        self.strip
            .iter()
            .filter_map(|t| t.display_pid().map(|pid| (t.id, pid)))
            .collect()
    }

    /// The tabs whose renderer reported Landlock scoping in force (in `Ready`).
    pub fn landlocked(&self) -> Vec<TabId> {
        self.strip
            .iter()
            .filter(|t| t.life.live().is_some_and(|l| l.landlock))
            .map(|t| t.id)
            .collect()
    }

    /// The spare renderer's started process and its nested display's, if there is a spare.
    pub fn spare_pids(&self) -> Option<(u32, Option<u32>)> {
        self.spare
            .as_ref()
            .map(|s| (s.renderer.root_pid(), s.renderer.display_pid()))
    }

    /// The id the active tab's running renderer was started with (see [`Tabs::tab_of_channel`]).
    pub fn active_channel(&self) -> Option<TabId> {
        self.active_tab()
            .filter(|t| t.has_view())
            .and_then(|t| t.life.live())
            .map(|l| l.channel)
    }

    /// The tab whose running renderer was started with `channel`: the tab's own id, unless the
    /// renderer was a spare that took over an existing tab.
    pub fn tab_of_channel(&self, channel: TabId) -> Option<TabId> {
        self.strip
            .iter()
            .find(|t| t.life.live().is_some_and(|l| l.channel == channel))
            .map(|t| t.id)
    }

    /// Why the lifecycle policy's caps are exceeded, if they are.
    pub fn over_cap(&self) -> Option<&str> {
        self.over_cap.as_deref()
    }

    /// Changes with every change the session file holds; compare to know when to save.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The effects queued since the last call.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// The earliest moment [`Tabs::tick`] has something to do (a discard or close deadline).
    pub fn next_deadline(&self) -> Option<Instant> {
        let discards = self.strip.iter().filter_map(|t| match t.life {
            Life::Discarding { deadline, .. } => Some(deadline),
            _ => None,
        });
        discards
            .chain(self.retiring.iter().map(|r| r.deadline))
            .min()
    }

    // ----- verbs -----

    /// Carries out a verb. A verb that completes later ([`Outcome::Pending`]) answers `ticket`
    /// with [`Effect::Answer`] (nobody is told when there is no ticket).
    pub fn apply(
        &mut self,
        verb: Verb,
        ticket: Option<Ticket>,
        now: Instant,
    ) -> Result<Outcome, TabError> {
        let outcome = match verb {
            Verb::Open { url, background } => {
                self.spend_spawn(now)?;
                let grants = Grants::for_user_url(&url);
                let files = snapshot::opened_file(&url).into_iter().collect();
                Outcome::Opened(self.open(url, background, grants, files, now))
            }
            Verb::Navigate { tab, url } => {
                self.navigate(tab, url, now)?;
                Outcome::Done
            }
            Verb::Activate(id) => {
                self.activate(id, now)?;
                Outcome::Done
            }
            Verb::Close(id) => {
                self.close(id, now)?;
                Outcome::Done
            }
            Verb::Reload(id) => {
                self.reload(id, now)?;
                Outcome::Done
            }
            Verb::Stop(id) => {
                self.tab(id)?;
                self.send(id, BrowserToRenderer::Stop);
                Outcome::Done
            }
            Verb::Back(id) => {
                self.go(id, true, now)?;
                Outcome::Done
            }
            Verb::Forward(id) => {
                self.go(id, false, now)?;
                Outcome::Done
            }
            Verb::EndProcess(id) => {
                let tab = self.tab(id)?;
                if tab.renderer_pid().is_none() {
                    return Err(TabError::NoProcess {
                        id,
                        state: tab.life.name(),
                    });
                }
                self.crash(
                    id,
                    CrashCause::Known("The renderer was ended from the task manager.".into()),
                );
                Outcome::Done
            }
            Verb::Discard(id) => self.discard(id, ticket, now)?,
            Verb::Freeze(id) => {
                self.freeze(id)?;
                Outcome::Done
            }
            Verb::Unfreeze(id) => {
                self.unfreeze(id, now)?;
                Outcome::Done
            }
            Verb::Pin(id) | Verb::Unpin(id) => {
                let pinned = matches!(verb, Verb::Pin(_));
                if !self.strip.set_pinned(id, pinned) {
                    return Err(TabError::NoTab(id));
                }
                self.changed();
                Outcome::Done
            }
        };
        Ok(outcome)
    }

    /// Evaluates a JavaScript expression in the tab's page; the value answers `ticket`. An
    /// immediate error when the tab has no running renderer (frozen, discarded, crashed).
    pub fn eval(&mut self, id: TabId, js: String, ticket: Ticket) -> Result<(), TabError> {
        let request = self.next_request();
        let tab = self.tab_mut(id)?;
        let state = tab.life.name();
        let Some(live) = tab.life.running_mut() else {
            let hint = match tab.life {
                Life::Frozen(_) => "; unfreeze or activate it first",
                Life::Discarded { .. } => "; activate it to restore it",
                Life::Crashed(_) => "; reload it first",
                _ => "",
            };
            return Err(TabError::NotRunning { id, state, hint });
        };
        live.evals.insert(request, ticket);
        self.send(id, BrowserToRenderer::Eval { request, js });
        Ok(())
    }

    /// Gives the keyboard to a tab's page (after [`Effect::PageReady`]).
    pub fn focus_page(&mut self, id: TabId) {
        self.send(id, BrowserToRenderer::Focus);
    }

    /// The chrome (or another window of the browser's) took the keyboard: the active page loses
    /// focus. Its renderer cannot see that on its own display.
    pub fn blur_page(&mut self) {
        if let Some(id) = self
            .active()
            .filter(|&id| self.get(id).is_some_and(Tab::has_view))
        {
            self.send(id, BrowserToRenderer::Blur);
        }
    }

    /// The content area moved or changed size: every running view follows (a frozen one when it
    /// is thawed).
    pub fn set_bounds(&mut self, bounds: Bounds) {
        if bounds == self.bounds {
            return;
        }
        self.bounds = bounds;
        let ids: Vec<TabId> = self.strip.iter().map(|t| t.id).collect();
        for id in ids {
            self.send(id, BrowserToRenderer::SetBounds(bounds));
        }
        if let Some(spare) = &self.spare {
            if spare
                .renderer
                .send(BrowserToRenderer::SetBounds(bounds))
                .is_err()
            {
                self.drop_spare("it stopped taking messages");
            }
        }
    }

    /// Starts a spare renderer if there is none: the next new tab, or restore, takes it. The
    /// caller decides when (the machine idle, memory not short); after a spare failed, the next
    /// waits [`crate::spare::RETRY_AFTER`].
    pub fn prewarm(&mut self, now: Instant) {
        if std::mem::take(&mut self.spare_died) {
            self.spare_backoff.failed(now);
        }
        if self.spare.is_some() || !self.spare_backoff.allows(now) {
            return;
        }
        let id = self.strip.next_id();
        match self.launcher.launch(id, Start::spare(self.bounds)) {
            Ok(renderer) => {
                log::info!("spare renderer {id}: pid {}", renderer.pid());
                self.spare = Some(Spare { id, renderer });
            }
            Err(e) => {
                log::warn!("cannot start a spare renderer: {e}");
                self.spare_backoff.failed(now);
            }
        }
    }

    /// Whether a spare renderer is waiting.
    pub fn has_spare(&self) -> bool {
        self.spare.is_some()
    }

    /// Ends the spare renderer, if there is one.
    pub fn drop_spare(&mut self, why: &str) {
        if let Some(mut spare) = self.spare.take() {
            log::info!("spare renderer {}: ended ({why})", spare.id);
            spare.renderer.kill();
        }
    }

    /// The spare, if `start` may use it: a spare sees none of the user's files.
    fn take_spare(&mut self, start: &Start) -> Option<Spare> {
        if start.spare || !start.files.is_empty() {
            return None;
        }
        self.check_spare();
        self.spare.take()
    }

    /// A spare says nothing until it has a tab: any event from it means it died (its socket
    /// closed) or broke the protocol, and it is ended before a tab could take it.
    fn check_spare(&mut self) {
        let event = self.spare.as_ref().and_then(|s| s.renderer.try_recv());
        if let Some(event) = event {
            let why = match event {
                HostEvent::Disconnected => "its connection closed".to_owned(),
                HostEvent::Violation(why) => why,
                HostEvent::Message(msg) => format!("it sent {} before it had a tab", msg.kind()),
            };
            self.drop_spare(&why);
            self.spare_died = true;
        }
    }

    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    fn open(
        &mut self,
        url: String,
        background: bool,
        grants: Grants,
        files: Vec<std::path::PathBuf>,
        now: Instant,
    ) -> TabId {
        // A spare renderer's reserved id, when the new tab will take that spare.
        let id = match &self.spare {
            Some(spare) if files.is_empty() => spare.id,
            _ => self.strip.next_id(),
        };
        let previous = self.strip.active();
        let becomes_active = !background || previous.is_none();
        let start = Start {
            url: url.clone(),
            visible: becomes_active,
            bounds: self.bounds,
            restore: None,
            files: files.clone(),
            spare: false,
        };
        let life = self.start_renderer(id, start, now);
        let mut tab = Tab::new(id, url, grants, life, now);
        tab.mounted = files.len();
        tab.files = files;
        tab.loading = matches!(tab.life, Life::Starting(_));
        self.strip.push(tab);
        if becomes_active {
            self.strip.set_active(id);
            self.became_active(id, previous, false, now);
        }
        self.changed();
        id
    }

    fn activate(&mut self, id: TabId, now: Instant) -> Result<(), TabError> {
        self.tab(id)?;
        let previous = self.strip.active();
        if previous != Some(id) {
            self.strip.set_active(id);
            self.became_active(id, previous, true, now);
            self.changed();
        }
        Ok(())
    }

    /// Shows the tab that just became active (already set in the strip): the previous one's view
    /// is hidden, this one's shown (thawed, restored, or a discard cancelled first), and the
    /// keyboard moves. `by_user`: a discarded tab brought back counts as a user restore for the
    /// policy's storm guard.
    fn became_active(&mut self, id: TabId, previous: Option<TabId>, by_user: bool, now: Instant) {
        if let Some(prev) = previous.filter(|p| *p != id) {
            if let Some(tab) = self.strip.get_mut(prev) {
                tab.last_active = now;
            }
            self.send(prev, BrowserToRenderer::SetVisible(false));
        }
        let Some(tab) = self.strip.get_mut(id) else {
            return;
        };
        tab.last_active = now;
        if matches!(tab.life, Life::Discarded { .. }) && by_user {
            tab.restored_at = Some(now);
        }
        match tab.life {
            Life::Discarded { .. } => self.launch(id, now),
            Life::Frozen(_) | Life::Discarding { .. } => {
                self.wake(id, now);
                self.send(id, BrowserToRenderer::SetVisible(true));
            }
            _ => self.send(id, BrowserToRenderer::SetVisible(true)),
        }
        self.effects.push(Effect::AddressChanged);
        let Some(tab) = self.strip.get(id) else {
            return;
        };
        if tab.url == NEW_TAB_URL {
            self.effects.push(Effect::FocusAddressBar);
        } else {
            self.effects.push(Effect::FocusPage);
            if tab.has_view() {
                self.focus_page(id);
            }
        }
    }

    fn close(&mut self, id: TabId, now: Instant) -> Result<(), TabError> {
        let was_active = self.strip.active() == Some(id);
        let tab = self.strip.remove(id).ok_or(TabError::NoTab(id))?;
        self.retire(tab, now);
        match self.strip.active() {
            Some(next) if was_active => self.became_active(next, None, true, now),
            Some(_) => {}
            None => self.effects.push(Effect::Quit),
        }
        self.changed();
        Ok(())
    }

    /// Asks a closed tab's renderer to exit (killed at [`CLOSE_GRACE`]) and answers whatever
    /// waited for the tab.
    fn retire(&mut self, mut tab: Tab, now: Instant) {
        let (live, tickets) =
            match std::mem::replace(&mut tab.life, Life::Discarded { freed_kb: None }) {
                Life::Discarding { live, tickets, .. } => (live, tickets),
                Life::Starting(live) | Life::Live(live) | Life::Frozen(live) => (live, Vec::new()),
                Life::Discarded { .. } | Life::Crashed(_) => return,
            };
        let closed = || Err(format!("tab {} was closed", tab.id));
        for ticket in tickets.into_iter().chain(live.evals.into_values()) {
            self.effects.push(Effect::Answer(ticket, closed()));
        }
        let mut renderer = live.renderer;
        // A stopped process cannot act on the request; resumed, it exits within the grace.
        renderer.resume();
        renderer.request_shutdown();
        self.retiring.push(Retiring {
            renderer,
            deadline: now + CLOSE_GRACE,
        });
    }

    /// Replaces a tab's renderer with a fresh one whose sandbox is made for the tab's files as
    /// they are now, and navigates it to `url`. The tab's back/forward list comes along: the new
    /// renderer restores the history the old one last reported, then navigates, so Back still
    /// leads to the pages before.
    fn swap_renderer(&mut self, id: TabId, url: String, now: Instant) {
        let visible = self.strip.active() == Some(id);
        let bounds = self.bounds;
        let Some(tab) = self.strip.get_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut tab.life, Life::Discarded { freed_kb: None });
        let files = tab.files.clone();
        // Only the history: the old page's scroll offset and fields belong to the page being left.
        let restore = tab
            .snapshot
            .as_deref()
            .and_then(|s| snapshot::restorable(s, tab.grants))
            .map(|s| TabSnapshot {
                history: s.history,
                page: None,
            });
        // The old renderer leaves as a closed tab's does (asked to exit, then killed).
        self.retire(
            Tab::new(id, String::new(), Grants::default(), old, now),
            now,
        );
        let start = match restore {
            Some(restore) => Start {
                url: restore
                    .history
                    .current_entry()
                    .map_or_else(|| url.clone(), |e| e.url.clone()),
                visible,
                bounds,
                restore: Some(restore),
                files,
                spare: false,
            },
            None => Start {
                url: url.clone(),
                visible,
                bounds,
                restore: None,
                files,
                spare: false,
            },
        };
        let restoring = start.restore.is_some();
        self.relaunch(id, start, now);
        if restoring {
            // Queued behind the launch: applied once the history is back.
            self.send(id, BrowserToRenderer::Navigate { url });
        }
    }

    fn navigate(&mut self, id: TabId, url: String, now: Instant) -> Result<(), TabError> {
        let file_views = self.launcher.file_views();
        let tab = self.tab_mut(id)?;
        tab.grants.add_user_url(&url);
        tab.requested_url = url.clone();
        if let Some(path) = snapshot::opened_file(&url) {
            let shown =
                !file_views || crate::sandbox::bwrap::shows(&tab.files[..tab.mounted], &path);
            tab.add_file(path);
            if !shown && tab.life.has_renderer() {
                // The running renderer's sandbox was made without this file: a fresh renderer
                // with the file in its view loads it (the old one's history is not carried over).
                self.swap_renderer(id, url, now);
                self.focus_if_active(id);
                return Ok(());
            }
        }
        self.wake(id, now);
        self.send(id, BrowserToRenderer::Navigate { url });
        self.focus_if_active(id);
        Ok(())
    }

    fn reload(&mut self, id: TabId, now: Instant) -> Result<(), TabError> {
        let tab = self.tab(id)?;
        // A fresh renderer loads the page anyway (restoring a discarded tab's fields and scroll
        // offset, which a reload would throw away).
        let fresh = matches!(tab.life, Life::Discarded { .. } | Life::Crashed(_));
        self.wake(id, now);
        if !fresh {
            self.send(id, BrowserToRenderer::Reload);
        }
        self.focus_if_active(id);
        Ok(())
    }

    fn go(&mut self, id: TabId, back: bool, now: Instant) -> Result<(), TabError> {
        let tab = self.tab(id)?;
        let possible = if back {
            tab.can_go_back
        } else {
            tab.can_go_forward
        };
        if !possible {
            return Err(TabError::NoHistory {
                id,
                direction: if back { "back" } else { "forward" },
            });
        }
        self.wake(id, now);
        self.send(
            id,
            if back {
                BrowserToRenderer::GoBack
            } else {
                BrowserToRenderer::GoForward
            },
        );
        Ok(())
    }

    fn focus_if_active(&mut self, id: TabId) {
        if self.strip.active() == Some(id) {
            self.effects.push(Effect::FocusPage);
            if self.strip.get(id).is_some_and(Tab::has_view) {
                self.focus_page(id);
            }
        }
    }

    fn discard(
        &mut self,
        id: TabId,
        ticket: Option<Ticket>,
        now: Instant,
    ) -> Result<Outcome, TabError> {
        if self.strip.active() == Some(id) {
            self.tab(id)?;
            return Err(TabError::ActiveTab {
                id,
                what: "discarded",
            });
        }
        let request = self.next_request();
        let tab = self.strip.get_mut(id).ok_or(TabError::NoTab(id))?;
        match &mut tab.life {
            Life::Discarded { .. } => return Ok(Outcome::Discarded { freed_kb: 0 }),
            Life::Crashed(_) => {
                return Err(TabError::NoProcess {
                    id,
                    state: "crashed",
                })
            }
            Life::Discarding { tickets, .. } => {
                tickets.extend(ticket);
                return Ok(Outcome::Pending);
            }
            Life::Starting(_) => {}
            Life::Frozen(live) => live.renderer.resume(),
            Life::Live(_) => {}
        }
        if matches!(tab.life, Life::Starting(_)) {
            // No view yet: nothing to capture beyond what the tab knows.
            let freed_kb = self.finish_discard(id, None);
            return Ok(Outcome::Discarded {
                freed_kb: freed_kb.unwrap_or(0),
            });
        }
        let Some(live) = tab.life.take_live(Life::Discarded { freed_kb: None }) else {
            return Ok(Outcome::Discarded { freed_kb: 0 });
        };
        tab.life = Life::Discarding {
            live,
            request,
            deadline: now + CAPTURE_TIMEOUT,
            tickets: ticket.into_iter().collect(),
        };
        tab.responsive = true;
        self.send(id, BrowserToRenderer::CaptureState { request });
        self.effects.push(Effect::Redraw);
        Ok(Outcome::Pending)
    }

    /// Ends a discarding (or starting) tab's renderer and keeps its state. Returns the memory its
    /// tree held.
    fn finish_discard(
        &mut self,
        id: TabId,
        captured: Option<(SessionHistory, PageState)>,
    ) -> Option<u64> {
        let tab = self.strip.get_mut(id)?;
        let (live, tickets) =
            match std::mem::replace(&mut tab.life, Life::Discarded { freed_kb: None }) {
                Life::Discarding { live, tickets, .. } => (live, tickets),
                Life::Starting(live) | Life::Live(live) | Life::Frozen(live) => (live, Vec::new()),
                other => {
                    tab.life = other;
                    return None;
                }
            };
        let mut renderer = live.renderer;
        let freed_kb = renderer.footprint_kb();
        renderer.kill();
        if let Some((history, page)) = captured {
            tab.snapshot = Some(Arc::new(snapshot_of(history, Some(page))));
        }
        tab.life = Life::Discarded { freed_kb };
        tab.loading = false;
        tab.responsive = true;
        tab.playing_audio = false;
        log::info!(
            "tab {id}: discarded, freed {} KiB",
            freed_kb.map_or_else(|| "?".to_owned(), |k| k.to_string())
        );
        let discarded = Ok(Answer::Discarded {
            freed_kb: freed_kb.unwrap_or(0),
        });
        for ticket in tickets {
            self.effects.push(Effect::Answer(ticket, discarded.clone()));
        }
        for ticket in live.evals.into_values() {
            self.effects.push(Effect::Answer(
                ticket,
                Err(format!("tab {id} was discarded")),
            ));
        }
        self.changed();
        freed_kb
    }

    fn freeze(&mut self, id: TabId) -> Result<(), TabError> {
        if self.strip.active() == Some(id) {
            self.tab(id)?;
            return Err(TabError::ActiveTab { id, what: "frozen" });
        }
        let tab = self.strip.get_mut(id).ok_or(TabError::NoTab(id))?;
        match &tab.life {
            Life::Frozen(_) => return Ok(()),
            Life::Live(_) => {}
            Life::Starting(_) => return Err(TabError::Starting(id)),
            other => {
                return Err(TabError::NotRunning {
                    id,
                    state: other.name(),
                    hint: "",
                })
            }
        }
        let Some(mut live) = tab.life.take_live(Life::Discarded { freed_kb: None }) else {
            return Ok(());
        };
        if let Err(reason) = live.renderer.stop() {
            tab.life = Life::Live(live);
            return Err(TabError::FreezeFailed { id, reason });
        }
        let evals: Vec<Ticket> = live.evals.drain().map(|(_, t)| t).collect();
        tab.life = Life::Frozen(live);
        tab.responsive = true;
        log::info!("tab {id}: frozen");
        for ticket in evals {
            self.effects
                .push(Effect::Answer(ticket, Err(format!("tab {id} was frozen"))));
        }
        self.effects.push(Effect::Redraw);
        Ok(())
    }

    fn unfreeze(&mut self, id: TabId, now: Instant) -> Result<(), TabError> {
        let tab = self.tab(id)?;
        match tab.life {
            Life::Frozen(_) => {
                self.wake(id, now);
                Ok(())
            }
            Life::Discarded { .. } | Life::Crashed(_) => Err(TabError::NotFrozen {
                id,
                state: tab.life.name(),
            }),
            _ => Ok(()),
        }
    }

    /// Makes a tab's renderer run again: a frozen one is thawed, a discard in progress is
    /// cancelled, and a discarded or crashed tab gets a fresh renderer that restores its state.
    fn wake(&mut self, id: TabId, now: Instant) {
        let bounds = self.bounds;
        let Some(tab) = self.strip.get_mut(id) else {
            return;
        };
        match std::mem::replace(&mut tab.life, Life::Discarded { freed_kb: None }) {
            Life::Frozen(mut live) => {
                live.renderer.resume();
                live.pings = crate::host::PingTracker::new(now);
                live.since = now;
                tab.life = Life::Live(live);
                log::info!("tab {id}: thawed");
                self.send(id, BrowserToRenderer::SetBounds(bounds));
            }
            Life::Discarding {
                mut live,
                request,
                tickets,
                ..
            } => {
                // Its state is still welcome when it arrives. A frozen tab was thawed for the
                // capture: its hang detector starts afresh, as on any thaw.
                live.captures.push(request);
                live.pings = crate::host::PingTracker::new(now);
                live.since = now;
                tab.life = Life::Live(live);
                for ticket in tickets {
                    self.effects.push(Effect::Answer(
                        ticket,
                        Err(format!(
                            "the discard of tab {id} was cancelled: the tab is in use"
                        )),
                    ));
                }
            }
            old @ (Life::Discarded { .. } | Life::Crashed(_)) => {
                // Only the user wakes a tab without a renderer (activation, reload, navigation,
                // history): the policy leaves it alone for a while, as it does a restored tab.
                tab.restored_at = Some(now);
                tab.last_active = now;
                tab.life = old;
                self.launch(id, now);
            }
            other => tab.life = other,
        }
        self.effects.push(Effect::Redraw);
    }

    /// Starts a fresh renderer for a tab without one, restoring its snapshot when the snapshot
    /// passes the tab's checks, else loading the last URL the tab may load.
    fn launch(&mut self, id: TabId, now: Instant) {
        let visible = self.strip.active() == Some(id);
        let bounds = self.bounds;
        let Some(tab) = self.strip.get(id) else {
            return;
        };
        let restore = tab
            .snapshot
            .as_deref()
            .and_then(|s| snapshot::restorable(s, tab.grants));
        let url = restore
            .as_ref()
            .and_then(|s| s.history.current_entry())
            .map(|e| e.url.clone())
            .unwrap_or_else(|| committed_or_requested(tab));
        let files = tab.files.clone();
        let start = Start {
            url,
            visible,
            bounds,
            restore,
            files,
            spare: false,
        };
        self.relaunch(id, start, now);
    }

    /// Gives an existing tab a fresh renderer started with `start`.
    fn relaunch(&mut self, id: TabId, start: Start, now: Instant) {
        let life = self.start_renderer(id, start, now);
        if let Some(tab) = self.strip.get_mut(id) {
            tab.mounted = tab.files.len();
            tab.loading = matches!(life, Life::Starting(_));
            tab.responsive = true;
            tab.playing_audio = false;
            tab.life = life;
        }
        self.effects.push(Effect::Redraw);
    }

    fn start_renderer(&mut self, id: TabId, start: Start, now: Instant) -> Life {
        let restoring = start.restore.is_some();
        if let Some(spare) = self.take_spare(&start) {
            match adopt(&spare, start.clone()) {
                Ok(()) => {
                    log::info!(
                        "tab {id}: spare renderer {} (pid {}){}",
                        spare.id,
                        spare.renderer.pid(),
                        if restoring { " restoring" } else { "" }
                    );
                    let mut live = Live::new(spare.renderer, spare.id, now);
                    live.adopted = true;
                    return Life::Starting(live);
                }
                Err(why) => {
                    log::warn!("spare renderer {}: {why}; starting a new one", spare.id);
                    let mut spare = spare;
                    spare.renderer.kill();
                }
            }
        }
        match self.launcher.launch(id, start) {
            Ok(renderer) => {
                log::info!(
                    "tab {id}: renderer pid {}{}",
                    renderer.pid(),
                    if restoring { " (restoring)" } else { "" }
                );
                Life::Starting(Live::new(renderer, id, now))
            }
            Err(e) => {
                log::warn!("tab {id}: cannot start a renderer: {e}");
                Life::Crashed(CrashCause::Known(format!(
                    "The renderer could not be started: {e}"
                )))
            }
        }
    }

    /// Ends a tab's renderer tree and shows the crash notice. A renderer that dies while its tab
    /// is being discarded leaves the tab discarded, as was asked.
    fn crash(&mut self, id: TabId, cause: CrashCause) {
        let Some(tab) = self.strip.get_mut(id) else {
            return;
        };
        if matches!(tab.life, Life::Discarding { .. }) {
            self.finish_discard(id, None);
            return;
        }
        if let Life::Starting(Live {
            adopted: true,
            since,
            ..
        }) = tab.life
        {
            // The spare died before it showed the tab's page: the tab starts again in a fresh
            // renderer, as if there had been no spare.
            if let Some(mut live) = tab.life.take_live(Life::Discarded { freed_kb: None }) {
                live.renderer.kill();
                for ticket in live.evals.into_values() {
                    self.effects.push(Effect::Answer(
                        ticket,
                        Err(format!("tab {id}: its renderer was replaced; try again")),
                    ));
                }
            }
            log::warn!(
                "tab {id}: the spare renderer died before it showed the page ({}); starting a new one",
                cause.describe()
            );
            self.launch(id, since);
            return;
        }
        let Some(mut live) = tab.life.take_live(Life::Crashed(cause.clone())) else {
            return;
        };
        live.renderer.kill();
        tab.loading = false;
        tab.responsive = true;
        tab.playing_audio = false;
        log::warn!("tab {id} crashed: {}", cause.describe());
        for ticket in live.evals.into_values() {
            self.effects.push(Effect::Answer(
                ticket,
                Err(format!("tab {id} crashed: {}", cause.describe())),
            ));
        }
        self.effects.push(Effect::Redraw);
    }

    // ----- renderer input -----

    /// Handles what the renderers sent, at most [`EVENTS_PER_WAKE`] events per renderer. Returns
    /// whether events are left (the caller wakes itself again).
    ///
    /// Title and URL changes are coalesced: of a run of them only the last title and the last URL
    /// are applied, once, just before the next other message (which may depend on the tab's URL:
    /// a page that opens a tab) and at the end of the renderer's turn. So a page that changes its
    /// title in a loop costs one update and one repaint per wake, not one per message.
    pub fn poll_renderers(&mut self, now: Instant) -> bool {
        self.check_spare();
        let ids: Vec<TabId> = self
            .strip
            .iter()
            .filter(|t| t.life.live().is_some())
            .map(|t| t.id)
            .collect();
        let mut more = false;
        for id in ids {
            let mut pending = Coalesced::default();
            for _ in 0..EVENTS_PER_WAKE {
                let event = self
                    .strip
                    .get(id)
                    .and_then(|t| t.life.live())
                    .and_then(|l| l.renderer.try_recv());
                let Some(event) = event else { break };
                match event {
                    HostEvent::Message(msg @ RendererToBrowser::TitleChanged { .. }) => {
                        pending.title = Some(msg);
                    }
                    HostEvent::Message(msg @ RendererToBrowser::UrlChanged { .. }) => {
                        pending.url = Some(msg);
                    }
                    other => {
                        self.apply_coalesced(id, &mut pending, now);
                        self.renderer_event(id, other, now);
                    }
                }
            }
            self.apply_coalesced(id, &mut pending, now);
            more |= self
                .strip
                .get(id)
                .and_then(|t| t.life.live())
                .is_some_and(|l| l.renderer.has_events());
        }
        more
    }

    /// Applies the title and URL changes held back by [`Tabs::poll_renderers`].
    fn apply_coalesced(&mut self, id: TabId, pending: &mut Coalesced, now: Instant) {
        for msg in [pending.url.take(), pending.title.take()]
            .into_iter()
            .flatten()
        {
            self.renderer_message(id, msg, now);
        }
    }

    fn renderer_event(&mut self, id: TabId, event: HostEvent, now: Instant) {
        match event {
            HostEvent::Message(msg) => self.renderer_message(id, msg, now),
            HostEvent::Violation(why) => self.crash(
                id,
                CrashCause::Known(format!("The renderer was ended because it {why}.")),
            ),
            HostEvent::Disconnected => {
                let Some(pid) = self.strip.get(id).and_then(Tab::root_pid) else {
                    return;
                };
                self.crash(id, CrashCause::Disconnected { pid });
            }
        }
    }

    fn renderer_message(&mut self, id: TabId, msg: RendererToBrowser, now: Instant) {
        let shown = !matches!(
            msg,
            RendererToBrowser::Pong { .. } | RendererToBrowser::EvalResult { .. }
        );
        // One repaint is enough for everything a wake brings.
        if shown && !self.effects.contains(&Effect::Redraw) {
            self.effects.push(Effect::Redraw);
        }
        let active = self.strip.active() == Some(id);
        let Some(tab) = self.strip.get_mut(id) else {
            return;
        };
        match msg {
            RendererToBrowser::Hello => {}
            RendererToBrowser::Ready { landlock } => {
                if let Life::Starting(_) = tab.life {
                    if let Some(mut live) = tab.life.take_live(Life::Discarded { freed_kb: None }) {
                        live.landlock = landlock;
                        tab.life = Life::Live(live);
                    }
                    if active && tab.url != NEW_TAB_URL {
                        self.effects.push(Effect::PageReady(id));
                    }
                }
            }
            RendererToBrowser::UrlChanged { url } => {
                tab.url = printable(&url);
                if active {
                    self.effects.push(Effect::AddressChanged);
                }
                self.generation += 1;
            }
            RendererToBrowser::TitleChanged { title } => {
                // Not worth a session write of its own (a page can change its title every
                // second): the title is saved with the next change that is.
                tab.title = printable(&title);
            }
            RendererToBrowser::Loading(loading) => tab.loading = loading,
            RendererToBrowser::HistoryChanged {
                can_go_back,
                can_go_forward,
            } => {
                tab.can_go_back = can_go_back;
                tab.can_go_forward = can_go_forward;
            }
            RendererToBrowser::OpenTab { url } => self.page_opens_tab(id, url, now),
            RendererToBrowser::EvalResult { request, result } => {
                let Some(ticket) = tab.life.live_mut().and_then(|l| l.evals.remove(&request))
                else {
                    return;
                };
                let answer = match result {
                    Ok(text) => serde_json::from_str::<serde_json::Value>(&text)
                        .map(Answer::Value)
                        .map_err(|e| {
                            format!("the renderer returned a value that is not JSON: {e}")
                        }),
                    Err(e) => Err(format!("script error: {e}")),
                };
                self.effects.push(Effect::Answer(ticket, answer));
            }
            RendererToBrowser::Pong { seq } => {
                if let Some(live) = tab.life.running_mut() {
                    live.pings.pong(seq);
                    let responsive = live.pings.responsive(now);
                    if tab.responsive != responsive {
                        tab.responsive = responsive;
                        self.effects.push(Effect::Redraw);
                    }
                }
            }
            RendererToBrowser::WebProcessCrashed { reason } => self.crash(
                id,
                CrashCause::Known(format!(
                    "The page's web process ended: {}.",
                    printable(&reason)
                )),
            ),
            RendererToBrowser::HistoryState(history) => {
                // A page state captured earlier still describes the page while the current entry
                // stays where it was (a restored page reports its history before its fields and
                // scroll offset are back); after a navigation it describes nothing.
                let page = tab.snapshot.as_ref().and_then(|old| {
                    let same_entry = old.history.current == history.current
                        && old.history.current_entry().map(|e| &e.url)
                            == history.current_entry().map(|e| &e.url);
                    old.page.clone().filter(|_| same_entry)
                });
                tab.snapshot = Some(Arc::new(snapshot_of(history, page)));
                self.generation += 1;
            }
            RendererToBrowser::StateCaptured {
                request,
                history,
                page,
            } => {
                if matches!(tab.life, Life::Discarding { request: r, .. } if r == request) {
                    self.finish_discard(id, Some((history, page)));
                } else if let Some(live) = tab
                    .life
                    .live_mut()
                    .filter(|l| l.captures.contains(&request))
                {
                    live.captures.retain(|r| *r != request);
                    tab.snapshot = Some(Arc::new(snapshot_of(history, Some(page))));
                    self.generation += 1;
                } else {
                    self.crash(
                        id,
                        CrashCause::Known(format!(
                            "The renderer was ended because it sent an invalid message: a state for request {request}, which was not asked for."
                        )),
                    );
                }
            }
            RendererToBrowser::FormEdited(edited) => tab.form_input = edited,
            RendererToBrowser::PlayingAudio(playing) => tab.playing_audio = playing,
        }
    }

    /// A page asked for a new window: it becomes a tab if the URL is one the page may open and
    /// the budgets allow.
    fn page_opens_tab(&mut self, opener: TabId, url: String, now: Instant) {
        let Some(tab) = self.strip.get_mut(opener) else {
            return;
        };
        // A local page may open local pages only in a tab where the user opened local files.
        let opener_url = if tab.grants.file {
            tab.url.as_str()
        } else {
            ""
        };
        let allowed = validate::check_open_tab(&url, opener_url);
        // Each renderer has a budget, and all renderers together another: tabs opened by pages
        // can open tabs too.
        let within_limit = tab.life.running_mut().is_some_and(|l| l.popups.allow(now))
            && self.popups.allow(now)
            && self.spawns.allow(now);
        match allowed {
            Ok(()) if within_limit => {
                let grants = Grants::for_user_url(&url);
                // A local page's new tab sees what its opener's sandbox shows (its neighbours);
                // a web page's new tab sees no file.
                let files = if url.starts_with("file:") {
                    tab.files.clone()
                } else {
                    Vec::new()
                };
                self.open(url, false, grants, files, now);
            }
            Ok(()) => log::warn!("tab {opener}: too many new tabs requested; dropped one"),
            Err(e) => log::warn!("tab {opener}: refused to open a tab: {e}"),
        }
    }

    /// The reaper collected `pid`, which ended as `how` ("exited with status 1").
    pub fn reaped(&mut self, pid: u32, how: &str) {
        // The reaper reports the browser's own children: the processes it started.
        if self
            .spare
            .as_ref()
            .is_some_and(|s| s.renderer.root_pid() == pid)
        {
            if let Some(spare) = self.spare.as_mut() {
                spare.renderer.mark_reaped();
            }
            self.drop_spare(&format!("its process {how}"));
            self.spare_died = true;
            return;
        }
        if let Some(index) = self
            .retiring
            .iter()
            .position(|r| r.renderer.root_pid() == pid)
        {
            // Dropping it kills what is left of its process group now.
            let mut retired = self.retiring.swap_remove(index);
            retired.renderer.mark_reaped();
            return;
        }
        let owner = self
            .strip
            .iter()
            .find(|t| t.root_pid() == Some(pid) || t.life_is_disconnected(pid))
            .map(|t| t.id);
        let Some(id) = owner else { return };
        let cause = CrashCause::Known(format!("The renderer process {how}."));
        let Some(tab) = self.strip.get_mut(id) else {
            return;
        };
        match tab.life.live_mut() {
            Some(live) => live.renderer.mark_reaped(),
            None => {
                // The renderer had disconnected: now the notice can say how it ended.
                tab.life = Life::Crashed(cause);
                self.effects.push(Effect::Redraw);
                return;
            }
        }
        self.crash(id, cause);
    }

    /// Timers: pings and the hang detector for running renderers (never for frozen ones),
    /// discards whose renderer did not answer in time, closed tabs' renderers past their grace.
    pub fn tick(&mut self, now: Instant) {
        let ids: Vec<TabId> = self.strip.iter().map(|t| t.id).collect();
        for id in ids {
            let Some(tab) = self.strip.get_mut(id) else {
                continue;
            };
            if matches!(tab.life, Life::Discarding { deadline, .. } if now >= deadline) {
                log::warn!(
                    "tab {id}: no state within {CAPTURE_TIMEOUT:?}; discarding with the last one"
                );
                self.finish_discard(id, None);
                continue;
            }
            let Some(live) = tab.life.running_mut() else {
                continue;
            };
            let ping = live.pings.due(now);
            let responsive = live.pings.responsive(now);
            if tab.responsive != responsive {
                if !responsive {
                    log::warn!("tab {id}: renderer is not responding");
                }
                tab.responsive = responsive;
                self.effects.push(Effect::Redraw);
            }
            if let Some(ping) = ping {
                self.send(id, ping);
            }
        }
        // Dropping a renderer kills its tree.
        self.retiring.retain(|r| now < r.deadline);
    }

    /// Queues a message for a running renderer (not a frozen one); a renderer that cannot take it
    /// is ended.
    fn send(&mut self, id: TabId, msg: BrowserToRenderer) {
        let Some(tab) = self.strip.get(id) else {
            return;
        };
        let renderer = match &tab.life {
            Life::Starting(live) | Life::Live(live) | Life::Discarding { live, .. } => {
                &live.renderer
            }
            _ => return,
        };
        if let Err(why) = renderer.send(msg) {
            self.crash(id, CrashCause::Known(format!("The renderer {why}.")));
        }
    }

    // ----- policy -----

    /// What the lifecycle policy needs to know of every tab. `memory` holds the tabs' renderer
    /// tree footprints when they were measured.
    pub fn facts(&self, now: Instant, memory: &HashMap<TabId, u64>) -> Vec<policy::TabFacts> {
        self.strip
            .iter()
            .map(|t| self.fact(t, now, memory))
            .collect()
    }

    fn fact(&self, tab: &Tab, now: Instant, memory: &HashMap<TabId, u64>) -> policy::TabFacts {
        let active = self.strip.active() == Some(tab.id);
        policy::TabFacts {
            id: tab.id,
            life: match tab.life {
                Life::Starting(_) => policy::Life::Starting,
                Life::Live(_) => policy::Life::Live,
                Life::Frozen(_) => policy::Life::Frozen,
                _ => policy::Life::NotLive,
            },
            active,
            pinned: tab.pinned,
            playing_audio: tab.playing_audio,
            form_input: tab.form_input,
            last_active: if active { now } else { tab.last_active },
            live_since: tab.life.live().map(|l| l.since),
            restored_at: tab.restored_at,
            memory_kb: memory.get(&tab.id).copied(),
        }
    }

    /// What keeps a tab with a renderer from being discarded or frozen automatically.
    pub fn protection(&self, id: TabId, now: Instant) -> Option<Protection> {
        let tab = self.strip.get(id)?;
        tab.life.live()?;
        policy::protection(&self.fact(tab, now, &HashMap::new()), now)
    }

    /// Carries out the policy's plan.
    pub fn enforce(&mut self, plan: policy::Plan, now: Instant) {
        for (id, reason) in plan.discard {
            if reason == policy::Reason::LowMemory {
                // Freed memory takes a while to show in the readings (PSI is a 10 s average):
                // one discard per cool-down, not one per run until the readings catch up.
                let cooling = self.last_low_memory_discard.is_some_and(|t| {
                    now.saturating_duration_since(t) < policy::LOW_MEMORY_COOLDOWN
                });
                if cooling {
                    continue;
                }
                self.last_low_memory_discard = Some(now);
            }
            log::info!("tab {id}: discarding ({reason:?})");
            if let Err(e) = self.discard(id, None, now) {
                log::warn!("the policy could not discard tab {id}: {e}");
            }
        }
        for id in plan.freeze {
            if let Err(e) = self.freeze(id) {
                log::warn!("the policy could not freeze tab {id}: {e}");
            }
        }
        if self.over_cap != plan.over_cap {
            self.over_cap = plan.over_cap;
            self.effects.push(Effect::Redraw);
        }
    }

    // ----- session -----

    /// Asks every renderer with a view for its tab's whole state, so the session saved at exit
    /// restores exactly; frozen tabs are thawed for it. See [`Tabs::capturing`].
    pub fn capture_all(&mut self, now: Instant) {
        let ids: Vec<TabId> = self.strip.iter().map(|t| t.id).collect();
        for id in ids {
            if matches!(self.strip.get(id).map(|t| &t.life), Some(Life::Frozen(_))) {
                self.wake(id, now);
            }
            let request = self.next_request();
            let Some(tab) = self.strip.get_mut(id) else {
                continue;
            };
            if let Life::Live(live) = &mut tab.life {
                live.captures.push(request);
                self.send(id, BrowserToRenderer::CaptureState { request });
            }
        }
    }

    /// Whether states asked for (by [`Tabs::capture_all`] or a discard) are still awaited.
    pub fn capturing(&self) -> bool {
        self.strip.iter().any(|t| match &t.life {
            Life::Discarding { .. } => true,
            life => life.live().is_some_and(|l| !l.captures.is_empty()),
        })
    }

    /// The session to save: every tab in order, with the state it would be restored to. Only
    /// what passes the restore checks is written, so a session file that fails them was not
    /// written by Warren.
    pub fn session(&self, wall: SystemTime, now: Instant) -> Session {
        let active = self.strip.active();
        let tabs = self
            .strip
            .iter()
            .map(|t| {
                let last_active = if active == Some(t.id) {
                    now
                } else {
                    t.last_active
                };
                SessionTab {
                    url: committed_or_requested(t),
                    title: t.title.clone(),
                    pinned: t.pinned,
                    last_active_ms: unix_ms(wall, now, last_active),
                    grants: t.grants,
                    files: t.files.clone(),
                    snapshot: t
                        .snapshot
                        .clone()
                        .filter(|s| snapshot::check_snapshot(s, t.grants).is_ok()),
                }
            })
            .collect();
        Session {
            tabs,
            active: active.and_then(|id| self.strip.index_of(id)),
        }
    }

    /// Adds the tabs of a saved session, all discarded. With `activate`, the session's active tab
    /// becomes active and is restored at once; without (URLs from the command line open next),
    /// none is.
    pub fn restore_session(
        &mut self,
        session: Session,
        activate: bool,
        wall: SystemTime,
        now: Instant,
    ) {
        let had_active = self.strip.active().is_some();
        let mut ids = Vec::new();
        for saved in session.tabs {
            let id = self.strip.next_id();
            let mut tab = Tab::new(
                id,
                saved.url,
                saved.grants,
                Life::Discarded { freed_kb: None },
                instant_of(wall, now, saved.last_active_ms),
            );
            tab.title = printable(&saved.title);
            tab.pinned = saved.pinned;
            tab.files = saved.files;
            if let Some(s) = &saved.snapshot {
                let current = s.history.current as usize;
                tab.can_go_back = current > 0;
                tab.can_go_forward = current + 1 < s.history.entries.len();
            }
            tab.snapshot = saved.snapshot;
            self.strip.push(tab);
            ids.push(id);
        }
        if !activate && !had_active {
            // The first tab opened next becomes active; until then none is (a restored tab made
            // active here would count as used now, out of its saved order).
            self.strip.clear_active();
        }
        if activate {
            let id = session
                .active
                .and_then(|i| ids.get(i))
                .or(ids.first())
                .copied();
            if let Some(id) = id {
                let previous = self.strip.active().filter(|p| !ids.contains(p));
                self.strip.set_active(id);
                self.became_active(id, previous, false, now);
            }
        }
        self.changed();
    }

    /// Asks every renderer to exit (see [`Tabs::retiring`]); the tabs stay as they are, for a
    /// last [`Tabs::session`].
    pub fn close_renderers(&mut self, now: Instant) {
        if let Some(spare) = self.spare.take() {
            spare.renderer.request_shutdown();
            self.retiring.push(Retiring {
                renderer: spare.renderer,
                deadline: now + CLOSE_GRACE,
            });
        }
        let ids: Vec<TabId> = self.strip.iter().map(|t| t.id).collect();
        for id in ids {
            let Some(tab) = self.strip.get_mut(id) else {
                continue;
            };
            let Some(mut live) = tab.life.take_live(Life::Discarded { freed_kb: None }) else {
                continue;
            };
            live.renderer.resume();
            live.renderer.request_shutdown();
            self.retiring.push(Retiring {
                renderer: live.renderer,
                deadline: now + CLOSE_GRACE,
            });
        }
    }

    /// Whether closed renderers have not exited yet.
    pub fn retiring(&self) -> bool {
        !self.retiring.is_empty()
    }

    /// Kills every renderer left (dropping a renderer kills its tree).
    pub fn kill_all(&mut self) {
        self.retiring.clear();
        self.drop_spare("the browser is closing");
        for tab in self.strip.iter_mut() {
            if let Some(mut live) = tab.life.take_live(Life::Discarded { freed_kb: None }) {
                live.renderer.kill();
            }
        }
    }

    // ----- helpers -----

    /// Takes one new tab from the browser-wide budget, or says when there will be one.
    fn spend_spawn(&mut self, now: Instant) -> Result<(), TabError> {
        if self.spawns.allow(now) {
            return Ok(());
        }
        let wait = self
            .spawns
            .wait_for(1.0, now)
            .unwrap_or(validate::SPAWN_INTERVAL);
        Err(TabError::TooManyNewTabs {
            retry_after_s: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }

    fn tab(&self, id: TabId) -> Result<&Tab, TabError> {
        self.strip.get(id).ok_or(TabError::NoTab(id))
    }

    fn tab_mut(&mut self, id: TabId) -> Result<&mut Tab, TabError> {
        self.strip.get_mut(id).ok_or(TabError::NoTab(id))
    }

    fn next_request(&mut self) -> u64 {
        let request = self.next_request;
        self.next_request += 1;
        request
    }

    /// Something the session holds changed.
    fn changed(&mut self) {
        self.generation += 1;
        self.effects.push(Effect::Redraw);
    }
}

impl Tab {
    /// Whether the tab crashed with a disconnected renderer `pid` the reaper has not reported.
    fn life_is_disconnected(&self, pid: u32) -> bool {
        matches!(self.life, Life::Crashed(CrashCause::Disconnected { pid: p }) if p == pid)
    }
}

/// A snapshot from reported state; page state that does not belong to the current entry is
/// dropped (it would not be restored).
fn snapshot_of(history: SessionHistory, page: Option<PageState>) -> TabSnapshot {
    let current = history.current_entry().map(|e| e.url.clone());
    let page = page.filter(|p| Some(&p.url) == current.as_ref());
    TabSnapshot { history, page }
}

/// The URL a tab without a usable snapshot loads: the one it committed last if the tab may load
/// it, else the one asked for.
fn committed_or_requested(tab: &Tab) -> String {
    if tab.grants.allows(&tab.url) {
        tab.url.clone()
    } else {
        tab.requested_url.clone()
    }
}

/// A renderer's string made safe to show: control characters (newlines, tabs, escapes) become
/// spaces.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `at` as Unix milliseconds, given that `now` is `wall`.
fn unix_ms(wall: SystemTime, now: Instant, at: Instant) -> u64 {
    let wall_at = wall
        .checked_sub(now.saturating_duration_since(at))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    wall_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(u128::from(u64::MAX)) as u64)
}

/// The instant of Unix milliseconds `ms`, given that `now` is `wall`; never later than `now`.
fn instant_of(wall: SystemTime, now: Instant, ms: u64) -> Instant {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    let ago = wall.duration_since(at).unwrap_or(Duration::ZERO);
    now.checked_sub(ago).unwrap_or(now)
}

/// The Unix time in milliseconds of an instant, for `last_active_ms`.
pub fn last_active_ms(tab: &Tab, active: bool, wall: SystemTime, now: Instant) -> u64 {
    unix_ms(wall, now, if active { now } else { tab.last_active })
}

/// Hands a spare renderer its tab: the first page (or restore), and the view shown if the tab is
/// the active one. The spare's bounds already follow the content area ([`Tabs::set_bounds`]).
fn adopt(spare: &Spare, start: Start) -> Result<(), &'static str> {
    spare.renderer.send(BrowserToRenderer::Start {
        url: start.url,
        restore: start.restore,
        visible: start.visible,
    })?;
    if start.visible {
        // The host maps the nested display's window (the renderer's view is already shown).
        spare.renderer.send(BrowserToRenderer::SetVisible(true))?;
    }
    Ok(())
}
