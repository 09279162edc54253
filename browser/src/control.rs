//! The control socket: newline-delimited JSON requests on a 0600 Unix socket, answered by the UI thread within a deadline.
//!
//! `browser --control-socket PATH` serves the protocol of `docs/ARCHITECTURE.md` ("Control
//! protocol"). This module owns everything but the answers: creating the socket safely, the
//! accept thread, framing and validating requests, the reply deadline and the reply order. The UI
//! thread receives each valid request as a [`Request`] through the `deliver` callback and answers
//! on its `reply` channel.
//!
//! # Threads and what may block on what
//!
//! * One accept thread waits (poll) on the listening socket and on a wake pipe that
//!   [`ControlServer`]'s `Drop` closes.
//! * Each connection has a reader thread and a writer thread. The reader parses each line and
//!   calls `deliver` at once (so pipelined requests all reach the UI without waiting for earlier
//!   answers) and queues what the writer must wait for, at most [`MAX_PIPELINED`] requests ahead.
//!   The writer takes the queue in order, waits for each reply until that request's own deadline,
//!   and writes one line per request. So replies come in request order and each request is
//!   answered within the timeout of its arrival, however slow the requests before it.
//! * `deliver` runs on a reader thread and must not block (send into a channel and wake the event
//!   loop). The UI thread never waits for this module: it answers by a non-blocking send, and an
//!   answer to a client that is gone is dropped.
//!
//! # Socket creation
//!
//! The socket must never be reachable with looser permissions than 0600. `bind(2)` creates the
//! file with the process umask, and `fchmod` on a socket descriptor does not change the file, so
//! the socket is bound inside a fresh 0700 directory (mkdtemp) next to the target, chmod-ed to
//! 0600 there (nobody else can reach it yet), then moved into place with `rename(2)`, which is
//! atomic, keeps the inode the listener is bound to, and replaces a stale socket. The umask is
//! process-wide and other threads create files, so changing it is not an option.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::MsgFlags;
use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;
use warren_ipc::TabId;

use crate::url_input;

/// How long a request may wait for the UI's answer before it gets an error reply.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest request line, in bytes (without the newline). A longer line gets an error reply
/// and is skipped up to its newline without being buffered.
pub const MAX_LINE_LEN: usize = 1024 * 1024;

/// How many clients may be connected at once; one more gets an error reply and is closed.
pub const MAX_CONNECTIONS: usize = 32;

/// How many requests of one connection may wait for their replies at once; a client that sends
/// more is not read from until replies have been written.
pub const MAX_PIPELINED: usize = 64;

/// How long a write to a client may block (a client that never reads) before it is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long dropping a [`ControlServer`] waits for replies already answered by the UI (the reply
/// to `shutdown`) to reach their clients.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// The longest path `bind(2)` takes (`sun_path` is 108 bytes, including the final NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Every command name the protocol knows, for error messages.
const COMMAND_NAMES: [&str; 18] = [
    "version",
    "tabs",
    "new_tab",
    "navigate",
    "activate",
    "close",
    "reload",
    "back",
    "forward",
    "eval",
    "task_manager",
    "end_process",
    "discard",
    "freeze",
    "unfreeze",
    "pin",
    "unpin",
    "shutdown",
];

/// One valid request, with its arguments checked. URLs have been normalised with
/// [`url_input::fixup`] (relative paths against the browser's current directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `version`: `{"name", "version", "pid"}`.
    Version,
    /// `tabs`: the tab list, in strip order.
    Tabs,
    /// `new_tab`: open a tab at `url` (none: the new-tab page), in the background if asked. The URL
    /// has already been through [`url_input::fixup`].
    NewTab {
        url: Option<String>,
        background: bool,
    },
    /// `navigate`: load `url` in the tab.
    Navigate { tab_id: TabId, url: String },
    /// `activate`: make the tab the active one.
    Activate(TabId),
    /// `close`: close the tab.
    Close(TabId),
    /// `reload`: reload the tab (a crashed tab gets a fresh renderer).
    Reload(TabId),
    /// `back`: go one step back in the tab's history.
    Back(TabId),
    /// `forward`: go one step forward in the tab's history.
    Forward(TabId),
    /// `eval`: evaluate the JavaScript expression `js` in the tab's page.
    Eval { tab_id: TabId, js: String },
    /// `task_manager`: every process of the browser with its cost.
    TaskManager,
    /// `end_process`: kill the tab's renderer tree; the tab becomes crashed.
    EndProcess(TabId),
    /// `discard`: drop the tab's renderer, keeping a snapshot.
    Discard(TabId),
    /// `freeze`: stop the tab's renderer tree.
    Freeze(TabId),
    /// `unfreeze`: continue a frozen tab's renderer tree.
    Unfreeze(TabId),
    /// `pin`: pin the tab.
    Pin(TabId),
    /// `unpin`: unpin the tab.
    Unpin(TabId),
    /// `shutdown`: answer, then exit cleanly.
    Shutdown,
}

impl Command {
    /// The protocol's name of this command (`new_tab`, `eval` ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Version => "version",
            Self::Tabs => "tabs",
            Self::NewTab { .. } => "new_tab",
            Self::Navigate { .. } => "navigate",
            Self::Activate(_) => "activate",
            Self::Close(_) => "close",
            Self::Reload(_) => "reload",
            Self::Back(_) => "back",
            Self::Forward(_) => "forward",
            Self::Eval { .. } => "eval",
            Self::TaskManager => "task_manager",
            Self::EndProcess(_) => "end_process",
            Self::Discard(_) => "discard",
            Self::Freeze(_) => "freeze",
            Self::Unfreeze(_) => "unfreeze",
            Self::Pin(_) => "pin",
            Self::Unpin(_) => "unpin",
            Self::Shutdown => "shutdown",
        }
    }
}

/// The UI's answer to a request: the `result` value, or the `error` message.
pub type Reply = Result<Value, String>;

