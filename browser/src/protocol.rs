//! The control protocol's types — commands, request and reply lines, results — shared by the server (`control`) and its client (`ctl`).
//!
//! One JSON object per line (see `docs/ARCHITECTURE.md`, "Control protocol"). A request is
//! `{"id": number|string|null, "cmd": NAME, ...arguments}` ([`RequestLine`]); its reply is
//! `{"id": ID, "ok": true, "result": ...}` or `{"id": ID, "ok": false, "error": "..."}`
//! ([`ReplyLine`]), with the request's id, or null when the request had no usable id.
//!
//! # Parsing
//!
//! serde's own messages for an internally tagged enum say little ("unknown variant", "invalid
//! type: integer `-1`, expected u64"), so [`parse_request`] reads `id` and `cmd` from a
//! [`serde_json::Value`] itself, then deserializes the arguments into [`Command`], whose field
//! deserializers name the field in their messages (`missing "tab_id"`, `tab_id must be a
//! non-negative integer`, `url must be a string` ...).
//!
//! Unknown fields are ignored, on every command: a client may send what a later version adds, as
//! in the protocol's first version. Both ends parse the same way, so `browser ctl` refuses
//! locally exactly what the browser would refuse.

use std::path::Path;

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;
use warren_ipc::TabId;

use crate::url_input;

