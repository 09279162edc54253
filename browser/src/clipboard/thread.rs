//! The broker thread: one loop polling the outer display, every nested display and a wake pipe.
//!
//! Blocking rules: this thread waits only on X connections, and every such wait is bounded (a
//! transfer by [`FETCH_TIME`], a round trip by the stream's timeout). A nested display that fails
//! or times out is dropped alone; the outer display failing ends the broker.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use warren_ipc::TabId;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::{ConnectionError, ReplyError};
use x11rb::protocol::xfixes::{self, ConnectionExt as _, SelectionEventMask};
use x11rb::protocol::xinput::{self, ConnectionExt as _, XIEventMask};
use x11rb::protocol::xproto::{
    ConnectionExt as _, Mapping, SelectionRequestEvent, Timestamp, Window,
};
use x11rb::protocol::Event;
use x11rb::NONE;

use super::content::{Content, Kind, MAX_CONTENT};
use super::endpoint::{Endpoint, FetchError, Reply, Target, FETCH_TIME};
use super::policy::{self, Gesture, ModifierTracker, ReadDecision, Selection};
use super::stream;
use super::{BrokerEvent, ClipboardError, NestedAddress};

/// How long to keep trying to reach a nested display that is still starting.
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);
const CONNECT_RETRY: Duration = Duration::from_millis(100);
/// A round trip to a nested display longer than this drops it.
const NESTED_TIMEOUT: Duration = Duration::from_secs(2);
/// The user's display may be grabbed for a while (a window manager moving a window); the broker
/// gives up on it only after this.
pub(super) const OUTER_TIMEOUT: Duration = Duration::from_secs(30);
/// PRIMARY changes with every extension of a selection; read it once the page settles.
const PRIMARY_SETTLE: Duration = Duration::from_millis(150);
/// Events handled per connection per turn, so one flooding display cannot starve the others.
const EVENTS_PER_TURN: usize = 256;
/// Requests waiting for a gesture, all displays together.
const MAX_PENDING: usize = 64;
/// GetInputFocus's answer when the focus follows the pointer.
const POINTER_ROOT: Window = 1;
/// Window-tree walks stop here; real trees are far shallower.
const MAX_DEPTH: usize = 64;

pub(super) enum Command {
    Add(TabId, NestedAddress, Window),
    Remove(TabId),
    Active(Option<TabId>),
    Stop,
}

struct Nested {
    tab: TabId,
    ep: Endpoint,
}

struct Connecting {
    tab: TabId,
    address: NestedAddress,
    until: Instant,
    next: Instant,
}

struct Pending {
    tab: TabId,
    req: SelectionRequestEvent,
    selection: Selection,
    asked: Instant,
}

/// A page's selection the broker holds on the outer display for it.
struct Published {
    tab: TabId,
    content: Content,
}

/// What was read from the user's selection for one paste gesture; the page usually asks for
/// TARGETS and then a format or two.
struct PasteCache {
    gesture: Gesture,
    kinds: Option<Vec<Kind>>,
    content: Content,
    tried: Vec<Kind>,
}

/// The outer keyboard mapping, for turning raw keycodes into keysyms.
#[derive(Default)]
struct Keymap {
    min_keycode: u32,
    per_keycode: usize,
    keysyms: Vec<u32>,
}

impl Keymap {
    fn load(ep: &Endpoint) -> Result<Keymap, ReplyError> {
        let setup = ep.conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let reply = ep
            .conn
            .get_keyboard_mapping(min, max.saturating_sub(min).saturating_add(1))?
            .reply()?;
        Ok(Keymap {
            min_keycode: u32::from(min),
            per_keycode: usize::from(reply.keysyms_per_keycode),
            keysyms: reply.keysyms,
        })
    }

    /// The keycode's keysym without modifiers (first column).
    fn keysym(&self, keycode: u32) -> u32 {
        let Some(index) = keycode.checked_sub(self.min_keycode) else {
            return 0;
        };
        let index = usize::try_from(index).unwrap_or(usize::MAX);
        index
            .checked_mul(self.per_keycode)
            .and_then(|i| self.keysyms.get(i))
            .copied()
            .unwrap_or(0)
    }
}

