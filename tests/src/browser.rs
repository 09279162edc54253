//! The browser under test: started with a temporary profile and control socket, driven over the socket, torn down with its whole process tree.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::procs::{self, Proc};
use crate::wait_until;
use crate::xvfb::Xvfb;

/// How long a control request may take before the harness gives up on the connection. The
/// protocol promises a reply within 10 s.
pub const CTL_TIMEOUT: Duration = Duration::from_secs(15);

/// The browser's list of variables it passes to renderers unchanged.
pub const PASSENV: &str = "WARREN_RENDERER_PASSENV";

/// How a browser is started.
#[derive(Clone, Debug, Default)]
pub struct BrowserOpts {
    /// `--renderer PATH` (default: the browser's own choice, `renderer` next to it).
    pub renderer: Option<PathBuf>,
    /// URLs on the command line (none: the new-tab page).
    pub urls: Vec<String>,
    /// Extra environment for the browser. Renderers do not see it: the browser starts them with
    /// a clean environment of its own making (use `renderer_env` for them).
    pub env: Vec<(String, String)>,
    /// Environment for the renderers (such as `WARREN_HOSTILE_MODE`): set on the browser and
    /// named in `WARREN_RENDERER_PASSENV`, the list of variables it passes on unchanged.
    pub renderer_env: Vec<(String, String)>,
    /// Variables removed from the browser's environment (such as `DBUS_SESSION_BUS_ADDRESS`, to
    /// run it as on a machine without a session bus).
    pub env_remove: Vec<String>,
    /// The profile directory (default: a fresh one inside the browser's temporary directory).
    pub profile: Option<PathBuf>,
    /// Extra command-line flags (such as `--max-live-tabs 3`), passed before the URLs.
    pub args: Vec<String>,
    /// Let the browser keep a spare renderer (off by default: the browser starts one only when
    /// the machine is idle, so whether a test's tree holds one would depend on the machine's
    /// load; tests about the spare, and the benchmarks, turn it on).
    pub spare: bool,
}

/// One connection to a control socket. Requests are answered in order; every request carries a
/// fresh id and the reply's id is checked.
pub struct Ctl {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl Ctl {
    /// Connects with read and write timeouts of `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> std::io::Result<Ctl> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Ctl {
            writer: stream,
            reader,
            next_id: 1,
        })
    }

    /// Sends one raw line (a newline is appended) and returns the next reply line parsed as JSON.
    pub fn raw(&mut self, line: &str) -> std::io::Result<Value> {
        self.writer.write_all(line.as_bytes())?;
        self.writer.write_all(b"\n")?;
        self.writer.flush()?;
        self.read_reply()
    }

    /// Reads one reply line.
    pub fn read_reply(&mut self) -> std::io::Result<Value> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the browser closed the control connection",
            ));
        }
        serde_json::from_str(line.trim_end()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("reply {line:?} is not JSON: {e}"),
            )
        })
    }

    /// Sends `{"id", "cmd", ...args}` and returns the whole reply object, after checking its id.
    /// `args` must be a JSON object (or null).
    pub fn request(&mut self, cmd: &str, args: Value) -> std::io::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = serde_json::Map::new();
        req.insert("id".into(), json!(id));
        req.insert("cmd".into(), json!(cmd));
        if let Value::Object(args) = args {
            req.extend(args);
        }
        let reply = self.raw(&Value::Object(req).to_string())?;
        if reply.get("id") != Some(&json!(id)) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("reply {reply} does not carry request id {id}"),
            ));
        }
        Ok(reply)
    }

    /// Sends a request and splits the reply: `Ok(result)` or `Err(error message)`. Transport
    /// failures are the outer error.
    pub fn call(&mut self, cmd: &str, args: Value) -> std::io::Result<Result<Value, String>> {
        let reply = self.request(cmd, args)?;
        Ok(split_reply(&reply))
    }
}

