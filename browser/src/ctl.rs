//! `browser ctl`: a small client that sends one control-socket request and prints the reply.
//!
//! ```text
//! browser ctl --socket PATH CMD [JSON-ARGS]
//! ```
//! builds `{"id":1,"cmd":CMD, ...JSON-ARGS}`, sends it as one line, prints the reply line to
//! stdout and exits with 0 when the reply says `"ok": true`, 1 when it is an error reply, and 2
//! for usage errors and when the browser can't be reached or does not answer.
//!
//! `browser ctl --socket PATH top` sends `task_manager` and prints the processes as a `ps`-like
//! table instead of the raw reply (an error reply's message goes to stderr), with the same exit
//! statuses.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::control::{self, LineEvent, LineReader};

/// How long the client waits for the reply (the browser answers every request within 10 s).
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The longest reply line the client reads, in bytes.
const MAX_REPLY_LEN: usize = 64 * 1024 * 1024;

/// Exit status: the reply says `"ok": true`.
pub const EXIT_OK: i32 = 0;
/// Exit status: the browser answered with an error reply.
pub const EXIT_ERROR_REPLY: i32 = 1;
/// Exit status: bad usage, or no (valid) reply from the browser.
pub const EXIT_USAGE: i32 = 2;

const HELP: &str = "\
Usage: browser ctl --socket PATH CMD [JSON-ARGS]

Sends one request to a running Warren started with --control-socket PATH and
prints its reply, one JSON line: {\"id\":1,\"ok\":true,\"result\":...} or
{\"id\":1,\"ok\":false,\"error\":\"...\"}.

  CMD        a command of the control protocol: version, tabs, new_tab, navigate,
             activate, close, reload, back, forward, eval, task_manager,
             end_process, discard, freeze, unfreeze, pin, unpin, shutdown;
             or top: task_manager's processes as a table (PID PPID KIND TAB CPU%
             MEM(MiB) PSS(MiB) TITLE), sorted by tab, then pid
  JSON-ARGS  a JSON object with the command's arguments, merged into the request

Examples:
  browser ctl --socket /tmp/warren.sock tabs
  browser ctl --socket /tmp/warren.sock new_tab '{\"url\":\"https://example.org\"}'
  browser ctl --socket /tmp/warren.sock eval '{\"tab_id\":1,\"js\":\"document.title\"}'
  browser ctl --socket /tmp/warren.sock top

Exit status: 0 when the reply is ok, 1 when it is an error reply, 2 for usage
errors or when the browser can't be reached or does not answer within 15 s.
";

/// Runs `browser ctl` with the arguments that follow `ctl` on the command line; returns the
/// process exit status.
pub fn run(args: &[String]) -> i32 {
    run_with(
        args,
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
        READ_TIMEOUT,
    )
}

fn run_with(args: &[String], out: &mut dyn Write, err: &mut dyn Write, timeout: Duration) -> i32 {
    let (socket, request, table) = match parse_args(args) {
        Ok(Parsed::Help) => {
            let _ = out.write_all(HELP.as_bytes());
            return EXIT_OK;
        }
        Ok(Parsed::Request {
            socket,
            request,
            table,
        }) => (socket, request, table),
        Err(message) => {
            let _ = writeln!(err, "browser ctl: {message}\nTry 'browser ctl --help'.");
            return EXIT_USAGE;
        }
    };
    match exchange(&socket, &request, timeout) {
        Ok(line) if table => print_table(&line, out, err),
        Ok(line) => {
            let _ = out.write_all(line.as_bytes());
            let _ = out.write_all(b"\n");
            let _ = out.flush();
            match reply_ok(&line) {
                Some(true) => EXIT_OK,
                Some(false) => EXIT_ERROR_REPLY,
                None => {
                    let _ = writeln!(
                        err,
                        "browser ctl: the reply is not a control-protocol reply"
                    );
                    EXIT_USAGE
                }
            }
        }
        Err(message) => {
            let _ = writeln!(err, "browser ctl: {message}");
            EXIT_USAGE
        }
    }
}

enum Parsed {
    Help,
    /// `table`: print the reply of `task_manager` as a table (`top`).
    Request {
        socket: String,
        request: String,
        table: bool,
    },
}

/// The pseudo-command that prints `task_manager` as a table.
const TOP: &str = "top";

fn parse_args(args: &[String]) -> Result<Parsed, String> {
    let mut socket = None;
    let mut positional = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--socket" => {
                let path = iter.next().ok_or("--socket needs a path")?;
                socket = Some(path.clone());
            }
            a if a.starts_with("--socket=") => socket = Some(a["--socket=".len()..].to_owned()),
            a if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => positional.push(arg),
        }
    }
    let socket = socket
        .filter(|s| !s.is_empty())
        .ok_or("missing --socket PATH")?;
    let (cmd, json_args) = match positional.as_slice() {
        [] => return Err("missing CMD".to_owned()),
        [cmd] => (*cmd, None),
        [cmd, json] => (*cmd, Some(*json)),
        _ => {
            return Err(
                "too many arguments; pass the command's arguments as one JSON object".to_owned(),
            )
        }
    };
    if cmd.is_empty() {
        return Err("CMD is empty".to_owned());
    }
    let table = cmd == TOP;
    let cmd = if table { "task_manager" } else { cmd.as_str() };
    let mut request = Map::new();
    request.insert("id".to_owned(), Value::from(1));
    request.insert("cmd".to_owned(), Value::from(cmd));
    if let Some(json) = json_args {
        let value: Value = serde_json::from_str(json).map_err(|e| {
            format!("JSON-ARGS is not valid JSON ({e}); give an object such as '{{\"tab_id\":1}}'")
        })?;
        let Value::Object(extra) = value else {
            return Err("JSON-ARGS must be a JSON object such as '{\"tab_id\":1}'".to_owned());
        };
        for (key, value) in extra {
            if key == "id" || key == "cmd" {
                return Err(format!("JSON-ARGS must not contain \"{key}\"; ctl sets it"));
            }
            request.insert(key, value);
        }
    }
    Ok(Parsed::Request {
        socket,
        request: Value::Object(request).to_string(),
        table,
    })
}