/// One request handed to the UI. Answer exactly once on `reply`; dropping `reply` unanswered gives
/// the client an error reply at once.
#[derive(Debug)]
pub struct Request {
    pub command: Command,
    pub reply: Sender<Reply>,
}

/// Why a socket (the control socket, or a profile's instance socket) could not be created.
#[derive(Debug, Error)]
pub enum ControlError {
    /// `sun_path` is short, and Warren binds in a temporary directory next to the target first.
    #[error(
        "the socket path {} is too long for a Unix socket (Warren needs it under {} bytes); choose a shorter path",
        .0.display(),
        MAX_SOCKET_PATH - TMP_OVERHEAD
    )]
    PathTooLong(PathBuf),
    /// Someone answers on the socket already.
    #[error(
        "another process is already listening on {}; stop it or choose another path",
        .0.display()
    )]
    InUse(PathBuf),
    /// Something that is not a socket is in the way; it is never replaced.
    #[error("{} exists and is not a socket; remove it or choose another path", .0.display())]
    NotASocket(PathBuf),
    /// The path ends in `..` or `/`.
    #[error("{} does not name a file; give a path such as /tmp/warren.sock", .0.display())]
    NoFileName(PathBuf),
    /// A system call failed.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ControlError + 'a {
    move |source| ControlError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// The control socket server. Dropping it stops accepting connections, gives replies already
/// answered a moment (at most a second) to reach their clients, closes every connection and
/// removes the socket file (if it is still ours).
pub struct ControlServer {
    acceptor: Option<Acceptor>,
    shared: Arc<Shared>,
    path: PathBuf,
}

impl ControlServer {
    /// Creates the socket at `path` (mode 0600, replacing a stale socket nobody listens on) and
    /// starts serving; every valid request is passed to `deliver`, which must not block.
    pub fn start(
        path: &Path,
        deliver: Box<dyn Fn(Request) + Send + Sync>,
    ) -> Result<ControlServer, ControlError> {
        Self::start_with_timeout(path, deliver, REPLY_TIMEOUT)
    }