/// One command with its arguments checked; internally tagged by `cmd`.
///
/// URLs are checked and normalised with [`url_input::fixup`] by [`parse_request`] (see
/// [`Command::fixup_urls`]); a `Command` deserialized directly holds them as sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// `version`: answered with [`VersionInfo`].
    Version,
    /// `tabs`: answered with every tab, [`TabInfo`]s in strip order.
    Tabs,
    /// `new_tab`: open a tab at `url` (none: the new-tab page), in the background if asked;
    /// answered with [`NewTabResult`].
    NewTab {
        #[serde(
            default,
            deserialize_with = "de::optional_url",
            skip_serializing_if = "Option::is_none"
        )]
        url: Option<String>,
        #[serde(
            default,
            deserialize_with = "de::background",
            skip_serializing_if = "is_false"
        )]
        background: bool,
    },
    /// `navigate`: load `url` in the tab.
    Navigate {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
        #[serde(deserialize_with = "de::url")]
        url: String,
    },
    /// `activate`: make the tab the active one.
    Activate {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
    },
    /// `close`: close the tab.
    Close {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
    },
    /// `reload`: reload the tab (a crashed tab gets a fresh renderer).
    Reload {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
    },
    /// `back`: go one step back in the tab's history.
    Back {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
    },
    /// `forward`: go one step forward in the tab's history.
    Forward {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
    },
    /// `eval`: evaluate the JavaScript expression `js` in the tab's page; answered with
    /// [`EvalResult`].
    Eval {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
        #[serde(deserialize_with = "de::js")]
        js: String,
    },
    /// `task_manager`: every process of the browser with its cost; answered with
    /// [`TaskManagerResult`].
    TaskManager,
    /// `end_process`: kill the tab's renderer tree; the tab becomes crashed.
    EndProcess {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
    },
    /// `discard`: drop the tab's renderer, keeping a snapshot; answered with [`DiscardResult`].
    Discard {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
    },
    /// `freeze`: stop the tab's renderer tree.
    Freeze {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
    },
    /// `unfreeze`: continue a frozen tab's renderer tree.
    Unfreeze {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
    },
    /// `pin`: pin the tab.
    Pin {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
    },
    /// `unpin`: unpin the tab.
    Unpin {
        #[serde(deserialize_with = "de::tab_id")]
        tab_id: TabId,
    },
    /// `shutdown`: answer, then exit cleanly.
    Shutdown,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Command {
    /// Every command name, in the order error messages list them.
    pub const NAMES: [&'static str; 18] = [
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

    /// The protocol's name of this command (`new_tab`, `eval` ...).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Version => "version",
            Self::Tabs => "tabs",
            Self::NewTab { .. } => "new_tab",
            Self::Navigate { .. } => "navigate",
            Self::Activate { .. } => "activate",
            Self::Close { .. } => "close",
            Self::Reload { .. } => "reload",
            Self::Back { .. } => "back",
            Self::Forward { .. } => "forward",
            Self::Eval { .. } => "eval",
            Self::TaskManager => "task_manager",
            Self::EndProcess { .. } => "end_process",
            Self::Discard { .. } => "discard",
            Self::Freeze { .. } => "freeze",
            Self::Unfreeze { .. } => "unfreeze",
            Self::Pin { .. } => "pin",
            Self::Unpin { .. } => "unpin",
            Self::Shutdown => "shutdown",
        }
    }

    /// The tab the command is about, if it names one.
    pub fn tab_id(&self) -> Option<TabId> {
        match *self {
            Self::Navigate { tab_id, .. }
            | Self::Activate { tab_id }
            | Self::Close { tab_id }
            | Self::Reload { tab_id }
            | Self::Back { tab_id }
            | Self::Forward { tab_id }
            | Self::Eval { tab_id, .. }
            | Self::EndProcess { tab_id }
            | Self::Discard { tab_id }
            | Self::Freeze { tab_id }
            | Self::Unfreeze { tab_id }
            | Self::Pin { tab_id }
            | Self::Unpin { tab_id } => Some(tab_id),
            Self::Version
            | Self::Tabs
            | Self::NewTab { .. }
            | Self::TaskManager
            | Self::Shutdown => None,
        }
    }

    /// Reads the command of a request object: `cmd` and its arguments; other fields (`id`, and
    /// fields this version does not know) are ignored. URLs are not normalised yet (see
    /// [`Command::fixup_urls`]). The error is the message for the reply.
    pub fn from_object(map: Map<String, Value>) -> Result<Command, String> {
        let name = match map.get("cmd") {
            Some(Value::String(name)) => name,
            Some(_) => return Err("cmd must be a string".to_owned()),
            None => return Err(missing("cmd")),
        };
        if !Self::NAMES.contains(&name.as_str()) {
            // A huge name is not echoed whole.
            let shown: String = name.chars().take(40).collect();
            return Err(format!(
                "unknown command \"{shown}\"; known commands: {}",
                Self::NAMES.join(", ")
            ));
        }
        serde_json::from_value(Value::Object(map)).map_err(|e| {
            let text = e.to_string();
            // The field deserializers below word every other error; serde words a missing one.
            match text
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                Some(field) => missing(field),
                None => text,
            }
        })
    }

    /// Checks and normalises the command's URLs as the address bar does ([`url_input::fixup`]),
    /// resolving paths against `cwd`. The error is the message for the reply.
    pub fn fixup_urls(self, cwd: &Path) -> Result<Command, String> {
        let fix = |url: String| url_input::fixup(&url, cwd).map_err(|e| e.to_string());
        Ok(match self {
            Self::NewTab { url, background } => Self::NewTab {
                url: url.map(fix).transpose()?,
                background,
            },
            Self::Navigate { tab_id, url } => Self::Navigate {
                tab_id,
                url: fix(url)?,
            },
            other => other,
        })
    }
}

/// The message for a missing (or null) field.
fn missing(field: &str) -> String {
    format!("missing \"{field}\"")
}

/// Field deserializers whose messages name their field. They read the field as a JSON value
/// first, so every type mismatch gets the same wording whatever serde's buffering saw.
mod de {
    use super::*;

    pub(super) fn tab_id<'de, D: Deserializer<'de>>(d: D) -> Result<TabId, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Err(D::Error::custom(missing("tab_id"))),
            value => value
                .as_u64()
                .map(TabId)
                .ok_or_else(|| D::Error::custom("tab_id must be a non-negative integer")),
        }
    }

    fn string<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<Option<String>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(D::Error::custom(format!("{field} must be a string"))),
        }
    }

    fn required_string<'de, D: Deserializer<'de>>(d: D, field: &str) -> Result<String, D::Error> {
        string(d, field)?.ok_or_else(|| D::Error::custom(missing(field)))
    }

    pub(super) fn url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        required_string(d, "url")
    }

    pub(super) fn js<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        required_string(d, "js")
    }

    pub(super) fn optional_url<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<String>, D::Error> {
        string(d, "url")
    }

    pub(super) fn background<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(false),
            Value::Bool(b) => Ok(b),
            _ => Err(D::Error::custom("background must be true or false")),
        }
    }
}

