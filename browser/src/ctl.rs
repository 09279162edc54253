//! `browser ctl`: a small client that sends one control-socket request and prints the reply.
//!
//! ```text
//! browser ctl --socket PATH CMD [JSON-ARGS]
//! ```
//! builds the request `{"id":1,"cmd":CMD, ...JSON-ARGS}` as a typed [`RequestLine`], checked
//! exactly as the browser checks it ([`Command::from_object`], URLs normalised against this
//! process's directory), so a bad command or argument is a usage error reported here with the
//! browser's own message. It sends the request as one line, prints the reply line to stdout and
//! exits with 0 when the reply says `"ok": true`, 1 when it is an error reply, and 2 for usage
//! errors and when the browser can't be reached or does not answer.
//!
//! `browser ctl --socket PATH top` sends `task_manager` and prints the processes as a `ps`-like
//! table instead of the raw reply (an error reply's message goes to stderr), with the same exit
//! statuses. The command line itself is parsed by [`crate::cli`].

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::cli::CtlArgs;
use crate::protocol::{
    Command, ProcessInfo, ProcessKind, ReplyLine, RequestId, RequestLine, TaskManagerResult,
};
use crate::socket::{send_all, LineEvent, LineReader};

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

/// The pseudo-command that prints `task_manager` as a table.
const TOP: &str = "top";

/// Runs `browser ctl`; returns the process exit status.
pub fn run(args: &CtlArgs) -> i32 {
    run_with(
        args,
        &mut io::stdout().lock(),
        &mut io::stderr().lock(),
        READ_TIMEOUT,
    )
}

fn run_with(args: &CtlArgs, out: &mut dyn Write, err: &mut dyn Write, timeout: Duration) -> i32 {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let (request, table) = match build_request(args, &cwd) {
        Ok(request) => (request, args.cmd == TOP),
        Err(message) => {
            let _ = writeln!(err, "browser ctl: {message}\nTry 'browser ctl --help'.");
            return EXIT_USAGE;
        }
    };
    let line = match serde_json::to_string(&request) {
        Ok(line) => line,
        Err(e) => {
            let _ = writeln!(err, "browser ctl: cannot encode the request: {e}");
            return EXIT_USAGE;
        }
    };
    match exchange(&args.socket, &line, timeout) {
        Ok(line) if table => print_table(&line, out, err),
        Ok(line) => match serde_json::from_str::<ReplyLine<Value>>(&line) {
            Ok(reply) => {
                let _ = out.write_all(line.as_bytes());
                let _ = out.write_all(b"\n");
                let _ = out.flush();
                if reply.reply.is_ok() {
                    EXIT_OK
                } else {
                    EXIT_ERROR_REPLY
                }
            }
            Err(e) => {
                let _ = writeln!(
                    err,
                    "browser ctl: the reply is not a control-protocol reply: {e}"
                );
                EXIT_USAGE
            }
        },
        Err(message) => {
            let _ = writeln!(err, "browser ctl: {message}");
            EXIT_USAGE
        }
    }
}

/// Builds the request for `CMD [JSON-ARGS]` (`top` asks for `task_manager`), checked as the
/// browser checks requests, URLs normalised against `cwd`. The error is a usage message.
pub fn build_request(args: &CtlArgs, cwd: &Path) -> Result<RequestLine, String> {
    let cmd = if args.cmd == TOP {
        "task_manager"
    } else {
        args.cmd.as_str()
    };
    let mut object = Map::new();
    object.insert("cmd".to_owned(), Value::from(cmd));
    if let Some(json) = &args.json_args {
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
            object.insert(key, value);
        }
    }
    let command = Command::from_object(object)?.fixup_urls(cwd)?;
    Ok(RequestLine {
        id: Some(RequestId::from(1)),
        command,
    })
}