    /// [`ControlServer::start`] with another reply deadline than [`REPLY_TIMEOUT`] (for tests).
    pub fn start_with_timeout(
        path: &Path,
        deliver: Box<dyn Fn(Request) + Send + Sync>,
        timeout: Duration,
    ) -> Result<ControlServer, ControlError> {
        let socket = bind_private(path)?;
        let shared = Arc::new(Shared {
            deliver,
            timeout,
            conns: Mutex::new(Conns::default()),
            pending: Mutex::new(0),
            pending_done: Condvar::new(),
        });
        let for_accept = Arc::clone(&shared);
        let acceptor = Acceptor::spawn(socket, "control-accept", move |stream| {
            accept_connection(&for_accept, stream);
        })?;
        Ok(ControlServer {
            acceptor: Some(acceptor),
            shared,
            path: path.to_owned(),
        })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        // Stop accepting first, so no new connection appears while we close the others.
        drop(self.acceptor.take());
        let deadline = Instant::now() + DRAIN_GRACE;
        let mut pending = lock(&self.shared.pending);
        while *pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            pending = self
                .shared
                .pending_done
                .wait_timeout(pending, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        drop(pending);
        for stream in lock(&self.shared.conns).streams.values() {
            // The connection threads see EOF or a write error and end on their own.
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// State shared by the accept thread and the connection threads.
struct Shared {
    deliver: Box<dyn Fn(Request) + Send + Sync>,
    timeout: Duration,
    conns: Mutex<Conns>,
    /// Queued replies not yet written (or dropped), for the drain on `Drop`.
    pending: Mutex<usize>,
    pending_done: Condvar,
}

impl Shared {
    fn add_pending(&self) {
        *lock(&self.pending) += 1;
    }

    fn done_pending(&self) {
        let mut pending = lock(&self.pending);
        *pending = pending.saturating_sub(1);
        if *pending == 0 {
            self.pending_done.notify_all();
        }
    }
}

/// The live connections, so `Drop` can close them and the accept thread can count them.
#[derive(Default)]
struct Conns {
    next_id: u64,
    streams: HashMap<u64, UnixStream>,
}

/// Locks a mutex, ignoring poisoning: the data behind these mutexes stays consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Frees a connection's slot when both of its threads are done.
struct ConnSlot {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        lock(&self.shared.conns).streams.remove(&self.id);
    }
}

/// One reply the writer has to produce, in request order.
enum Queued {
    /// An error known at once (bad JSON, unknown command ...).
    Ready { id: Value, reply: Reply },
    /// A request handed to the UI; its answer arrives on `rx`.
    Waiting {
        id: Value,
        rx: Receiver<Reply>,
        deadline: Instant,
        what: &'static str,
    },
}

fn accept_connection(shared: &Arc<Shared>, stream: UnixStream) {
    let mut conns = lock(&shared.conns);
    if conns.streams.len() >= MAX_CONNECTIONS {
        drop(conns);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let line = reply_line(
            &Value::Null,
            &Err(format!(
                "too many control connections (at most {MAX_CONNECTIONS}); close one and retry"
            )),
        );
        let _ = send_all(&stream, &line);
        return;
    }
    let clones = (stream.try_clone(), stream.try_clone());
    let (Ok(registered), Ok(writer_stream)) = clones else {
        log::warn!(target: "control", "cannot duplicate a control connection's socket");
        return;
    };
    let id = conns.next_id;
    conns.next_id += 1;
    conns.streams.insert(id, registered);
    drop(conns);

    let slot = Arc::new(ConnSlot {
        shared: Arc::clone(shared),
        id,
    });
    let (tx, rx) = crossbeam_channel::bounded::<Queued>(MAX_PIPELINED);
    let writer_shared = Arc::clone(shared);
    let writer_slot = Arc::clone(&slot);
    let writer = thread::Builder::new()
        .name(format!("control-write-{id}"))
        .spawn(move || {
            write_replies(&writer_shared, &writer_stream, &rx);
            drop(writer_slot);
        });
    if let Err(e) = writer {
        log::warn!(target: "control", "cannot start a control connection thread: {e}");
        return;
    }
    let reader_shared = Arc::clone(shared);
    let reader = thread::Builder::new()
        .name(format!("control-read-{id}"))
        .spawn(move || {
            read_requests(&reader_shared, stream, &tx);
            drop(slot);
        });
    if let Err(e) = reader {
        // The writer ends when the queue's sender, moved into the failed closure, is dropped.
        log::warn!(target: "control", "cannot start a control connection thread: {e}");
    }
}

/// The reader thread: one request per line, delivered at once, its reply queued for the writer.
fn read_requests(shared: &Shared, stream: UnixStream, queue: &Sender<Queued>) {
    let mut lines = LineReader::new(stream, MAX_LINE_LEN);
    loop {
        let item = match lines.next_line() {
            Ok(LineEvent::Eof) | Err(_) => break,
            Ok(LineEvent::TooLong) => {
                shared.add_pending();
                Queued::Ready {
                    id: Value::Null,
                    reply: Err(format!(
                        "request line longer than {MAX_LINE_LEN} bytes; it was skipped"
                    )),
                }
            }
            Ok(LineEvent::Line(bytes)) => {
                let Some(item) = handle_line(shared, bytes) else {
                    continue;
                };
                item
            }
        };
        if let Err(crossbeam_channel::SendError(item)) = queue.send(item) {
            // The writer is gone (the client stopped reading); drop the request.
            drop(item);
            shared.done_pending();
            break;
        }
    }
}

/// Parses one line and hands a valid request to the UI. `None` for a blank line; every `Some` is
/// counted as pending until the writer is done with it.
fn handle_line(shared: &Shared, bytes: &[u8]) -> Option<Queued> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        shared.add_pending();
        return Some(Queued::Ready {
            id: Value::Null,
            reply: Err("request is not valid UTF-8".to_owned()),
        });
    };
    if text.trim().is_empty() {
        return None;
    }
    // Counted before `deliver`, so dropping the server never misses a delivered request.
    shared.add_pending();
    let (id, parsed) = parse_request(text);
    Some(match parsed {
        Err(e) => Queued::Ready { id, reply: Err(e) },
        Ok(command) => {
            let deadline = Instant::now() + shared.timeout;
            let what = command.name();
            let (tx, rx) = crossbeam_channel::bounded(1);
            (shared.deliver)(Request { command, reply: tx });
            Queued::Waiting {
                id,
                rx,
                deadline,
                what,
            }
        }
    })
}

/// The writer thread: one reply line per queued request, in order, each by its deadline.
fn write_replies(shared: &Shared, stream: &UnixStream, queue: &Receiver<Queued>) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut broken = false;
    for item in queue {
        if !broken {
            let (id, reply) = match item {
                Queued::Ready { id, reply } => (id, reply),
                Queued::Waiting {
                    id,
                    rx,
                    deadline,
                    what,
                } => {
                    let reply = match rx.recv_deadline(deadline) {
                        Ok(reply) => reply,
                        Err(RecvTimeoutError::Timeout) => Err(format!(
                            "timed out after {}: no answer to {what} in time ({})",
                            seconds(shared.timeout),
                            if what == "eval" { "the tab's renderer is stopped or busy" } else { "the browser is busy" }
                        )),
                        Err(RecvTimeoutError::Disconnected) => Err(format!(
                            "the browser dropped the {what} request without answering (it may be shutting down)"
                        )),
                    };
                    (id, reply)
                }
            };
            if send_all(stream, &reply_line(&id, &reply)).is_err() {
                // The client is gone or stuck: stop writing, and wake the reader so it ends.
                broken = true;
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
        shared.done_pending();
    }
}

/// "10 s", or "0.25 s" for the short timeouts tests use.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

#[derive(Serialize)]
struct OkLine<'a> {
    id: &'a Value,
    ok: bool,
    result: &'a Value,
}

#[derive(Serialize)]
struct ErrLine<'a> {
    id: &'a Value,
    ok: bool,
    error: &'a str,
}

/// One reply, serialised with the fields in protocol order and a final newline.
fn reply_line(id: &Value, reply: &Reply) -> Vec<u8> {
    let mut line = match reply {
        Ok(result) => serde_json::to_vec(&OkLine {
            id,
            ok: true,
            result,
        }),
        Err(error) => serde_json::to_vec(&ErrLine {
            id,
            ok: false,
            error,
        }),
    }
    // Serialising a `Value` with string keys can't fail.
    .unwrap_or_default();
    line.push(b'\n');
    line
}

