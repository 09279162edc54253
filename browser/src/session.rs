//! The saved session in the profile (`session.json`): the tabs to bring back at the next start, written atomically by a background thread and checked as hostile input when read.
//!
//! # The file
//!
//! `PROFILE/session.json`, mode 0600, one JSON object:
//!
//! ```text
//! {"version": 1,
//!  "active": 2,                                  index into "tabs", or null
//!  "tabs": [{"url": "https://example.org/", "title": "Example", "pinned": false,
//!            "last_active_ms": 1767225600000,      Unix time in milliseconds
//!            "grants": {"file": false, "data": false, "internal": false},
//!            "snapshot": null | {
//!              "history": {"entries": [{"url": "…", "title": "…"}], "current": 0,
//!                          "webkit_state": "base64 of WebKit's session state"},
//!              "page": null | {"url": "…", "scroll_x": 0.0, "scroll_y": 812.5, "zoom": 1.0,
//!                              "fields": [{"index": 3, "id": "q", "name": "q",
//!                                          "value": {"text": "…"} | {"checked": true}
//!                                                   | {"selected": [0, 2]}}]}}}]}
//! ```
//!
//! The format is defined by private mirror structs here, not by the `warren-ipc` types, so the
//! wire protocol can change without changing the file.
//!
//! # Writing
//!
//! [`save`] writes a temporary file (0600) in the profile directory, fsyncs it, renames it over
//! `session.json` and fsyncs the directory: a crash leaves either the old file or the new one,
//! never a mix. It writes only what [`load`] accepts: a tab whose URL its grants do not allow is
//! left out, a snapshot that fails [`check_snapshot`] is saved as `null` (the tab reloads its
//! URL), titles are cut to the IPC limit, and at most [`MAX_SESSION_TABS`] tabs are kept. A file
//! that would exceed [`MAX_FILE_LEN`] first loses the WebKit state of the least recently used
//! tabs (their history entries still restore the URLs), then their whole snapshots.
//!
//! [`SessionWriter`] does the writing on a thread of its own, so the UI thread never waits for
//! the disk. Starting it removes the temporary files of saves that a crash interrupted.
//!
//! # Reading
//!
//! The file holds what renderers reported, so [`load`] treats it as hostile. A file that is not a
//! regular file, larger than [`MAX_FILE_LEN`], not valid JSON of this shape, of another format
//! version, with more than [`MAX_SESSION_TABS`] tabs, with `active` out of range, with a string
//! over the IPC limits, with a tab whose URL its own grants do not allow, with a snapshot that
//! fails [`check_snapshot`], or with invalid base64 is **moved aside** to
//! `session.json.bad-<unix-ms>` (never deleted, so the user can still recover it) and
//! [`SessionError::MovedAside`] says where; the caller logs it and starts with a new tab.
//!
//! Two decisions where a file could have been repaired:
//!
//! * `active` out of range is refused, not clamped: Warren never writes one, so the file was
//!   damaged or edited, and there is no right tab to pick.
//! * Pinned tabs after unpinned ones are reordered (stably, `active` follows its tab): the strip
//!   keeps pinned tabs first, the fix is unambiguous and loses nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use warren_ipc::{
    FieldValue, FormField, HistoryEntry, PageState, SessionHistory, TabSnapshot, MAX_TITLE_LEN,
    MAX_URL_LEN,
};

use crate::tabs::snapshot::{check_snapshot, shown, Grants, SnapshotError};

/// The session file's name inside the profile directory.
pub const SESSION_FILE: &str = "session.json";

/// The format version this code writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// The largest session file [`load`] reads and [`save`] writes, in bytes.
pub const MAX_FILE_LEN: u64 = 64 * 1024 * 1024;

/// The most tabs a session may hold.
pub const MAX_SESSION_TABS: usize = 1000;

/// Temporary files of [`save`] are `.session.json.<random>.tmp`.
const TEMP_PREFIX: &str = ".session.json.";
const TEMP_SUFFIX: &str = ".tmp";

/// The tabs of the window, in strip order (pinned first), as saved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Session {
    pub tabs: Vec<SessionTab>,
    /// The index in `tabs` of the active tab; `None` when there was none.
    pub active: Option<usize>,
}

/// One saved tab.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionTab {
    /// The tab's URL: what it loads when it has no usable snapshot.
    pub url: String,
    pub title: String,
    pub pinned: bool,
    /// When the tab was last the active tab, in Unix milliseconds.
    pub last_active_ms: u64,
    /// The kinds of local URL the user opened in the tab.
    pub grants: Grants,
    /// The files the user opened in the tab, which its renderer's sandbox shows.
    pub files: Vec<std::path::PathBuf>,
    /// The tab's history and page state, when known; shared with the tab model, not copied.
    pub snapshot: Option<Arc<TabSnapshot>>,
}