/// A request's `id`: a number or a string, echoed in its reply.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(serde_json::Number),
    String(String),
}

impl From<u64> for RequestId {
    fn from(n: u64) -> Self {
        Self::Number(n.into())
    }
}

impl From<&str> for RequestId {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

/// One request line: `{"id": ..., "cmd": ..., ...arguments}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestLine {
    pub id: Option<RequestId>,
    #[serde(flatten)]
    pub command: Command,
}

/// A request line that cannot be carried out, with the id its error reply carries (`None`: the
/// line is not valid JSON, not an object, or its id has a bad type).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct BadRequest {
    pub id: Option<RequestId>,
    pub message: String,
}

/// Parses one request line (without its newline) and normalises its URLs against `cwd`, the
/// directory relative paths are taken from.
pub fn parse_request(line: &str, cwd: &Path) -> Result<RequestLine, BadRequest> {
    let bad = |id: Option<RequestId>, message: String| BadRequest { id, message };
    let value: Value =
        serde_json::from_str(line).map_err(|e| bad(None, format!("invalid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad(
            None,
            r#"a request must be a JSON object such as {"id":1,"cmd":"version"}"#.to_owned(),
        ));
    };
    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(RequestId::Number(n.clone())),
        Some(Value::String(s)) => Some(RequestId::String(s.clone())),
        Some(_) => return Err(bad(None, "id must be a number or a string".to_owned())),
    };
    match Command::from_object(map).and_then(|command| command.fixup_urls(cwd)) {
        Ok(command) => Ok(RequestLine { id, command }),
        Err(message) => Err(bad(id, message)),
    }
}

/// The UI's answer to a request: the result, or the error message.
pub type Reply = Result<Answer, String>;

/// A successful result, as the command asks for it. Serialized as the bare result (`Done` as
/// `{}`), so the reply line reads `"result": {...}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// For `version`.
    Version(VersionInfo),
    /// For `tabs`: every tab in strip order.
    Tabs(Vec<TabInfo>),
    /// For `new_tab`.
    NewTab(NewTabResult),
    /// For `eval`.
    Eval(EvalResult),
    /// For `discard`.
    Discard(DiscardResult),
    /// For `task_manager`.
    TaskManager(TaskManagerResult),
    /// `{}`, for every other command.
    Done,
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Version(r) => r.serialize(s),
            Self::Tabs(r) => r.serialize(s),
            Self::NewTab(r) => r.serialize(s),
            Self::Eval(r) => r.serialize(s),
            Self::Discard(r) => r.serialize(s),
            Self::TaskManager(r) => r.serialize(s),
            Self::Done => s.serialize_map(Some(0))?.end(),
        }
    }
}

impl From<VersionInfo> for Answer {
    fn from(r: VersionInfo) -> Self {
        Self::Version(r)
    }
}

impl From<Vec<TabInfo>> for Answer {
    fn from(r: Vec<TabInfo>) -> Self {
        Self::Tabs(r)
    }
}

impl From<NewTabResult> for Answer {
    fn from(r: NewTabResult) -> Self {
        Self::NewTab(r)
    }
}

impl From<EvalResult> for Answer {
    fn from(r: EvalResult) -> Self {
        Self::Eval(r)
    }
}

impl From<DiscardResult> for Answer {
    fn from(r: DiscardResult) -> Self {
        Self::Discard(r)
    }
}

impl From<TaskManagerResult> for Answer {
    fn from(r: TaskManagerResult) -> Self {
        Self::TaskManager(r)
    }
}

