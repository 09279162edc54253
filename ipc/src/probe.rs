//! The sandbox self-test's contract between the browser (`browser --sandbox-self-test`) and a
//! renderer started in probe mode (`renderer --probe JSON`): what the probe is to try, prepared
//! outside the sandbox by the browser. Unknown fields are refused, so the two sides cannot drift
//! apart silently.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The targets of the probe's attempts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// The browser (self-test) process, as the host's PID namespace numbers it.
    pub browser_pid: i32,
    /// Its start time (field 22 of `/proc/PID/stat`), to tell it from another process that has
    /// the same number inside the sandbox's PID namespace.
    pub browser_start_time: u64,
    /// `readlink /proc/self/ns/pid` of the browser.
    pub browser_pid_ns: String,
    /// A file in `$HOME` with random content (`None`: no usable `$HOME`).
    pub home_canary: Option<PathBuf>,
    /// A file to create in `$HOME` (must fail).
    pub home_write: Option<PathBuf>,
    /// A file to create in the profile, outside its website-data directory (must fail).
    pub profile_write: PathBuf,
    /// A file to create in the website-data directory (must work: cookies and storage live there).
    pub website_data_write: PathBuf,
    /// The profile's website-data directory, which WebKit is given as in production.
    pub website_data_dir: PathBuf,
    /// Address and length of random bytes in the browser's memory.
    pub secret_addr: u64,
    pub secret_len: usize,
    /// A Unix socket the browser listens on, where its control socket would be.
    pub control_socket: PathBuf,
    /// The browser's session bus.
    pub session_bus: Option<UnixAddress>,
    /// The user's display's abstract socket name (without the leading NUL), when it has one.
    pub x_abstract: Option<String>,
    /// The user's display's socket file, when it has one.
    #[serde(default)]
    pub x_path: Option<PathBuf>,
    /// A TCP listener of the browser's on 127.0.0.1.
    pub tcp_port: u16,
    /// A system font file.
    pub font: Option<PathBuf>,
    /// The name (at most 15 bytes) the escaping grandchild gives itself.
    pub marker: String,
}

/// A Unix socket address: a file or an abstract name (without its leading NUL).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum UnixAddress {
    Path(PathBuf),
    Abstract(String),
}