/// `{"ok": true, "result": R}` → `Ok(R)`; `{"ok": false, "error": E}` → `Err(E)`.
pub fn split_reply(reply: &Value) -> Result<Value, String> {
    match reply.get("ok") {
        Some(Value::Bool(true)) => Ok(reply.get("result").cloned().unwrap_or(Value::Null)),
        Some(Value::Bool(false)) => Err(match reply.get("error") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => format!("error reply without an error message: {reply}"),
        }),
        _ => Err(format!("malformed reply (no boolean \"ok\"): {reply}")),
    }
}

/// A running browser. Drop shuts it down (control `shutdown`, up to 5 s), then SIGKILLs it and
/// every process that was ever seen below it (by pid + start time and by process group), and
/// prints its log if the test is failing.
pub struct Browser {
    child: Mutex<Child>,
    pid: i32,
    display: u32,
    dir: TempDir,
    profile: PathBuf,
    socket: PathBuf,
    log_path: PathBuf,
    ctl: Mutex<Option<Ctl>>,
    /// Every process seen in the browser's tree so far, for the final cleanup.
    seen: Mutex<BTreeMap<(i32, u64), Proc>>,
}

impl Browser {
    /// Starts the browser on `xvfb` and waits (up to 60 s) until its control socket answers
    /// `version`.
    /// Starts a browser on one page and waits until it has loaded; returns the browser and the
    /// page's tab.
    pub fn start_on(xvfb: &Xvfb, url: &str) -> (Browser, u64) {
        let b = Browser::start(
            xvfb,
            BrowserOpts {
                urls: vec![url.to_owned()],
                ..Default::default()
            },
        );
        let tab = b.tab_ids()[0];
        b.wait_loaded(tab, Some(url), crate::LOAD_TIMEOUT);
        (b, tab)
    }

    pub fn start(xvfb: &Xvfb, opts: BrowserOpts) -> Browser {
        let browser_bin = crate::bin_path("browser");
        let dir = tempfile::Builder::new()
            .prefix("warren-test-")
            .tempdir()
            .expect("temp dir");
        let profile = opts
            .profile
            .clone()
            .unwrap_or_else(|| dir.path().join("profile"));
        let socket = dir.path().join("control.sock");
        let log_path = dir.path().join("browser.log");
        let log = File::create(&log_path).expect("create the browser log");
        let mut cmd = Command::new(&browser_bin);
        cmd.arg("--control-socket")
            .arg(&socket)
            .arg("--profile")
            .arg(&profile);
        if let Some(renderer) = &opts.renderer {
            cmd.arg("--renderer").arg(renderer);
        }
        if !opts.spare {
            cmd.arg("--no-spare-renderer");
        }
        cmd.args(&opts.args);
        cmd.args(&opts.urls);
        apply_env(&mut cmd, xvfb.display(), dir.path(), &opts.env);
        for name in &opts.env_remove {
            cmd.env_remove(name);
        }
        if !opts.renderer_env.is_empty() {
            let mut passed: Vec<String> = opts
                .env
                .iter()
                .filter(|(k, _)| k == PASSENV)
                .flat_map(|(_, v)| v.split(',').map(str::to_owned))
                .collect();
            for (k, v) in &opts.renderer_env {
                cmd.env(k, v);
                passed.push(k.clone());
            }
            cmd.env(PASSENV, passed.join(","));
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", browser_bin.display()));
        let pid = child.id() as i32;
        let browser = Browser {
            child: Mutex::new(child),
            pid,
            display: xvfb.display(),
            dir,
            profile,
            socket,
            log_path,
            ctl: Mutex::new(None),
            seen: Mutex::new(BTreeMap::new()),
        };
        browser.wait_for_socket(Duration::from_secs(60));
        browser
    }

    /// Waits until the control socket answers `version` with this browser's pid.
    fn wait_for_socket(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(mut ctl) = Ctl::connect(&self.socket, CTL_TIMEOUT) {
                match ctl.call("version", Value::Null) {
                    Ok(Ok(v)) => {
                        assert_eq!(
                            v.get("pid").and_then(Value::as_i64),
                            Some(self.pid as i64),
                            "`version` must report the browser's pid: {v}"
                        );
                        *self.ctl.lock().unwrap_or_else(|e| e.into_inner()) = Some(ctl);
                        return;
                    }
                    Ok(Err(e)) => panic!("`version` failed: {e}"),
                    Err(e) => eprintln!("control socket not ready yet: {e}"),
                }
            }
            if let Some(status) = self.try_exit_status() {
                panic!("the browser exited during start-up ({status}) before its control socket answered");
            }
            assert!(
                Instant::now() < deadline,
                "the browser's control socket {} did not answer `version` within {timeout:?}",
                self.socket.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The browser's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The profile directory.
    pub fn profile(&self) -> &Path {
        &self.profile
    }

    /// The control socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// This browser's private temporary directory (holds the log, the socket, the profile).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The X display it runs on.
    pub fn display(&self) -> u32 {
        self.display
    }

    /// Everything the browser (and its renderers) wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    }

    /// A new connection to the control socket (the harness's own stays open too).
    pub fn connect(&self) -> Ctl {
        Ctl::connect(&self.socket, CTL_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "connect to the control socket {}: {e}",
                self.socket.display()
            )
        })
    }

    /// One request on the harness's persistent connection: `Ok(result)` or `Err(error)` from
    /// the reply. A transport failure (no reply within 15 s, connection closed) panics.
    pub fn ctl(&self, cmd: &str, args: Value) -> Result<Value, String> {
        let mut guard = self.ctl.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(self.connect());
        }
        let ctl = guard.as_mut().expect("connected above");
        let reply = ctl.call(cmd, args);
        if reply.is_err() {
            // The connection is out of step now; the next call reconnects.
            *guard = None;
        }
        drop(guard);
        self.remember_tree();
        match reply {
            Ok(r) => r,
            Err(e) => panic!("control request {cmd:?} got no reply: {e}"),
        }
    }

