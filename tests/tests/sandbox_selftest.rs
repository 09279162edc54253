//! End-to-end: `browser --sandbox-self-test --json` under a private Xvfb. With the sandbox every
//! row is as expected and all four layers are in force; with `--no-sandbox` the forbidden rows
//! flip to allowed and the status is 1, which shows that the probe really probes. Both runs must
//! leave nothing behind: no file in `$HOME` or the temporary directory, no process.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use warren_tests::procs::{all_processes, describe, kill_all, still_alive};
use warren_tests::{bin_path, descendants, wait_until, Proc, Xvfb};

/// The whole self-test takes a few seconds here; this is for a loaded 2-core machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// One run of the self-test and everything observed around it.
struct Run {
    status: ExitStatus,
    report: Value,
    log: String,
    /// The private `$HOME` and `$TMPDIR` the browser had.
    home: PathBuf,
    tmp: PathBuf,
    /// Every process seen below the browser while it ran.
    seen: Vec<Proc>,
    elapsed: Duration,
    _dir: tempfile::TempDir,
}

impl Run {
    /// Each row's (expected, result, detail), by id.
    fn rows(&self) -> BTreeMap<String, (String, String, String)> {
        self.report["rows"]
            .as_array()
            .unwrap_or_else(|| panic!("no rows in the report: {}\n{}", self.report, self.log))
            .iter()
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                (s("id"), (s("expected"), s("result"), s("detail")))
            })
            .collect()
    }

    fn layers(&self) -> Vec<String> {
        self.report["layers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn context(&self) -> String {
        format!(
            "status {:?}\nreport: {}\nlog:\n{}",
            self.status,
            serde_json::to_string_pretty(&self.report).unwrap_or_default(),
            self.log
        )
    }

    /// Asserts that the run left no file of its own and no process behind.
    fn assert_clean(&self) {
        let leftovers = |dir: &Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.contains("warren-self-test"))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(leftovers(&self.home), Vec::<String>::new(), "left in $HOME");
        assert_eq!(
            leftovers(&self.tmp),
            Vec::<String>::new(),
            "left in $TMPDIR"
        );

        // What the browser started dies with it (the web processes' Xvfb by its death signal,
        // so give the kernel a moment).
        let gone = wait_until(Duration::from_secs(5), || {
            still_alive(&self.seen).is_empty().then_some(())
        });
        if gone.is_none() {
            let alive = still_alive(&self.seen);
            kill_all(&alive);
            panic!("processes outlived the self-test:\n{}", describe(&alive));
        }
        let marker = self.report["started"]["marker"]
            .as_str()
            .unwrap_or_default();
        assert!(!marker.is_empty(), "no marker in the report");
        let escaped: Vec<Proc> = all_processes()
            .into_iter()
            .filter(|p| p.comm == marker && p.state != 'Z' && p.state != 'X')
            .collect();
        if !escaped.is_empty() {
            kill_all(&escaped);
            panic!(
                "the probe's grandchild outlived the test:\n{}",
                describe(&escaped)
            );
        }
    }
}

/// Runs `browser --sandbox-self-test --json EXTRA…` on the display with a private `$HOME` and
/// `$TMPDIR`, no session bus (so the self-test starts its own) and no `$XDG_RUNTIME_DIR`.
fn self_test(x: &Xvfb, extra: &[&str]) -> Run {
    let dir = tempfile::Builder::new()
        .prefix("warren-selftest-e2e-")
        .tempdir()
        .expect("temp dir");
    let home = dir.path().join("home");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&home).expect("home");
    std::fs::create_dir(&tmp).expect("tmp");
    let stdout_path = dir.path().join("stdout.json");
    let log_path = dir.path().join("stderr.log");
    let mut cmd = Command::new(bin_path("browser"));
    cmd.arg("--sandbox-self-test")
        .arg("--json")
        .args(extra)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("TMPDIR", &tmp)
        .env("DISPLAY", x.display_env())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).expect("stdout file"))
        .stderr(File::create(&log_path).expect("log file"))
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start the browser");
    let pid = child.id() as i32;
    let mut seen: Vec<Proc> = Vec::new();
    let status = loop {
        for p in descendants(pid) {
            if !seen
                .iter()
                .any(|s| s.pid == p.pid && s.start_time == p.start_time)
            {
                seen.push(p);
            }
        }
        if let Some(status) = child.try_wait().expect("wait for the browser") {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            kill_all(&seen);
            let _ = child.wait();
            panic!(
                "the self-test did not finish within {RUN_TIMEOUT:?}; its log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = started.elapsed();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("the self-test did not print one JSON object ({e}): {stdout:?}\nlog:\n{log}")
    });
    Run {
        status,
        report,
        log,
        home,
        tmp,
        seen,
        elapsed,
        _dir: dir,
    }
}