/// Sends the request line and reads the reply line.
fn exchange(socket: &str, request: &str, timeout: Duration) -> Result<String, String> {
    let stream = UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot connect to the control socket {socket}: {e}; is Warren running with --control-socket {socket}?"
        )
    })?;
    let setup = stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)));
    setup.map_err(|e| format!("cannot configure the connection: {e}"))?;
    let mut line = request.as_bytes().to_vec();
    line.push(b'\n');
    control::send_all(&stream, &line)
        .map_err(|e| format!("cannot send the request to {socket}: {e}"))?;
    // Half-close: the browser still answers what it has read.
    let _ = stream.shutdown(std::net::Shutdown::Write);

    let mut reader = LineReader::new(&stream, MAX_REPLY_LEN);
    match reader.next_line() {
        Ok(LineEvent::Line(bytes)) => {
            String::from_utf8(bytes.to_vec()).map_err(|_| "the reply is not valid UTF-8".to_owned())
        }
        Ok(LineEvent::TooLong) => Err(format!("the reply is longer than {MAX_REPLY_LEN} bytes")),
        Ok(LineEvent::Eof) => Err("the browser closed the connection without answering".to_owned()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Err(format!("no reply within {} s", timeout.as_secs_f64()))
        }
        Err(e) => Err(format!("cannot read the reply: {e}")),
    }
}

