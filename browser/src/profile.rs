//! The profile directory: its layout, the lock that makes it belong to one running browser, and the hand-over of URLs from a second launch.
//!
//! ```text
//! PROFILE/            0700
//!   website-data/     0700, WebKit's persistent website data, shared by every tab
//!   cookies.sqlite    the SQLite cookie database (created by WebKit)
//!   lock              flock(LOCK_EX) held by the running browser for its whole life
//!   instance.sock     0600, where a second launch hands its URLs to the running browser
//! ```
//!
//! [`acquire`] either takes the lock (the caller is the primary browser of the profile and gets an
//! [`InstanceListener`]), or finds it held and sends its URLs to the primary over
//! `instance.sock` as one JSON line `{"open": [urls]}`, waits for `{"ok": true}`, and reports
//! [`Acquired::Secondary`]: that process should exit. The lock is an `flock` on an open file, so
//! the kernel releases it when the browser dies, however it dies; a stale `instance.sock` left by
//! a crash is replaced by the next primary.
//!
//! Any process of the user can connect to `instance.sock`, so the primary takes at most
//! [`MAX_HANDOVER_URLS`] URLs at once and [`HANDOVER_RATE`] a second after that
//! ([`HandOverBudget`]): a hand-over beyond the budget is refused whole, with an answer that says
//! when to try again, and its connection closed. (Every URL becomes a tab with three processes;
//! 4 connections of 64 URLs once started 227 renderers, and the browser stopped answering.) The
//! tabs themselves are limited again by the browser-wide budget of new tabs
//! ([`crate::validate::SPAWN_BURST`]).

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde_json::{json, Value};
use thiserror::Error;
use warren_ipc::MAX_URL_LEN;

use crate::socket::{
    bind_private, send_all, Acceptor, LineEvent, LineReader, PrivateSocket, SocketError,
};
use crate::url_input;
use crate::validate::TokenBucket;

/// The most URLs one hand-over may carry, and the most the primary takes at once.
pub const MAX_HANDOVER_URLS: usize = 10;

/// URLs a second the primary takes once the first [`MAX_HANDOVER_URLS`] are spent.
pub const HANDOVER_RATE: u32 = 2;

/// The longest hand-over message, in bytes.
const MAX_MESSAGE_LEN: usize = 1024 * 1024;

/// How long a second launch keeps trying to reach a primary that holds the lock but has not
/// created its instance socket yet (it is still starting).
const CONNECT_PATIENCE: Duration = Duration::from_secs(5);

/// How long a second launch waits for the primary's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the primary waits for a connected peer's message (it is read on the accept thread).
const PEER_TIMEOUT: Duration = Duration::from_secs(2);

const LOCK_FILE: &str = "lock";
const INSTANCE_SOCKET: &str = "instance.sock";
const WEBSITE_DATA_DIR: &str = "website-data";
const COOKIE_FILE: &str = "cookies.sqlite";

/// Why the profile could not be used.
#[derive(Debug, Error)]
pub enum ProfileError {
    #[error("cannot create the profile directory {}: {source}; check its permissions or choose another --profile", .path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the profile path {} is not a directory; choose another --profile", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot lock the profile {}: {source}", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the profile's instance socket: {0}")]
    InstanceSocket(#[source] SocketError),
    #[error("another Warren is using the profile {} but does not answer on {}; close it, or choose another --profile", .dir.display(), .socket.display())]
    NotAnswering { dir: PathBuf, socket: PathBuf },
    #[error("cannot hand the URLs over to the Warren that is using the profile {}: {reason}", .dir.display())]
    HandOver { dir: PathBuf, reason: String },
    #[error("too many URLs to hand over to the running Warren (at most {MAX_HANDOVER_URLS})")]
    TooManyUrls,
}

/// A profile owned by this process. The lock is held until the `Profile` is dropped.
#[derive(Debug)]
pub struct Profile {
    /// The profile directory.
    pub dir: PathBuf,
    /// WebKit's persistent website data, shared by every tab of the profile.
    pub website_data_dir: PathBuf,
    /// The SQLite cookie database, shared by every tab of the profile.
    pub cookie_file: PathBuf,
    _lock: Flock<File>,
}

/// What [`acquire`] found.
pub enum Acquired {
    /// This process owns the profile. Start the listener once the UI can take URLs.
    Primary(Profile, InstanceListener),
    /// Another browser owns the profile and has taken this launch's URLs; exit.
    Secondary,
}

/// The bound `instance.sock` of a primary browser, not yet accepting. Connections made before
/// [`InstanceListener::start`] wait in the socket's backlog.
pub struct InstanceListener {
    socket: PrivateSocket,
}

/// Serves `instance.sock`. Dropping it stops the accept thread and removes the socket.
pub struct InstanceServer {
    _acceptor: Acceptor,
}

/// The default profile: `$XDG_DATA_HOME/warren/default`, else `~/.local/share/warren/default`.
pub fn default_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|user| user.dir)
        });
    default_dir_from(std::env::var_os("XDG_DATA_HOME").map(PathBuf::from), home)
}

