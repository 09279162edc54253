//! Warren's trusted browser process: the modules with no UI, tested directly; `main.rs` holds the window.

pub mod cli;
pub mod clipboard;
pub mod control;
pub mod ctl;
pub mod host;
pub mod memory;
pub mod nested;
pub mod policy;
pub mod procs;
pub mod profile;
pub mod protocol;
pub mod sandbox;
pub mod selftest;
pub mod session;
pub mod socket;
pub mod spare;
pub mod tabs;
pub mod url_input;
pub mod validate;
