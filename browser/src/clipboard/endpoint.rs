//! One X connection as the broker uses it: a window of its own, reading a selection from its
//! owner (INCR included) and answering requests for a selection it owns (INCR included).
//!
//! Every wait here has a deadline; events that arrive while waiting for something else are kept
//! in order for the main loop.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::errors::{ConnectionError, ReplyError, ReplyOrIdError};
use x11rb::protocol::xproto::{
    Atom, AtomEnum, ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux, EventMask,
    PropMode, Property, SelectionNotifyEvent, SelectionRequestEvent, Timestamp, Window,
    WindowClass, SELECTION_NOTIFY_EVENT,
};
use x11rb::protocol::Event;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::CURRENT_TIME;
use x11rb::NONE;

use super::content::{self, Content, Kind, TextEncoding, MAX_CONTENT};
use super::policy::Selection;
use super::stream::BoundedConnection;

x11rb::atom_manager! {
    pub Atoms: AtomsCookie {
        CLIPBOARD,
        PRIMARY,
        TARGETS,
        TIMESTAMP,
        MULTIPLE,
        INCR,
        ATOM,
        INTEGER,
        UTF8_STRING,
        STRING,
        TEXT,
        TEXT_PLAIN_UTF8: b"text/plain;charset=utf-8",
        TEXT_PLAIN: b"text/plain",
        TEXT_HTML: b"text/html",
        IMAGE_PNG: b"image/png",
        WARREN_SELECTION,
    }
}

/// How long a whole read of one selection may take, all formats and INCR chunks included.
pub const FETCH_TIME: Duration = Duration::from_secs(2);
/// How long a requestor may take to consume one INCR chunk the broker sends.
const INCR_STEP_TIME: Duration = Duration::from_secs(2);
/// Events kept while waiting for a transfer; beyond this the oldest are dropped, so a client
/// flooding its server cannot grow the broker's memory.
const MAX_DEFERRED: usize = 4096;
/// Concurrent INCR sends per connection.
const MAX_OUTGOING: usize = 16;

/// What a requested target asks for, resolved against this connection's atoms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Targets,
    Timestamp,
    Multiple,
    Data(Kind, TextEncoding),
    Other,
}

