//! The renderer's own part of its sandbox, applied after GTK connected to the X display and
//! before any web content exists (the browser applied the rest before `exec`: namespaces, the
//! mount view, seccomp, `NoNewPrivs`).
//!
//! 1. Landlock scoping ([`crate::landlock`]): no abstract Unix socket and no signal outside the
//!    sandbox from here on. It must come after the X connection: libxcb reaches the display
//!    through its abstract socket first and does not fall back to the path socket when scoping
//!    refuses it.
//! 2. The display WebKit's web processes see: the headless one the browser started
//!    ([`warren_ipc::ENV_WEB_DISPLAY`]), never the user's. WebKit's bubblewrap mounts only that
//!    display's socket into the web process, whose own network namespace hides every abstract
//!    socket, so page JavaScript that escapes into the web process has no path to the user's
//!    display. The renderer's own view is on the tab's nested display (`--display-isolation
//!    nested`), or on the user's with `none`.

/// Applies the renderer's layers when the browser started it sandboxed; returns whether Landlock
/// scoping is in force (reported to the browser in `Ready`).
pub fn enter() -> bool {
    let Ok(layers) = std::env::var(warren_ipc::ENV_SANDBOX) else {
        log::warn!(target: "renderer", "started without a sandbox (--no-sandbox)");
        return false;
    };
    let landlock = if layers.split(',').any(|l| l == "landlock") {
        match crate::landlock::restrict_scopes() {
            Ok(enforcement) => {
                log::info!(target: "renderer", "Landlock: {enforcement}");
                enforcement.is_full()
            }
            Err(e) => {
                log::warn!(target: "renderer", "Landlock scoping is not in force: {e}");
                false
            }
        }
    } else {
        false
    };
    if let Some(display) = std::env::var_os(warren_ipc::ENV_WEB_DISPLAY) {
        // WebKit starts its web and network processes later, with this process's environment.
        // SAFETY (edition 2021 makes this safe to call, but it is only sound with no other
        // thread reading the environment): GTK's threads do not read DISPLAY after `gtk::init`.
        std::env::set_var("DISPLAY", display);
        std::env::remove_var("XAUTHORITY");
    }
    landlock
}