/// Writes all of `buf` with `MSG_NOSIGNAL`, so a vanished client is an error, never a SIGPIPE.
pub(crate) fn send_all(stream: &UnixStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match nix::sys::socket::send(stream.as_raw_fd(), buf, MsgFlags::MSG_NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Parses one request line: the request's `id` (null if there is none or the line is not a JSON
/// object) and its command, or the error message for the reply.
pub fn parse_request(line: &str) -> (Value, Result<Command, String>) {
    let value: Value = match serde_json::from_str(line) {
        Ok(value) => value,
        Err(e) => return (Value::Null, Err(format!("invalid JSON: {e}"))),
    };
    let Value::Object(map) = value else {
        return (
            Value::Null,
            Err(r#"a request must be a JSON object such as {"id":1,"cmd":"version"}"#.to_owned()),
        );
    };
    let id = match map.get("id") {
        None | Some(Value::Null) => Value::Null,
        Some(id @ (Value::Number(_) | Value::String(_))) => id.clone(),
        Some(_) => {
            return (
                Value::Null,
                Err("id must be a number or a string".to_owned()),
            )
        }
    };
    (id, parse_command(&map))
}

fn parse_command(map: &Map<String, Value>) -> Result<Command, String> {
    let cmd = match map.get("cmd") {
        Some(Value::String(cmd)) => cmd.as_str(),
        Some(_) => return Err("cmd must be a string".to_owned()),
        None => return Err(r#"missing "cmd""#.to_owned()),
    };
    let tab = || tab_id(map);
    Ok(match cmd {
        "version" => Command::Version,
        "tabs" => Command::Tabs,
        "new_tab" => Command::NewTab {
            url: optional_str(map, "url")?.map(url_arg).transpose()?,
            background: optional_bool(map, "background")?.unwrap_or(false),
        },
        "navigate" => Command::Navigate {
            tab_id: tab()?,
            url: url_arg(required_str(map, "url")?)?,
        },
        "activate" => Command::Activate(tab()?),
        "close" => Command::Close(tab()?),
        "reload" => Command::Reload(tab()?),
        "back" => Command::Back(tab()?),
        "forward" => Command::Forward(tab()?),
        "eval" => Command::Eval {
            tab_id: tab()?,
            js: required_str(map, "js")?.to_owned(),
        },
        "task_manager" => Command::TaskManager,
        "end_process" => Command::EndProcess(tab()?),
        "discard" => Command::Discard(tab()?),
        "freeze" => Command::Freeze(tab()?),
        "unfreeze" => Command::Unfreeze(tab()?),
        "pin" => Command::Pin(tab()?),
        "unpin" => Command::Unpin(tab()?),
        "shutdown" => Command::Shutdown,
        other => {
            let shown: String = other.chars().take(40).collect();
            return Err(format!(
                "unknown command \"{shown}\"; known commands: {}",
                COMMAND_NAMES.join(", ")
            ));
        }
    })
}

fn tab_id(map: &Map<String, Value>) -> Result<TabId, String> {
    match map.get("tab_id") {
        None | Some(Value::Null) => Err(r#"missing "tab_id""#.to_owned()),
        Some(v) => v
            .as_u64()
            .map(TabId)
            .ok_or_else(|| "tab_id must be a non-negative integer".to_owned()),
    }
}

fn required_str<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    optional_str(map, key)?.ok_or_else(|| format!("missing \"{key}\""))
}

fn optional_str<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn optional_bool(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{key} must be true or false")),
    }
}

/// Normalises a `url` argument as the address bar would, against the browser's current directory.
fn url_arg(url: &str) -> Result<String, String> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    url_input::fixup(url, &cwd).map_err(|e| e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Pieces shared with the profile's instance socket and the `ctl` client.

/// What [`LineReader::next_line`] found.
pub(crate) enum LineEvent<'a> {
    /// A complete line, without its newline.
    Line(&'a [u8]),
    /// A line longer than the cap; the rest of it is skipped, unbuffered, by the next call.
    TooLong,
    /// The peer closed (or half-closed) its side; an unterminated last line is dropped.
    Eof,
}

/// Reads newline-terminated lines with a hard cap on what it buffers.
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    cap: usize,
    buf: Vec<u8>,
    skipping: bool,
}

impl<R: Read> LineReader<R> {
    pub(crate) fn new(inner: R, cap: usize) -> Self {
        LineReader {
            inner: BufReader::new(inner),
            cap,
            buf: Vec::new(),
            skipping: false,
        }
    }

    pub(crate) fn next_line(&mut self) -> io::Result<LineEvent<'_>> {
        self.buf.clear();
        loop {
            let available = match self.inner.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Ok(LineEvent::Eof);
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let chunk = &available[..newline.unwrap_or(available.len())];
            let consumed = newline.map_or(available.len(), |i| i + 1);
            if self.skipping {
                self.inner.consume(consumed);
                if newline.is_some() {
                    self.skipping = false;
                }
                continue;
            }
            if self.buf.len() + chunk.len() > self.cap {
                self.buf.clear();
                self.inner.consume(consumed);
                self.skipping = newline.is_none();
                return Ok(LineEvent::TooLong);
            }
            self.buf.extend_from_slice(chunk);
            self.inner.consume(consumed);
            if newline.is_some() {
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                return Ok(LineEvent::Line(&self.buf));
            }
        }
    }
}

/// A Unix socket bound with mode 0600, and the identity (device, inode) of its file. Dropping it
/// removes the file if it is still this socket.
pub(crate) struct PrivateSocket {
    listener: UnixListener,
    path: PathBuf,
    identity: (u64, u64),
}

/// Room the temporary bind location needs beyond the target's directory: "/.warren-XXXXXX/s".
const TMP_OVERHEAD: usize = "/.warren-XXXXXX/s".len();

/// Creates a listening socket at `path` with mode 0600 and no moment of looser permissions; a
/// stale socket (nobody listening) is replaced, a live one or a non-socket is an error.
pub(crate) fn bind_private(path: &Path) -> Result<PrivateSocket, ControlError> {
    if path.file_name().is_none() {
        return Err(ControlError::NoFileName(path.to_owned()));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if parent.as_os_str().len() + TMP_OVERHEAD > MAX_SOCKET_PATH
        || path.as_os_str().len() > MAX_SOCKET_PATH
    {
        return Err(ControlError::PathTooLong(path.to_owned()));
    }

    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(ControlError::NotASocket(path.to_owned()));
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => return Err(ControlError::InUse(path.to_owned())),
            // Nobody listens: a stale socket of a process that died. `rename` replaces it.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("check the existing socket", path)(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect", path)(e)),
    }

    let mut template = parent.as_os_str().to_owned();
    template.push("/.warren-XXXXXX");
    let tmp_dir = nix::unistd::mkdtemp(Path::new(&template))
        .map_err(|e| io_err("create a temporary directory in", &parent)(e.into()))?;
    let tmp_dir = TmpDir(tmp_dir);
    let tmp_sock = tmp_dir.0.join("s");

    let listener = UnixListener::bind(&tmp_sock).map_err(io_err("bind", &tmp_sock))?;
    fs::set_permissions(&tmp_sock, fs::Permissions::from_mode(0o600))
        .map_err(io_err("set the permissions of", &tmp_sock))?;
    let meta = fs::symlink_metadata(&tmp_sock).map_err(io_err("inspect", &tmp_sock))?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("configure", &tmp_sock))?;
    // Atomic: the path never lacks a socket, nor shows one with other permissions; a stale
    // socket is replaced. The listener stays bound to the same inode under its new name.
    fs::rename(&tmp_sock, path).map_err(io_err("move the new socket to", path))?;
    log::debug!(target: "control", "listening on {}", path.display());
    Ok(PrivateSocket {
        listener,
        path: path.to_owned(),
        identity: (meta.dev(), meta.ino()),
    })
}

/// Removes the temporary bind directory (and a socket left in it on failure).
struct TmpDir(PathBuf);

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = fs::remove_file(self.0.join("s"));
        let _ = fs::remove_dir(&self.0);
    }
}

