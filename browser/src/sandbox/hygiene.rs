//! What the forked child does between `fork` and `exec` of a renderer (or of bubblewrap around
//! it): the process hygiene layer.
//!
//! Runs in a `Command::pre_exec` closure, so everything here is async-signal-safe: raw system
//! calls on prepared data, no allocation, no locks.
//!
//! * The up socket becomes descriptor [`UP_FD`], the launch channel [`DOWN_FD`]; every other
//!   descriptor the browser had open (X connections, GL, sockets of other tabs, the control
//!   socket) is closed, whether or not it was marked close-on-exec.
//! * The child leads its own process group (so a tab without namespaces can still be signalled
//!   as a group) and gets `SIGKILL` when the browser's spawning thread dies.
//! * The signal mask is emptied and every signal's disposition reset to its default: the browser
//!   blocks SIGTERM/SIGINT/SIGHUP for its signal thread, and blocked or ignored signals survive
//!   `exec`, which made renderers and WebKit's helpers ignore SIGTERM.
//! * No core dumps (`RLIMIT_CORE` 0): a renderer's memory holds pages, cookies and form data.
//! * `PR_SET_NO_NEW_PRIVS`, then the seccomp policy, which is inherited by every process and
//!   thread the renderer ever makes.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use warren_ipc::{DOWN_FD, UP_FD};

use super::seccomp::Filter;

/// Everything the child needs, prepared in the parent.
pub struct ChildSetup {
    /// The up socket and the launch channel (a renderer's); none for the browser's other
    /// helpers (a nested display's server).
    channels: Option<(OwnedFd, OwnedFd)>,
    filter: Option<&'static Filter>,
}

impl ChildSetup {
    pub fn new(up: OwnedFd, down: OwnedFd, filter: Option<&'static Filter>) -> ChildSetup {
        ChildSetup {
            channels: Some((up, down)),
            filter,
        }
    }

    /// The same hygiene for a process that gets no channel: it keeps only stdin, stdout and
    /// stderr.
    pub fn without_channels(filter: Option<&'static Filter>) -> ChildSetup {
        ChildSetup {
            channels: None,
            filter,
        }
    }

    /// Runs in the forked child. Async-signal-safe.
    pub fn run(&self) -> io::Result<()> {
        // SAFETY: raw system calls on descriptors and memory this process owns.
        unsafe {
            // Out of the way first, so that neither target number is clobbered while the other
            // is moved (the up socket might already be 4, or the launch channel 3).
            match &self.channels {
                Some((up, down)) => {
                    let up = check(libc::fcntl(up.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10))?;
                    let down = check(libc::fcntl(down.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10))?;
                    check(libc::dup2(up, UP_FD))?;
                    check(libc::dup2(down, DOWN_FD))?;
                    // Everything above the two channels goes, inherited by accident or not.
                    close_from(DOWN_FD + 1)?;
                }
                None => close_from(3)?,
            }
            check(libc::setpgid(0, 0))?;
            die_with_parent()?;
            reset_signals()?;
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            check(libc::setrlimit(libc::RLIMIT_CORE, &no_core))?;
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        }
        if let Some(filter) = self.filter {
            filter.install()?;
        }
        Ok(())
    }
}

/// Asks the kernel to SIGKILL the calling process when the thread that forked it exits. For
/// `pre_exec` closures; async-signal-safe.
pub fn die_with_parent() -> io::Result<()> {
    // SAFETY: prctl(2) with plain integer arguments.
    check(unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    })
    .map(drop)
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Closes every descriptor from `first` up.
///
/// # Safety
/// Must run where no other thread uses descriptors (the forked child).
unsafe fn close_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range(2) only closes descriptors.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    // Kernels before 5.9: close one by one up to the descriptor limit.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `limit`; close on any number is harmless here.
    unsafe {
        check(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit))?;
        let max = limit.rlim_cur.min(1 << 20) as RawFd;
        for fd in first..max {
            libc::close(fd);
        }
    }
    Ok(())
}

/// Empties the signal mask and resets every signal to its default action.
///
/// # Safety
/// Async-signal-safe; meant for the forked child.
pub(crate) unsafe fn reset_signals() -> io::Result<()> {
    // SAFETY: sigemptyset/sigprocmask/sigaction on local, initialised structures.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        check(libc::sigprocmask(
            libc::SIG_SETMASK,
            &empty,
            std::ptr::null_mut(),
        ))?;
        // The kernel's own `struct sigaction`, all zero: SIG_DFL, no flags, an empty mask. The
        // raw call, because the C library refuses to touch the real-time signals it reserves
        // (32 and 33), which a parent may still have left ignored.
        let default = [0u64; 4];
        for signal in 1..=64 {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                default.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8usize,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::os::unix::process::CommandExt;

    /// What a child started with [`ChildSetup`] sees: its descriptors and signal state, as a shell
    /// reports them from `/proc/self`.
    #[test]
    fn child_gets_two_channels_a_clean_signal_state_and_no_new_privileges() {
        let (_a, up) = UnixStream::pair().unwrap();
        let (_b, down) = UnixStream::pair().unwrap();
        // A descriptor the browser leaked without close-on-exec must not reach the child.
        let leaked = std::fs::File::open("/proc/self/status").unwrap();
        // SAFETY: clearing FD_CLOEXEC on our own descriptor.
        unsafe { libc::fcntl(leaked.as_raw_fd(), libc::F_SETFD, 0) };
        // Block SIGTERM and ignore SIGUSR2 here, as a browser's signal handling may: the child
        // must inherit neither.
        let mut term = nix::sys::signal::SigSet::empty();
        term.add(nix::sys::signal::Signal::SIGTERM);
        let old_mask = term
            .thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)
            .unwrap();
        // SAFETY: setting a disposition; restored below.
        let old_usr2 = unsafe { libc::signal(libc::SIGUSR2, libc::SIG_IGN) };
        let setup = ChildSetup::new(up.into(), down.into(), None);
        let mut command = std::process::Command::new("/bin/sh");
        command.args([
            "-c",
            "ls /proc/self/fd; grep -E '^(SigBlk|SigIgn|NoNewPrivs)' /proc/self/status; ulimit -c",
        ]);
        // SAFETY: `run` is async-signal-safe.
        unsafe {
            command.pre_exec(move || setup.run());
        }
        let output = command.output().unwrap();
        old_mask.thread_set_mask().unwrap();
        // SAFETY: restoring the disposition saved above.
        unsafe { libc::signal(libc::SIGUSR2, old_usr2) };
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        let fds: Vec<i32> = text
            .lines()
            .take_while(|l| l.parse::<i32>().is_ok())
            .map(|l| l.parse().unwrap())
            .collect();
        // 0-2 (stdio), the two channels, and the one descriptor `ls` opened to list the directory;
        // nothing the parent had open (the leaked file, the test harness's own descriptors).
        assert!(fds.contains(&UP_FD) && fds.contains(&DOWN_FD), "{text}");
        assert_eq!(fds.iter().filter(|&&fd| fd > DOWN_FD).count(), 1, "{text}");
        assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
        assert!(text.contains("SigIgn:\t0000000000000000"), "{text}");
        assert!(text.contains("NoNewPrivs:\t1"), "{text}");
        assert_eq!(text.lines().last(), Some("0"), "{text}");
        drop(leaked);
    }
}
