//! `browser ctl`: a small client that sends one control-socket request and prints the reply.
//!
//! ```text
//! browser ctl --socket PATH CMD [JSON-ARGS]
//! ```
//! builds `{"id":1,"cmd":CMD, ...JSON-ARGS}`, sends it as one line, prints the reply line to
//! stdout and exits with 0 when the reply says `"ok": true`, 1 when it is an error reply, and 2
//! for usage errors and when the browser can't be reached or does not answer.

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
             end_process, discard, freeze, unfreeze, pin, unpin, shutdown
  JSON-ARGS  a JSON object with the command's arguments, merged into the request

Examples:
  browser ctl --socket /tmp/warren.sock tabs
  browser ctl --socket /tmp/warren.sock new_tab '{\"url\":\"https://example.org\"}'
  browser ctl --socket /tmp/warren.sock eval '{\"tab_id\":1,\"js\":\"document.title\"}'

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
    let (socket, request) = match parse_args(args) {
        Ok(Parsed::Help) => {
            let _ = out.write_all(HELP.as_bytes());
            return EXIT_OK;
        }
        Ok(Parsed::Request { socket, request }) => (socket, request),
        Err(message) => {
            let _ = writeln!(err, "browser ctl: {message}\nTry 'browser ctl --help'.");
            return EXIT_USAGE;
        }
    };
    match exchange(&socket, &request, timeout) {
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
    Request { socket: String, request: String },
}

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
    let mut request = Map::new();
    request.insert("id".to_owned(), Value::from(1));
    request.insert("cmd".to_owned(), Value::String(cmd.clone()));
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