pub(super) struct State {
    outer: Endpoint,
    keymap: Keymap,
    modifiers: ModifierTracker,
    hosts: HashMap<TabId, Window>,
    nested: Vec<Nested>,
    connecting: Vec<Connecting>,
    failed: Vec<(TabId, String)>,
    active: Option<TabId>,
    gestures: HashMap<Selection, Gesture>,
    pending: Vec<Pending>,
    paste: Option<PasteCache>,
    published: HashMap<Selection, Published>,
    owned_at: HashMap<Selection, Timestamp>,
    primary_due: Option<Instant>,
    on_event: Box<dyn Fn(BrokerEvent) + Send>,
    commands: Receiver<Command>,
    wake: OwnedFd,
}

fn selection_masks() -> SelectionEventMask {
    SelectionEventMask::SET_SELECTION_OWNER
        | SelectionEventMask::SELECTION_WINDOW_DESTROY
        | SelectionEventMask::SELECTION_CLIENT_CLOSE
}

/// Asks for owner changes of both selections on `ep`'s display.
fn watch_selections(ep: &Endpoint) -> Result<(), ReplyError> {
    ep.conn.xfixes_query_version(5, 0)?.reply()?;
    for atom in [ep.atoms.CLIPBOARD, ep.atoms.PRIMARY] {
        ep.conn
            .xfixes_select_selection_input(ep.root, atom, selection_masks())?;
    }
    ep.conn.flush()?;
    Ok(())
}

impl State {
    /// Connects to the outer display and asks for everything the broker watches there.
    pub(super) fn new(
        display: Option<&str>,
        on_event: Box<dyn Fn(BrokerEvent) + Send>,
        commands: Receiver<Command>,
        wake: OwnedFd,
    ) -> Result<State, ClipboardError> {
        let name = display.unwrap_or("$DISPLAY").to_owned();
        let (conn, screen) = stream::connect_display(display, OUTER_TIMEOUT)
            .map_err(|e| ClipboardError::Connect(name.clone(), e))?;
        let outer = Endpoint::new(conn, screen).map_err(ClipboardError::Setup)?;
        if outer
            .conn
            .extension_information(xfixes::X11_EXTENSION_NAME)
            .map_err(ClipboardError::X)?
            .is_none()
        {
            return Err(ClipboardError::MissingExtension(name, "XFIXES"));
        }
        watch_selections(&outer).map_err(ClipboardError::Reply)?;
        if !select_raw_input(&outer).map_err(ClipboardError::Reply)? {
            log::warn!(
                "the display {name} has no XInput 2.2: paste gestures cannot be seen, so pages \
                 will not be able to paste from the clipboard"
            );
        }
        let keymap = Keymap::load(&outer).map_err(ClipboardError::Reply)?;
        Ok(State {
            outer,
            keymap,
            modifiers: ModifierTracker::default(),
            hosts: HashMap::new(),
            nested: Vec::new(),
            connecting: Vec::new(),
            failed: Vec::new(),
            active: None,
            gestures: HashMap::new(),
            pending: Vec::new(),
            paste: None,
            published: HashMap::new(),
            owned_at: HashMap::new(),
            primary_due: None,
            on_event,
            commands,
            wake,
        })
    }

    /// Runs until told to stop, or until the outer display fails.
    pub(super) fn run(mut self) -> Result<(), ConnectionError> {
        loop {
            let mut more = false;
            let mut buf = [0u8; 64];
            while matches!(nix::unistd::read(&self.wake, &mut buf), Ok(n) if n > 0) {}
            if !self.commands() {
                return Ok(());
            }
            let now = Instant::now();
            self.try_connects(now);
            // Outer events.
            for _ in 0..EVENTS_PER_TURN {
                match self.outer.next_event()? {
                    Some(event) => self.outer_event(event)?,
                    None => break,
                }
            }
            // Nested events.
            let tabs: Vec<TabId> = self.nested.iter().map(|n| n.tab).collect();
            for tab in tabs {
                // A transfer may have blocked a while: apply what the browser said meanwhile
                // (which tab is shown) before reading events that came after it.
                if !self.commands() {
                    return Ok(());
                }
                for _ in 0..EVENTS_PER_TURN {
                    let Some(n) = self.nested.iter_mut().find(|n| n.tab == tab) else {
                        break;
                    };
                    match n.ep.next_event() {
                        Ok(Some(event)) => self.nested_event(tab, event)?,
                        Ok(None) => break,
                        Err(e) => {
                            self.fail(tab, &e);
                            break;
                        }
                    }
                }
                self.drop_failed();
            }

            // Timers.
            let now = Instant::now();
            if self.primary_due.is_some_and(|due| due <= now) {
                self.primary_due = None;
                self.refresh_primary()?;
            }
            self.evaluate_pending(Instant::now())?;
            // A round trip on one connection may have read events of it into x11rb's queue,
            // where polling its descriptor would not see them.
            more |= self.outer.events_waiting()?;
            for n in &mut self.nested {
                match n.ep.events_waiting() {
                    Ok(waiting) => more |= waiting,
                    Err(e) => self.failed.push((n.tab, e.to_string())),
                }
            }
            self.drop_failed();
            let mut next = self.timers(Instant::now());
            if more {
                next = Some(Instant::now());
            }
            self.wait(next)?;
        }
    }