/// What is wrong with a session file.
#[derive(Debug, Error)]
pub enum Problem {
    #[error("it is not a regular file")]
    NotAFile,
    #[error("it is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("it is not a valid session file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("it has format version {found}, and this Warren reads version {FORMAT_VERSION}")]
    WrongVersion { found: u64 },
    #[error("it lists {count} tabs, more than {MAX_SESSION_TABS}")]
    TooManyTabs { count: usize },
    #[error("its active tab {active} is outside its {len} tabs")]
    ActiveOutOfRange { active: usize, len: usize },
    #[error("tabs[{tab}]: its {what} is over the limit")]
    TooLong { tab: usize, what: &'static str },
    #[error("tabs[{tab}]: its URL {} is not one the tab may load", shown(.url))]
    ForbiddenUrl { tab: usize, url: String },
    #[error("tabs[{tab}]: its opened file {} is not an absolute path", shown(.path))]
    BadFile { tab: usize, path: String },
    #[error("tabs[{tab}]: its saved state cannot be restored: {source}")]
    BadSnapshot {
        tab: usize,
        #[source]
        source: SnapshotError,
    },
    #[error("tabs[{tab}]: its WebKit state is not valid base64: {source}")]
    BadBase64 {
        tab: usize,
        #[source]
        source: base64::DecodeError,
    },
}

/// Why the session could not be loaded or saved.
#[derive(Debug, Error)]
pub enum SessionError {
    #[error("the saved session {} was not used because {problem}; it was moved to {} (Warren starts with a new tab)", .path.display(), .moved_to.display())]
    MovedAside {
        path: PathBuf,
        problem: Problem,
        moved_to: PathBuf,
    },
    #[error("the saved session {} cannot be used because {problem}, and moving it aside failed: {source}; move or remove it by hand", .path.display())]
    CannotMoveAside {
        path: PathBuf,
        problem: Problem,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the saved session {}: {source}; check the profile directory's permissions", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot save the session to {}: {source}; check the free space and the permissions of the profile directory", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot encode the session: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("the session is too large to save ({len} bytes even without the tabs' saved states, the limit is {limit}); close some tabs")]
    TooLarge { len: u64, limit: u64 },
}

/// Saves `session` to `dir/session.json` atomically (see the module docs).
pub fn save(dir: &Path, session: &Session) -> Result<(), SessionError> {
    save_within(dir, session, MAX_FILE_LEN)
}

fn save_within(dir: &Path, session: &Session, limit: u64) -> Result<(), SessionError> {
    let bytes = encode(session, limit)?;
    write_atomically(dir, &bytes)
}

/// Reads `dir/session.json`: `Ok(None)` when there is none. A file that fails the checks of the
/// module docs is moved aside and reported as [`SessionError::MovedAside`].
pub fn load(dir: &Path) -> Result<Option<Session>, SessionError> {
    let path = dir.join(SESSION_FILE);
    let bytes = match read_capped(&path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(Failure::Problem(problem)) => return Err(move_aside(&path, problem)),
        Err(Failure::Io(source)) => return Err(SessionError::Read { path, source }),
    };
    match decode(&bytes) {
        Ok(session) => Ok(Some(session)),
        Err(problem) => Err(move_aside(&path, problem)),
    }
}

enum Failure {
    Problem(Problem),
    Io(io::Error),
}

/// The file's bytes, at most [`MAX_FILE_LEN`]; never follows a symbolic link, never blocks on a
/// FIFO.
fn read_capped(path: &Path) -> Result<Option<Vec<u8>>, Failure> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Failure::Problem(Problem::NotAFile))
        }
        Err(e) => return Err(Failure::Io(e)),
    };
    let meta = file.metadata().map_err(Failure::Io)?;
    if !meta.is_file() {
        return Err(Failure::Problem(Problem::NotAFile));
    }
    let too_large = Failure::Problem(Problem::TooLarge {
        limit: MAX_FILE_LEN,
    });
    if meta.len() > MAX_FILE_LEN {
        return Err(too_large);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(Failure::Io)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(too_large);
    }
    Ok(Some(bytes))
}

/// Renames the file to `session.json.bad-<unix-ms>` (with `-1`, `-2`… when that name is taken).
fn move_aside(path: &Path, problem: Problem) -> SessionError {
    let ms = unix_ms_now();
    let mut last_error = io::Error::from(io::ErrorKind::AlreadyExists);
    for attempt in 0..100 {
        let name = if attempt == 0 {
            format!("{SESSION_FILE}.bad-{ms}")
        } else {
            format!("{SESSION_FILE}.bad-{ms}-{attempt}")
        };
        let target = path.with_file_name(name);
        // The profile lock keeps other browsers out, so nothing takes the name between the
        // check and the rename.
        match fs::symlink_metadata(&target) {
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                last_error = e;
                break;
            }
        }
        return match fs::rename(path, &target) {
            Ok(()) => SessionError::MovedAside {
                path: path.to_owned(),
                problem,
                moved_to: target,
            },
            Err(source) => SessionError::CannotMoveAside {
                path: path.to_owned(),
                problem,
                source,
            },
        };
    }
    SessionError::CannotMoveAside {
        path: path.to_owned(),
        problem,
        source: last_error,
    }
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            match fs::remove_file(entry.path()) {
                Ok(()) => {
                    log::info!(target: "session", "removed {name}, left by an interrupted save")
                }
                Err(e) => log::debug!(target: "session", "cannot remove {name}: {e}"),
            }
        }
    }
}