    /// `ctl` that must succeed.
    pub fn ok(&self, cmd: &str, args: Value) -> Value {
        self.ctl(cmd, args.clone())
            .unwrap_or_else(|e| panic!("control request {cmd} {args} failed: {e}"))
    }

    /// The `tabs` list.
    pub fn tabs(&self) -> Vec<Value> {
        match self.ok("tabs", Value::Null) {
            Value::Array(tabs) => tabs,
            other => panic!("`tabs` must return a list, got {other}"),
        }
    }

    /// One tab's entry of `tabs`.
    pub fn tab(&self, tab_id: u64) -> Option<Value> {
        self.tabs()
            .into_iter()
            .find(|t| t.get("tab_id").and_then(Value::as_u64) == Some(tab_id))
    }

    /// The ids of all tabs, in strip order.
    pub fn tab_ids(&self) -> Vec<u64> {
        self.tabs()
            .iter()
            .filter_map(|t| t.get("tab_id").and_then(Value::as_u64))
            .collect()
    }

    /// Opens a foreground tab and returns its id.
    pub fn new_tab(&self, url: &str) -> u64 {
        let r = self.ok("new_tab", json!({ "url": url }));
        r.get("tab_id")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("new_tab result without tab_id: {r}"))
    }

    /// Opens a tab, in the background if asked, and returns its id.
    pub fn new_tab_with(&self, url: &str, background: bool) -> u64 {
        let r = self.ok("new_tab", json!({ "url": url, "background": background }));
        r.get("tab_id")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("new_tab result without tab_id: {r}"))
    }

    /// Evaluates `js` in a tab: `Ok(value)` or the error reply.
    pub fn eval(&self, tab_id: u64, js: &str) -> Result<Value, String> {
        self.ctl("eval", json!({ "tab_id": tab_id, "js": js }))
            .map(|r| r.get("value").cloned().unwrap_or(Value::Null))
    }

    /// A tab's renderer pid (`None` without a live renderer or without such a tab).
    pub fn renderer_pid(&self, tab_id: u64) -> Option<i32> {
        self.tab(tab_id)?
            .get("renderer_pid")?
            .as_i64()
            .map(|p| p as i32)
    }

    /// A tab's `state`.
    pub fn state(&self, tab_id: u64) -> Option<String> {
        Some(self.tab(tab_id)?.get("state")?.as_str()?.to_string())
    }

    /// Waits until the tab's page at `url` (exact, or any URL if `None`) has finished loading, as
    /// seen from the page itself (`location.href`, `document.readyState`). Panics after `timeout`.
    pub fn wait_loaded(&self, tab_id: u64, url: Option<&str>, timeout: Duration) {
        let mut last = String::new();
        let done = wait_until(timeout, || {
            let v = self.eval(tab_id, "[location.href, document.readyState]");
            last = format!("{v:?}");
            let v = v.ok()?;
            let href = v.get(0)?.as_str()?;
            let ready = v.get(1)?.as_str()? == "complete";
            (ready && url.is_none_or(|u| href == u)).then_some(())
        });
        if done.is_none() {
            panic!(
                "tab {tab_id} did not finish loading {url:?} within {timeout:?}; last eval: {last}; tabs: {}",
                Value::Array(self.tabs())
            );
        }
    }

    /// Waits until a tab reaches `state`; returns its `tabs` entry. Panics after `timeout`.
    pub fn wait_state(&self, tab_id: u64, state: &str, timeout: Duration) -> Value {
        let mut last = None;
        wait_until(timeout, || {
            let tab = self.tab(tab_id);
            last = tab.clone();
            tab.filter(|t| t.get("state").and_then(Value::as_str) == Some(state))
        })
        .unwrap_or_else(|| {
            panic!("tab {tab_id} did not become {state:?} within {timeout:?}; last: {last:?}")
        })
    }

    /// The browser's live process tree (browser first), remembered for the final cleanup.
    pub fn tree(&self) -> Vec<Proc> {
        let tree = procs::process_tree(self.pid);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        for p in &tree {
            seen.insert((p.pid, p.start_time), p.clone());
        }
        tree
    }

    fn remember_tree(&self) {
        let _ = self.tree();
    }

    /// A renderer's process and its live descendants, remembered for cleanup.
    pub fn renderer_tree(&self, renderer_pid: i32) -> Vec<Proc> {
        let _ = self.tree();
        procs::process_tree(renderer_pid)
    }

    /// The browser's exit status if it has exited (it is reaped then), else `None`.
    pub fn try_exit_status(&self) -> Option<ExitStatus> {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .try_wait()
            .ok()
            .flatten()
    }

    /// Waits up to `timeout` for the browser to exit.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.try_exit_status())
    }

    /// Sends `shutdown` and waits (up to 15 s) for the browser to exit; returns its status.
    pub fn shutdown(&self) -> ExitStatus {
        self.remember_tree();
        let reply = self.ctl("shutdown", Value::Null);
        assert!(reply.is_ok(), "`shutdown` failed: {reply:?}");
        self.wait_exit(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("the browser did not exit within 15 s of `shutdown`"))
    }

    /// SIGKILLs the browser process alone (not its children) and reaps it.
    pub fn kill9(&self) -> ExitStatus {
        self.remember_tree();
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        self.wait_exit(Duration::from_secs(10))
            .expect("a SIGKILLed browser exits")
    }

    /// Prints the log (the last 300 KB), the tab list and a screenshot path; used when a test
    /// fails.
    fn report_failure(&self) {
        let name = std::thread::current()
            .name()
            .unwrap_or("unknown-test")
            .replace("::", "-");
        let shot = crate::artifacts_dir().join(format!("{name}.png"));
        let shot_note = match std::fs::create_dir_all(crate::artifacts_dir())
            .map_err(|e| e.to_string())
            .and_then(|_| crate::xvfb::try_screenshot(self.display))
            .and_then(|img| img.save_png(&shot))
        {
            Ok(()) => format!("screenshot: {}", shot.display()),
            Err(e) => format!("no screenshot: {e}"),
        };
        let tabs = if self.try_exit_status().is_none() {
            match Ctl::connect(&self.socket, Duration::from_secs(3))
                .and_then(|mut c| c.request("tabs", Value::Null))
            {
                Ok(v) => v.to_string(),
                Err(e) => format!("(no `tabs` reply: {e})"),
            }
        } else {
            "(browser exited)".to_string()
        };
        let log = self.log();
        const KEEP: usize = 300 * 1024;
        let shown = if log.len() > KEEP {
            let mut cut = log.len() - KEEP;
            while !log.is_char_boundary(cut) {
                cut += 1;
            }
            format!("[... {} bytes cut ...]\n{}", cut, &log[cut..])
        } else {
            log
        };
        eprintln!(
            "\n===== browser pid {} failed test {name} =====\n{shot_note}\ntabs: {tabs}\n\
             ===== browser log ({}) =====\n{shown}\n===== end of browser log =====",
            self.pid,
            self.log_path.display()
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.report_failure();
        }
        self.remember_tree();
        if self.try_exit_status().is_none() {
            // A clean shutdown first, on a fresh connection with short timeouts.
            if let Ok(mut c) = Ctl::connect(&self.socket, Duration::from_secs(3)) {
                let _ = c.request("shutdown", Value::Null);
            }
            let _ = self.wait_exit(Duration::from_secs(5));
        }
        let seen: Vec<Proc> = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        // Processes started after the last look but still below a known process.
        let mut all = seen.clone();
        for p in &seen {
            if p.is_alive() {
                all.extend(procs::descendants(p.pid));
            }
        }
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if child.try_wait().ok().flatten().is_none() {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        // The browser leads its own process group (started with process_group(0)).
        let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        procs::kill_all(&all);
        let _ = child.wait();
    }
}

