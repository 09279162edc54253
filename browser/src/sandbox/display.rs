//! X displays as the sandbox sees them: the user's (where a renderer's view still lives, until
//! each tab has a nested display of its own) and a headless one the browser starts for WebKit's
//! web processes.
//!
//! WebKit's sandboxed web process (the page's JavaScript) only needs *some* display to start GTK;
//! it renders through the renderer (its UI process), not on the display. Pointed at a headless
//! display the browser owns, a JavaScript exploit that escapes into the web process finds no
//! window of the user's to read or type into: WebKit's bubblewrap mounts only the socket of the
//! display the web process was told about, and its own network namespace hides every abstract X
//! socket.

use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A display named in `$DISPLAY`, when it is a local one (`:N` or `:N.S`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    /// `$DISPLAY` as given.
    pub name: String,
    pub number: u32,
    /// `$XAUTHORITY`, if set.
    pub xauthority: Option<PathBuf>,
}

impl Address {
    pub fn from_env() -> Option<Address> {
        let name = std::env::var("DISPLAY").ok()?;
        let mut address = Address::parse(&name)?;
        address.xauthority = std::env::var_os("XAUTHORITY").map(PathBuf::from);
        Some(address)
    }

    /// Parses a local display name. `host:N` (TCP) is not local: the sandbox does not forward it.
    pub fn parse(name: &str) -> Option<Address> {
        let rest = name.strip_prefix(':')?;
        let number = rest.split('.').next()?.parse().ok()?;
        Some(Address {
            name: name.to_owned(),
            number,
            xauthority: None,
        })
    }
}

/// How long the headless server may take to say which display it took.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A headless X server (Xvfb) for web processes, ended with the browser.
pub struct Headless {
    child: Child,
    number: u32,
}

impl Headless {
    /// Starts Xvfb on a free display number (it picks one and writes it to a pipe:
    /// `-displayfd`), listening only on its Unix socket.
    pub fn start() -> io::Result<Headless> {
        let (read, write) = nix::unistd::pipe().map_err(io::Error::from)?;
        let write_fd = write.as_raw_fd();
        let mut command = Command::new("Xvfb");
        command
            .args(["-displayfd", &write_fd.to_string()])
            .args([
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "640x480x24",
                "-nocursor",
            ])
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, prctl, sigprocmask, rt_sigaction) in the
        // forked child.
        unsafe {
            command.pre_exec(move || {
                // The browser blocks SIGTERM for its signal thread; Xvfb must not inherit that, or
                // it would ignore the SIGTERM that ends it (and leave its socket and lock file).
                super::hygiene::reset_signals()?;
                let flags = libc::fcntl(write_fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(write_fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0
                {
                    return Err(io::Error::last_os_error());
                }
                super::hygiene::die_with_parent()
            });
        }
        let child = crate::host::spawn_locked(&mut command)?;
        drop(write);
        let mut headless = Headless { child, number: 0 };
        headless.number = read_display_number(read)?;
        Ok(headless)
    }

    pub fn number(&self) -> u32 {
        self.number
    }

    /// The display's name for `$DISPLAY`.
    pub fn name(&self) -> String {
        format!(":{}", self.number)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        // The reaper thread collects the status.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

/// Reads the number Xvfb writes once it listens; gives up after [`START_TIMEOUT`].
fn read_display_number(read: OwnedFd) -> io::Result<u32> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("xvfb-start".into())
        .spawn(move || {
            let mut line = String::new();
            let result = BufReader::new(std::fs::File::from(read))
                .read_line(&mut line)
                .map(|_| line);
            let _ = tx.send(result);
        })?;
    let line = rx
        .recv_timeout(START_TIMEOUT)
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "Xvfb did not start in time"))??;
    line.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "Xvfb exited without taking a display",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_display_names() {
        assert_eq!(Address::parse(":0").map(|a| a.number), Some(0));
        assert_eq!(Address::parse(":57.1").map(|a| a.number), Some(57));
        assert_eq!(Address::parse("host:0"), None);
        assert_eq!(Address::parse(""), None);
        assert_eq!(Address::parse(":x"), None);
    }
}