/// Writes `bytes` to a temporary file, syncs it, renames it over `session.json` and syncs the
/// directory.
fn write_atomically(dir: &Path, bytes: &[u8]) -> Result<(), SessionError> {
    let path = dir.join(SESSION_FILE);
    let failed = |source: io::Error| SessionError::Write {
        path: path.clone(),
        source,
    };
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .permissions(fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(failed)?;
    temp.write_all(bytes).map_err(failed)?;
    temp.as_file().sync_all().map_err(failed)?;
    // On failure the temporary file is removed when `temp` drops; session.json is untouched.
    temp.persist(&path).map_err(|e| failed(e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(failed)?;
    Ok(())
}

// The file format. Mirrors of the session and `warren-ipc` types, so that the file does not
// change when the wire protocol does.

#[derive(Deserialize)]
struct VersionProbe {
    version: u64,
}

#[derive(Serialize, Deserialize)]
struct FileSession {
    version: u64,
    active: Option<usize>,
    tabs: Vec<FileTab>,
}

#[derive(Serialize, Deserialize)]
struct FileTab {
    url: String,
    title: String,
    pinned: bool,
    last_active_ms: u64,
    grants: FileGrants,
    /// The opened files' paths, percent-encoded ([`encode_path`]) so that any file name, UTF-8
    /// or not, fits in JSON and comes back byte for byte. Absent in sessions written before
    /// renderers were sandboxed.
    #[serde(default)]
    files: Vec<String>,
    snapshot: Option<FileSnapshot>,
}

#[derive(Serialize, Deserialize)]
struct FileGrants {
    file: bool,
    data: bool,
    internal: bool,
}

#[derive(Serialize, Deserialize)]
struct FileSnapshot {
    history: FileHistory,
    page: Option<FilePage>,
}

#[derive(Serialize, Deserialize)]
struct FileHistory {
    entries: Vec<FileEntry>,
    current: u32,
    /// Base64 (standard alphabet, padded).
    webkit_state: String,
}

#[derive(Serialize, Deserialize)]
struct FileEntry {
    url: String,
    title: String,
}

#[derive(Serialize, Deserialize)]
struct FilePage {
    url: String,
    scroll_x: f64,
    scroll_y: f64,
    zoom: f64,
    fields: Vec<FileField>,
}

#[derive(Serialize, Deserialize)]
struct FileField {
    index: u32,
    id: String,
    name: String,
    value: FileValue,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FileValue {
    Text(String),
    Checked(bool),
    Selected(Vec<u32>),
}

/// Bytes a path keeps as they are in the session file; everything else is `%XX`.
const PATH_KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'.')
    .remove(b'-')
    .remove(b'_')
    .remove(b'~');

/// A path as the session file holds it: its bytes percent-encoded.
fn encode_path(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    percent_encoding::percent_encode(path.as_os_str().as_bytes(), PATH_KEEP).to_string()
}

/// The path [`encode_path`] wrote; `None` unless it is absolute.
fn decode_path(text: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(text).collect();
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(&bytes)).to_path_buf();
    path.is_absolute().then_some(path)
}

impl FileTab {
    fn from_tab(tab: &SessionTab) -> Self {
        Self {
            url: tab.url.clone(),
            title: tab.title.clone(),
            pinned: tab.pinned,
            last_active_ms: tab.last_active_ms,
            grants: FileGrants {
                file: tab.grants.file,
                data: tab.grants.data,
                internal: tab.grants.internal,
            },
            files: tab.files.iter().map(|f| encode_path(f)).collect(),
            snapshot: tab.snapshot.as_deref().map(FileSnapshot::from_snapshot),
        }
    }

    /// The tab, decoded and checked; `index` is its place in the file, for the error.
    fn into_tab(self, index: usize) -> Result<SessionTab, Problem> {
        let grants = Grants {
            file: self.grants.file,
            data: self.grants.data,
            internal: self.grants.internal,
        };
        let snapshot = match self.snapshot {
            None => None,
            Some(file) => {
                Some(Arc::new(file.into_snapshot().map_err(|source| {
                    Problem::BadBase64 { tab: index, source }
                })?))
            }
        };
        let tab = SessionTab {
            url: self.url,
            title: self.title,
            pinned: self.pinned,
            last_active_ms: self.last_active_ms,
            grants,
            files: self
                .files
                .iter()
                .map(|p| {
                    decode_path(p).ok_or_else(|| Problem::BadFile {
                        tab: index,
                        path: p.clone(),
                    })
                })
                .collect::<Result<_, _>>()?,
            snapshot,
        };
        check_tab(&tab, index)?;
        Ok(tab)
    }
}

impl FileSnapshot {
    fn from_snapshot(snapshot: &TabSnapshot) -> Self {
        let history = &snapshot.history;
        Self {
            history: FileHistory {
                entries: history
                    .entries
                    .iter()
                    .map(|e| FileEntry {
                        url: e.url.clone(),
                        title: e.title.clone(),
                    })
                    .collect(),
                current: history.current,
                webkit_state: BASE64.encode(&history.webkit_state),
            },
            page: snapshot.page.as_ref().map(|page| FilePage {
                url: page.url.clone(),
                scroll_x: page.scroll_x,
                scroll_y: page.scroll_y,
                zoom: page.zoom,
                fields: page
                    .fields
                    .iter()
                    .map(|f| FileField {
                        index: f.index,
                        id: f.id.clone(),
                        name: f.name.clone(),
                        value: match &f.value {
                            FieldValue::Text(text) => FileValue::Text(text.clone()),
                            FieldValue::Checked(on) => FileValue::Checked(*on),
                            FieldValue::Selected(options) => FileValue::Selected(options.clone()),
                        },
                    })
                    .collect(),
            }),
        }
    }

    fn into_snapshot(self) -> Result<TabSnapshot, base64::DecodeError> {
        let webkit_state = BASE64.decode(self.history.webkit_state)?;
        Ok(TabSnapshot {
            history: SessionHistory {
                entries: self
                    .history
                    .entries
                    .into_iter()
                    .map(|e| HistoryEntry {
                        url: e.url,
                        title: e.title,
                    })
                    .collect(),
                current: self.history.current,
                webkit_state,
            },
            page: self.page.map(|page| PageState {
                url: page.url,
                scroll_x: page.scroll_x,
                scroll_y: page.scroll_y,
                zoom: page.zoom,
                fields: page
                    .fields
                    .into_iter()
                    .map(|f| FormField {
                        index: f.index,
                        id: f.id,
                        name: f.name,
                        value: match f.value {
                            FileValue::Text(text) => FieldValue::Text(text),
                            FileValue::Checked(on) => FieldValue::Checked(on),
                            FileValue::Selected(options) => FieldValue::Selected(options),
                        },
                    })
                    .collect(),
            }),
        })
    }
}

/// What [`load`] requires of every tab, and [`save`] makes sure of.
fn check_tab(tab: &SessionTab, index: usize) -> Result<(), Problem> {
    if tab.url.len() > MAX_URL_LEN {
        return Err(Problem::TooLong {
            tab: index,
            what: "URL",
        });
    }
    if tab.title.len() > MAX_TITLE_LEN {
        return Err(Problem::TooLong {
            tab: index,
            what: "title",
        });
    }
    if tab.files.len() > crate::tabs::MAX_OPENED_FILES
        || tab
            .files
            .iter()
            .any(|f| !f.is_absolute() || f.as_os_str().len() > MAX_URL_LEN)
    {
        return Err(Problem::TooLong {
            tab: index,
            what: "list of opened files",
        });
    }
    if !tab.grants.allows(&tab.url) {
        return Err(Problem::ForbiddenUrl {
            tab: index,
            url: tab.url.clone(),
        });
    }
    if let Some(snapshot) = &tab.snapshot {
        check_snapshot(snapshot, tab.grants)
            .map_err(|source| Problem::BadSnapshot { tab: index, source })?;
    }
    Ok(())
}

/// Decodes and checks a session file's bytes.
fn decode(bytes: &[u8]) -> Result<Session, Problem> {
    let probe: VersionProbe = serde_json::from_slice(bytes)?;
    if probe.version != FORMAT_VERSION {
        return Err(Problem::WrongVersion {
            found: probe.version,
        });
    }
    let file: FileSession = serde_json::from_slice(bytes)?;
    let len = file.tabs.len();
    if len > MAX_SESSION_TABS {
        return Err(Problem::TooManyTabs { count: len });
    }
    if let Some(active) = file.active.filter(|&a| a >= len) {
        return Err(Problem::ActiveOutOfRange { active, len });
    }
    let tabs = file
        .tabs
        .into_iter()
        .enumerate()
        .map(|(index, tab)| tab.into_tab(index))
        .collect::<Result<Vec<_>, _>>()?;
    // Pinned tabs first, each group in file order; the active index follows its tab.
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_by_key(|&i| !tabs[i].pinned);
    let active = file.active.and_then(|a| order.iter().position(|&i| i == a));
    let mut slots: Vec<Option<SessionTab>> = tabs.into_iter().map(Some).collect();
    let tabs = order.iter().filter_map(|&i| slots[i].take()).collect();
    Ok(Session { tabs, active })
}

/// The file's bytes for `session`, within `limit` (see the module docs for what is left out).
fn encode(session: &Session, limit: u64) -> Result<Vec<u8>, SessionError> {
    let mut tabs: Vec<FileTab> = Vec::with_capacity(session.tabs.len().min(MAX_SESSION_TABS));
    let mut active = None;
    for (index, tab) in session.tabs.iter().enumerate() {
        if tabs.len() == MAX_SESSION_TABS {
            log::warn!(target: "session", "only the first {MAX_SESSION_TABS} tabs are saved");
            break;
        }
        let Some(tab) = savable(tab, tabs.len()) else {
            continue;
        };
        if session.active == Some(index) {
            active = Some(tabs.len());
        }
        tabs.push(tab);
    }

    let pieces: Vec<Vec<u8>> = tabs
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<_, _>>()
        .map_err(SessionError::Encode)?;
    let head = format!(
        "{{\"version\":{FORMAT_VERSION},\"active\":{},\"tabs\":[",
        serde_json::to_string(&active).map_err(SessionError::Encode)?
    );
    let tail = "]}";
    let commas = tabs.len().saturating_sub(1);
    let fixed = (head.len() + tail.len() + commas) as u64;
    let mut pieces = pieces;
    let mut total = fixed + pieces.iter().map(|p| p.len() as u64).sum::<u64>();
    if total > limit {
        total = shrink(&mut tabs, &mut pieces, total, limit)?;
    }

    let mut bytes = Vec::with_capacity(total as usize);
    bytes.extend_from_slice(head.as_bytes());
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            bytes.push(b',');
        }
        bytes.extend_from_slice(piece);
    }
    bytes.extend_from_slice(tail.as_bytes());
    Ok(bytes)
}