impl Drop for PrivateSocket {
    fn drop(&mut self) {
        // Remove the file unless another process has put its own socket at the path meanwhile.
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.file_type().is_socket() && (m.dev(), m.ino()) == self.identity);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The accept thread of a [`PrivateSocket`]. Dropping it stops the thread and removes the socket
/// file (see [`PrivateSocket`]'s `Drop`).
pub(crate) struct Acceptor {
    wake: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    /// Held for its `Drop`, which runs after `Drop::drop` below has joined the thread.
    _socket: PrivateSocket,
}

impl Acceptor {
    /// Starts accepting; `on_conn` gets each new connection (in blocking mode) on the accept
    /// thread, so it must hand slow work to another thread.
    pub(crate) fn spawn(
        socket: PrivateSocket,
        name: &str,
        mut on_conn: impl FnMut(UnixStream) + Send + 'static,
    ) -> Result<Acceptor, ControlError> {
        let (wake_read, wake_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| io_err("create a wake-up pipe for", &socket.path)(e.into()))?;
        let listener = socket
            .listener
            .try_clone()
            .map_err(io_err("duplicate the descriptor of", &socket.path))?;
        let thread = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || accept_loop(&listener, &wake_read, &mut on_conn))
            .map_err(io_err("start the accept thread of", &socket.path))?;
        Ok(Acceptor {
            wake: Some(wake_write),
            thread: Some(thread),
            _socket: socket,
        })
    }
}

