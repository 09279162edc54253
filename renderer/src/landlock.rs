//! Landlock scoping (sandbox layer 4): once the renderer holds its X connection, it confines
//! itself so that it can neither connect to an abstract Unix socket nor signal a process created
//! outside its own Landlock domain.
//!
//! Why these two: abstract Unix sockets have no file, so the private mount view bubblewrap gives
//! the renderer does not hide them — the session bus, the accessibility bus, X servers and other
//! programs listen on them and any process in the same network namespace can connect (the
//! renderer keeps the host's network namespace, which WebKit's network process needs). Signals
//! are already limited by the PID namespace; scoping them also holds when the renderer runs
//! without namespaces (a kernel that refuses unprivileged user namespaces).
//!
//! Why no file or network rules: under any Landlock ruleset that handles file access — even one
//! that allows everything — WebKit's own bubblewrap for the web process fails ("Failed to make /
//! slave: Operation not permitted": Landlock forbids mount-propagation changes to a restricted
//! process) and the renderer aborts. The private mount view already decides which files a
//! renderer sees, so file rules would add nothing but that breakage.
//!
//! # When to call [`restrict_scopes`]
//!
//! After the X connection is made (libxcb tries the abstract X socket first and does not fall back
//! to the path socket when scoping refuses it) and before any web content can run. Landlock
//! restricts the **calling thread** and every thread and process it creates afterwards; other
//! threads that already exist stay unrestricted, unless the kernel offers Landlock ABI 8
//! (`LANDLOCK_RESTRICT_SELF_TSYNC`), which this module requests and which then restricts the whole
//! process. So call it on the main thread before the renderer starts threads of its own and
//! before WebKit spawns its web and network processes; [`Enforcement::other_threads`] says how many
//! threads existed at the call (GLib and GTK may have started some), and
//! [`Enforcement::all_threads`] whether they were covered.
//!
//! Processes the renderer starts afterwards (WebKit's helpers) inherit its domain, so the renderer
//! can still signal and connect to them, and they to each other. (On kernels without the fix for
//! Landlock erratum 2, a restricted thread also cannot signal an earlier, unrestricted thread of
//! its own process: one more reason to call this while the caller is the only thread.)

use std::fmt;

use landlock::{
    Access, BitFlags, LandlockStatus, RestrictSelfAttr, Ruleset, RulesetAttr, RulesetError,
    RulesetStatus, Scope,
};

/// The scopes the renderer asks for, both introduced by Landlock ABI 6 (Linux 6.12).
fn requested() -> BitFlags<Scope> {
    Scope::AbstractUnixSocket | Scope::Signal
}

/// A scope's name in reports.
fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::AbstractUnixSocket => "abstract-unix-socket",
        Scope::Signal => "signal",
        // `Scope` is non-exhaustive; we only ever request the two above.
        _ => "unknown",
    }
}

/// How much of the scoping is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Both scopes are enforced.
    Full,
    /// Some scopes are enforced (an older kernel): [`Enforcement::missing`] names the others.
    Partial,
    /// Nothing is enforced: the kernel has no Landlock, has it disabled, or is older than ABI 6.
    None,
}

/// What [`restrict_scopes`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enforcement {
    /// Overall result.
    pub level: Level,
    /// The scopes in force.
    pub enforced: Vec<&'static str>,
    /// The scopes asked for but not in force.
    pub missing: Vec<&'static str>,
    /// Landlock on this kernel: `"ABI 7"`, `"not built into this kernel"`, `"disabled at boot"`.
    pub kernel: String,
    /// The kernel applied the domain to every thread of the process (Landlock ABI 8), not only
    /// to the calling thread.
    pub all_threads: bool,
    /// Threads of this process other than the caller when it was called (`None` if
    /// `/proc/self/task` could not be read). Unless [`Enforcement::all_threads`], they are not
    /// restricted.
    pub other_threads: Option<usize>,
}

impl Enforcement {
    /// Both scopes are in force.
    pub fn is_full(&self) -> bool {
        self.level == Level::Full
    }

    /// Threads that run without the scoping: the caller too when nothing is enforced; none when
    /// the kernel covered every thread.
    pub fn unrestricted_threads(&self) -> Option<usize> {
        match (self.level, self.all_threads) {
            (Level::None, _) => self.other_threads.map(|n| n + 1),
            (_, true) => Some(0),
            (_, false) => self.other_threads,
        }
    }
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            Level::Full => write!(
                f,
                "Landlock scoping enforced ({})",
                self.enforced.join(", ")
            )?,
            Level::Partial => write!(
                f,
                "Landlock scoping partly enforced ({}; missing: {})",
                self.enforced.join(", "),
                self.missing.join(", ")
            )?,
            Level::None => write!(f, "Landlock scoping not enforced")?,
        }
        write!(f, "; Landlock: {}", self.kernel)?;
        if self.level != Level::None {
            match self.unrestricted_threads() {
                Some(0) if self.all_threads => write!(f, "; all threads")?,
                Some(0) => write!(f, "; the only thread")?,
                Some(n) => write!(f, "; {n} earlier threads are not restricted")?,
                None => write!(f, "; earlier threads unknown")?,
            }
        }
        Ok(())
    }
}