/// The answer to a SelectionRequest.
pub enum Reply<'a> {
    Refuse,
    Targets(&'a [Kind]),
    Timestamp(Timestamp),
    Data(&'a [u8]),
}

/// A chunked send to a requestor that is consuming it.
struct OutgoingIncr {
    requestor: Window,
    property: Atom,
    type_: Atom,
    data: Vec<u8>,
    sent: usize,
    /// Set once the zero-length terminator is written.
    finished: bool,
    deadline: Instant,
}

pub struct Endpoint {
    pub conn: BoundedConnection,
    pub root: Window,
    pub window: Window,
    pub atoms: Atoms,
    deferred: VecDeque<Event>,
    outgoing: Vec<OutgoingIncr>,
    /// Data larger than this is sent with INCR.
    chunk: usize,
}

/// The connection failed (it is dropped), or the transfer did.
pub enum FetchError {
    Connection(ConnectionError),
    Unavailable,
}

impl From<ConnectionError> for FetchError {
    fn from(e: ConnectionError) -> Self {
        FetchError::Connection(e)
    }
}

impl From<ReplyError> for FetchError {
    fn from(e: ReplyError) -> Self {
        match e {
            ReplyError::ConnectionError(e) => FetchError::Connection(e),
            ReplyError::X11Error(_) => FetchError::Unavailable,
        }
    }
}

impl Endpoint {
    /// Sets up the broker's window on the connection's first screen.
    pub fn new(conn: BoundedConnection, screen: usize) -> Result<Endpoint, ReplyOrIdError> {
        let root = conn.setup().roots.get(screen).map(|s| s.root).ok_or(
            ReplyOrIdError::ConnectionError(ConnectionError::UnknownError),
        )?;
        let atoms = Atoms::new(&conn)?.reply()?;
        let window = conn.generate_id()?;
        conn.create_window(
            0,
            window,
            root,
            -1,
            -1,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )?;
        // Keep requests comfortably below the server's limit; an INCR chunk is one request.
        let chunk = (conn.maximum_request_bytes() / 4).clamp(4096, 256 * 1024);
        conn.flush()?;
        Ok(Endpoint {
            conn,
            root,
            window,
            atoms,
            deferred: VecDeque::new(),
            outgoing: Vec::new(),
            chunk,
        })
    }

    pub fn selection_atom(&self, selection: Selection) -> Atom {
        match selection {
            Selection::Clipboard => self.atoms.CLIPBOARD,
            Selection::Primary => self.atoms.PRIMARY,
        }
    }

    pub fn selection_of(&self, atom: Atom) -> Option<Selection> {
        if atom == self.atoms.CLIPBOARD {
            Some(Selection::Clipboard)
        } else if atom == self.atoms.PRIMARY {
            Some(Selection::Primary)
        } else {
            None
        }
    }

    /// The next event, kept ones first. Never blocks.
    pub fn next_event(&mut self) -> Result<Option<Event>, ConnectionError> {
        if let Some(e) = self.deferred.pop_front() {
            return Ok(Some(e));
        }
        self.conn.poll_for_event()
    }

    /// Whether events are waiting to be handled, read from the socket or not.
    pub fn events_waiting(&mut self) -> Result<bool, ConnectionError> {
        if let Some(event) = self.conn.poll_for_event()? {
            self.defer(event);
        }
        Ok(!self.deferred.is_empty())
    }

    fn defer(&mut self, event: Event) {
        if self.deferred.len() >= MAX_DEFERRED {
            self.deferred.pop_front();
        }
        self.deferred.push_back(event);
    }

    /// Waits until `deadline` for an event `matches` accepts, keeping the others.
    fn wait_for(
        &mut self,
        deadline: Instant,
        mut matches: impl FnMut(&Event) -> bool,
    ) -> Result<Option<Event>, ConnectionError> {
        self.conn.flush()?;
        loop {
            while let Some(event) = self.conn.poll_for_event()? {
                if matches(&event) {
                    return Ok(Some(event));
                }
                self.defer(event);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let timeout = PollTimeout::try_from(deadline - now + Duration::from_millis(1))
                .unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.conn.stream().as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(ConnectionError::IoError(e.into())),
            }
        }
    }

    /// Who owns `selection` on this display.
    pub fn owner(&self, selection: Selection) -> Result<Window, ReplyError> {
        Ok(self
            .conn
            .get_selection_owner(self.selection_atom(selection))?
            .reply()?
            .owner)
    }

    pub fn take(&self, selection: Selection) -> Result<(), ConnectionError> {
        self.conn
            .set_selection_owner(self.window, self.selection_atom(selection), CURRENT_TIME)?;
        self.conn.flush()
    }

    /// Reads one target of `selection`, at most `budget` bytes, by `deadline`.
    pub fn fetch_target(
        &mut self,
        selection: Selection,
        target: Atom,
        budget: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, FetchError> {
        let selection = self.selection_atom(selection);
        let (window, property) = (self.window, self.atoms.WARREN_SELECTION);
        // Forget answers to earlier, abandoned reads so they cannot pass for this one.
        self.deferred.retain(|e| {
            !matches!(e, Event::SelectionNotify(n) if n.requestor == window)
                && !matches!(e, Event::PropertyNotify(p) if p.window == window && p.atom == property)
        });
        self.conn.delete_property(window, property)?;
        self.conn
            .convert_selection(window, selection, target, property, CURRENT_TIME)?;
        let notify = self.wait_for(deadline, |e| {
            matches!(e, Event::SelectionNotify(n)
                if n.requestor == window && n.selection == selection && n.target == target)
        })?;
        let Some(Event::SelectionNotify(notify)) = notify else {
            return Err(FetchError::Unavailable);
        };
        if notify.property == NONE {
            return Err(FetchError::Unavailable);
        }
        let property = notify.property;
        let words = u32::try_from(budget / 4 + 1).unwrap_or(u32::MAX);
        let reply = self
            .conn
            .get_property(true, window, property, AtomEnum::ANY, 0, words)?
            .reply()?;
        if reply.type_ != self.atoms.INCR {
            if reply.bytes_after > 0 || reply.value.len() > budget {
                return Err(FetchError::Unavailable);
            }
            return Ok(reply.value);
        }
        // INCR: each deletion asks the owner for the next chunk; an empty chunk ends it.
        self.conn.flush()?;
        let mut data = Vec::new();
        loop {
            let event = self.wait_for(deadline, |e| {
                matches!(e, Event::PropertyNotify(p)
                    if p.window == window && p.atom == property && p.state == Property::NEW_VALUE)
            })?;
            if event.is_none() {
                return Err(FetchError::Unavailable);
            }
            let room = budget.saturating_sub(data.len());
            let words = u32::try_from(room / 4 + 1).unwrap_or(u32::MAX);
            let chunk = self
                .conn
                .get_property(true, window, property, AtomEnum::ANY, 0, words)?
                .reply()?;
            self.conn.flush()?;
            if chunk.value.is_empty() {
                return Ok(data);
            }
            if chunk.bytes_after > 0 || chunk.value.len() > room {
                return Err(FetchError::Unavailable);
            }
            data.extend_from_slice(&chunk.value);
        }
    }

    /// The formats `selection`'s owner offers, from its TARGETS.
    pub fn fetch_kinds(
        &mut self,
        selection: Selection,
        deadline: Instant,
    ) -> Result<Vec<Kind>, FetchError> {
        let targets = match self.fetch_target(selection, self.atoms.TARGETS, 64 * 1024, deadline) {
            Ok(bytes) => content::atoms_from_bytes(&bytes),
            // An owner without TARGETS may still have text.
            Err(FetchError::Unavailable) => return Ok(vec![Kind::Text]),
            Err(e) => return Err(e),
        };
        Ok(Kind::ALL
            .into_iter()
            .filter(|k| self.targets_for(*k).iter().any(|t| targets.contains(t)))
            .collect())
    }

    /// Targets to ask an owner for `kind`, best first.
    fn targets_for(&self, kind: Kind) -> Vec<Atom> {
        let a = &self.atoms;
        match kind {
            Kind::Text => vec![a.UTF8_STRING, a.TEXT_PLAIN_UTF8, a.STRING],
            Kind::Html => vec![a.TEXT_HTML],
            Kind::Png => vec![a.IMAGE_PNG],
        }
    }

    /// Reads `kind` from `selection`'s owner; text comes back as UTF-8.
    pub fn fetch_kind(
        &mut self,
        selection: Selection,
        kind: Kind,
        budget: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, FetchError> {
        for target in self.targets_for(kind) {
            match self.fetch_target(selection, target, budget, deadline) {
                Ok(data) if target == self.atoms.STRING => {
                    return Ok(content::latin1_to_utf8(&data))
                }
                Ok(data) => return Ok(data),
                Err(FetchError::Unavailable) if Instant::now() < deadline => continue,
                Err(e) => return Err(e),
            }
        }
        Err(FetchError::Unavailable)
    }

    /// Reads every format the broker carries from `selection`'s owner, within the size cap and
    /// [`FETCH_TIME`].
    pub fn fetch_content(&mut self, selection: Selection) -> Result<Content, ConnectionError> {
        let deadline = Instant::now() + FETCH_TIME;
        let mut content = Content::default();
        let kinds = match self.fetch_kinds(selection, deadline) {
            Ok(k) => k,
            Err(FetchError::Connection(e)) => return Err(e),
            Err(FetchError::Unavailable) => return Ok(content),
        };
        for kind in kinds {
            let budget = MAX_CONTENT.saturating_sub(content.len());
            match self.fetch_kind(selection, kind, budget, deadline) {
                Ok(data) => content.set(kind, data),
                Err(FetchError::Connection(e)) => return Err(e),
                Err(FetchError::Unavailable) => {}
            }
        }
        Ok(content)
    }

    /// What a requested target asks for.
    pub fn target(&self, atom: Atom) -> Target {
        let a = &self.atoms;
        match atom {
            t if t == a.TARGETS => Target::Targets,
            t if t == a.TIMESTAMP => Target::Timestamp,
            t if t == a.MULTIPLE => Target::Multiple,
            t if t == a.UTF8_STRING || t == a.TEXT_PLAIN_UTF8 || t == a.TEXT => {
                Target::Data(Kind::Text, TextEncoding::Utf8)
            }
            t if t == a.STRING || t == a.TEXT_PLAIN => {
                Target::Data(Kind::Text, TextEncoding::Latin1)
            }
            t if t == a.TEXT_HTML => Target::Data(Kind::Html, TextEncoding::Utf8),
            t if t == a.IMAGE_PNG => Target::Data(Kind::Png, TextEncoding::Utf8),
            _ => Target::Other,
        }
    }

    /// Answers a SelectionRequest. X errors (a requestor window that vanished) come back as
    /// error events and are ignored; only a connection failure is returned.
    pub fn answer(
        &mut self,
        req: &SelectionRequestEvent,
        reply: Reply<'_>,
    ) -> Result<(), ConnectionError> {
        // Obsolete clients pass no property: ICCCM says use the target's name.
        let property = if req.property == NONE {
            req.target
        } else {
            req.property
        };
        let a = &self.atoms;
        let stored = match reply {
            Reply::Refuse => false,
            Reply::Targets(kinds) => {
                let mut atoms = vec![a.TARGETS, a.TIMESTAMP];
                for kind in kinds {
                    match kind {
                        Kind::Text => atoms.extend([
                            a.UTF8_STRING,
                            a.TEXT_PLAIN_UTF8,
                            a.STRING,
                            a.TEXT,
                            a.TEXT_PLAIN,
                        ]),
                        Kind::Html => atoms.push(a.TEXT_HTML),
                        Kind::Png => atoms.push(a.IMAGE_PNG),
                    }
                }
                self.conn.change_property32(
                    PropMode::REPLACE,
                    req.requestor,
                    property,
                    a.ATOM,
                    &atoms,
                )?;
                true
            }
            Reply::Timestamp(time) => {
                self.conn.change_property32(
                    PropMode::REPLACE,
                    req.requestor,
                    property,
                    a.INTEGER,
                    &[time],
                )?;
                true
            }
            Reply::Data(bytes) => {
                let (type_, data) = match self.target(req.target) {
                    Target::Data(Kind::Text, TextEncoding::Latin1) => {
                        (a.STRING, content::utf8_to_latin1(bytes))
                    }
                    Target::Data(Kind::Text, TextEncoding::Utf8) => (a.UTF8_STRING, bytes.to_vec()),
                    _ => (req.target, bytes.to_vec()),
                };
                self.store(req.requestor, property, type_, data)?
            }
        };
        let notify = SelectionNotifyEvent {
            response_type: SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: req.time,
            requestor: req.requestor,
            selection: req.selection,
            target: req.target,
            property: if stored { property } else { NONE },
        };
        self.conn
            .send_event(false, req.requestor, EventMask::NO_EVENT, notify)?;
        self.conn.flush()
    }

    /// Writes data for a requestor, starting INCR when it is larger than one request should be.
    /// Returns whether anything was stored (too many INCR sends at once refuse).
    fn store(
        &mut self,
        requestor: Window,
        property: Atom,
        type_: Atom,
        data: Vec<u8>,
    ) -> Result<bool, ConnectionError> {
        if data.len() <= self.chunk {
            self.conn
                .change_property8(PropMode::REPLACE, requestor, property, type_, &data)?;
            return Ok(true);
        }
        if self.outgoing.len() >= MAX_OUTGOING {
            return Ok(false);
        }
        // The requestor deleting the property asks for the next chunk; watch its window for that.
        self.conn.change_window_attributes(
            requestor,
            &ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )?;
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.conn.change_property32(
            PropMode::REPLACE,
            requestor,
            property,
            self.atoms.INCR,
            &[len],
        )?;
        self.outgoing.push(OutgoingIncr {
            requestor,
            property,
            type_,
            data,
            sent: 0,
            finished: false,
            deadline: Instant::now() + INCR_STEP_TIME,
        });
        Ok(true)
    }

    /// Feeds INCR sends from a PropertyNotify; returns whether the event was one of theirs.
    pub fn incr_progress(&mut self, event: &Event) -> Result<bool, ConnectionError> {
        let Event::PropertyNotify(p) = event else {
            return Ok(false);
        };
        if p.state != Property::DELETE {
            return Ok(false);
        }
        let Some(i) = self
            .outgoing
            .iter()
            .position(|o| o.requestor == p.window && o.property == p.atom)
        else {
            return Ok(false);
        };
        let out = &mut self.outgoing[i];
        if out.finished {
            self.outgoing.swap_remove(i);
            return Ok(true);
        }
        let end = (out.sent + self.chunk).min(out.data.len());
        let piece = &out.data[out.sent..end];
        self.conn.change_property8(
            PropMode::REPLACE,
            out.requestor,
            out.property,
            out.type_,
            piece,
        )?;
        out.finished = piece.is_empty();
        out.sent = end;
        out.deadline = Instant::now() + INCR_STEP_TIME;
        self.conn.flush()?;
        Ok(true)
    }

    /// Abandons INCR sends whose requestor stopped reading; returns the earliest pending deadline.
    pub fn expire_outgoing(&mut self, now: Instant) -> Option<Instant> {
        self.outgoing.retain(|o| o.deadline > now);
        self.outgoing.iter().map(|o| o.deadline).min()
    }
}