/// Sets the environment every browser of the tests gets: the display, logging, and private XDG
/// cache/config directories so nothing outside the test's temporary directory is touched.
fn apply_env(cmd: &mut Command, display: u32, dir: &Path, extra: &[(String, String)]) {
    cmd.env("DISPLAY", format!(":{display}"))
        .env("RUST_LOG", "info")
        .env("RUST_BACKTRACE", "1")
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .env_remove("WAYLAND_DISPLAY");
    for (k, v) in extra {
        cmd.env(k, v);
    }
}

/// What a short-lived browser invocation did.
#[derive(Debug)]
pub struct OnceOutput {
    /// `None` if it had to be killed at the deadline.
    pub status: Option<ExitStatus>,
    /// Its stdout and stderr, interleaved.
    pub output: String,
}

/// Runs the browser binary with `args` on `display` and waits up to `timeout` for it to exit;
/// kills it (and its process group) if it does not. For `--help`, `--version`, `ctl` and the
/// second launch on a profile.
pub fn run_browser_once(display: u32, args: &[&str], timeout: Duration) -> OnceOutput {
    let dir = tempfile::Builder::new()
        .prefix("warren-once-")
        .tempdir()
        .expect("temp dir");
    let log_path = dir.path().join("out.log");
    let log = File::create(&log_path).expect("create log");
    let mut cmd = Command::new(crate::bin_path("browser"));
    cmd.args(args);
    apply_env(&mut cmd, display, dir.path(), &[]);
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().expect("start the browser binary");
    let pid = child.id() as i32;
    let status = wait_until(timeout, || child.try_wait().ok().flatten());
    if status.is_none() {
        let tree = procs::process_tree(pid);
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        procs::kill_all(&tree);
        let _ = child.wait();
    }
    let output = std::fs::read(&log_path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    OnceOutput { status, output }
}