/// Landlock refused a ruleset the kernel says it supports.
#[derive(Debug, thiserror::Error)]
#[error("cannot apply the Landlock scoping: {0}")]
pub struct LandlockError(#[from] RulesetError);

/// Scopes abstract Unix sockets and signals to this process's Landlock domain (see the module
/// documentation for when to call it). Best effort: on a kernel without Landlock, or one older
/// than ABI 6, it enforces nothing and says so in the result rather than failing. Never panics.
pub fn restrict_scopes() -> Result<Enforcement, LandlockError> {
    let other_threads = std::fs::read_dir("/proc/self/task")
        .ok()
        .map(|tasks| tasks.count().saturating_sub(1));
    let status = Ruleset::default()
        .scope(requested())?
        .create()?
        // Whole-process enforcement where the kernel has it (ABI 8); silently dropped before.
        .all_threads(true)?
        .restrict_self()?;

    let (kernel, abi) = match status.landlock {
        LandlockStatus::NotImplemented => ("not built into this kernel".to_owned(), None),
        LandlockStatus::NotEnabled => ("disabled at boot (not in the lsm= list)".to_owned(), None),
        LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        } => {
            let number = kernel_abi.unwrap_or(effective_abi as i32);
            (format!("ABI {number}"), Some(effective_abi))
        }
    };
    // The ruleset status cannot be used as the level: it also counts the all-threads flag, so on
    // a kernel before ABI 8 it says "partially enforced" with both scopes in force.
    let supported = match (status.ruleset, abi) {
        (RulesetStatus::NotEnforced, _) | (_, None) => BitFlags::EMPTY,
        (_, Some(abi)) => Scope::from_all(abi) & requested(),
    };
    let level = if supported.is_empty() {
        Level::None
    } else if supported == requested() {
        Level::Full
    } else {
        Level::Partial
    };
    Ok(Enforcement {
        level,
        enforced: supported.iter().map(scope_name).collect(),
        missing: (requested() & !supported).iter().map(scope_name).collect(),
        kernel,
        all_threads: level != Level::None && status.all_threads,
        other_threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{self, ErrorKind};
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
    use std::path::PathBuf;

    use nix::libc;
    use nix::sys::signal::{kill, Signal};
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, getppid, ForkResult};

    /// Exit status of a child that found no Landlock scoping on this kernel.
    const SKIP: i32 = 77;

    /// A listening pathname socket in a private directory, removed when dropped.
    struct PathListener {
        dir: PathBuf,
        path: PathBuf,
        _listener: UnixListener,
    }

    impl PathListener {
        fn new(tag: &str) -> PathListener {
            let dir = std::env::temp_dir().join(format!(
                "warren-landlock-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("s");
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).unwrap();
            PathListener {
                dir,
                path,
                _listener: listener,
            }
        }
    }

    impl Drop for PathListener {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn abstract_listener(tag: &str) -> io::Result<(UnixListener, SocketAddr)> {
        let name = format!(
            "warren-landlock-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        Ok((UnixListener::bind_addr(&addr)?, addr))
    }

    fn is_eperm(result: &io::Result<UnixStream>) -> bool {
        matches!(result, Err(e) if e.kind() == ErrorKind::PermissionDenied)
    }

    /// Forks; the child runs `body` and exits with what it returns. Returns the exit status,
    /// or `None` when the child found no Landlock scoping (and the caller should skip).
    fn in_child(body: impl FnOnce() -> i32) -> Option<i32> {
        // SAFETY: the child runs `body` (plain system calls, a little allocation, which glibc
        // makes safe after fork) and leaves with `_exit`, never returning into the test harness.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let code =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(99);
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, SKIP) => None,
                WaitStatus::Exited(_, code) => Some(code),
                other => panic!("the test child did not exit: {other:?}"),
            },
        }
    }

    #[test]
    fn landlock_scopes_abstract_sockets_and_signals_to_the_sandbox() {
        let (_abstract_listener, abstract_addr) = abstract_listener("scope").unwrap();
        let path = PathListener::new("scope");
        let code = in_child(|| {
            let parent = getppid();
            // Before: everything is reachable, so the denials below are Landlock's doing.
            if UnixStream::connect_addr(&abstract_addr).is_err() {
                return 1;
            }
            if kill(parent, None).is_err() {
                return 2;
            }
            let enforcement = match restrict_scopes() {
                Ok(e) if e.level == Level::Full => e,
                Ok(_) => return SKIP,
                Err(_) => return 3,
            };
            if !enforcement.missing.is_empty() || enforcement.enforced.len() != 2 {
                return 4;
            }
            // An abstract socket made outside the domain: refused.
            if !is_eperm(&UnixStream::connect_addr(&abstract_addr)) {
                return 10;
            }
            // A signal (even the null probe) to a process outside the domain: refused.
            if kill(parent, None) != Err(nix::errno::Errno::EPERM) {
                return 11;
            }
            // A pathname socket is the mount view's business, not Landlock's: allowed.
            if UnixStream::connect(&path.path).is_err() {
                return 20;
            }
            // An abstract socket made inside the domain: allowed.
            let Ok((_own, own_addr)) = abstract_listener("own") else {
                return 21;
            };
            if UnixStream::connect_addr(&own_addr).is_err() {
                return 22;
            }
            // A process it starts afterwards is in its domain: it can signal it.
            // SAFETY: the grandchild only pauses until it is killed.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => loop {
                    // SAFETY: plain system call.
                    unsafe { libc::pause() };
                },
                Ok(ForkResult::Parent { child }) => {
                    let probe = kill(child, None);
                    let killed = kill(child, Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    if probe.is_err() || killed.is_err() {
                        return 23;
                    }
                }
                Err(_) => return 24,
            }
            0
        });
        let Some(code) = code else {
            println!("skipped: this kernel has no Landlock scoping (ABI 6)");
            return;
        };
        let what = match code {
            0 => return,
            1 | 2 => "the parent was not reachable even before restricting",
            3 => "restrict_scopes failed",
            4 => "the report does not name both scopes",
            10 => "an abstract socket outside the domain was still reachable",
            11 => "a process outside the domain could still be signalled",
            20 => "a pathname socket was refused",
            21 | 22 => "an abstract socket inside the domain was refused",
            23 | 24 => "a process inside the domain could not be signalled",
            _ => "the child panicked",
        };
        panic!("{what} (child exit {code})");
    }

    /// The report says whether threads that existed before the call are covered, and it is
    /// right: such a thread can (ABI < 8) or cannot (ABI 8, all threads) still signal outside.
    #[test]
    fn landlock_report_tells_the_truth_about_earlier_threads() {
        let code = in_child(|| {
            let parent = getppid();
            let (to_thread, from_main) = std::sync::mpsc::channel::<()>();
            let (to_main, from_thread) = std::sync::mpsc::channel::<bool>();
            let earlier = std::thread::spawn(move || {
                // Wait until the main thread has restricted itself, then try.
                let _ = from_main.recv();
                let _ = to_main.send(kill(parent, None).is_ok());
            });
            let enforcement = match restrict_scopes() {
                Ok(e) if e.level == Level::Full => e,
                Ok(_) => return SKIP,
                Err(_) => return 3,
            };
            if enforcement.other_threads != Some(1) {
                return 5;
            }
            let _ = to_thread.send(());
            let Ok(earlier_reached_parent) = from_thread.recv() else {
                return 6;
            };
            let _ = earlier.join();
            let expected_unrestricted = if enforcement.all_threads { 0 } else { 1 };
            if enforcement.unrestricted_threads() != Some(expected_unrestricted) {
                return 7;
            }
            if earlier_reached_parent == enforcement.all_threads {
                return 8;
            }
            // The caller itself is restricted either way.
            if kill(parent, None).is_ok() {
                return 9;
            }
            if enforcement.all_threads {
                10
            } else {
                11
            }
        });
        match code {
            None => println!("skipped: this kernel has no Landlock scoping (ABI 6)"),
            Some(10) => println!("the kernel restricted every thread (Landlock ABI 8)"),
            Some(11) => {
                println!("earlier threads stay unrestricted (Landlock ABI < 8), as reported")
            }
            Some(code) => panic!("child exit {code}: the report about earlier threads is wrong"),
        }
    }

    #[test]
    fn landlock_report_reads_well() {
        let report = Enforcement {
            level: Level::Partial,
            enforced: vec!["signal"],
            missing: vec!["abstract-unix-socket"],
            kernel: "ABI 6".into(),
            all_threads: false,
            other_threads: Some(2),
        };
        assert_eq!(
            report.to_string(),
            "Landlock scoping partly enforced (signal; missing: abstract-unix-socket); \
             Landlock: ABI 6; 2 earlier threads are not restricted"
        );
        assert_eq!(report.unrestricted_threads(), Some(2));
        let none = Enforcement {
            level: Level::None,
            enforced: vec![],
            missing: vec!["abstract-unix-socket", "signal"],
            kernel: "not built into this kernel".into(),
            all_threads: false,
            other_threads: Some(2),
        };
        assert_eq!(
            none.to_string(),
            "Landlock scoping not enforced; Landlock: not built into this kernel"
        );
        assert_eq!(none.unrestricted_threads(), Some(3));
    }
}