/// Sends the request line and reads the reply line.
fn exchange(socket: &Path, request: &str, timeout: Duration) -> Result<String, String> {
    let shown = socket.display();
    let stream = UnixStream::connect(socket).map_err(|e| {
        format!(
            "cannot connect to the control socket {shown}: {e}; is Warren running with --control-socket {shown}?"
        )
    })?;
    let setup = stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)));
    setup.map_err(|e| format!("cannot configure the connection: {e}"))?;
    let mut line = request.as_bytes().to_vec();
    line.push(b'\n');
    send_all(&stream, &line).map_err(|e| format!("cannot send the request to {shown}: {e}"))?;
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
    match serde_json::from_str::<ReplyLine<TaskManagerResult>>(line) {
        Ok(ReplyLine {
            reply: Ok(result), ..
        }) => {
            let _ = out.write_all(format_top(&result).as_bytes());
            let _ = out.flush();
            EXIT_OK
        }
        Ok(ReplyLine {
            reply: Err(message),
            ..
        }) => {
            let _ = writeln!(err, "browser ctl: task_manager failed: {message}");
            EXIT_ERROR_REPLY
        }
        Err(e) => {
            let _ = writeln!(
                err,
                "browser ctl: the reply is not a task_manager reply: {e}"
            );
            EXIT_USAGE
        }
    }
}

/// The longest title `top` prints, in characters.
const TOP_TITLE_MAX: usize = 60;