fn accept_loop(listener: &UnixListener, wake: &OwnedFd, on_conn: &mut dyn FnMut(UnixStream)) {
    loop {
        let mut fds = [
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake.as_fd(), PollFlags::POLLIN),
        ];
        match nix::poll::poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                log::error!(target: "control", "poll on a listening socket failed: {e}");
                return;
            }
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            // The write end was closed: we are being dropped.
            return;
        }
        if fds[0].revents().is_none_or(|r| r.is_empty()) {
            continue;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                if stream.set_nonblocking(false).is_ok() {
                    on_conn(stream);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                // Out of descriptors, most likely: wait instead of spinning on a ready socket.
                log::warn!(target: "control", "accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn parsed(line: &str) -> Result<Command, String> {
        parse_request(line).1
    }

    #[test]
    fn parses_every_command() {
        let t = TabId;
        let table = [
            (r#"{"id":1,"cmd":"version"}"#, Command::Version),
            (r#"{"cmd":"tabs"}"#, Command::Tabs),
            (
                r#"{"cmd":"new_tab"}"#,
                Command::NewTab {
                    url: None,
                    background: false,
                },
            ),
            (
                r#"{"cmd":"new_tab","url":null,"background":null}"#,
                Command::NewTab {
                    url: None,
                    background: false,
                },
            ),
            (
                r#"{"cmd":"new_tab","url":"example.org","background":true}"#,
                Command::NewTab {
                    url: Some("https://example.org/".into()),
                    background: true,
                },
            ),
            (
                r#"{"cmd":"navigate","tab_id":3,"url":"http://127.0.0.1:8000/a"}"#,
                Command::Navigate {
                    tab_id: t(3),
                    url: "http://127.0.0.1:8000/a".into(),
                },
            ),
            (r#"{"cmd":"activate","tab_id":0}"#, Command::Activate(t(0))),
            (r#"{"cmd":"close","tab_id":1}"#, Command::Close(t(1))),
            (r#"{"cmd":"reload","tab_id":2}"#, Command::Reload(t(2))),
            (r#"{"cmd":"back","tab_id":3}"#, Command::Back(t(3))),
            (r#"{"cmd":"forward","tab_id":4}"#, Command::Forward(t(4))),
            (
                r#"{"cmd":"eval","tab_id":5,"js":"document.title"}"#,
                Command::Eval {
                    tab_id: t(5),
                    js: "document.title".into(),
                },
            ),
            (r#"{"cmd":"task_manager"}"#, Command::TaskManager),
            (
                r#"{"cmd":"end_process","tab_id":6}"#,
                Command::EndProcess(t(6)),
            ),
            (r#"{"cmd":"discard","tab_id":7}"#, Command::Discard(t(7))),
            (r#"{"cmd":"freeze","tab_id":8}"#, Command::Freeze(t(8))),
            (r#"{"cmd":"unfreeze","tab_id":9}"#, Command::Unfreeze(t(9))),
            (r#"{"cmd":"pin","tab_id":10}"#, Command::Pin(t(10))),
            (r#"{"cmd":"unpin","tab_id":11}"#, Command::Unpin(t(11))),
            (r#"{"cmd":"shutdown"}"#, Command::Shutdown),
            // Unknown fields are ignored, so clients may send what later versions add.
            (r#"{"cmd":"tabs","verbose":true}"#, Command::Tabs),
            (
                &format!(r#"{{"cmd":"close","tab_id":{}}}"#, u64::MAX),
                Command::Close(t(u64::MAX)),
            ),
        ];
        for (line, want) in table {
            let name = want.name();
            assert_eq!(parsed(line), Ok(want), "{line}");
            assert!(COMMAND_NAMES.contains(&name));
        }
    }

    #[test]
    fn ids() {
        assert_eq!(parse_request(r#"{"id":7,"cmd":"tabs"}"#).0, json!(7));
        assert_eq!(parse_request(r#"{"id":"a","cmd":"tabs"}"#).0, json!("a"));
        assert_eq!(parse_request(r#"{"cmd":"tabs"}"#).0, Value::Null);
        assert_eq!(parse_request(r#"{"id":7,"cmd":"nope"}"#).0, json!(7));
        let (id, result) = parse_request(r#"{"id":[1],"cmd":"tabs"}"#);
        assert_eq!(id, Value::Null);
        assert_eq!(result.unwrap_err(), "id must be a number or a string");
        assert_eq!(parse_request("{oops").0, Value::Null);
    }

    #[test]
    fn refuses_bad_requests() {
        let table = [
            ("", "invalid JSON"),
            ("{oops", "invalid JSON"),
            ("[1,2]", "must be a JSON object"),
            ("\"tabs\"", "must be a JSON object"),
            (r#"{"id":1}"#, r#"missing "cmd""#),
            (r#"{"cmd":5}"#, "cmd must be a string"),
            (
                r#"{"cmd":"frobnicate"}"#,
                "unknown command \"frobnicate\"; known commands: version, tabs",
            ),
            (r#"{"cmd":"close"}"#, r#"missing "tab_id""#),
            (r#"{"cmd":"close","tab_id":null}"#, r#"missing "tab_id""#),
            (
                r#"{"cmd":"close","tab_id":-1}"#,
                "tab_id must be a non-negative integer",
            ),
            (
                r#"{"cmd":"close","tab_id":1.5}"#,
                "tab_id must be a non-negative integer",
            ),
            (
                r#"{"cmd":"close","tab_id":1e3}"#,
                "tab_id must be a non-negative integer",
            ),
            (
                r#"{"cmd":"close","tab_id":"1"}"#,
                "tab_id must be a non-negative integer",
            ),
            (
                r#"{"cmd":"close","tab_id":18446744073709551616}"#,
                "tab_id must be a non-negative integer",
            ),
            (r#"{"cmd":"navigate","tab_id":1}"#, r#"missing "url""#),
            (
                r#"{"cmd":"navigate","tab_id":1,"url":5}"#,
                "url must be a string",
            ),
            (
                r#"{"cmd":"navigate","tab_id":1,"url":"javascript:alert(1)"}"#,
                "unsupported scheme",
            ),
            (
                r#"{"cmd":"navigate","tab_id":1,"url":"hello world"}"#,
                "no search engine",
            ),
            (
                r#"{"cmd":"navigate","url":"example.org"}"#,
                r#"missing "tab_id""#,
            ),
            (r#"{"cmd":"new_tab","url":""}"#, "type an address"),
            (
                r#"{"cmd":"new_tab","background":"yes"}"#,
                "background must be true or false",
            ),
            (r#"{"cmd":"eval","tab_id":1}"#, r#"missing "js""#),
            (
                r#"{"cmd":"eval","tab_id":1,"js":{}}"#,
                "js must be a string",
            ),
        ];
        for (line, needle) in table {
            let err = parsed(line).unwrap_err();
            assert!(err.contains(needle), "{line}: {err}");
        }
        // Deep nesting is refused by serde_json's recursion limit, not by a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parsed(&deep).unwrap_err().contains("invalid JSON"));
        // A huge unknown command name is not echoed whole.
        let long = format!(r#"{{"cmd":"{}"}}"#, "x".repeat(10_000));
        assert!(parsed(&long).unwrap_err().len() < 400);
    }

    #[test]
    fn reply_lines_have_protocol_field_order() {
        assert_eq!(
            reply_line(&json!(7), &Ok(json!({"tab_id": 3}))),
            b"{\"id\":7,\"ok\":true,\"result\":{\"tab_id\":3}}\n"
        );
        assert_eq!(
            reply_line(&Value::Null, &Err("no tab 99".into())),
            b"{\"id\":null,\"ok\":false,\"error\":\"no tab 99\"}\n"
        );
    }

    #[test]
    fn line_reader_caps_and_skips() {
        let input: &[u8] = b"short\r\n0123456789abc\nnext\n\nunterm";
        let mut reader = LineReader::new(input, 10);
        let mut events = Vec::new();
        loop {
            match reader.next_line().unwrap() {
                LineEvent::Line(l) => events.push(String::from_utf8(l.to_vec()).unwrap()),
                LineEvent::TooLong => events.push("<too long>".into()),
                LineEvent::Eof => break,
            }
        }
        assert_eq!(events, ["short", "<too long>", "next", ""]);

        // A line far longer than the reader's buffer is skipped without being kept.
        let mut big = vec![b'x'; 100_000];
        big.extend_from_slice(b"\nafter\n");
        let mut reader = LineReader::new(big.as_slice(), 1000);
        assert!(matches!(reader.next_line().unwrap(), LineEvent::TooLong));
        assert!(reader.buf.capacity() <= 1000 + 8192);
        assert!(matches!(
            reader.next_line().unwrap(),
            LineEvent::Line(b"after")
        ));
        assert!(matches!(reader.next_line().unwrap(), LineEvent::Eof));
    }

    // --- Real sockets -------------------------------------------------------------------------

    /// A fake UI: answers on its own thread after `delay_ms` from `eval` js (a number), never
    /// answers `eval` js "hang", drops `reload` unanswered, and echoes the command otherwise.
    fn fake_ui(timeout: Duration) -> (tempfile::TempDir, PathBuf, ControlServer) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let server = ControlServer::start_with_timeout(
            &path,
            Box::new(|request: Request| {
                thread::spawn(move || match &request.command {
                    Command::Eval { js, .. } if js == "hang" => {
                        thread::sleep(Duration::from_secs(3));
                        drop(request);
                    }
                    Command::Eval { js, .. } => {
                        let ms: u64 = js.parse().unwrap_or(0);
                        thread::sleep(Duration::from_millis(ms));
                        let _ = request.reply.send(Ok(json!({"value": ms})));
                    }
                    Command::Reload(_) => drop(request),
                    Command::Close(tab) => {
                        let _ = request.reply.send(Err(format!("no tab {tab}")));
                    }
                    other => {
                        let _ = request.reply.send(Ok(json!({"cmd": other.name()})));
                    }
                });
            }),
            timeout,
        )
        .unwrap();
        (dir, path, server)
    }

    struct Client {
        stream: UnixStream,
        lines: LineReader<UnixStream>,
    }

    impl Client {
        fn connect(path: &Path) -> Client {
            let stream = UnixStream::connect(path).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(15)))
                .unwrap();
            let lines = LineReader::new(stream.try_clone().unwrap(), 1 << 20);
            Client { stream, lines }
        }

        fn send(&mut self, bytes: &[u8]) {
            self.stream.write_all(bytes).unwrap();
        }

        fn reply(&mut self) -> Value {
            match self.lines.next_line().unwrap() {
                LineEvent::Line(line) => serde_json::from_slice(line).unwrap(),
                LineEvent::TooLong => panic!("reply too long"),
                LineEvent::Eof => panic!("connection closed"),
            }
        }

        fn call(&mut self, line: &str) -> Value {
            self.send(format!("{line}\n").as_bytes());
            self.reply()
        }
    }

    #[test]
    fn answers_in_order_and_survives_garbage() {
        let (_dir, path, _server) = fake_ui(Duration::from_secs(10));
        let mut c = Client::connect(&path);
        assert_eq!(
            c.call(r#"{"id":1,"cmd":"version"}"#),
            json!({"id":1,"ok":true,"result":{"cmd":"version"}})
        );
        let garbage = c.call("this is not json");
        assert_eq!(
            (&garbage["id"], &garbage["ok"]),
            (&Value::Null, &json!(false))
        );
        assert!(garbage["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON"));
        let unknown = c.call(r#"{"id":2,"cmd":"nope"}"#);
        assert_eq!(
            (unknown["id"].clone(), unknown["ok"].clone()),
            (json!(2), json!(false))
        );
        assert_eq!(
            c.call(r#"{"id":3,"cmd":"close","tab_id":99}"#),
            json!({"id":3,"ok":false,"error":"no tab 99"})
        );
        let bad_tab = c.call(r#"{"id":4,"cmd":"close","tab_id":-5}"#);
        assert_eq!(bad_tab["error"], "tab_id must be a non-negative integer");
        assert_eq!(bad_tab["id"], 4);

        // Invalid UTF-8, CRLF and blank lines.
        c.send(b"\xff\xfe\n");
        assert_eq!(c.reply()["error"], "request is not valid UTF-8");
        c.send(b"\n  \n{\"id\":5,\"cmd\":\"tabs\"}\r\n");
        assert_eq!(c.reply(), json!({"id":5,"ok":true,"result":{"cmd":"tabs"}}));

        // A line over the cap is refused and skipped; the next request works.
        let mut big = vec![b' '; MAX_LINE_LEN + 10];
        big.push(b'\n');
        c.send(&big);
        let too_long = c.reply();
        assert_eq!(too_long["id"], Value::Null);
        assert!(too_long["error"].as_str().unwrap().contains("longer than"));
        assert_eq!(c.call(r#"{"id":6,"cmd":"tabs"}"#)["id"], 6);

        // Pipelined requests that the UI answers out of order are replied to in order.
        c.send(
            b"{\"id\":10,\"cmd\":\"eval\",\"tab_id\":1,\"js\":\"300\"}\n\
              {\"id\":11,\"cmd\":\"eval\",\"tab_id\":1,\"js\":\"0\"}\n\
              bad\n\
              {\"id\":12,\"cmd\":\"eval\",\"tab_id\":1,\"js\":\"100\"}\n",
        );
        let ids: Vec<Value> = (0..4).map(|_| c.reply()["id"].clone()).collect();
        assert_eq!(ids, [json!(10), json!(11), Value::Null, json!(12)]);

        // A request the UI drops unanswered gets an error at once.
        let dropped = c.call(r#"{"id":13,"cmd":"reload","tab_id":1}"#);
        assert_eq!(dropped["ok"], false);
        assert!(dropped["error"]
            .as_str()
            .unwrap()
            .contains("without answering"));
    }

    #[test]
    fn unanswered_requests_time_out() {
        let (_dir, path, _server) = fake_ui(Duration::from_millis(400));
        let mut c = Client::connect(&path);
        let start = Instant::now();
        c.send(
            b"{\"id\":1,\"cmd\":\"eval\",\"tab_id\":1,\"js\":\"hang\"}\n\
              {\"id\":2,\"cmd\":\"eval\",\"tab_id\":2,\"js\":\"0\"}\n",
        );
        let first = c.reply();
        assert_eq!(first["id"], 1);
        assert_eq!(first["ok"], false);
        assert_eq!(
            first["error"],
            "timed out after 0.4 s: no answer to eval in time (the tab's renderer is stopped or busy)"
        );
        // The request behind the hung one was delivered at once and is not delayed further.
        assert_eq!(c.reply(), json!({"id":2,"ok":true,"result":{"value":0}}));
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        // The connection is still usable.
        assert_eq!(c.call(r#"{"id":3,"cmd":"tabs"}"#)["ok"], true);
    }

    #[test]
    fn default_timeout_is_ten_seconds() {
        let (_dir, path, _server) = {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("s");
            let server = ControlServer::start(
                &path,
                Box::new(|request: Request| {
                    // Hold the reply sender without answering, longer than the deadline.
                    thread::spawn(move || {
                        thread::sleep(Duration::from_secs(12));
                        drop(request);
                    });
                }),
            )
            .unwrap();
            (dir, path, server)
        };
        let mut c = Client::connect(&path);
        let start = Instant::now();
        let reply = c.call(r#"{"id":1,"cmd":"eval","tab_id":1,"js":"1"}"#);
        let elapsed = start.elapsed();
        assert_eq!(
            reply["error"],
            "timed out after 10 s: no answer to eval in time (the tab's renderer is stopped or busy)"
        );
        assert!(elapsed >= Duration::from_millis(9900), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(11), "{elapsed:?}");
    }

    #[test]
    fn client_that_disconnects_mid_request() {
        let (_dir, path, _server) = fake_ui(Duration::from_secs(10));
        for _ in 0..5 {
            let mut c = Client::connect(&path);
            c.send(
                b"{\"id\":1,\"cmd\":\"eval\",\"tab_id\":1,\"js\":\"200\"}\n{\"id\":2,\"cmd\":\"ta",
            );
            drop(c);
        }
        thread::sleep(Duration::from_millis(400));
        let mut c = Client::connect(&path);
        assert_eq!(c.call(r#"{"id":9,"cmd":"tabs"}"#)["id"], 9);
    }

    #[test]
    fn half_closed_client_still_gets_its_replies() {
        let (_dir, path, _server) = fake_ui(Duration::from_secs(10));
        let mut c = Client::connect(&path);
        c.send(b"{\"id\":1,\"cmd\":\"eval\",\"tab_id\":1,\"js\":\"100\"}\n{\"id\":2,\"cmd\":\"tabs\"}\n");
        c.stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(c.reply()["id"], 1);
        assert_eq!(c.reply()["id"], 2);
        assert!(matches!(c.lines.next_line().unwrap(), LineEvent::Eof));
    }

    #[test]
    fn caps_connections() {
        let (_dir, path, _server) = fake_ui(Duration::from_secs(10));
        let mut clients: Vec<Client> = (0..MAX_CONNECTIONS)
            .map(|_| Client::connect(&path))
            .collect();
        // Make sure every one of them has been accepted.
        for c in &mut clients {
            assert_eq!(c.call(r#"{"id":1,"cmd":"tabs"}"#)["ok"], true);
        }
        let mut extra = Client::connect(&path);
        let refused = extra.reply();
        assert!(refused["error"]
            .as_str()
            .unwrap()
            .contains("too many control connections"));
        assert!(matches!(extra.lines.next_line().unwrap(), LineEvent::Eof));
        // A slot frees up when a client leaves.
        drop(clients.pop());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            // Until the slot is free, the server refuses and closes, so a write may fail.
            let mut c = Client::connect(&path);
            let sent = c.stream.write_all(b"{\"id\":2,\"cmd\":\"tabs\"}\n").is_ok();
            if sent && c.reply()["ok"] == true {
                break;
            }
            assert!(Instant::now() < deadline, "the slot was never freed");
            thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn socket_file_permissions_and_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let server = ControlServer::start(&path, Box::new(|_| {})).unwrap();
        assert_eq!(server.path(), path);
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Nothing but the socket is left in the directory.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

        // A live socket is not taken over.
        match ControlServer::start(&path, Box::new(|_| {})) {
            Err(ControlError::InUse(p)) => assert_eq!(p, path),
            other => panic!("{:?}", other.err()),
        }
        drop(server);
        assert!(!path.exists(), "Drop removes the socket");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        // A stale socket is replaced.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let server = ControlServer::start(&path, Box::new(|_| {})).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        drop(server);

        // Something that is not a socket is never replaced.
        fs::write(&path, "precious").unwrap();
        assert!(matches!(
            ControlServer::start(&path, Box::new(|_| {})),
            Err(ControlError::NotASocket(_))
        ));
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
        fs::remove_file(&path).unwrap();

        // A socket someone else put at the path after us is left alone by our Drop.
        let server = ControlServer::start(&path, Box::new(|_| {})).unwrap();
        fs::remove_file(&path).unwrap();
        let other = UnixListener::bind(&path).unwrap();
        drop(server);
        assert!(path.exists());
        drop(other);
    }

    #[test]
    fn refuses_unusable_paths() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("x".repeat(120));
        assert!(matches!(
            ControlServer::start(&long, Box::new(|_| {})),
            Err(ControlError::PathTooLong(_))
        ));
        let missing_parent = dir.path().join("no/such/dir/s");
        let err = ControlServer::start(&missing_parent, Box::new(|_| {}))
            .err()
            .unwrap();
        assert!(matches!(err, ControlError::Io { .. }), "{err}");
        assert!(matches!(
            ControlServer::start(Path::new("/"), Box::new(|_| {})),
            Err(ControlError::NoFileName(_))
        ));
    }

    #[test]
    fn drop_lets_answered_replies_out() {
        let (tx, rx) = crossbeam_channel::unbounded::<Request>();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let server = ControlServer::start(
            &path,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )
        .unwrap();
        let mut idle = Client::connect(&path);
        let mut c = Client::connect(&path);
        c.send(b"{\"id\":1,\"cmd\":\"shutdown\"}\n");
        // The UI answers `shutdown` and drops the server at once, as the browser does on exit.
        let request = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(request.command, Command::Shutdown);
        request.reply.send(Ok(json!({}))).unwrap();
        let start = Instant::now();
        drop(server);
        // An idle connection does not hold the drop up.
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(c.reply(), json!({"id":1,"ok":true,"result":{}}));
        assert!(matches!(idle.lines.next_line().unwrap(), LineEvent::Eof));
        assert!(matches!(c.lines.next_line().unwrap(), LineEvent::Eof));
        assert!(!path.exists());
    }
}
