//! The control socket: newline-delimited JSON requests on a 0600 Unix socket, answered by the UI thread within a deadline.
//!
//! `browser --control-socket PATH` serves the protocol of `docs/ARCHITECTURE.md` ("Control
//! protocol"), whose types are in [`crate::protocol`]. This module owns everything but the
//! answers: the socket (created 0600 by [`crate::socket::bind_private`]), the accept thread,
//! framing and parsing requests, the reply deadline and the reply order. The UI thread receives
//! each valid request as a [`Request`] through the `deliver` callback and answers on its `reply`
//! channel.
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

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::protocol::{self, Command, Reply, ReplyLine, RequestId};
use crate::socket::{bind_private, send_all, Acceptor, LineEvent, LineReader, SocketError};

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

/// One request handed to the UI, its URLs normalised with [`crate::url_input::fixup`]. Answer
/// exactly once on `reply`; dropping `reply` unanswered gives the client an error reply at once.
#[derive(Debug)]
pub struct Request {
    pub command: Command,
    pub reply: Sender<Reply>,
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
    ) -> Result<ControlServer, SocketError> {
        Self::start_with_timeout(path, deliver, REPLY_TIMEOUT)
    }

    /// [`ControlServer::start`] with another reply deadline than [`REPLY_TIMEOUT`] (for tests).
    pub fn start_with_timeout(
        path: &Path,
        deliver: Box<dyn Fn(Request) + Send + Sync>,
        timeout: Duration,
    ) -> Result<ControlServer, SocketError> {
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
    Ready { id: Option<RequestId>, reply: Reply },
    /// A request handed to the UI; its answer arrives on `rx`.
    Waiting {
        id: Option<RequestId>,
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
        let line = reply_line(ReplyLine {
            id: None,
            reply: Err(format!(
                "too many control connections (at most {MAX_CONNECTIONS}); close one and retry"
            )),
        });
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
                    id: None,
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
            id: None,
            reply: Err("request is not valid UTF-8".to_owned()),
        });
    };
    if text.trim().is_empty() {
        return None;
    }
    // Counted before `deliver`, so dropping the server never misses a delivered request.
    shared.add_pending();
    // Paths in URLs are taken relative to the browser's current directory, as on its command line.
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    Some(match protocol::parse_request(text, &cwd) {
        Err(bad) => Queued::Ready {
            id: bad.id,
            reply: Err(bad.message),
        },
        Ok(request) => {
            let deadline = Instant::now() + shared.timeout;
            let what = request.command.name();
            let (tx, rx) = crossbeam_channel::bounded(1);
            (shared.deliver)(Request {
                command: request.command,
                reply: tx,
            });
            Queued::Waiting {
                id: request.id,
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
            if send_all(stream, &reply_line(ReplyLine { id, reply })).is_err() {
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

/// One reply, serialised with the fields in protocol order and a final newline.
fn reply_line(line: ReplyLine<protocol::Answer>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&line).unwrap_or_else(|e| {
        // The result types serialise with string keys only, so this is not expected; the client
        // still gets a reply line.
        let error = ReplyLine::<()> {
            id: line.id,
            reply: Err(format!("cannot serialise the reply: {e}")),
        };
        serde_json::to_vec(&error).unwrap_or_default()
    });
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Answer, EvalResult};
    use serde_json::{json, Value};
    use std::io::Write;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    #[test]
    fn reply_lines_have_protocol_field_order() {
        let ok = ReplyLine {
            id: Some(RequestId::from(7)),
            reply: Ok(Answer::NewTab(protocol::NewTabResult {
                tab_id: warren_ipc::TabId(3),
            })),
        };
        assert_eq!(
            reply_line(ok),
            b"{\"id\":7,\"ok\":true,\"result\":{\"tab_id\":3}}\n"
        );
        let err = ReplyLine {
            id: None,
            reply: Err("no tab 99".into()),
        };
        assert_eq!(
            reply_line(err),
            b"{\"id\":null,\"ok\":false,\"error\":\"no tab 99\"}\n"
        );
        let done = ReplyLine {
            id: Some(RequestId::from("a")),
            reply: Ok(Answer::Done),
        };
        assert_eq!(
            reply_line(done),
            b"{\"id\":\"a\",\"ok\":true,\"result\":{}}\n"
        );
    }

    // --- Real sockets -------------------------------------------------------------------------

    /// A fake UI: answers on its own thread after `delay_ms` from `eval` js (a number), never
    /// answers `eval` js "hang", drops `reload` unanswered, refuses `close`, and otherwise
    /// answers with the command's name as an `eval` value.
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
                        let _ = request
                            .reply
                            .send(Ok(Answer::Eval(EvalResult { value: json!(ms) })));
                    }
                    Command::Reload { .. } => drop(request),
                    Command::Close { tab_id } => {
                        let _ = request.reply.send(Err(format!("no tab {tab_id}")));
                    }
                    other => {
                        let _ = request.reply.send(Ok(Answer::Eval(EvalResult {
                            value: json!(other.name()),
                        })));
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
            json!({"id":1,"ok":true,"result":{"value":"version"}})
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
        assert_eq!(
            c.reply(),
            json!({"id":5,"ok":true,"result":{"value":"tabs"}})
        );

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

    /// The socket's creation rules are tested in `socket`; this checks the server uses them.
    #[test]
    fn socket_file_permissions_and_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let server = ControlServer::start(&path, Box::new(|_| {})).unwrap();
        assert_eq!(server.path(), path);
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Nothing but the socket is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        // A live socket is not taken over.
        match ControlServer::start(&path, Box::new(|_| {})) {
            Err(SocketError::InUse(p)) => assert_eq!(p, path),
            other => panic!("{:?}", other.err()),
        }
        let long = dir.path().join("x".repeat(120));
        assert!(matches!(
            ControlServer::start(&long, Box::new(|_| {})),
            Err(SocketError::PathTooLong(_))
        ));
        drop(server);
        assert!(!path.exists(), "Drop removes the socket");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
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
        request.reply.send(Ok(Answer::Done)).unwrap();
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