/// Prints a `task_manager` reply as a table; returns the exit status.
fn print_table(line: &str, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let reply = match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => map,
        _ => {
            let _ = writeln!(
                err,
                "browser ctl: the reply is not a control-protocol reply"
            );
            return EXIT_USAGE;
        }
    };
    match reply.get("ok").and_then(Value::as_bool) {
        Some(true) => {}
        Some(false) => {
            let message = reply
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("(no message)");
            let _ = writeln!(err, "browser ctl: task_manager failed: {message}");
            return EXIT_ERROR_REPLY;
        }
        None => {
            let _ = writeln!(
                err,
                "browser ctl: the reply is not a control-protocol reply"
            );
            return EXIT_USAGE;
        }
    }
    match format_top(reply.get("result").unwrap_or(&Value::Null)) {
        Ok(table) => {
            let _ = out.write_all(table.as_bytes());
            let _ = out.flush();
            EXIT_OK
        }
        Err(message) => {
            let _ = writeln!(err, "browser ctl: {message}");
            EXIT_USAGE
        }
    }
}

/// The longest title `top` prints, in characters.
const TOP_TITLE_MAX: usize = 60;

/// One row of the `top` table.
struct TopRow {
    pid: u64,
    parent_pid: u64,
    kind: String,
    tab_id: Option<u64>,
    cpu_percent: f64,
    memory_kb: Option<u64>,
    pss_kb: Option<u64>,
    title: String,
}

/// Formats a `task_manager` result (`{"processes": [...]}`) as `browser ctl top` prints it: a
/// `ps`-like table sorted by tab (the browser first, processes without a tab last), then pid,
/// and a summary line.
pub fn format_top(result: &Value) -> Result<String, String> {
    let list = result
        .get("processes")
        .and_then(Value::as_array)
        .ok_or("the task_manager reply has no \"processes\" list")?;
    let mut rows = Vec::with_capacity(list.len());
    for (i, p) in list.iter().enumerate() {
        let malformed =
            |field: &str| format!("process {i} of the task_manager reply has no valid \"{field}\"");
        let optional_u64 = |field: &str| match p.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_u64().map(Some).ok_or_else(|| malformed(field)),
        };
        rows.push(TopRow {
            pid: p
                .get("pid")
                .and_then(Value::as_u64)
                .ok_or_else(|| malformed("pid"))?,
            parent_pid: optional_u64("parent_pid")?.unwrap_or(0),
            kind: p
                .get("kind")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed("kind"))?
                .to_owned(),
            tab_id: optional_u64("tab_id")?,
            cpu_percent: match p.get("cpu_percent") {
                None | Some(Value::Null) => 0.0,
                Some(v) => v.as_f64().ok_or_else(|| malformed("cpu_percent"))?,
            },
            memory_kb: optional_u64("memory_kb")?,
            pss_kb: optional_u64("pss_kb")?,
            title: printable(p.get("title").and_then(Value::as_str).unwrap_or("")),
        });
    }
    rows.sort_by_key(|r| {
        let group = match (r.kind.as_str(), r.tab_id) {
            ("browser", _) => 0,
            (_, Some(_)) => 1,
            (_, None) => 2,
        };
        (group, r.tab_id, r.pid)
    });

    let mib = |kb: Option<u64>| {
        kb.map_or_else(|| "-".to_owned(), |kb| format!("{:.1}", kb as f64 / 1024.0))
    };
    let header = [
        "PID", "PPID", "KIND", "TAB", "CPU%", "MEM(MiB)", "PSS(MiB)", "TITLE",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.pid.to_string(),
                r.parent_pid.to_string(),
                r.kind.clone(),
                r.tab_id.map_or_else(|| "-".to_owned(), |t| t.to_string()),
                format!("{:.1}", r.cpu_percent),
                mib(r.memory_kb),
                mib(r.pss_kb),
                r.title.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    let mut line = |cells: [&str; 8]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let w = widths[i];
            match i {
                // The title: last, not padded.
                7 => text.push_str(cell),
                // The kind: left-aligned.
                2 => text.push_str(&format!("{cell:<w$}  ")),
                _ => text.push_str(&format!("{cell:>w$}  ")),
            }
        }
        table.push_str(text.trim_end());
        table.push('\n');
    };
    line(header);
    for row in &cells {
        line(std::array::from_fn(|i| row[i].as_str()));
    }
    // A fold, not `sum`: an empty f64 sum is -0.0.
    let cpu = rows.iter().fold(0.0, |sum, r| sum + r.cpu_percent);
    let memory: u64 = rows.iter().filter_map(|r| r.memory_kb).sum();
    let mut summary = format!(
        "{} processes, CPU {cpu:.1}%, memory {:.1} MiB",
        rows.len(),
        memory as f64 / 1024.0
    );
    if rows.iter().any(|r| r.pss_kb.is_some()) {
        let pss: u64 = rows.iter().filter_map(|r| r.pss_kb).sum();
        summary.push_str(&format!(", PSS {:.1} MiB", pss as f64 / 1024.0));
    }
    table.push_str(&summary);
    table.push('\n');
    Ok(table)
}