    /// Waits for any connection or the wake pipe, until `until` at most.
    fn wait(&self, until: Option<Instant>) -> Result<(), ConnectionError> {
        let timeout = match until {
            None => PollTimeout::NONE,
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![
            PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.outer.conn.stream().as_fd(), PollFlags::POLLIN),
        ];
        for n in &self.nested {
            fds.push(PollFd::new(n.ep.conn.stream().as_fd(), PollFlags::POLLIN));
        }
        match nix::poll::poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
            Err(e) => Err(ConnectionError::IoError(e.into())),
        }
    }

    /// The earliest instant something is due.
    fn timers(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.primary_due);
        consider(
            self.pending
                .iter()
                .map(|p| p.asked + policy::REQUEST_GRACE)
                .min(),
        );
        consider(self.connecting.iter().map(|c| c.next).min());
        consider(self.outer.expire_outgoing(now));
        for n in &mut self.nested {
            consider(n.ep.expire_outgoing(now));
        }
        next
    }

    /// Applies the browser's commands; returns false to stop.
    fn commands(&mut self) -> bool {
        while let Ok(command) = self.commands.try_recv() {
            if !self.command(command) {
                return false;
            }
        }
        true
    }

    /// Returns false to stop.
    fn command(&mut self, command: Command) -> bool {
        match command {
            Command::Add(tab, address, host) => {
                self.hosts.insert(tab, host);
                self.connecting.retain(|c| c.tab != tab);
                self.nested.retain(|n| n.tab != tab);
                let now = Instant::now();
                self.connecting.push(Connecting {
                    tab,
                    address,
                    until: now + CONNECT_PATIENCE,
                    next: now,
                });
            }
            Command::Remove(tab) => {
                self.hosts.remove(&tab);
                self.connecting.retain(|c| c.tab != tab);
                self.nested.retain(|n| n.tab != tab);
                self.pending.retain(|p| p.tab != tab);
            }
            Command::Active(tab) => self.active = tab,
            Command::Stop => return false,
        }
        true
    }

    fn try_connects(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.connecting.len() {
            if self.connecting[i].next > now {
                i += 1;
                continue;
            }
            let c = &self.connecting[i];
            match connect_nested(&c.address) {
                Ok(ep) => {
                    let c = self.connecting.swap_remove(i);
                    self.nested.push(Nested { tab: c.tab, ep });
                }
                Err(e) if now >= c.until => {
                    log::warn!(
                        "no clipboard sharing for tab {}: cannot connect to its display at {}: {e}",
                        c.tab,
                        c.address.socket.display()
                    );
                    self.connecting.swap_remove(i);
                }
                Err(_) => {
                    self.connecting[i].next = now + CONNECT_RETRY;
                    i += 1;
                }
            }
        }
    }

    fn fail(&mut self, tab: TabId, error: &dyn std::fmt::Display) {
        self.failed.push((tab, error.to_string()));
    }

    fn drop_failed(&mut self) {
        for (tab, error) in std::mem::take(&mut self.failed) {
            if self.nested.iter().any(|n| n.tab == tab) {
                log::warn!("clipboard sharing for tab {tab} stopped: its display failed: {error}");
                self.nested.retain(|n| n.tab != tab);
                self.pending.retain(|p| p.tab != tab);
            }
        }
    }

    fn nested_ep(&mut self, tab: TabId) -> Option<&mut Endpoint> {
        if self.failed.iter().any(|(t, _)| *t == tab) {
            return None;
        }
        self.nested
            .iter_mut()
            .find(|n| n.tab == tab)
            .map(|n| &mut n.ep)
    }

    fn outer_event(&mut self, event: Event) -> Result<(), ConnectionError> {
        match event {
            Event::XinputRawKeyPress(e) => {
                let keysym = self.keymap.keysym(e.detail);
                self.modifiers.key(e.detail, keysym, true);
                let mods = self.modifiers.modifiers(|c| self.keymap.keysym(c));
                if let Some(selection) = policy::paste_gesture_for_key(keysym, mods) {
                    if let Some(tab) = self.active {
                        if self.focus_in_tab(tab)? {
                            self.gesture(tab, selection)?;
                        }
                    }
                }
            }
            Event::XinputRawKeyRelease(e) => {
                let keysym = self.keymap.keysym(e.detail);
                self.modifiers.key(e.detail, keysym, false);
            }
            Event::XinputRawButtonPress(e) => {
                // The wheel arrives as buttons 4 to 7; scrolling a page should not take focus.
                if (4..=7).contains(&e.detail) {
                    return Ok(());
                }
                if let Some(tab) = self.tab_under_pointer()? {
                    (self.on_event)(BrokerEvent::PagePressed { tab });
                    if policy::paste_gesture_for_button(e.detail).is_some()
                        && self.active == Some(tab)
                    {
                        self.gesture(tab, Selection::Primary)?;
                    }
                }
            }
            Event::MappingNotify(e) if e.request == Mapping::KEYBOARD => {
                self.keymap = Keymap::load(&self.outer).map_err(fatal)?;
            }
            Event::XfixesSelectionNotify(e) => {
                let Some(selection) = self.outer.selection_of(e.selection) else {
                    return Ok(());
                };
                if e.owner == self.outer.window {
                    self.owned_at.insert(selection, e.selection_timestamp);
                    return Ok(());
                }
                // A notice older than the broker's own taking of the selection is stale.
                if self.still_ours(selection)? {
                    return Ok(());
                }
                // The user's selection moved elsewhere: what pages hold is stale, and the next
                // paste into any page must go through the broker to the new owner.
                self.published.remove(&selection);
                self.paste = None;
                let tabs: Vec<TabId> = self.nested.iter().map(|n| n.tab).collect();
                for tab in tabs {
                    if let Some(ep) = self.nested_ep(tab) {
                        if let Err(err) = ep.take(selection) {
                            self.fail(tab, &err);
                        }
                    }
                }
            }
            Event::SelectionClear(e) => {
                if let Some(selection) = self.outer.selection_of(e.selection) {
                    if !self.still_ours(selection)? {
                        self.published.remove(&selection);
                    }
                }
            }
            Event::SelectionRequest(req) => self.serve_outer(&req)?,
            event @ Event::PropertyNotify(_) => {
                self.outer.incr_progress(&event)?;
            }
            Event::Error(e) => log::debug!("clipboard: X error on the outer display: {e:?}"),
            _ => {}
        }
        Ok(())
    }

    fn nested_event(&mut self, tab: TabId, event: Event) -> Result<(), ConnectionError> {
        let may_publish = policy::may_publish(tab, self.active);
        let pending_full = self.pending.len() >= MAX_PENDING;
        let Some(ep) = self.nested_ep(tab) else {
            return Ok(());
        };
        match event {
            Event::XfixesSelectionNotify(e) => {
                let Some(selection) = ep.selection_of(e.selection) else {
                    return Ok(());
                };
                if e.owner == ep.window {
                    return Ok(());
                }
                if e.owner == NONE {
                    // The page let go: hold the selection again so pastes come to the broker.
                    if let Err(err) = ep.take(selection) {
                        self.fail(tab, &err);
                    }
                    return Ok(());
                }
                if !may_publish {
                    return Ok(());
                }
                match selection {
                    Selection::Clipboard => {
                        let content = match ep.fetch_content(Selection::Clipboard) {
                            Ok(c) => c,
                            Err(err) => {
                                self.fail(tab, &err);
                                return Ok(());
                            }
                        };
                        if !content.is_empty() {
                            self.publish(Selection::Clipboard, tab, content)?;
                        }
                    }
                    Selection::Primary => {
                        let kept = match self.published.remove(&Selection::Primary) {
                            Some(p) if p.tab == tab => p.content,
                            _ => Content::default(),
                        };
                        self.publish(Selection::Primary, tab, kept)?;
                        self.primary_due = Some(Instant::now() + PRIMARY_SETTLE);
                    }
                }
            }
            Event::SelectionRequest(req) => {
                let Some(selection) = ep.selection_of(req.selection) else {
                    if let Err(err) = ep.answer(&req, Reply::Refuse) {
                        self.fail(tab, &err);
                    }
                    return Ok(());
                };
                if pending_full {
                    if let Err(err) = ep.answer(&req, Reply::Refuse) {
                        self.fail(tab, &err);
                    }
                    return Ok(());
                }
                self.pending.push(Pending {
                    tab,
                    req,
                    selection,
                    asked: Instant::now(),
                });
                self.evaluate_pending(Instant::now())?;
            }
            event @ Event::PropertyNotify(_) => {
                if let Err(err) = ep.incr_progress(&event) {
                    self.fail(tab, &err);
                }
            }
            Event::Error(e) => log::debug!("clipboard: X error on tab {tab}'s display: {e:?}"),
            _ => {}
        }
        Ok(())
    }

    /// Whether the broker owns `selection` on the outer display now, whatever older events say.
    fn still_ours(&self, selection: Selection) -> Result<bool, ConnectionError> {
        match self.outer.owner(selection) {
            Ok(owner) => Ok(owner == self.outer.window),
            Err(e) => nonfatal(e, false),
        }
    }

    /// Holds `content` as the user's `selection` on the outer display.
    fn publish(
        &mut self,
        selection: Selection,
        tab: TabId,
        content: Content,
    ) -> Result<(), ConnectionError> {
        self.published.insert(selection, Published { tab, content });
        self.paste = None;
        self.outer.take(selection)?;
        // Other pages' own copies are now stale: their next paste must come to the broker.
        let others: Vec<TabId> = self
            .nested
            .iter()
            .map(|n| n.tab)
            .filter(|t| *t != tab)
            .collect();
        for other in others {
            if let Some(ep) = self.nested_ep(other) {
                if let Err(err) = ep.take(selection) {
                    self.fail(other, &err);
                }
            }
        }
        Ok(())
    }

    /// Reads the page's PRIMARY again if that page is still shown and still owns it.
    fn refresh_primary(&mut self) -> Result<(), ConnectionError> {
        let Some(tab) = self.published.get(&Selection::Primary).map(|p| p.tab) else {
            return Ok(());
        };
        if !policy::may_publish(tab, self.active) {
            return Ok(());
        }
        let Some(ep) = self.nested_ep(tab) else {
            return Ok(());
        };
        let fetched = match ep.owner(Selection::Primary) {
            Ok(owner) if owner != NONE && owner != ep.window => {
                ep.fetch_content(Selection::Primary)
            }
            Ok(_) | Err(ReplyError::X11Error(_)) => return Ok(()),
            Err(ReplyError::ConnectionError(e)) => Err(e),
        };
        match fetched {
            Ok(content) if !content.is_empty() => {
                if let Some(p) = self.published.get_mut(&Selection::Primary) {
                    p.content = content;
                }
            }
            Ok(_) => {}
            Err(err) => self.fail(tab, &err),
        }
        Ok(())
    }

    /// Serves a request for a selection the broker holds on the outer display for a page.
    fn serve_outer(&mut self, req: &SelectionRequestEvent) -> Result<(), ConnectionError> {
        let selection = self.outer.selection_of(req.selection);
        if selection == Some(Selection::Primary) {
            self.refresh_primary()?;
        }
        let published = selection.and_then(|s| self.published.get(&s));
        let Some(published) = published else {
            return self.outer.answer(req, Reply::Refuse);
        };
        let owned_at = selection
            .and_then(|s| self.owned_at.get(&s))
            .copied()
            .unwrap_or(0);
        let kinds = published.content.kinds();
        let reply = match self.outer.target(req.target) {
            Target::Targets => Reply::Targets(&kinds),
            Target::Timestamp => Reply::Timestamp(owned_at),
            Target::Data(kind, _) => match published.content.get(kind) {
                Some(data) => Reply::Data(data),
                None => Reply::Refuse,
            },
            // MULTIPLE is refused cleanly; requestors then ask for each target alone.
            Target::Multiple | Target::Other => Reply::Refuse,
        };
        // `published` borrows self; the outer endpoint is a separate field.
        let outer = &mut self.outer;
        outer.answer(req, reply)
    }

    /// A paste gesture into `tab` was seen on the outer display.
    fn gesture(&mut self, tab: TabId, selection: Selection) -> Result<(), ConnectionError> {
        self.gestures.insert(
            selection,
            Gesture {
                tab,
                selection,
                at: Instant::now(),
            },
        );
        self.evaluate_pending(Instant::now())
    }

    /// Serves, refuses or keeps each page request waiting for a gesture.
    fn evaluate_pending(&mut self, now: Instant) -> Result<(), ConnectionError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        for p in std::mem::take(&mut self.pending) {
            let gesture = self.gestures.get(&p.selection).copied();
            match policy::decide_read(p.tab, p.selection, self.active, gesture, p.asked, now) {
                ReadDecision::Wait(_) => self.pending.push(p),
                ReadDecision::Refuse => {
                    if let Some(ep) = self.nested_ep(p.tab) {
                        if let Err(err) = ep.answer(&p.req, Reply::Refuse) {
                            self.fail(p.tab, &err);
                        }
                    }
                }
                ReadDecision::Allow(g) => self.serve_paste(&p, g)?,
            }
        }
        Ok(())
    }

    /// Answers a page's allowed read with the user's selection, read from its outer owner now.
    fn serve_paste(&mut self, p: &Pending, gesture: Gesture) -> Result<(), ConnectionError> {
        let Some(target) = self.nested_ep(p.tab).map(|ep| ep.target(p.req.target)) else {
            return Ok(());
        };
        let reply_data: Result<ReplyData, ConnectionError> = match self.published.get(&p.selection)
        {
            // The user's selection is a page's, held here: no need to ask ourselves.
            Some(published) => Ok(reply_from_content(target, &published.content)),
            None => self.read_outer(p.selection, gesture, target),
        };
        let data = reply_data?;
        let Some(ep) = self.nested_ep(p.tab) else {
            return Ok(());
        };
        let reply = match &data {
            ReplyData::Refuse => Reply::Refuse,
            ReplyData::Targets(kinds) => Reply::Targets(kinds),
            ReplyData::Data(bytes) => Reply::Data(bytes),
        };
        if let Err(err) = ep.answer(&p.req, reply) {
            self.fail(p.tab, &err);
        }
        Ok(())
    }

    /// Reads what a paste asks for from the user's selection on the outer display.
    fn read_outer(
        &mut self,
        selection: Selection,
        gesture: Gesture,
        target: Target,
    ) -> Result<ReplyData, ConnectionError> {
        let owner = match self.outer.owner(selection) {
            Ok(owner) => owner,
            Err(e) => return Err(fatal(e)),
        };
        if owner == NONE || owner == self.outer.window {
            return Ok(ReplyData::Refuse);
        }
        if !matches!(&self.paste, Some(c) if c.gesture == gesture) {
            self.paste = Some(PasteCache {
                gesture,
                kinds: None,
                content: Content::default(),
                tried: Vec::new(),
            });
        }
        let deadline = Instant::now() + FETCH_TIME;
        let Some(cache) = self.paste.as_mut() else {
            return Ok(ReplyData::Refuse);
        };
        if cache.kinds.is_none() {
            cache.kinds = Some(match self.outer.fetch_kinds(selection, deadline) {
                Ok(kinds) => kinds,
                Err(FetchError::Unavailable) => Vec::new(),
                Err(FetchError::Connection(e)) => return Err(e),
            });
        }
        let kinds = cache.kinds.clone().unwrap_or_default();
        if let Target::Data(kind, _) = target {
            if kinds.contains(&kind) && !cache.tried.contains(&kind) {
                cache.tried.push(kind);
                let budget = MAX_CONTENT.saturating_sub(cache.content.len());
                match self.outer.fetch_kind(selection, kind, budget, deadline) {
                    Ok(data) => cache.content.set(kind, data),
                    Err(FetchError::Unavailable) => {}
                    Err(FetchError::Connection(e)) => return Err(e),
                }
            }
        }
        if matches!(target, Target::Targets) {
            // TARGETS lists what the owner offers, fetched or not.
            return Ok(ReplyData::Targets(kinds));
        }
        Ok(reply_from_content(target, &cache.content))
    }

    /// Whether the outer input focus is in `tab`'s host window (Xephyr's window is its child).
    fn focus_in_tab(&self, tab: TabId) -> Result<bool, ConnectionError> {
        let Some(&host) = self.hosts.get(&tab) else {
            return Ok(false);
        };
        let focus = match self.outer.conn.get_input_focus()?.reply() {
            Ok(r) => r.focus,
            Err(e) => return nonfatal(e, false),
        };
        if focus == POINTER_ROOT {
            return Ok(self.pointer_path()?.contains(&host));
        }
        let mut window = focus;
        for _ in 0..MAX_DEPTH {
            if window == host {
                return Ok(true);
            }
            if window == NONE || window == self.outer.root {
                return Ok(false);
            }
            window = match self.outer.conn.query_tree(window)?.reply() {
                Ok(r) => r.parent,
                Err(e) => return nonfatal(e, false),
            };
        }
        Ok(false)
    }

    /// The windows under the pointer, from the root's child down to the deepest.
    fn pointer_path(&self) -> Result<Vec<Window>, ConnectionError> {
        let mut path = Vec::new();
        let mut window = self.outer.root;
        for _ in 0..MAX_DEPTH {
            let reply = match self.outer.conn.query_pointer(window)?.reply() {
                Ok(r) => r,
                Err(e) => return nonfatal(e, path),
            };
            if !reply.same_screen || reply.child == NONE {
                break;
            }
            path.push(reply.child);
            window = reply.child;
        }
        Ok(path)
    }

    fn tab_under_pointer(&self) -> Result<Option<TabId>, ConnectionError> {
        if self.hosts.is_empty() {
            return Ok(None);
        }
        let path = self.pointer_path()?;
        Ok(self
            .hosts
            .iter()
            .find(|(_, host)| path.contains(host))
            .map(|(tab, _)| *tab))
    }
}