/// Formats a `task_manager` result as `browser ctl top` prints it: a `ps`-like table sorted by
/// tab (the browser first, processes without a tab last), then pid, and a summary line.
pub fn format_top(result: &TaskManagerResult) -> String {
    let mut rows: Vec<&ProcessInfo> = result.processes.iter().collect();
    rows.sort_by_key(|r| {
        let group = match (r.kind, r.tab_id) {
            (ProcessKind::Browser, _) => 0,
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
                r.kind.as_str().to_owned(),
                r.tab_id.map_or_else(|| "-".to_owned(), |t| t.to_string()),
                format!("{:.1}", r.cpu_percent),
                mib(r.memory_kb),
                mib(r.pss_kb),
                printable(&r.title),
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
    table
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{self, Invocation};
    use crate::control::{ControlServer, Request};
    use crate::protocol::{Answer, VersionInfo};
    use serde_json::json;
    use warren_ipc::TabId;

    /// Runs `browser ctl ARGS...` as `main` does: clap first, then the client.
    fn run_capture(list: &[&str], timeout: Duration) -> (i32, String, String) {
        let argv = ["browser", "ctl"].iter().chain(list);
        let args = match cli::parse_from(argv, &mut io::sink()) {
            Ok(Invocation::Ctl(args)) => args,
            Ok(other) => panic!("{list:?} parsed as {other:?}"),
            Err(e) => return (i32::from(e.exit_code()), String::new(), e.to_string()),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run_with(&args, &mut out, &mut err, timeout);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    /// The request line `ctl` would send for `CMD [JSON-ARGS]`.
    fn request_of(cmd: &str, json: Option<&str>) -> Value {
        let args = CtlArgs::new("/s", cmd, json);
        let request = build_request(&args, Path::new("/home/u")).unwrap();
        serde_json::to_value(request).unwrap()
    }

    fn usage_error(cmd: &str, json: Option<&str>) -> String {
        build_request(&CtlArgs::new("/s", cmd, json), Path::new("/"))
            .map(|r| format!("built {r:?}"))
            .unwrap_err()
    }

    #[test]
    fn builds_typed_requests() {
        assert_eq!(request_of("tabs", None), json!({"id": 1, "cmd": "tabs"}));
        assert_eq!(
            request_of("top", None),
            json!({"id": 1, "cmd": "task_manager"})
        );
        // URLs are normalised before sending, paths against ctl's own directory.
        assert_eq!(
            request_of(
                "new_tab",
                Some(r#"{"url":"example.org","background":true}"#)
            ),
            json!({"id": 1, "cmd": "new_tab", "url": "https://example.org/", "background": true})
        );
        let dir = env!("CARGO_MANIFEST_DIR");
        let navigate = build_request(
            &CtlArgs::new(
                "/s",
                "navigate",
                Some(r#"{"tab_id":2,"url":"./Cargo.toml"}"#),
            ),
            Path::new(dir),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(navigate).unwrap(),
            json!({"id": 1, "cmd": "navigate", "tab_id": 2, "url": format!("file://{dir}/Cargo.toml")})
        );
        assert_eq!(
            request_of("eval", Some(r#"{"tab_id":1,"js":"document.title"}"#)),
            json!({"id": 1, "cmd": "eval", "tab_id": 1, "js": "document.title"})
        );
        // Unknown fields pass the check (the browser ignores them too) and are not sent.
        assert_eq!(
            request_of("close", Some(r#"{"tab_id":4,"later":true}"#)),
            json!({"id": 1, "cmd": "close", "tab_id": 4})
        );
        let typed = build_request(
            &CtlArgs::new("/s", "pin", Some(r#"{"tab_id":3}"#)),
            Path::new("/"),
        );
        assert_eq!(
            typed.unwrap(),
            RequestLine {
                id: Some(RequestId::from(1)),
                command: Command::Pin { tab_id: TabId(3) },
            }
        );
    }

    #[test]
    fn refuses_bad_requests_locally_with_the_browsers_messages() {
        for (cmd, json, needle) in [
            ("eval", Some("[1]"), "must be a JSON object"),
            ("eval", Some("{"), "not valid JSON"),
            ("eval", Some(r#"{"id":5}"#), "must not contain \"id\""),
            ("eval", Some(r#"{"cmd":"x"}"#), "must not contain \"cmd\""),
            (
                "frobnicate",
                None,
                "unknown command \"frobnicate\"; known commands: version, tabs",
            ),
            ("close", None, "missing \"tab_id\""),
            (
                "close",
                Some(r#"{"tab_id":-1}"#),
                "tab_id must be a non-negative integer",
            ),
            ("eval", Some(r#"{"tab_id":1}"#), "missing \"js\""),
            (
                "new_tab",
                Some(r#"{"url":"javascript:alert(1)"}"#),
                "unsupported scheme",
            ),
            (
                "new_tab",
                Some(r#"{"background":1}"#),
                "background must be true or false",
            ),
        ] {
            let err = usage_error(cmd, json);
            assert!(err.contains(needle), "{cmd} {json:?}: {err}");
        }
    }

    #[test]
    fn usage_errors() {
        for (list, needle) in [
            // Refused by clap.
            (&["tabs"][..], "--socket <PATH>"),
            (
                &["--socket"][..],
                "a value is required for '--socket <PATH>'",
            ),
            (&["--socket", "/s"][..], "<CMD>"),
            (
                &["--socket", "/s", "a", "{}", "b"][..],
                "unexpected argument 'b'",
            ),
            (
                &["--sock", "/s", "tabs"][..],
                "unexpected argument '--sock'",
            ),
            // Refused by the request check.
            (
                &["--socket", "/s", "eval", "[1]"][..],
                "must be a JSON object",
            ),
            (&["--socket", "/s", "nope"][..], "unknown command \"nope\""),
            (
                &["--socket", "/s", "navigate", r#"{"tab_id":1}"#][..],
                "missing \"url\"",
            ),
        ] {
            let (code, out, err) = run_capture(list, READ_TIMEOUT);
            assert_eq!(code, EXIT_USAGE, "{list:?}");
            assert!(out.is_empty(), "{list:?}");
            assert!(err.contains(needle), "{list:?}: {err}");
        }
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

    /// A server whose UI answers `version` and `task_manager`, refuses `close`, and never
    /// answers `eval`.
    fn fake_browser(path: &Path) -> ControlServer {
        ControlServer::start_with_timeout(
            path,
            Box::new(|request: Request| {
                let reply = match request.command {
                    Command::Version => Ok(Answer::Version(VersionInfo {
                        name: "warren".to_owned(),
                        version: "1.2.3".to_owned(),
                        pid: 42,
                    })),
                    Command::TaskManager => Ok(Answer::TaskManager(sample_task_manager())),
                    Command::Close { tab_id } => Err(format!("no tab {tab_id}")),
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
            "{\"id\":1,\"ok\":true,\"result\":{\"name\":\"warren\",\"version\":\"1.2.3\",\"pid\":42}}\n"
        );

        let (code, out, _) = run_capture(
            &["--socket", socket, "close", r#"{"tab_id":99}"#],
            READ_TIMEOUT,
        );
        assert_eq!(code, EXIT_ERROR_REPLY);
        assert_eq!(out, "{\"id\":1,\"ok\":false,\"error\":\"no tab 99\"}\n");

        // The server's own deadline (300 ms here) answers a request the UI never does.
        let (code, out, _) = run_capture(
            &["--socket", socket, "eval", r#"{"tab_id":1,"js":"1"}"#],
            READ_TIMEOUT,
        );
        assert_eq!(code, EXIT_ERROR_REPLY);
        assert!(out.contains("timed out after 0.3 s"), "{out}");
    }

    #[test]
    fn replies_that_are_not_protocol_replies() {
        // A peer that reads the request, then answers one fixed line. (Answering and hanging up
        // before reading would race the client's send, which then fails with EPIPE instead.)
        fn answering(line: &'static str) -> (tempfile::TempDir, String) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("odd.sock");
            let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
            std::thread::spawn(move || {
                if let Ok((stream, _)) = listener.accept() {
                    let mut request = String::new();
                    let _ = std::io::BufRead::read_line(
                        &mut std::io::BufReader::new(&stream),
                        &mut request,
                    );
                    let _ = send_all(&stream, line.as_bytes());
                }
            });
            let socket = path.to_str().unwrap().to_owned();
            (dir, socket)
        }
        for (line, cmd) in [
            ("[1,2]\n", "tabs"),
            ("{\"id\":1,\"ok\":false}\n", "tabs"),
            (
                "{\"id\":1,\"ok\":true,\"result\":{\"processes\":[{\"pid\":1}]}}\n",
                "top",
            ),
        ] {
            let (_dir, socket) = answering(line);
            let (code, out, err) = run_capture(&["--socket", &socket, cmd], READ_TIMEOUT);
            assert_eq!(code, EXIT_USAGE, "{line}");
            assert_eq!(out, "", "{line}");
            assert!(err.contains("is not a"), "{line}: {err}");
        }
    }

    fn process(
        pid: u32,
        parent_pid: u32,
        kind: ProcessKind,
        tab: Option<u64>,
        title: &str,
        memory_kb: Option<u64>,
        cpu_percent: f64,
    ) -> ProcessInfo {
        ProcessInfo {
            pid,
            parent_pid,
            kind,
            tab_id: tab.map(TabId),
            title: title.to_owned(),
            memory_kb,
            pss_kb: None,
            cpu_percent,
            sandboxed: false,
            sandbox: Vec::new(),
            name: "x".to_owned(),
            threads: 1,
            fds: Some(3),
            uptime_s: 1.0,
        }
    }

    /// A `task_manager` result: out of order, with a hostile title, a spare and an orphan.
    fn sample_task_manager() -> TaskManagerResult {
        use ProcessKind::*;
        let evil = "Evil\u{1b}[2J\ntitle";
        TaskManagerResult {
            processes: vec![
                process(310, 300, Web, Some(2), "Two", Some(81920), 0.04),
                process(300, 100, Renderer, Some(2), "Two", Some(40960), 1.0),
                process(900, 100, Other, None, "WebKitWebProcess", None, 0.0),
                process(100, 1, Browser, None, "Browser", Some(123456), 2.25),
                process(210, 200, Network, Some(1), evil, Some(15360), 0.0),
                process(200, 100, Renderer, Some(1), evil, Some(1024), 99.5),
                process(150, 100, Spare, None, "Spare renderer", Some(512), 0.0),
            ],
        }
    }

    #[test]
    fn top_table() {
        let table = format_top(&sample_task_manager());
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
        with_pss.processes[0].pss_kb = Some(2048);
        let table = format_top(&with_pss);
        assert!(table.contains("  80.0       2.0  Two"), "{table}");
        assert!(table.ends_with(", PSS 2.0 MiB\n"), "{table}");

        let long = TaskManagerResult {
            processes: vec![process(
                1,
                0,
                ProcessKind::Renderer,
                Some(1),
                &"x".repeat(200),
                None,
                0.0,
            )],
        };
        let table = format_top(&long);
        assert!(
            table.contains(&format!("{}…\n", "x".repeat(TOP_TITLE_MAX - 1))),
            "{table}"
        );

        let empty = format_top(&TaskManagerResult {
            processes: Vec::new(),
        });
        assert_eq!(
            empty,
            "PID  PPID  KIND  TAB  CPU%  MEM(MiB)  PSS(MiB)  TITLE\n0 processes, CPU 0.0%, memory 0.0 MiB\n"
        );
    }

    #[test]
    fn top_talks_to_a_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let _server = fake_browser(&path);
        let socket = path.to_str().unwrap();
        let (code, out, err) = run_capture(&["--socket", socket, "top"], READ_TIMEOUT);
        assert_eq!((code, err.as_str()), (EXIT_OK, ""));
        assert_eq!(out, format_top(&sample_task_manager()));

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