/// One reply line. The server writes `ReplyLine<Answer>`; a client reads the result type of the
/// command it sent (or [`Value`]). Serialized with the fields in protocol order: `id`, `ok`, then
/// `result` or `error`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplyLine<T> {
    pub id: Option<RequestId>,
    pub reply: Result<T, String>,
}

impl<T: Serialize> Serialize for ReplyLine<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("id", &self.id)?;
        match &self.reply {
            Ok(result) => {
                map.serialize_entry("ok", &true)?;
                map.serialize_entry("result", result)?;
            }
            Err(error) => {
                map.serialize_entry("ok", &false)?;
                map.serialize_entry("error", error)?;
            }
        }
        map.end()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for ReplyLine<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            id: Option<RequestId>,
            ok: bool,
            #[serde(default)]
            result: Value,
            error: Option<String>,
        }
        let raw = Raw::deserialize(d)?;
        let reply = if raw.ok {
            Ok(serde_json::from_value(raw.result)
                .map_err(|e| D::Error::custom(format!("unexpected result: {e}")))?)
        } else {
            Err(raw
                .error
                .ok_or_else(|| D::Error::custom("an error reply without \"error\""))?)
        };
        Ok(Self { id: raw.id, reply })
    }
}

/// The result of `version`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// `"warren"`.
    pub name: String,
    pub version: String,
    /// The browser process.
    pub pid: u32,
}

impl VersionInfo {
    /// This browser's version information.
    pub fn current() -> Self {
        Self {
            name: "warren".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
        }
    }
}

/// A tab's lifecycle state, serialized in lowercase: the tab model's own type.
pub use crate::tabs::TabState;

/// One row of `tabs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TabInfo {
    pub tab_id: TabId,
    /// The position in the strip, from 0.
    pub index: usize,
    pub url: String,
    pub title: String,
    pub state: TabState,
    pub loading: bool,
    /// False while the renderer has missed its ping deadline.
    pub responsive: bool,
    pub pinned: bool,
    /// The tab's renderer process, if it has one.
    pub renderer_pid: Option<u32>,
    /// Why the tab may not be discarded (such as "form input"), or `None`.
    pub protected: Option<String>,
    /// When the tab was last the active tab, in milliseconds since the Unix epoch.
    pub last_active_ms: u64,
}

/// The result of `new_tab`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTabResult {
    pub tab_id: TabId,
}

/// The result of `eval`: the expression's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalResult {
    pub value: Value,
}

/// The result of `discard`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscardResult {
    /// The private memory the tab's processes held, in KiB.
    pub freed_kb: u64,
}

/// The result of `task_manager`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskManagerResult {
    /// In tree order: the browser, each tab's processes, spares, then others.
    pub processes: Vec<ProcessInfo>,
}

/// What a process is, for the task manager; serialized in lowercase: the measurement core's own
/// type.
pub use crate::procs::Kind as ProcessKind;