/// The rows issue 7 names, which must be present in every report.
const NAMED_ROWS: &[&str] = &[
    "read-home",
    "write-home",
    "write-profile",
    "ptrace",
    "kill",
    "proc",
    "process-vm-readv",
    "bpf",
    "perf-event-open",
    "control-socket",
    "session-bus",
    "x-abstract",
    "leave-process",
    "font",
    "webkit",
    "network",
    "memfd",
];

#[test]
fn sandboxed_renderer_is_denied_every_forbidden_thing_and_allowed_what_a_tab_needs() {
    let x = Xvfb::start();
    let run = self_test(&x, &[]);
    eprintln!(
        "self-test with the sandbox took {:?}; {} processes ran below the browser",
        run.elapsed,
        run.seen.len()
    );
    let rows = run.rows();
    for id in NAMED_ROWS {
        assert!(
            rows.contains_key(*id),
            "row {id} missing\n{}",
            run.context()
        );
    }
    let wrong: Vec<String> = rows
        .iter()
        // No row may be skipped here: every target exists on this machine (a private session
        // bus, the display's abstract socket, fonts).
        .filter(|(_, (expected, result, _))| result != expected)
        .map(|(id, (expected, result, detail))| {
            format!("{id}: expected {expected}, got {result} ({detail})")
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "rows not as expected:\n{}\n{}",
        wrong.join("\n"),
        run.context()
    );
    assert_eq!(
        run.layers(),
        ["namespaces", "seccomp", "landlock", "webkit"],
        "{}",
        run.context()
    );
    assert_eq!(run.report["ok"], Value::Bool(true), "{}", run.context());
    assert_eq!(run.report["sandbox"], Value::Bool(true));
    assert_eq!(run.status.code(), Some(0), "{}", run.context());
    run.assert_clean();
}

#[test]
fn without_the_sandbox_the_forbidden_rows_flip_to_allowed() {
    let x = Xvfb::start();
    let run = self_test(&x, &["--no-sandbox"]);
    eprintln!(
        "self-test with --no-sandbox took {:?}; {} processes ran below the browser",
        run.elapsed,
        run.seen.len()
    );
    let rows = run.rows();
    let mut must_flip = vec![
        "read-home",
        "write-home",
        "write-profile",
        "kill",
        "proc",
        "control-socket",
        "session-bus",
        "x-abstract",
        "leave-process",
        "pid-ns",
        "seccomp",
        "landlock",
        "web-net-ns",
        "web-seccomp",
    ];
    // Tracing and reading another process's memory need ptrace rights over the browser, which
    // an unsandboxed renderer has only as root (Yama restricts it to descendants otherwise).
    if nix::unistd::geteuid().is_root() {
        must_flip.extend(["ptrace", "process-vm-readv"]);
    }
    let not_flipped: Vec<String> = must_flip
        .iter()
        .filter_map(|id| match rows.get(*id) {
            Some((expected, result, _)) if expected == "denied" && result == "allowed" => None,
            Some((expected, result, detail)) => Some(format!(
                "{id}: expected {expected}, got {result} ({detail})"
            )),
            None => Some(format!("{id}: missing")),
        })
        .collect();
    assert!(
        not_flipped.is_empty(),
        "forbidden rows that did not flip to allowed without the sandbox:\n{}\n{}",
        not_flipped.join("\n"),
        run.context()
    );
    // What a tab needs still works; the rows only change because the sandbox is gone.
    for id in ["font", "webkit", "network", "memfd", "write-website-data"] {
        let (_, result, detail) = &rows[id];
        assert_eq!(result, "allowed", "{id}: {detail}\n{}", run.context());
    }
    assert_eq!(run.layers(), Vec::<String>::new(), "{}", run.context());
    assert_eq!(run.report["ok"], Value::Bool(false));
    assert_eq!(run.report["sandbox"], Value::Bool(false));
    assert_eq!(
        run.report["completed"],
        Value::Bool(true),
        "{}",
        run.context()
    );
    assert_eq!(run.status.code(), Some(1), "{}", run.context());
    assert!(
        run.log.contains("--no-sandbox"),
        "no warning about --no-sandbox:\n{}",
        run.log
    );
    run.assert_clean();
}