/// Makes the file fit `limit`: first the WebKit states, then the whole snapshots of the least
/// recently used tabs go. Returns the new total.
fn shrink(
    tabs: &mut [FileTab],
    pieces: &mut [Vec<u8>],
    mut total: u64,
    limit: u64,
) -> Result<u64, SessionError> {
    let mut order: Vec<usize> = (0..tabs.len()).collect();
    order.sort_by_key(|&i| (tabs[i].last_active_ms, i));
    let mut states = 0;
    let mut snapshots = 0;
    for whole_snapshot in [false, true] {
        for &i in &order {
            if total <= limit {
                break;
            }
            let tab = &mut tabs[i];
            let changed = if whole_snapshot {
                tab.snapshot.take().is_some()
            } else {
                tab.snapshot
                    .as_mut()
                    .is_some_and(|s| !std::mem::take(&mut s.history.webkit_state).is_empty())
            };
            if !changed {
                continue;
            }
            if whole_snapshot {
                snapshots += 1;
            } else {
                states += 1;
            }
            let piece = serde_json::to_vec(tab).map_err(SessionError::Encode)?;
            total = total - pieces[i].len() as u64 + piece.len() as u64;
            pieces[i] = piece;
        }
    }
    if total > limit {
        return Err(SessionError::TooLarge { len: total, limit });
    }
    log::warn!(
        target: "session",
        "the session is over {limit} bytes: saved without the WebKit state of {states} and the \
         history of {snapshots} least recently used tabs"
    );
    Ok(total)
}

/// The tab as [`load`] will accept it, or `None` (logged) when it cannot be saved at all.
fn savable(tab: &SessionTab, index: usize) -> Option<FileTab> {
    let mut tab = tab.clone();
    tab.title = warren_ipc::truncate_str(&tab.title, MAX_TITLE_LEN).to_owned();
    if let Some(snapshot) = &tab.snapshot {
        if let Err(e) = check_snapshot(snapshot, tab.grants) {
            log::warn!(target: "session", "a tab's state is saved without its history: {e}");
            tab.snapshot = None;
        }
    }
    match check_tab(&tab, index) {
        Ok(()) => Some(FileTab::from_tab(&tab)),
        Err(e) => {
            log::warn!(target: "session", "a tab is left out of the saved session: {e}");
            None
        }
    }
}

type Saver = dyn Fn(&Path, &Session) -> Result<(), SessionError> + Send + Sync;