/// One process of `task_manager` (see `procs` for how each figure is measured).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub parent_pid: u32,
    pub kind: ProcessKind,
    /// The tab whose renderer this process is or descends from.
    pub tab_id: Option<TabId>,
    /// The tab's title; "Browser", "Spare renderer", or the process name for the others.
    pub title: String,
    /// Private footprint (RssAnon + VmSwap) in KiB; `None` when unreadable.
    pub memory_kb: Option<u64>,
    /// Proportional set size in KiB; `None` when not measured or unreadable.
    pub pss_kb: Option<u64>,
    /// Percentage of one core, to one decimal.
    pub cpu_percent: f64,
    /// Every sandbox layer is in force for this process (see `sandbox`).
    pub sandboxed: bool,
    /// The sandbox layers this process has: `namespaces`, `seccomp`, `landlock`, `webkit`.
    #[serde(default)]
    pub sandbox: Vec<String>,
    /// The executable's file name.
    pub name: String,
    pub threads: u32,
    /// Open file descriptors; `None` when unreadable.
    pub fds: Option<u32>,
    /// Seconds since the process started, to one decimal.
    pub uptime_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CWD: &str = "/home/u";

    fn parsed(line: &str) -> Result<Command, String> {
        parse_request(line, Path::new(CWD))
            .map(|r| r.command)
            .map_err(|e| e.message)
    }

    fn id_of(line: &str) -> Option<RequestId> {
        match parse_request(line, Path::new(CWD)) {
            Ok(r) => r.id,
            Err(e) => e.id,
        }
    }

    /// One example of every command, as a client sends it and as it parses.
    fn every_command() -> Vec<(Value, Command)> {
        let t = TabId;
        vec![
            (json!({"cmd": "version"}), Command::Version),
            (json!({"cmd": "tabs"}), Command::Tabs),
            (
                json!({"cmd": "new_tab"}),
                Command::NewTab {
                    url: None,
                    background: false,
                },
            ),
            (
                json!({"cmd": "new_tab", "url": "https://example.org/", "background": true}),
                Command::NewTab {
                    url: Some("https://example.org/".into()),
                    background: true,
                },
            ),
            (
                json!({"cmd": "navigate", "tab_id": 3, "url": "http://127.0.0.1:8000/a"}),
                Command::Navigate {
                    tab_id: t(3),
                    url: "http://127.0.0.1:8000/a".into(),
                },
            ),
            (
                json!({"cmd": "activate", "tab_id": 0}),
                Command::Activate { tab_id: t(0) },
            ),
            (
                json!({"cmd": "close", "tab_id": 1}),
                Command::Close { tab_id: t(1) },
            ),
            (
                json!({"cmd": "reload", "tab_id": 2}),
                Command::Reload { tab_id: t(2) },
            ),
            (
                json!({"cmd": "back", "tab_id": 3}),
                Command::Back { tab_id: t(3) },
            ),
            (
                json!({"cmd": "forward", "tab_id": 4}),
                Command::Forward { tab_id: t(4) },
            ),
            (
                json!({"cmd": "eval", "tab_id": 5, "js": "document.title"}),
                Command::Eval {
                    tab_id: t(5),
                    js: "document.title".into(),
                },
            ),
            (json!({"cmd": "task_manager"}), Command::TaskManager),
            (
                json!({"cmd": "end_process", "tab_id": 6}),
                Command::EndProcess { tab_id: t(6) },
            ),
            (
                json!({"cmd": "discard", "tab_id": 7}),
                Command::Discard { tab_id: t(7) },
            ),
            (
                json!({"cmd": "freeze", "tab_id": 8}),
                Command::Freeze { tab_id: t(8) },
            ),
            (
                json!({"cmd": "unfreeze", "tab_id": 9}),
                Command::Unfreeze { tab_id: t(9) },
            ),
            (
                json!({"cmd": "pin", "tab_id": 10}),
                Command::Pin { tab_id: t(10) },
            ),
            (
                json!({"cmd": "unpin", "tab_id": 11}),
                Command::Unpin { tab_id: t(11) },
            ),
            (json!({"cmd": "shutdown"}), Command::Shutdown),
        ]
    }

    #[test]
    fn every_command_parses_and_round_trips() {
        let mut names = Vec::new();
        for (json, want) in every_command() {
            let line = json.to_string();
            assert_eq!(parsed(&line), Ok(want.clone()), "{line}");
            // Serializing gives back the very object the client sent, and it parses again.
            assert_eq!(serde_json::to_value(&want).unwrap(), json, "{line}");
            let Value::Object(map) = json else {
                unreachable!()
            };
            assert_eq!(Command::from_object(map), Ok(want.clone()));
            assert_eq!(
                json!(want.name()),
                serde_json::to_value(&want).unwrap()["cmd"]
            );
            names.push(want.name());
        }
        names.dedup();
        assert_eq!(names, Command::NAMES);
    }

    #[test]
    fn tab_ids_of_commands() {
        for (_, command) in every_command() {
            let has_tab = !matches!(
                command,
                Command::Version
                    | Command::Tabs
                    | Command::NewTab { .. }
                    | Command::TaskManager
                    | Command::Shutdown
            );
            assert_eq!(command.tab_id().is_some(), has_tab, "{command:?}");
        }
        assert_eq!(
            Command::Eval {
                tab_id: TabId(5),
                js: String::new()
            }
            .tab_id(),
            Some(TabId(5))
        );
    }

    #[test]
    fn leniency_defaults_and_url_fixup() {
        let table = [
            // Unknown fields are ignored, so clients may send what later versions add.
            (r#"{"cmd":"tabs","verbose":true}"#, Command::Tabs),
            (
                r#"{"cmd":"close","tab_id":2,"force":1}"#,
                Command::Close { tab_id: TabId(2) },
            ),
            // Null arguments of new_tab mean their defaults.
            (
                r#"{"cmd":"new_tab","url":null,"background":null}"#,
                Command::NewTab {
                    url: None,
                    background: false,
                },
            ),
            // URLs go through the address bar's rules, paths against the given directory.
            (
                r#"{"cmd":"new_tab","url":"example.org","background":true}"#,
                Command::NewTab {
                    url: Some("https://example.org/".into()),
                    background: true,
                },
            ),
            (
                &format!(r#"{{"cmd":"close","tab_id":{}}}"#, u64::MAX),
                Command::Close {
                    tab_id: TabId(u64::MAX),
                },
            ),
        ];
        for (line, want) in table {
            assert_eq!(parsed(line), Ok(want), "{line}");
        }
        // A path is taken relative to the directory given to `parse_request`.
        let dir = env!("CARGO_MANIFEST_DIR");
        assert_eq!(
            parse_request(
                r#"{"cmd":"navigate","tab_id":1,"url":"./Cargo.toml"}"#,
                Path::new(dir)
            )
            .map(|r| r.command),
            Ok(Command::Navigate {
                tab_id: TabId(1),
                url: format!("file://{dir}/Cargo.toml"),
            })
        );
        // Deserializing alone does not touch the URL; `fixup_urls` does.
        let raw: Command =
            serde_json::from_str(r#"{"cmd":"navigate","tab_id":1,"url":"example.org"}"#).unwrap();
        assert_eq!(
            raw,
            Command::Navigate {
                tab_id: TabId(1),
                url: "example.org".into()
            }
        );
        assert_eq!(
            raw.fixup_urls(Path::new("/")),
            Ok(Command::Navigate {
                tab_id: TabId(1),
                url: "https://example.org/".into()
            })
        );
    }

    #[test]
    fn ids() {
        assert_eq!(id_of(r#"{"id":7,"cmd":"tabs"}"#), Some(RequestId::from(7)));
        assert_eq!(
            id_of(r#"{"id":"a","cmd":"tabs"}"#),
            Some(RequestId::from("a"))
        );
        assert_eq!(
            id_of(r#"{"id":1.5,"cmd":"tabs"}"#),
            serde_json::from_str("1.5").ok().map(RequestId::Number)
        );
        assert_eq!(id_of(r#"{"cmd":"tabs"}"#), None);
        assert_eq!(id_of(r#"{"id":null,"cmd":"tabs"}"#), None);
        // A request that fails after its id was read keeps it.
        assert_eq!(id_of(r#"{"id":7,"cmd":"nope"}"#), Some(RequestId::from(7)));
        assert_eq!(
            id_of(r#"{"id":8,"cmd":"close","tab_id":"x"}"#),
            Some(RequestId::from(8))
        );
        let bad = parse_request(r#"{"id":[1],"cmd":"tabs"}"#, Path::new(CWD)).unwrap_err();
        assert_eq!(
            bad,
            BadRequest {
                id: None,
                message: "id must be a number or a string".to_owned()
            }
        );
        assert_eq!(id_of(r#"{"id":true,"cmd":"tabs"}"#), None);
        assert_eq!(id_of("{oops"), None);
        assert_eq!(id_of("[7]"), None);
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
            (r#"{"cmd":null}"#, "cmd must be a string"),
            (
                r#"{"cmd":"frobnicate"}"#,
                "unknown command \"frobnicate\"; known commands: version, tabs, new_tab, \
                 navigate, activate, close, reload, back, forward, eval, task_manager, \
                 end_process, discard, freeze, unfreeze, pin, unpin, shutdown",
            ),
            (r#"{"cmd":"NewTab"}"#, "unknown command \"NewTab\""),
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
                r#"{"cmd":"navigate","tab_id":1,"url":null}"#,
                r#"missing "url""#,
            ),
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
            (r#"{"cmd":"new_tab","url":["a"]}"#, "url must be a string"),
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
        // The argument errors are exactly the message, with nothing of serde's around it.
        assert_eq!(
            parsed(r#"{"cmd":"close","tab_id":-1}"#).unwrap_err(),
            "tab_id must be a non-negative integer"
        );
        assert_eq!(
            parsed(r#"{"cmd":"close"}"#).unwrap_err(),
            r#"missing "tab_id""#
        );
        // Deep nesting is refused by serde_json's recursion limit, not by a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parsed(&deep).unwrap_err().contains("invalid JSON"));
        // A huge unknown command name is not echoed whole.
        let long = format!(r#"{{"cmd":"{}"}}"#, "x".repeat(10_000));
        assert!(parsed(&long).unwrap_err().len() < 400);
    }

    #[test]
    fn request_lines_serialize_id_first() {
        let line = RequestLine {
            id: Some(RequestId::from(1)),
            command: Command::Eval {
                tab_id: TabId(2),
                js: "1+1".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"id":1,"cmd":"eval","tab_id":2,"js":"1+1"}"#
        );
        let line = RequestLine {
            id: None,
            command: Command::Version,
        };
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"id":null,"cmd":"version"}"#
        );
        // What a client sends is what the server parses.
        for (_, command) in every_command() {
            let line = RequestLine {
                id: Some(RequestId::from("x")),
                command,
            };
            let text = serde_json::to_string(&line).unwrap();
            assert_eq!(parse_request(&text, Path::new(CWD)), Ok(line));
        }
    }

    fn tab_info() -> TabInfo {
        TabInfo {
            tab_id: TabId(3),
            index: 0,
            url: "https://example.org/".into(),
            title: "Example".into(),
            state: TabState::Frozen,
            loading: false,
            responsive: true,
            pinned: true,
            renderer_pid: Some(4321),
            protected: Some("form input".into()),
            last_active_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn results_serialize_with_the_protocol_field_names() {
        let ok = |answer: Answer| serde_json::to_string(&answer).unwrap();
        assert_eq!(
            ok(Answer::Version(VersionInfo {
                name: "warren".into(),
                version: "0.1.0".into(),
                pid: 9
            })),
            r#"{"name":"warren","version":"0.1.0","pid":9}"#
        );
        assert_eq!(
            ok(vec![tab_info()].into()),
            r#"[{"tab_id":3,"index":0,"url":"https://example.org/","title":"Example","state":"frozen","loading":false,"responsive":true,"pinned":true,"renderer_pid":4321,"protected":"form input","last_active_ms":1700000000123}]"#
        );
        let discarded = TabInfo {
            state: TabState::Discarded,
            renderer_pid: None,
            protected: None,
            ..tab_info()
        };
        let json = serde_json::to_value(&discarded).unwrap();
        assert_eq!(
            (&json["state"], &json["renderer_pid"], &json["protected"]),
            (&json!("discarded"), &Value::Null, &Value::Null)
        );
        assert_eq!(
            ok(NewTabResult { tab_id: TabId(4) }.into()),
            r#"{"tab_id":4}"#
        );
        assert_eq!(
            ok(EvalResult {
                value: json!({"a": [1, "b"]})
            }
            .into()),
            r#"{"value":{"a":[1,"b"]}}"#
        );
        assert_eq!(
            ok(DiscardResult { freed_kb: 2048 }.into()),
            r#"{"freed_kb":2048}"#
        );
        assert_eq!(ok(Answer::Done), "{}");
        let process = ProcessInfo {
            pid: 10,
            parent_pid: 1,
            kind: ProcessKind::Network,
            tab_id: Some(TabId(2)),
            title: "T".into(),
            memory_kb: Some(100),
            pss_kb: None,
            cpu_percent: 1.5,
            sandboxed: true,
            sandbox: ["namespaces", "seccomp", "landlock", "webkit"]
                .map(str::to_owned)
                .to_vec(),
            name: "WebKitNetworkProcess".into(),
            threads: 4,
            fds: None,
            uptime_s: 12.5,
        };
        assert_eq!(
            ok(TaskManagerResult {
                processes: vec![process.clone()]
            }
            .into()),
            r#"{"processes":[{"pid":10,"parent_pid":1,"kind":"network","tab_id":2,"title":"T","memory_kb":100,"pss_kb":null,"cpu_percent":1.5,"sandboxed":true,"sandbox":["namespaces","seccomp","landlock","webkit"],"name":"WebKitNetworkProcess","threads":4,"fds":null,"uptime_s":12.5}]}"#
        );
        for state in [
            TabState::Active,
            TabState::Background,
            TabState::Frozen,
            TabState::Discarded,
            TabState::Crashed,
        ] {
            let text = serde_json::to_string(&state).unwrap();
            assert_eq!(text, format!("{:?}", format!("{state:?}").to_lowercase()));
            assert_eq!(serde_json::from_str::<TabState>(&text).unwrap(), state);
        }
        for kind in [
            ProcessKind::Browser,
            ProcessKind::Renderer,
            ProcessKind::Web,
            ProcessKind::Network,
            ProcessKind::Spare,
            ProcessKind::Other,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
        // The results read back as they were written.
        let back: TaskManagerResult = serde_json::from_str(&ok(TaskManagerResult {
            processes: vec![process.clone()],
        }
        .into()))
        .unwrap();
        assert_eq!(back.processes, [process]);
        let back: TabInfo = serde_json::to_value(tab_info())
            .and_then(serde_json::from_value)
            .unwrap();
        assert_eq!(back, tab_info());
    }

    #[test]
    fn version_info_is_this_process() {
        let v = VersionInfo::current();
        assert_eq!(v.name, "warren");
        assert_eq!(v.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(v.pid, std::process::id());
    }

    #[test]
    fn reply_lines_in_protocol_order_and_back() {
        let ok = ReplyLine {
            id: Some(RequestId::from(7)),
            reply: Ok(Answer::NewTab(NewTabResult { tab_id: TabId(3) })),
        };
        let text = serde_json::to_string(&ok).unwrap();
        assert_eq!(text, r#"{"id":7,"ok":true,"result":{"tab_id":3}}"#);
        let back: ReplyLine<NewTabResult> = serde_json::from_str(&text).unwrap();
        assert_eq!(back.id, Some(RequestId::from(7)));
        assert_eq!(back.reply, Ok(NewTabResult { tab_id: TabId(3) }));

        let err: ReplyLine<Answer> = ReplyLine {
            id: None,
            reply: Err("no tab 99".into()),
        };
        let text = serde_json::to_string(&err).unwrap();
        assert_eq!(text, r#"{"id":null,"ok":false,"error":"no tab 99"}"#);
        let back: ReplyLine<TaskManagerResult> = serde_json::from_str(&text).unwrap();
        assert_eq!((back.id, back.reply), (None, Err("no tab 99".to_owned())));

        // A client can read any reply as a plain value.
        let back: ReplyLine<Value> =
            serde_json::from_str(r#"{"id":"a","ok":true,"result":{}}"#).unwrap();
        assert_eq!(back.reply, Ok(json!({})));

        for bad in [
            r#"{"id":1,"ok":false}"#,
            r#"{"id":1}"#,
            r#"{"id":[1],"ok":true,"result":{}}"#,
            r#"{"id":1,"ok":true,"result":{"processes":[{"pid":1}]}}"#,
            r#"{"id":1,"ok":true}"#,
            "[]",
        ] {
            assert!(
                serde_json::from_str::<ReplyLine<TaskManagerResult>>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