fn default_dir_from(xdg_data_home: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    // The XDG spec says relative values are invalid and must be ignored.
    let data_home = xdg_data_home
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| {
            home.unwrap_or_else(|| PathBuf::from("."))
                .join(".local")
                .join("share")
        });
    data_home.join("warren").join("default")
}

/// Takes the profile at `dir` (created if missing), or hands `urls` to the browser that owns it.
/// The URLs must already be absolute (see [`url_input::fixup`]); an empty list asks the running
/// browser for a new tab.
pub fn acquire(dir: &Path, urls: &[String]) -> Result<Acquired, ProfileError> {
    acquire_with(dir, urls, CONNECT_PATIENCE)
}

fn acquire_with(dir: &Path, urls: &[String], patience: Duration) -> Result<Acquired, ProfileError> {
    create_private_dir(dir)?;
    let lock_path = dir.join(LOCK_FILE);
    let lock_err = |source: io::Error| ProfileError::Lock {
        path: lock_path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lock_path)
        .map_err(lock_err)?;
    let mut file = match try_lock(file).map_err(lock_err)? {
        Ok(lock) => return become_primary(dir, lock),
        Err(file) => file,
    };

    if urls.len() > MAX_HANDOVER_URLS {
        return Err(ProfileError::TooManyUrls);
    }
    let socket = dir.join(INSTANCE_SOCKET);
    let deadline = Instant::now() + patience;
    loop {
        match UnixStream::connect(&socket) {
            Ok(stream) => {
                return hand_over(&stream, urls)
                    .map(|()| Acquired::Secondary)
                    .map_err(|reason| ProfileError::HandOver {
                        dir: dir.to_owned(),
                        reason,
                    });
            }
            // The primary has the lock but no socket yet, or the socket is a crashed browser's.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) => {}
            Err(e) => {
                return Err(ProfileError::HandOver {
                    dir: dir.to_owned(),
                    reason: format!("cannot connect to {}: {e}", socket.display()),
                })
            }
        }
        // The primary may have exited meanwhile; then the profile is ours.
        file = match try_lock(file).map_err(lock_err)? {
            Ok(lock) => return become_primary(dir, lock),
            Err(file) => file,
        };
        if Instant::now() >= deadline {
            return Err(ProfileError::NotAnswering {
                dir: dir.to_owned(),
                socket,
            });
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// `Ok(Ok(lock))` if we got the lock, `Ok(Err(file))` if another open file holds it.
fn try_lock(file: File) -> io::Result<Result<Flock<File>, File>> {
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Ok(lock)),
        Err((file, Errno::EWOULDBLOCK)) => Ok(Err(file)),
        Err((_, e)) => Err(e.into()),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), ProfileError> {
    match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(source) => {
            return Err(if dir.exists() && !dir.is_dir() {
                ProfileError::NotADirectory(dir.to_owned())
            } else {
                ProfileError::CreateDir {
                    path: dir.to_owned(),
                    source,
                }
            })
        }
    }
    if dir.is_dir() {
        Ok(())
    } else {
        Err(ProfileError::NotADirectory(dir.to_owned()))
    }
}

/// The cookie database lives in the website-data directory, the one directory of the profile a
/// sandboxed renderer can write. Profiles from before the sandbox kept it at the top: moved once.
fn cookie_file(dir: &Path, website_data_dir: &Path) -> PathBuf {
    let file = website_data_dir.join(COOKIE_FILE);
    let old = dir.join(COOKIE_FILE);
    if old.is_file() && !file.exists() {
        if let Err(e) = std::fs::rename(&old, &file) {
            log::warn!(
                "cannot move {} into {}: {e}; cookies saved before start again empty",
                old.display(),
                website_data_dir.display()
            );
        }
    }
    file
}

fn become_primary(dir: &Path, lock: Flock<File>) -> Result<Acquired, ProfileError> {
    let website_data_dir = dir.join(WEBSITE_DATA_DIR);
    create_private_dir(&website_data_dir)?;
    let socket = bind_private(&dir.join(INSTANCE_SOCKET)).map_err(ProfileError::InstanceSocket)?;
    let profile = Profile {
        dir: dir.to_owned(),
        cookie_file: cookie_file(dir, &website_data_dir),
        website_data_dir,
        _lock: lock,
    };
    Ok(Acquired::Primary(profile, InstanceListener { socket }))
}

/// The second launch's side: send the URLs, wait for the acknowledgement.
fn hand_over(stream: &UnixStream, urls: &[String]) -> Result<(), String> {
    let mut line = json!({ "open": urls }).to_string().into_bytes();
    if line.len() > MAX_MESSAGE_LEN {
        return Err(format!(
            "the URLs are too long together (more than {MAX_MESSAGE_LEN} bytes)"
        ));
    }
    line.push(b'\n');
    stream
        .set_read_timeout(Some(ACK_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(ACK_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    send_all(stream, &line).map_err(|e| format!("cannot send: {e}"))?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reader = LineReader::new(stream, 64 * 1024);
    let ack = match reader.next_line() {
        Ok(LineEvent::Line(bytes)) => serde_json::from_slice::<Value>(bytes)
            .map_err(|_| "the running browser's answer is not JSON".to_owned())?,
        Ok(LineEvent::TooLong) => return Err("the running browser's answer is too long".to_owned()),
        Ok(LineEvent::Eof) => return Err("the running browser closed the connection".to_owned()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            return Err(format!(
                "no answer from the running browser within {} s",
                ACK_TIMEOUT.as_secs()
            ))
        }
        Err(e) => return Err(format!("no answer from the running browser: {e}")),
    };
    match (ack.get("ok"), ack.get("error")) {
        (Some(Value::Bool(true)), _) => Ok(()),
        (_, Some(Value::String(error))) => Err(format!("it refused them: {error}")),
        _ => Err("the running browser's answer is malformed".to_owned()),
    }
}

impl InstanceListener {
    /// Starts accepting hand-overs. `deliver` gets each valid list of URLs (empty: open a new
    /// tab) on the accept thread, so it must not block.
    pub fn start(
        self,
        deliver: Box<dyn Fn(Vec<String>) + Send + Sync>,
    ) -> Result<InstanceServer, ProfileError> {
        let mut budget = HandOverBudget::new(Instant::now());
        let acceptor = Acceptor::spawn(self.socket, "instance-accept", move |stream| {
            serve_peer(&stream, &*deliver, &mut budget);
        })
        .map_err(ProfileError::InstanceSocket)?;
        Ok(InstanceServer {
            _acceptor: acceptor,
        })
    }
}

/// How many URLs the primary still takes: [`MAX_HANDOVER_URLS`] at once, then [`HANDOVER_RATE`]
/// a second. Lives on the accept thread.
pub struct HandOverBudget {
    urls: TokenBucket,
    /// Refusals not logged yet: at most one log line a second, however fast the peers.
    unlogged: u64,
    last_log: Option<Instant>,
}

impl HandOverBudget {
    pub fn new(now: Instant) -> Self {
        Self {
            urls: TokenBucket::new(MAX_HANDOVER_URLS as f64, f64::from(HANDOVER_RATE), now),
            unlogged: 0,
            last_log: None,
        }
    }

    /// Takes a hand-over of `count` URLs (an empty one opens a new tab: it counts as one), or
    /// says why not.
    pub fn admit(&mut self, count: usize, now: Instant) -> Result<(), String> {
        let cost = count.max(1) as f64;
        if self.urls.take(cost, now) {
            return Ok(());
        }
        let Some(wait) = self.urls.wait_for(cost, now) else {
            return Err(format!("too many URLs (at most {MAX_HANDOVER_URLS})"));
        };
        Err(format!(
            "too many URLs handed over (at most {MAX_HANDOVER_URLS} at once, then \
             {HANDOVER_RATE} a second); try again in {} s",
            wait.as_secs_f64().ceil().max(1.0)
        ))
    }

    /// Logs a refusal, or counts it for the next log line.
    fn log_refusal(&mut self, error: &str, now: Instant) {
        self.unlogged += 1;
        if self
            .last_log
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        let also = match self.unlogged {
            1 => String::new(),
            n => format!(" ({} more since the last report)", n - 1),
        };
        log::warn!(target: "profile", "refused a hand-over: {error}{also}");
        self.unlogged = 0;
        self.last_log = Some(now);
    }
}

/// Reads one hand-over from a peer, passes valid URLs on if the budget allows, and answers.
/// Never panics on input.
fn serve_peer(stream: &UnixStream, deliver: &dyn Fn(Vec<String>), budget: &mut HandOverBudget) {
    let configured = stream
        .set_read_timeout(Some(PEER_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(PEER_TIMEOUT)));
    if configured.is_err() {
        return;
    }
    let mut reader = LineReader::new(stream, MAX_MESSAGE_LEN);
    let answer = match reader.next_line() {
        Ok(LineEvent::Line(bytes)) => {
            let now = Instant::now();
            match parse_hand_over(bytes)
                .and_then(|urls| budget.admit(urls.len(), now).map(|()| urls))
            {
                Ok(urls) => {
                    log::info!(target: "profile", "a second launch handed over {} URL(s)", urls.len());
                    deliver(urls);
                    json!({ "ok": true })
                }
                Err(error) => {
                    budget.log_refusal(&error, now);
                    json!({ "ok": false, "error": error })
                }
            }
        }
        Ok(LineEvent::TooLong) => json!({
            "ok": false,
            "error": format!("message longer than {MAX_MESSAGE_LEN} bytes"),
        }),
        Ok(LineEvent::Eof) | Err(_) => return,
    };
    let mut line = answer.to_string().into_bytes();
    line.push(b'\n');
    let _ = send_all(stream, &line);
}

/// Checks a hand-over message: `{"open": [absolute URLs]}`. Each URL is normalised again (never
/// resolved against this process's directory: a URL without a scheme is refused).
fn parse_hand_over(bytes: &[u8]) -> Result<Vec<String>, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    let Some(Value::Array(list)) = value.get("open") else {
        return Err(r#"expected {"open": [URL, ...]}"#.to_owned());
    };
    if list.len() > MAX_HANDOVER_URLS {
        return Err(format!("too many URLs (at most {MAX_HANDOVER_URLS})"));
    }
    list.iter()
        .map(|item| {
            let Value::String(url) = item else {
                return Err("every URL must be a string".to_owned());
            };
            if url.len() > MAX_URL_LEN {
                return Err(format!("a URL is longer than {MAX_URL_LEN} bytes"));
            }
            if url::Url::parse(url).is_err() {
                return Err("URLs must be absolute (with a scheme)".to_owned());
            }
            url_input::fixup(url, Path::new("/")).map_err(|e| e.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    use crossbeam_channel::Receiver;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn primary(dir: &Path) -> (Profile, InstanceServer, Receiver<Vec<String>>) {
        let Acquired::Primary(profile, listener) = acquire(dir, &[]).unwrap() else {
            panic!("expected to own the profile");
        };
        let (tx, rx) = crossbeam_channel::unbounded();
        let server = listener
            .start(Box::new(move |urls| {
                let _ = tx.send(urls);
            }))
            .unwrap();
        (profile, server, rx)
    }

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Sends raw bytes on the instance socket and returns the answer line.
    fn raw(dir: &Path, bytes: &[u8]) -> String {
        let mut stream = UnixStream::connect(dir.join(INSTANCE_SOCKET)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // The primary stops reading an oversized message and answers at once, so a write may
        // fail with EPIPE; the answer is still there to read.
        let _ = stream.write_all(bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut reader = LineReader::new(&stream, 1 << 16);
        match reader.next_line().unwrap() {
            LineEvent::Line(b) => String::from_utf8(b.to_vec()).unwrap(),
            LineEvent::TooLong => panic!("answer too long"),
            LineEvent::Eof => String::new(),
        }
    }

    #[test]
    fn layout_and_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("profile");
        let (profile, _server, _rx) = primary(&dir);
        assert_eq!(profile.dir, dir);
        assert_eq!(profile.website_data_dir, dir.join("website-data"));
        assert_eq!(
            profile.cookie_file,
            dir.join("website-data").join("cookies.sqlite")
        );
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&profile.website_data_dir), 0o700);
        assert_eq!(mode(&dir.join("lock")), 0o600);
        let sock = dir.join("instance.sock");
        assert!(fs::symlink_metadata(&sock).unwrap().file_type().is_socket());
        assert_eq!(mode(&sock), 0o600);
        // No temporary bind directory is left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, ["instance.sock", "lock", "website-data"]);
    }

    #[test]
    fn second_launch_hands_over() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (profile, server, rx) = primary(dir);

        let sent = urls(&["https://example.org/", "file:///tmp/"]);
        assert!(matches!(acquire(dir, &sent), Ok(Acquired::Secondary)));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), sent);
        // A second launch without URLs asks for a new tab.
        assert!(matches!(acquire(dir, &[]), Ok(Acquired::Secondary)));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            Vec::<String>::new()
        );
        let too_many = vec!["https://example.org/".to_owned(); MAX_HANDOVER_URLS + 1];
        assert!(matches!(
            acquire(dir, &too_many),
            Err(ProfileError::TooManyUrls)
        ));
        // The primary refuses what isn't a URL, and says so to the second launch.
        match acquire(dir, &urls(&["javascript:alert(1)"])) {
            Err(ProfileError::HandOver { reason, .. }) => {
                assert!(reason.contains("unsupported scheme"), "{reason}");
            }
            other => panic!("{:?}", other.err()),
        }

        // Once the primary is gone, the profile can be taken again and its socket is removed.
        drop(server);
        assert!(!dir.join(INSTANCE_SOCKET).exists());
        drop(profile);
        let (_profile, _server, _rx) = primary(dir);
    }

    #[test]
    fn stale_socket_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // A crashed browser's socket: the file remains, nobody listens.
        drop(std::os::unix::net::UnixListener::bind(dir.join(INSTANCE_SOCKET)).unwrap());
        assert!(dir.join(INSTANCE_SOCKET).exists());
        let (_profile, _server, rx) = primary(dir);
        assert!(matches!(
            acquire(dir, &urls(&["https://example.org/"])),
            Ok(Acquired::Secondary)
        ));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            urls(&["https://example.org/"])
        );
    }

    #[test]
    fn garbage_on_the_instance_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (_profile, _server, rx) = primary(dir);

        let many = format!(
            "{{\"open\":[{}]}}\n",
            ["\"https://example.org/\""; MAX_HANDOVER_URLS + 1].join(",")
        );
        let long_url = format!(
            "{{\"open\":[\"https://example.org/{}\"]}}\n",
            "a".repeat(MAX_URL_LEN)
        );
        let huge = format!("{}\n", "x".repeat(2 * MAX_MESSAGE_LEN));
        let cases: Vec<(&[u8], &str)> = vec![
            (b"not json\n", "invalid JSON"),
            (b"[]\n", "expected {\"open\""),
            (
                b"{\"open\":\"https://example.org/\"}\n",
                "expected {\"open\"",
            ),
            (b"{\"open\":[1]}\n", "must be a string"),
            (
                b"{\"open\":[\"javascript:alert(1)\"]}\n",
                "unsupported scheme",
            ),
            (b"{\"open\":[\"./relative.html\"]}\n", "absolute"),
            (b"{\"open\":[\"example.org\"]}\n", "absolute"),
            (b"\xff\xfe{\n", "invalid JSON"),
            (many.as_bytes(), "too many URLs"),
            (long_url.as_bytes(), "longer than"),
            (huge.as_bytes(), "longer than"),
        ];
        for (bytes, needle) in cases {
            let answer = raw(dir, bytes);
            let value: Value = serde_json::from_str(&answer).unwrap();
            assert_eq!(value["ok"], false, "{answer}");
            assert!(
                value["error"].as_str().unwrap().contains(needle),
                "{answer}"
            );
        }
        // A peer that says nothing gets nothing, and nothing was delivered.
        assert_eq!(raw(dir, b""), "");
        assert_eq!(
            raw(dir, b"{\"open\":[]}"),
            "",
            "an unterminated line is not a message"
        );
        assert!(rx.try_recv().is_err());

        // The server still works.
        assert_eq!(
            raw(dir, b"{\"open\":[\"https://example.org\"]}\n"),
            r#"{"ok":true}"#
        );
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            urls(&["https://example.org/"])
        );
    }

    #[test]
    fn hand_over_budget_is_a_burst_then_a_trickle() {
        let t0 = Instant::now();
        let mut budget = HandOverBudget::new(t0);
        assert_eq!(budget.admit(MAX_HANDOVER_URLS, t0), Ok(()));
        let refused = budget.admit(1, t0).unwrap_err();
        assert!(refused.contains("try again in 1 s"), "{refused}");
        // An empty hand-over (a new tab) costs one URL too.
        assert!(budget.admit(0, t0).is_err());
        let half = Duration::from_millis(500);
        assert_eq!(budget.admit(0, t0 + half), Ok(()));
        // Eight URLs take four seconds to come back.
        let refused = budget.admit(8, t0 + half).unwrap_err();
        assert!(refused.contains("try again in 4 s"), "{refused}");
        assert_eq!(budget.admit(8, t0 + half + Duration::from_secs(4)), Ok(()));
        assert!(budget
            .admit(MAX_HANDOVER_URLS + 1, t0 + Duration::from_secs(60))
            .unwrap_err()
            .contains("at most"));
    }

    #[test]
    fn a_flood_of_hand_overs_is_refused_and_says_when_to_retry() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (_profile, _server, rx) = primary(dir);
        let line = |n: usize| {
            let list: Vec<String> = (0..n)
                .map(|i| format!("\"https://example.org/{i}\""))
                .collect();
            format!("{{\"open\":[{}]}}\n", list.join(","))
        };
        assert_eq!(
            raw(dir, line(MAX_HANDOVER_URLS).as_bytes()),
            r#"{"ok":true}"#
        );
        // A flood right after: each peer is refused whole and told when to come back.
        for _ in 0..50 {
            let answer: Value =
                serde_json::from_str(&raw(dir, line(MAX_HANDOVER_URLS).as_bytes())).unwrap();
            assert_eq!(answer["ok"], false, "{answer}");
            let error = answer["error"].as_str().unwrap();
            assert!(error.contains("try again in"), "{error}");
        }
        let delivered: Vec<Vec<String>> = rx.try_iter().collect();
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].len(), MAX_HANDOVER_URLS);
        // A second launch's own error says so too.
        match acquire(dir, &urls(&["https://example.org/a"; MAX_HANDOVER_URLS])) {
            Err(ProfileError::HandOver { reason, .. }) => {
                assert!(reason.contains("try again in"), "{reason}");
            }
            other => panic!("{:?}", other.err()),
        }
        // The budget refills: one URL is taken again once the flood has stopped for as long as
        // one URL takes to come back.
        let refill = Duration::from_millis(1000 / u64::from(HANDOVER_RATE));
        std::thread::sleep(refill);
        assert!(matches!(
            acquire(dir, &urls(&["https://example.org/b"])),
            Ok(Acquired::Secondary)
        ));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            urls(&["https://example.org/b"])
        );
    }

    #[test]
    fn primary_that_never_answers() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // Someone holds the lock but never creates the socket.
        let Acquired::Primary(profile, listener) = acquire(dir, &[]).unwrap() else {
            panic!("expected to own the profile");
        };
        drop(listener);
        let start = Instant::now();
        match acquire_with(dir, &[], Duration::from_millis(300)) {
            Err(e @ ProfileError::NotAnswering { .. }) => {
                assert!(e.to_string().contains("does not answer"), "{e}");
            }
            other => panic!("{:?}", other.err()),
        }
        assert!(start.elapsed() < Duration::from_secs(3));
        drop(profile);
    }

    #[test]
    fn takes_over_when_the_primary_exits_during_the_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let Acquired::Primary(profile, listener) = acquire(&dir, &[]).unwrap() else {
            panic!("expected to own the profile");
        };
        drop(listener);
        let releaser = thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            drop(profile);
        });
        match acquire_with(&dir, &[], Duration::from_secs(5)) {
            Ok(Acquired::Primary(..)) => {}
            Ok(Acquired::Secondary) => panic!("handed over to nobody"),
            Err(e) => panic!("{e}"),
        }
        releaser.join().unwrap();
    }

    #[test]
    fn profile_path_that_is_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "x").unwrap();
        assert!(matches!(
            acquire(&file, &[]),
            Err(ProfileError::NotADirectory(_))
        ));
    }

    #[test]
    fn default_dir_follows_xdg() {
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            default_dir_from(Some("/data".into()), home.clone()),
            Path::new("/data/warren/default")
        );
        assert_eq!(
            default_dir_from(None, home.clone()),
            Path::new("/home/u/.local/share/warren/default")
        );
        assert_eq!(
            default_dir_from(Some("relative".into()), home),
            Path::new("/home/u/.local/share/warren/default")
        );
        assert!(default_dir().ends_with("warren/default"));
    }
}