/// An owned reply for a page, built before the nested endpoint is borrowed to send it.
enum ReplyData {
    Refuse,
    Targets(Vec<Kind>),
    Data(Vec<u8>),
}

fn reply_from_content(target: Target, content: &Content) -> ReplyData {
    match target {
        Target::Targets => ReplyData::Targets(content.kinds()),
        Target::Data(kind, _) => match content.get(kind) {
            Some(data) => ReplyData::Data(data.to_vec()),
            None => ReplyData::Refuse,
        },
        Target::Timestamp | Target::Multiple | Target::Other => ReplyData::Refuse,
    }
}

/// A reply error on the outer display: only a broken connection is fatal.
fn fatal(e: ReplyError) -> ConnectionError {
    match e {
        ReplyError::ConnectionError(e) => e,
        ReplyError::X11Error(e) => {
            log::debug!("clipboard: X error on the outer display: {e:?}");
            ConnectionError::UnknownError
        }
    }
}

fn nonfatal<T>(e: ReplyError, fallback: T) -> Result<T, ConnectionError> {
    match e {
        ReplyError::ConnectionError(e) => Err(e),
        // The window went away meanwhile.
        ReplyError::X11Error(_) => Ok(fallback),
    }
}

/// Asks for raw key and button events from every master device; false without XInput 2.2.
/// 2.2 because raw events then reach the root even while another client grabs the device.
fn select_raw_input(ep: &Endpoint) -> Result<bool, ReplyError> {
    if ep
        .conn
        .extension_information(xinput::X11_EXTENSION_NAME)?
        .is_none()
    {
        return Ok(false);
    }
    let version = ep.conn.xinput_xi_query_version(2, 2)?.reply()?;
    if (version.major_version, version.minor_version) < (2, 2) {
        return Ok(false);
    }
    let mask =
        XIEventMask::RAW_KEY_PRESS | XIEventMask::RAW_KEY_RELEASE | XIEventMask::RAW_BUTTON_PRESS;
    ep.conn.xinput_xi_select_events(
        ep.root,
        &[xinput::EventMask {
            deviceid: 1, // XIAllMasterDevices
            mask: vec![mask],
        }],
    )?;
    ep.conn.flush()?;
    Ok(true)
}

/// Connects to a nested display, watches its selections and holds the ones no page holds.
fn connect_nested(address: &NestedAddress) -> Result<Endpoint, String> {
    let conn = stream::connect_unix(&address.socket, &address.cookie, NESTED_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let ep = Endpoint::new(conn, 0).map_err(|e| e.to_string())?;
    watch_selections(&ep).map_err(|e| e.to_string())?;
    for selection in [Selection::Clipboard, Selection::Primary] {
        if ep.owner(selection).map_err(|e| e.to_string())? == NONE {
            ep.take(selection).map_err(|e| e.to_string())?;
        }
    }
    Ok(ep)
}