/// Writes submitted sessions on a background thread, keeping only the latest one not yet written.
///
/// The UI thread calls [`submit`](Self::submit) (at most about once a second, when something
/// changed); it never waits for the disk. At shutdown [`finish`](Self::finish) writes the last
/// pending session and returns when it is on disk. Dropping the writer without `finish` lets the
/// thread write what is pending and end on its own.
pub struct SessionWriter {
    dir: PathBuf,
    shared: Arc<Shared>,
    saver: Arc<Saver>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    session: Option<Session>,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionWriter {
    /// Starts the writer thread for the profile directory `dir`, after removing the temporary
    /// files of saves that a crash interrupted.
    pub fn start(dir: impl Into<PathBuf>) -> SessionWriter {
        Self::start_with(dir.into(), Arc::new(save))
    }

    fn start_with(dir: PathBuf, saver: Arc<Saver>) -> SessionWriter {
        // No save of this profile runs yet (the profile lock keeps other browsers out), so every
        // temporary file is a leftover of a save interrupted by a crash.
        remove_stale_temp_files(&dir);
        let shared = Arc::new(Shared {
            state: Mutex::new(Pending::default()),
            wake: Condvar::new(),
        });
        let thread = {
            let (dir, shared, saver) = (dir.clone(), shared.clone(), saver.clone());
            thread::Builder::new()
                .name("session-writer".into())
                .spawn(move || run(&dir, &shared, &*saver))
        };
        let thread = match thread {
            Ok(handle) => Some(handle),
            Err(e) => {
                log::warn!(target: "session", "cannot start the session writer thread ({e}); the session is saved only at exit");
                None
            }
        };
        SessionWriter {
            dir,
            shared,
            saver,
            thread,
        }
    }

    /// Hands `session` to the writer, replacing any session it has not started writing yet.
    /// Never waits for the disk.
    pub fn submit(&self, session: Session) {
        let replaced = {
            let mut pending = self.shared.lock();
            let replaced = pending.session.replace(session);
            self.shared.wake.notify_one();
            replaced
        };
        // A replaced session may hold the last references to large snapshots: freed unlocked.
        drop(replaced);
    }

    /// Writes the pending session, if any, and stops the thread; returns once it is on disk (or
    /// its write failed, which is logged).
    pub fn finish(mut self) {
        self.stop();
        if let Some(handle) = self.thread.take() {
            if handle.join().is_err() {
                log::warn!(target: "session", "the session writer thread panicked");
            }
        }
        // Left only when the thread never started (or died): write it here.
        let pending = self.shared.lock().session.take();
        if let Some(session) = pending {
            if let Err(e) = (self.saver)(&self.dir, &session) {
                log::warn!(target: "session", "{e}");
            }
        }
    }

    fn stop(&self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
    }
}

impl Drop for SessionWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The writer thread: writes each session it takes, until stopped with nothing pending.
fn run(dir: &Path, shared: &Shared, saver: &Saver) {
    loop {
        let session = {
            let mut pending = shared.lock();
            loop {
                if let Some(session) = pending.session.take() {
                    break session;
                }
                if pending.stop {
                    return;
                }
                pending = shared
                    .wake
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        if let Err(e) = saver(dir, &session) {
            log::warn!(target: "session", "{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::collections::BTreeSet;
    use std::time::{Duration, Instant};

    fn entry(url: &str, title: &str) -> HistoryEntry {
        HistoryEntry {
            url: url.to_owned(),
            title: title.to_owned(),
        }
    }

    /// A snapshot with WebKit bytes of every value and a page with every kind of field.
    fn rich_snapshot() -> TabSnapshot {
        TabSnapshot {
            history: SessionHistory {
                entries: vec![
                    entry("file:///home/u/index.html", "Index"),
                    entry("file:///home/u/form.html", "Form — ünïcødé \u{1F600}"),
                    entry("https://example.org/next", ""),
                ],
                current: 1,
                webkit_state: (0..=255u8).chain([0, 0, 255]).collect(),
            },
            page: Some(PageState {
                url: "file:///home/u/form.html".into(),
                scroll_x: 0.1 + 0.2,
                scroll_y: 12_345.678_901_234_5,
                zoom: 1.0 / 3.0,
                fields: vec![
                    FormField {
                        index: 0,
                        id: "name".into(),
                        name: "name".into(),
                        value: FieldValue::Text("Zoë \"quoted\"\n\ttabbed \\ slash".into()),
                    },
                    FormField {
                        index: 4,
                        id: String::new(),
                        name: "agree".into(),
                        value: FieldValue::Checked(true),
                    },
                    FormField {
                        index: 7,
                        id: "colours".into(),
                        name: String::new(),
                        value: FieldValue::Selected(vec![0, 2, 5]),
                    },
                    FormField {
                        index: 9,
                        id: "none".into(),
                        name: String::new(),
                        value: FieldValue::Selected(Vec::new()),
                    },
                ],
            }),
        }
    }

    fn web_tab(url: &str, last_active_ms: u64) -> SessionTab {
        SessionTab {
            url: url.to_owned(),
            title: format!("Title of {url}"),
            pinned: false,
            last_active_ms,
            grants: Grants::default(),
            files: Vec::new(),
            snapshot: Some(Arc::new(crate::tabs::snapshot::single_entry(url, "t"))),
        }
    }

    fn sample() -> Session {
        Session {
            tabs: vec![
                SessionTab {
                    url: warren_ipc::NEW_TAB_URL.into(),
                    title: "New Tab".into(),
                    pinned: true,
                    last_active_ms: 1_767_225_600_000,
                    grants: Grants::for_user_url(warren_ipc::NEW_TAB_URL),
                    files: Vec::new(),
                    snapshot: None,
                },
                SessionTab {
                    url: "file:///home/u/form.html".into(),
                    title: "Form".into(),
                    pinned: false,
                    last_active_ms: u64::MAX,
                    grants: Grants {
                        file: true,
                        data: true,
                        internal: false,
                    },
                    files: vec!["/home/u/form.html".into()],
                    snapshot: Some(Arc::new(rich_snapshot())),
                },
                web_tab("https://example.org/", 0),
            ],
            active: Some(1),
        }
    }

    fn names_in(dir: &Path) -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let session = sample();
        save(dir.path(), &session).unwrap();
        let path = dir.path().join(SESSION_FILE);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            names_in(dir.path()),
            BTreeSet::from([SESSION_FILE.to_owned()])
        );
        assert_eq!(load(dir.path()).unwrap(), Some(session.clone()));

        // The file has the documented shape, with the WebKit state in base64.
        let text: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(text["version"], json!(1));
        assert_eq!(text["active"], json!(1));
        assert_eq!(text["tabs"][0]["snapshot"], Value::Null);
        assert_eq!(text["tabs"][0]["grants"]["internal"], json!(true));
        let tab = &text["tabs"][1];
        assert_eq!(tab["last_active_ms"], json!(u64::MAX));
        assert_eq!(
            tab["snapshot"]["history"]["webkit_state"],
            json!(BASE64.encode(&rich_snapshot().history.webkit_state))
        );
        let fields = &tab["snapshot"]["page"]["fields"];
        assert!(fields[0]["value"]["text"].is_string());
        assert_eq!(fields[1]["value"], json!({"checked": true}));
        assert_eq!(fields[2]["value"], json!({"selected": [0, 2, 5]}));

        // Saving again replaces the file, still without leftovers.
        let mut second = session;
        second.tabs.pop();
        second.active = None;
        save(dir.path(), &second).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(second));
        assert_eq!(
            names_in(dir.path()),
            BTreeSet::from([SESSION_FILE.to_owned()])
        );
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn an_empty_session_round_trips_and_no_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        save(dir.path(), &Session::default()).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(Session::default()));
    }

    /// Writes `contents` as the session file, loads it, and checks that it was moved aside
    /// intact, the error naming the new path; returns the problem.
    fn refused(dir: &Path, contents: &[u8]) -> Problem {
        let path = dir.join(SESSION_FILE);
        fs::write(&path, contents).unwrap();
        refused_file(dir, Some(contents))
    }

    fn refused_file(dir: &Path, contents: Option<&[u8]>) -> Problem {
        let path = dir.join(SESSION_FILE);
        let err = load(dir).expect_err("the file must be refused");
        let message = err.to_string();
        let SessionError::MovedAside {
            path: reported,
            problem,
            moved_to,
        } = err
        else {
            panic!("expected MovedAside, got {message}");
        };
        assert_eq!(reported, path);
        assert!(
            message.contains(&moved_to.display().to_string()),
            "{message}"
        );
        assert_eq!(moved_to.parent(), Some(dir));
        let name = moved_to.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("session.json.bad-"), "{name}");
        assert!(fs::symlink_metadata(&path).is_err(), "the original is gone");
        if let Some(contents) = contents {
            assert_eq!(fs::read(&moved_to).unwrap(), contents, "kept intact");
        }
        // The next start finds no session.
        assert_eq!(load(dir).unwrap(), None);
        problem
    }

    fn valid_json() -> Value {
        let dir = tempfile::tempdir().unwrap();
        save(dir.path(), &sample()).unwrap();
        serde_json::from_slice(&fs::read(dir.path().join(SESSION_FILE)).unwrap()).unwrap()
    }

    fn bytes(value: &Value) -> Vec<u8> {
        serde_json::to_vec(value).unwrap()
    }

    #[test]
    fn unreadable_files_are_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let valid = bytes(&valid_json());
        assert!(matches!(refused(dir, b""), Problem::Json(_)));
        assert!(matches!(
            refused(dir, &valid[..valid.len() / 2]),
            Problem::Json(_)
        ));
        assert!(matches!(refused(dir, b"not json at all"), Problem::Json(_)));
        assert!(matches!(refused(dir, b"[1, 2, 3]"), Problem::Json(_)));
        assert!(matches!(
            refused(dir, b"{\"version\": 1}"),
            Problem::Json(_)
        ));
        let mut wrong_type = valid_json();
        wrong_type["tabs"][0]["pinned"] = json!("yes");
        assert!(matches!(
            refused(dir, &bytes(&wrong_type)),
            Problem::Json(_)
        ));
        let mut wrong_version = valid_json();
        wrong_version["version"] = json!(2);
        assert!(matches!(
            refused(dir, &bytes(&wrong_version)),
            Problem::WrongVersion { found: 2 }
        ));
        let mut no_version = valid_json();
        no_version.as_object_mut().unwrap().remove("version");
        assert!(matches!(
            refused(dir, &bytes(&no_version)),
            Problem::Json(_)
        ));
    }