/// A page-controlled title made safe for a terminal: control characters (escape sequences,
/// newlines) become spaces, and long titles are cut.
fn printable(title: &str) -> String {
    let clean: String = title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.trim();
    if clean.chars().count() > TOP_TITLE_MAX {
        let mut cut: String = clean.chars().take(TOP_TITLE_MAX - 1).collect();
        cut.push('…');
        cut
    } else {
        clean.to_owned()
    }
}

/// `Some(ok)` for a well-formed reply, `None` otherwise.
fn reply_ok(line: &str) -> Option<bool> {
    match serde_json::from_str::<Value>(line).ok()? {
        Value::Object(map) => map.get("ok")?.as_bool(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{Command, ControlServer, Request};
    use std::path::Path;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn run_capture(list: &[&str], timeout: Duration) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(&args(list), &mut out, &mut err, timeout);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    fn request_of(list: &[&str]) -> Value {
        match parse_args(&args(list)) {
            Ok(Parsed::Request { request, .. }) => serde_json::from_str(&request).unwrap(),
            Ok(Parsed::Help) => panic!("help"),
            Err(e) => panic!("{list:?}: {e}"),
        }
    }

    #[test]
    fn builds_requests() {
        assert_eq!(
            request_of(&["--socket", "/s", "tabs"]),
            serde_json::json!({"id": 1, "cmd": "tabs"})
        );
        assert_eq!(
            request_of(&[
                "new_tab",
                "--socket=/s",
                r#"{"url":"example.org","background":true}"#
            ]),
            serde_json::json!({"id": 1, "cmd": "new_tab", "url": "example.org", "background": true})
        );
        // The command is passed on unchecked: the browser's error reply names the known ones.
        assert_eq!(
            request_of(&["--socket", "/s", "frobnicate"]),
            serde_json::json!({"id": 1, "cmd": "frobnicate"})
        );
    }

    #[test]
    fn usage_errors() {
        for (list, needle) in [
            (&["tabs"][..], "missing --socket"),
            (&["--socket"][..], "--socket needs a path"),
            (&["--socket", "/s"][..], "missing CMD"),
            (
                &["--socket", "/s", "eval", "[1]"][..],
                "must be a JSON object",
            ),
            (&["--socket", "/s", "eval", "{"][..], "not valid JSON"),
            (
                &["--socket", "/s", "eval", r#"{"id":5}"#][..],
                "must not contain \"id\"",
            ),
            (
                &["--socket", "/s", "eval", r#"{"cmd":"x"}"#][..],
                "must not contain \"cmd\"",
            ),
            (
                &["--socket", "/s", "a", "{}", "b"][..],
                "too many arguments",
            ),
            (&["--sock", "/s", "tabs"][..], "unknown option --sock"),
        ] {
            let (code, out, err) = run_capture(list, READ_TIMEOUT);
            assert_eq!(code, EXIT_USAGE, "{list:?}");
            assert!(out.is_empty(), "{list:?}");
            assert!(err.contains(needle), "{list:?}: {err}");
        }
    }

    #[test]
    fn help() {
        let (code, out, _) = run_capture(&["--help"], READ_TIMEOUT);
        assert_eq!(code, EXIT_OK);
        assert!(out.starts_with("Usage: browser ctl --socket PATH CMD [JSON-ARGS]"));
    }

    #[test]
    fn no_browser() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nobody.sock");
        let (code, out, err) =
            run_capture(&["--socket", path.to_str().unwrap(), "tabs"], READ_TIMEOUT);
        assert_eq!(code, EXIT_USAGE);
        assert!(out.is_empty());
        assert!(err.contains("cannot connect"), "{err}");
    }

    /// A server whose UI answers `version`, refuses `close`, and never answers `eval`.
    fn fake_browser(path: &Path) -> ControlServer {
        ControlServer::start_with_timeout(
            path,
            Box::new(|request: Request| {
                let reply = match request.command {
                    Command::Version => Ok(serde_json::json!({"name": "warren"})),
                    Command::TaskManager => Ok(sample_task_manager()),
                    Command::Close(tab) => Err(format!("no tab {tab}")),
                    Command::Eval { .. } => {
                        // Keep the sender alive past the deadline without blocking the caller.
                        std::thread::spawn(move || {
                            std::thread::sleep(Duration::from_secs(2));
                            drop(request.reply);
                        });
                        return;
                    }
                    _ => Err("not in this test".to_owned()),
                };
                let _ = request.reply.send(reply);
            }),
            Duration::from_millis(300),
        )
        .unwrap()
    }

    #[test]
    fn talks_to_a_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let _server = fake_browser(&path);
        let socket = path.to_str().unwrap();

        let (code, out, err) = run_capture(&["--socket", socket, "version"], READ_TIMEOUT);
        assert_eq!((code, err.as_str()), (EXIT_OK, ""));
        assert_eq!(
            out,
            "{\"id\":1,\"ok\":true,\"result\":{\"name\":\"warren\"}}\n"
        );

        let (code, out, _) = run_capture(
            &["--socket", socket, "close", r#"{"tab_id":99}"#],
            READ_TIMEOUT,
        );
        assert_eq!(code, EXIT_ERROR_REPLY);
        assert_eq!(out, "{\"id\":1,\"ok\":false,\"error\":\"no tab 99\"}\n");

        let (code, out, _) = run_capture(&["--socket", socket, "nope"], READ_TIMEOUT);
        assert_eq!(code, EXIT_ERROR_REPLY);
        assert!(out.contains("unknown command"), "{out}");

        // The server's own deadline (300 ms here) answers a request the UI never does.
        let (code, out, _) = run_capture(
            &["--socket", socket, "eval", r#"{"tab_id":1,"js":"1"}"#],
            READ_TIMEOUT,
        );
        assert_eq!(code, EXIT_ERROR_REPLY);
        assert!(out.contains("timed out after 0.3 s"), "{out}");
    }

    /// A `task_manager` result: out of order, with a hostile title, a spare and an orphan.
    fn sample_task_manager() -> Value {
        serde_json::json!({"processes": [
            {"pid": 310, "parent_pid": 300, "kind": "web", "tab_id": 2, "title": "Two",
             "memory_kb": 81920, "pss_kb": null, "cpu_percent": 0.04, "sandboxed": false},
            {"pid": 300, "parent_pid": 100, "kind": "renderer", "tab_id": 2, "title": "Two",
             "memory_kb": 40960, "pss_kb": null, "cpu_percent": 1.0, "sandboxed": true},
            {"pid": 900, "parent_pid": 100, "kind": "other", "tab_id": null,
             "title": "WebKitWebProcess", "memory_kb": null, "pss_kb": null, "cpu_percent": 0.0,
             "sandboxed": false},
            {"pid": 100, "parent_pid": 1, "kind": "browser", "tab_id": null, "title": "Browser",
             "memory_kb": 123456, "pss_kb": null, "cpu_percent": 2.25, "sandboxed": false},
            {"pid": 210, "parent_pid": 200, "kind": "network", "tab_id": 1,
             "title": "Evil\u{1b}[2J\ntitle", "memory_kb": 15360, "pss_kb": null,
             "cpu_percent": 0.0, "sandboxed": false},
            {"pid": 200, "parent_pid": 100, "kind": "renderer", "tab_id": 1,
             "title": "Evil\u{1b}[2J\ntitle", "memory_kb": 1024, "pss_kb": null,
             "cpu_percent": 99.5, "sandboxed": false},
            {"pid": 150, "parent_pid": 100, "kind": "spare", "tab_id": null,
             "title": "Spare renderer", "memory_kb": 512, "pss_kb": null, "cpu_percent": 0.0,
             "sandboxed": false}
        ]})
    }

    #[test]
    fn top_table() {
        let table = format_top(&sample_task_manager()).unwrap();
        let expected = "\
PID  PPID  KIND      TAB  CPU%  MEM(MiB)  PSS(MiB)  TITLE
100     1  browser     -   2.2     120.6         -  Browser
200   100  renderer    1  99.5       1.0         -  Evil [2J title
210   200  network     1   0.0      15.0         -  Evil [2J title
300   100  renderer    2   1.0      40.0         -  Two
310   300  web         2   0.0      80.0         -  Two
150   100  spare       -   0.0       0.5         -  Spare renderer
900   100  other       -   0.0         -         -  WebKitWebProcess
7 processes, CPU 102.8%, memory 257.1 MiB
";
        assert_eq!(table, expected);

        let mut with_pss = sample_task_manager();
        with_pss["processes"][0]["pss_kb"] = Value::from(2048);
        let table = format_top(&with_pss).unwrap();
        assert!(table.contains("  80.0       2.0  Two"), "{table}");
        assert!(table.ends_with(", PSS 2.0 MiB\n"), "{table}");

        let long = serde_json::json!({"processes": [{"pid": 1, "kind": "renderer", "tab_id": 1,
            "title": "x".repeat(200)}]});
        let table = format_top(&long).unwrap();
        assert!(
            table.contains(&format!("{}…\n", "x".repeat(TOP_TITLE_MAX - 1))),
            "{table}"
        );

        let empty = format_top(&serde_json::json!({"processes": []})).unwrap();
        assert_eq!(
            empty,
            "PID  PPID  KIND  TAB  CPU%  MEM(MiB)  PSS(MiB)  TITLE\n0 processes, CPU 0.0%, memory 0.0 MiB\n"
        );
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"processes": [{"kind": "web"}]}),
            serde_json::json!({"processes": [{"pid": 1, "kind": "web", "tab_id": "one"}]}),
            serde_json::json!({"processes": [{"pid": -1, "kind": "web"}]}),
        ] {
            assert!(format_top(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn top_talks_to_a_server() {
        assert_eq!(
            request_of(&["--socket", "/s", "top"]),
            serde_json::json!({"id": 1, "cmd": "task_manager"})
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let _server = fake_browser(&path);
        let socket = path.to_str().unwrap();
        let (code, out, err) = run_capture(&["--socket", socket, "top"], READ_TIMEOUT);
        assert_eq!((code, err.as_str()), (EXIT_OK, ""));
        assert_eq!(out, format_top(&sample_task_manager()).unwrap());

        // An error reply: the message on stderr, exit status 1.
        let failing = dir.path().join("f.sock");
        let _server = ControlServer::start(
            &failing,
            Box::new(|request: Request| {
                let _ = request
                    .reply
                    .send(Err("task manager unavailable".to_owned()));
            }),
        )
        .unwrap();
        let (code, out, err) = run_capture(
            &["--socket", failing.to_str().unwrap(), "top"],
            READ_TIMEOUT,
        );
        assert_eq!(code, EXIT_ERROR_REPLY);
        assert_eq!(out, "");
        assert_eq!(
            err,
            "browser ctl: task_manager failed: task manager unavailable\n"
        );
    }

    #[test]
    fn read_timeout() {
        // A listener that accepts and never answers.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mute.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let start = std::time::Instant::now();
        let (code, _, err) = run_capture(
            &["--socket", path.to_str().unwrap(), "tabs"],
            Duration::from_millis(200),
        );
        assert_eq!(code, EXIT_USAGE);
        assert!(err.contains("no reply within 0.2 s"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