    #[test]
    fn a_huge_file_is_moved_aside_unread() {
        let dir = tempfile::tempdir().unwrap();
        // Valid JSON padded past the limit: the size alone refuses it.
        let mut contents = bytes(&valid_json());
        contents.resize(MAX_FILE_LEN as usize + 1, b' ');
        assert!(matches!(
            refused(dir.path(), &contents),
            Problem::TooLarge { .. }
        ));
        // Exactly at the limit is read.
        contents.truncate(MAX_FILE_LEN as usize);
        fs::write(dir.path().join(SESSION_FILE), &contents).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(sample()));
    }

    #[test]
    fn hostile_tabs_are_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();

        let mut passwd = valid_json();
        passwd["tabs"][2]["url"] = json!("file:///etc/passwd");
        let problem = refused(dir, &bytes(&passwd));
        assert!(
            matches!(&problem, Problem::ForbiddenUrl { tab: 2, url } if url == "file:///etc/passwd"),
            "{problem}"
        );

        let mut forbidden_entry = valid_json();
        forbidden_entry["tabs"][2]["snapshot"]["history"]["entries"]
            .as_array_mut()
            .unwrap()
            .push(json!({"url": "file:///etc/shadow", "title": ""}));
        assert!(matches!(
            refused(dir, &bytes(&forbidden_entry)),
            Problem::BadSnapshot {
                tab: 2,
                source: SnapshotError::ForbiddenUrl { index: 1, .. }
            }
        ));

        let mut out_of_range = valid_json();
        out_of_range["tabs"][2]["snapshot"]["history"]["current"] = json!(5);
        assert!(matches!(
            refused(dir, &bytes(&out_of_range)),
            Problem::BadSnapshot {
                tab: 2,
                source: SnapshotError::CurrentOutOfRange { current: 5, len: 1 }
            }
        ));

        let mut bad_base64 = valid_json();
        bad_base64["tabs"][1]["snapshot"]["history"]["webkit_state"] = json!("not*base64!");
        assert!(matches!(
            refused(dir, &bytes(&bad_base64)),
            Problem::BadBase64 { tab: 1, .. }
        ));

        let mut big_state = valid_json();
        big_state["tabs"][1]["snapshot"]["history"]["webkit_state"] =
            json!(BASE64.encode(vec![7u8; warren_ipc::MAX_WEBKIT_STATE_LEN + 1]));
        assert!(matches!(
            refused(dir, &bytes(&big_state)),
            Problem::BadSnapshot {
                tab: 1,
                source: SnapshotError::TooLarge { .. }
            }
        ));

        let mut negative_zoom = valid_json();
        negative_zoom["tabs"][1]["snapshot"]["page"]["zoom"] = json!(-1.0);
        assert!(matches!(
            refused(dir, &bytes(&negative_zoom)),
            Problem::BadSnapshot {
                tab: 1,
                source: SnapshotError::BadNumber
            }
        ));

        let mut long_title = valid_json();
        long_title["tabs"][0]["title"] = json!("x".repeat(MAX_TITLE_LEN + 1));
        assert!(matches!(
            refused(dir, &bytes(&long_title)),
            Problem::TooLong {
                tab: 0,
                what: "title"
            }
        ));

        let mut long_url = valid_json();
        long_url["tabs"][2]["url"] =
            json!(format!("https://a.example/{}", "x".repeat(MAX_URL_LEN)));
        assert!(matches!(
            refused(dir, &bytes(&long_url)),
            Problem::TooLong {
                tab: 2,
                what: "URL"
            }
        ));

        let mut many = valid_json();
        let one = many["tabs"][2].clone();
        many["tabs"] = Value::Array(vec![one; MAX_SESSION_TABS + 1]);
        many["active"] = Value::Null;
        assert!(matches!(
            refused(dir, &bytes(&many)),
            Problem::TooManyTabs { count } if count == MAX_SESSION_TABS + 1
        ));

        let mut active = valid_json();
        active["active"] = json!(3);
        assert!(matches!(
            refused(dir, &bytes(&active)),
            Problem::ActiveOutOfRange { active: 3, len: 3 }
        ));
    }

    #[test]
    fn links_and_directories_are_moved_aside_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let target = dir.join("elsewhere.json");
        fs::write(&target, bytes(&valid_json())).unwrap();
        std::os::unix::fs::symlink(&target, dir.join(SESSION_FILE)).unwrap();
        assert!(matches!(refused_file(dir, None), Problem::NotAFile));
        assert!(target.exists(), "the link's target is left alone");

        fs::create_dir(dir.join(SESSION_FILE)).unwrap();
        assert!(matches!(refused_file(dir, None), Problem::NotAFile));
    }

    #[test]
    fn files_moved_aside_in_the_same_millisecond_keep_distinct_names() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            fs::write(dir.path().join(SESSION_FILE), format!("garbage {i}")).unwrap();
            let _ = load(dir.path()).unwrap_err();
        }
        let bad: Vec<String> = names_in(dir.path())
            .into_iter()
            .filter(|n| n.starts_with("session.json.bad-"))
            .collect();
        assert_eq!(bad.len(), 5, "{bad:?}");
        let contents: BTreeSet<String> = bad
            .iter()
            .map(|n| fs::read_to_string(dir.path().join(n)).unwrap())
            .collect();
        assert_eq!(contents.len(), 5);
    }

    #[test]
    fn pinned_tabs_are_moved_first_and_active_follows() {
        let dir = tempfile::tempdir().unwrap();
        let mut tabs: Vec<SessionTab> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| web_tab(&format!("https://{n}.example/"), 0))
            .collect();
        tabs[1].pinned = true;
        tabs[3].pinned = true;
        let session = Session {
            tabs,
            active: Some(2),
        };
        save(dir.path(), &session).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        let urls: Vec<&str> = loaded.tabs.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://b.example/",
                "https://d.example/",
                "https://a.example/",
                "https://c.example/"
            ]
        );
        assert_eq!(loaded.active, Some(3));
        assert_eq!(loaded.tabs[3], session.tabs[2]);
    }

    #[test]
    fn save_leaves_out_what_load_would_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let mut session = sample();
        // A tab at a URL its grants do not allow is left out; the active index follows.
        let mut sneaky = web_tab("https://ok.example/", 0);
        sneaky.url = "file:///etc/passwd".into();
        session.tabs.insert(0, sneaky);
        session.active = Some(2);
        // A snapshot that does not pass the check is saved as null.
        let mut broken = web_tab("https://broken.example/", 0);
        let mut snapshot = (*broken.snapshot.take().unwrap()).clone();
        snapshot.history.current = 9;
        broken.snapshot = Some(Arc::new(snapshot));
        session.tabs.push(broken);
        // An overlong title is cut.
        session.tabs[1].title = "é".repeat(MAX_TITLE_LEN);
        save(dir.path(), &session).unwrap();

        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.tabs.len(), 4);
        assert_eq!(loaded.active, Some(1));
        assert_eq!(loaded.tabs[1], sample().tabs[1]);
        assert_eq!(loaded.tabs[0].title.len(), MAX_TITLE_LEN);
        assert_eq!(loaded.tabs[3].url, "https://broken.example/");
        assert_eq!(loaded.tabs[3].snapshot, None);
    }

    #[test]
    fn an_oversized_session_sheds_the_oldest_states_first() {
        let dir = tempfile::tempdir().unwrap();
        let tabs: Vec<SessionTab> = (0..3)
            .map(|i| {
                let mut tab = web_tab(&format!("https://{i}.example/"), 1000 - i);
                let mut snapshot = (*tab.snapshot.take().unwrap()).clone();
                snapshot.history.webkit_state = vec![i as u8; 30_000];
                tab.snapshot = Some(Arc::new(snapshot));
                tab
            })
            .collect();
        let session = Session {
            tabs,
            active: Some(0),
        };
        let full = encode(&session, MAX_FILE_LEN).unwrap().len() as u64;
        // Room for all but one WebKit state: the least recently used tab (2) loses its own.
        save_within(dir.path(), &session, full - 30_000).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        let states: Vec<usize> = loaded
            .tabs
            .iter()
            .map(|t| t.snapshot.as_ref().unwrap().history.webkit_state.len())
            .collect();
        assert_eq!(states, [30_000, 30_000, 0]);
        assert_eq!(
            loaded.tabs[2]
                .snapshot
                .as_ref()
                .unwrap()
                .history
                .entries
                .len(),
            1
        );
        assert_eq!(loaded.tabs[..2], session.tabs[..2]);

        // Room for no state at all: every snapshot's WebKit state goes, then whole snapshots.
        let small = encode(
            &Session {
                tabs: session
                    .tabs
                    .iter()
                    .map(|t| SessionTab {
                        snapshot: None,
                        ..t.clone()
                    })
                    .collect(),
                active: Some(0),
            },
            MAX_FILE_LEN,
        )
        .unwrap()
        .len() as u64;
        save_within(dir.path(), &session, small + 20).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        assert!(loaded.tabs.iter().all(|t| t.snapshot.is_none()));

        // Too large even then: an error, and the previous file stays as it was.
        let before = fs::read(dir.path().join(SESSION_FILE)).unwrap();
        let err = save_within(dir.path(), &session, small - 1).unwrap_err();
        assert!(matches!(err, SessionError::TooLarge { .. }), "{err}");
        assert_eq!(fs::read(dir.path().join(SESSION_FILE)).unwrap(), before);
        assert_eq!(
            names_in(dir.path()),
            BTreeSet::from([SESSION_FILE.to_owned()])
        );
    }

    #[test]
    fn the_writer_removes_temporary_files_of_interrupted_saves() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".session.json.abc123.tmp");
        fs::write(&stale, b"{\"version\":1,\"act").unwrap();
        let unrelated = dir.path().join("cookies.sqlite");
        fs::write(&unrelated, b"x").unwrap();
        // Loading leaves them alone (a writer may be saving)...
        assert_eq!(load(dir.path()).unwrap(), None);
        assert!(stale.exists());
        // ...starting the writer removes them.
        SessionWriter::start(dir.path()).finish();
        assert!(!stale.exists());
        assert!(unrelated.exists());
        assert_eq!(load(dir.path()).unwrap(), None);
    }

    #[test]
    fn a_failed_save_reports_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-profile");
        let err = save(&missing, &sample()).unwrap_err();
        assert!(matches!(err, SessionError::Write { .. }));
        assert!(err.to_string().contains("no-such-profile"), "{err}");
    }

    fn titled(title: &str) -> Session {
        let mut tab = web_tab("https://example.org/", 0);
        tab.title = title.to_owned();
        Session {
            tabs: vec![tab],
            active: Some(0),
        }
    }

    #[test]
    fn the_writer_keeps_only_the_latest_pending_session() {
        let (started_tx, started) = crossbeam_channel::unbounded::<String>();
        let (release, release_rx) = crossbeam_channel::unbounded::<()>();
        let written = Arc::new(Mutex::new(Vec::new()));
        let saver = {
            let written = written.clone();
            move |_: &Path, s: &Session| {
                let title = s.tabs[0].title.clone();
                started_tx.send(title.clone()).unwrap();
                release_rx.recv_timeout(Duration::from_secs(10)).unwrap();
                written.lock().unwrap().push(title);
                Ok(())
            }
        };
        let writer = SessionWriter::start_with(PathBuf::from("/nonexistent"), Arc::new(saver));
        writer.submit(titled("a"));
        // The writer is now busy with "a"; the next three arrive meanwhile.
        assert_eq!(started.recv_timeout(Duration::from_secs(10)).unwrap(), "a");
        for title in ["b", "c", "d"] {
            writer.submit(titled(title));
        }
        release.send(()).unwrap();
        assert_eq!(started.recv_timeout(Duration::from_secs(10)).unwrap(), "d");
        release.send(()).unwrap();
        writer.finish();
        assert_eq!(*written.lock().unwrap(), ["a", "d"]);
        assert!(started.try_recv().is_err());
    }

    #[test]
    fn the_writer_writes_promptly_and_finish_writes_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let writer = SessionWriter::start(dir.path());
        writer.submit(titled("first"));
        let deadline = Instant::now() + Duration::from_secs(10);
        // The rename is atomic: once the file exists it is complete.
        while !dir.path().join(SESSION_FILE).exists() {
            assert!(Instant::now() < deadline, "nothing written");
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(load(dir.path()).unwrap(), Some(titled("first")));
        for i in 0..20 {
            writer.submit(titled(&format!("update {i}")));
        }
        writer.finish();
        assert_eq!(load(dir.path()).unwrap(), Some(titled("update 19")));
        assert_eq!(
            names_in(dir.path()),
            BTreeSet::from([SESSION_FILE.to_owned()])
        );
    }

    #[test]
    fn write_errors_do_not_stop_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        let writer = SessionWriter::start(&profile);
        // The directory does not exist yet: the write fails and is logged.
        writer.submit(titled("lost"));
        thread::sleep(Duration::from_millis(50));
        fs::create_dir(&profile).unwrap();
        writer.submit(titled("kept"));
        writer.finish();
        assert_eq!(load(&profile).unwrap(), Some(titled("kept")));
    }
}
