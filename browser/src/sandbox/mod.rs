//! The renderer sandbox: how the browser starts a renderer so that a page that takes it over stays
//! stuck inside its tab.
//!
//! Every renderer is started by [`Sandbox::command`], the one place that decides what a renderer
//! gets. The layers, all applied before any web content loads:
//!
//! 1. **Process hygiene** ([`hygiene`], in the forked child before `exec`): a clean environment
//!    ([`Sandbox::environment`]), an unblocked signal mask and default dispositions, no core
//!    dumps, no inherited descriptor but the two channels, `PR_SET_NO_NEW_PRIVS`, death with the
//!    browser. The browser holds each renderer by a pidfd ([`pidfd`]).
//! 2. **Namespaces and a private view of the filesystem** ([`bwrap`]): bubblewrap gives the
//!    renderer new user, PID and IPC namespaces (not network: WebKit's network process needs it)
//!    and a mount view with the system read-only, the profile's website data writable, a private
//!    size-capped `/tmp`, and the `file:` paths the user opened in that tab read-only — nothing
//!    else of `$HOME`, `/run/user`, the session bus, the control and instance sockets or other
//!    tabs. Ending the namespace's first process ends every process the tab ever made.
//! 3. **seccomp-bpf** ([`seccomp`]): the reviewed policy in `resources/sandbox/seccomp.json`,
//!    installed before `exec` so bubblewrap, the renderer, WebKit's helpers and all their threads
//!    carry it.
//! 4. **Landlock scoping**: applied by the renderer itself once its X connection exists (libxcb
//!    does not fall back from the abstract X socket to the path one when scoping refuses it):
//!    abstract Unix sockets and signals are scoped to the sandbox. No Landlock *file* rules: any
//!    ruleset that handles file access breaks WebKit's own bubblewrap ("Failed to make / slave"),
//!    and the mount view already does that job.
//! 5. **WebKit's own sandbox** (`WEBKIT_FORCE_SANDBOX=1`) for the web process that runs the page's
//!    JavaScript, nested inside ours, pointed at a headless display ([`display`]) so a JavaScript
//!    exploit has no path to the user's display.
//!
//! `--no-sandbox` turns all of it off (with a warning); a kernel without unprivileged user
//! namespaces loses layer 2 only, and the browser says so once. Which layers a renderer really
//! has is read back from `/proc` (and the renderer's own Landlock report) by the Task Manager.

pub mod bwrap;
pub mod cleanup;
pub mod display;
pub mod hygiene;
pub mod pidfd;
pub mod seccomp;

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use warren_ipc::TabId;

/// One layer of the sandbox, as `task_manager` rows and the self-test name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// Own user, PID and IPC namespaces and a private mount view (bubblewrap).
    Namespaces,
    /// The seccomp-bpf policy (and `NoNewPrivs`).
    Seccomp,
    /// Landlock scoping of abstract Unix sockets and signals.
    Landlock,
    /// WebKit's own sandbox around the web process, on a display that is not the user's.
    Webkit,
}

impl Layer {
    /// Every layer, in the order they are applied.
    pub const ALL: [Layer; 4] = [
        Layer::Namespaces,
        Layer::Seccomp,
        Layer::Landlock,
        Layer::Webkit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Layer::Namespaces => "namespaces",
            Layer::Seccomp => "seccomp",
            Layer::Landlock => "landlock",
            Layer::Webkit => "webkit",
        }
    }
}

/// What the browser found it can do, decided once at start-up.
pub struct Sandbox {
    /// `--no-sandbox`: nothing but process hygiene.
    enabled: bool,
    /// bubblewrap, when it works here; otherwise why not.
    bwrap: Result<PathBuf, String>,
    /// The compiled seccomp policy, or why it could not be compiled.
    filter: Result<&'static seccomp::Filter, String>,
    /// The display web processes see, when the browser could start one.
    web_display: Option<display::Headless>,
    /// The user's display, which renderers' views live on with `--display-isolation none`.
    user_display: Option<display::Address>,
    /// Environment variables passed to renderers unchanged (`WARREN_RENDERER_PASSENV`).
    passenv: Vec<String>,
}

/// What one renderer is started with, beyond what [`Sandbox`] decides for all.
pub struct Spec<'a> {
    pub renderer: &'a Path,
    pub tab_id: TabId,
    /// The renderer's end of the up socket (becomes fd 3).
    pub up: OwnedFd,
    /// The receiver of the launch channel (becomes fd 4).
    pub down: OwnedFd,
    /// The profile's website-data directory (the one writable directory of the profile).
    pub website_data_dir: &'a Path,
    /// Files the user opened in this tab (`file:` URLs), to be shown read-only.
    pub files: &'a [PathBuf],
    /// A private directory for this renderer, used only without namespaces (it holds `$TMPDIR`
    /// and `$XDG_RUNTIME_DIR` then); inside the sandbox both live on the sandbox's own tmpfs.
    pub runtime_dir: &'a Path,
    /// Extra mode for the self-test: the probe arguments for the renderer.
    pub probe: Option<&'a str>,
    /// The renderer's own nested display; `None`: the user's display (`--display-isolation
    /// none`), whose socket and cookie the view then holds.
    pub display: Option<&'a crate::nested::RendererView<'a>>,
}

/// Where a renderer's private directories are inside its sandbox (all on its own tmpfs).
pub const SANDBOX_TMP: &str = "/tmp";
const SANDBOX_HOME: &str = "/tmp/home";
const SANDBOX_RUNTIME: &str = "/tmp/run";
const SANDBOX_CACHE: &str = "/tmp/cache";

/// A session-bus address that fails at once without starting anything: with no session bus,
/// GLib would otherwise autolaunch `dbus-daemon` (and GTK the accessibility bus) through
/// `dbus-launch`, processes that outlive everything. GLib refuses the unknown `disabled:`
/// transport with a warning; WebKit's sandbox, which proxies the bus for its web process, skips
/// it (a `unix:path=` that does not exist instead makes WebKit's proxy fail and the renderer
/// abort).
pub const NO_SESSION_BUS: &str = "disabled:";

/// The GPU render node WebKit is told to use inside the sandbox: none there is (bubblewrap's
/// `--dev /dev` has no `/dev/dri`), and this path does not exist. Without it, WebKit's UI side
/// (the renderer) looks for a render node through EGL when its first web process starts, which
/// loads Mesa's software driver and LLVM for nothing: about 10 MiB of relocated, private
/// library data in every renderer (issue 9). The web process does not use the node either:
/// it draws with EGL's software path, and the DMA-BUF renderer that would need it is off.
pub const NO_RENDER_NODE: &str = "/dev/dri/none";

/// Environment variable naming, comma-separated, extra variables the browser passes to renderers
/// unchanged (for debugging WebKit, e.g. `WEBKIT_DEBUG`).
pub const ENV_PASSENV: &str = "WARREN_RENDERER_PASSENV";

impl Sandbox {
    /// Decides what this machine allows: `enabled` is false for `--no-sandbox`. `private` are
    /// paths no renderer may see even when the user opens a file next to them (the profile, the
    /// control socket). Prints the warnings a user must see (once).
    pub fn detect(enabled: bool, private: Vec<PathBuf>) -> Sandbox {
        bwrap::set_private(private);
        let passenv = std::env::var(ENV_PASSENV)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let user_display = display::Address::from_env();
        if !enabled {
            log::warn!(
                "--no-sandbox: renderers run with your full rights (no namespaces, no seccomp, no \
                 Landlock, no WebKit sandbox); a page that takes over its renderer can read your \
                 files and control your display"
            );
            return Sandbox {
                enabled,
                bwrap: Err("--no-sandbox".into()),
                filter: Err("--no-sandbox".into()),
                web_display: None,
                user_display,
                passenv,
            };
        }
        let bwrap = bwrap::probe();
        if let Err(why) = &bwrap {
            log::warn!("renderers run without their own namespaces and file view: {why}");
        }
        let filter = seccomp::renderer_filter().map_err(|e| e.to_string());
        if let Err(why) = &filter {
            log::error!("renderers run without the seccomp policy: {why}");
        }
        let web_display = match display::Headless::start() {
            Ok(d) => Some(d),
            Err(e) => {
                log::warn!(
                    "web processes see your display: cannot start a headless one for them ({e}); \
                     install Xvfb (Debian: xvfb)"
                );
                None
            }
        };
        Sandbox {
            enabled,
            bwrap,
            filter,
            web_display,
            user_display,
            passenv,
        }
    }

    /// bubblewrap, when renderers get namespaces: a nested display's server runs in it too.
    pub fn bwrap(&self) -> Option<PathBuf> {
        self.uses_namespaces()
            .then(|| self.bwrap.as_ref().ok().cloned())
            .flatten()
    }

    /// The seccomp policy, unless `--no-sandbox` or it could not be compiled.
    pub fn filter(&self) -> Option<&'static seccomp::Filter> {
        match (&self.filter, self.enabled) {
            (Ok(f), true) => Some(*f),
            _ => None,
        }
    }

    /// False for `--no-sandbox`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether renderers get their own namespaces (started through bubblewrap).
    pub fn uses_namespaces(&self) -> bool {
        self.enabled && self.bwrap.is_ok()
    }

    /// The layers renderers are started with (Landlock is the renderer's to apply and report).
    pub fn planned_layers(&self) -> Vec<Layer> {
        if !self.enabled {
            return Vec::new();
        }
        let mut layers = Vec::new();
        if self.bwrap.is_ok() {
            layers.push(Layer::Namespaces);
        }
        if self.filter.is_ok() {
            layers.push(Layer::Seccomp);
        }
        layers.push(Layer::Landlock);
        // WebKit's sandbox is bubblewrap too: it needs what our namespaces layer needs.
        if self.web_display.is_some() && self.bwrap.is_ok() {
            layers.push(Layer::Webkit);
        }
        layers
    }

    /// Why a layer is missing, for the self-test and the Task Manager.
    pub fn missing(&self, layer: Layer) -> Option<String> {
        if !self.enabled {
            return Some("--no-sandbox".into());
        }
        match layer {
            Layer::Namespaces => self.bwrap.as_ref().err().cloned(),
            Layer::Seccomp => self.filter.as_ref().err().cloned(),
            Layer::Landlock => None,
            Layer::Webkit => match (&self.bwrap, &self.web_display) {
                (Err(why), _) => Some(format!("WebKit's sandbox needs bubblewrap too: {why}")),
                (Ok(_), None) => {
                    Some("no headless display for web processes (install Xvfb)".into())
                }
                (Ok(_), Some(_)) => None,
            },
        }
    }

    /// The command that starts one renderer: bubblewrap around it when namespaces work, the
    /// renderer itself otherwise; the environment, descriptors and pre-`exec` hygiene in both
    /// cases. The caller spawns it (and must hold [`crate::host`]'s spawn lock while it does).
    pub fn command(&self, spec: Spec<'_>) -> Command {
        let namespaces = self.uses_namespaces();
        let mut command = match (&self.bwrap, namespaces) {
            (Ok(bwrap), true) => {
                let mut c = Command::new(bwrap);
                c.args(bwrap::args(&bwrap::View {
                    renderer: spec.renderer,
                    website_data_dir: spec.website_data_dir,
                    files: spec.files,
                    private: bwrap::private(),
                    displays: self.displays(spec.display.is_none()),
                    display_sockets: spec.display.and_then(|d| d.sockets),
                    xauthority: match spec.display {
                        Some(nested) => Some(nested.xauthority.as_path()),
                        None => self
                            .user_display
                            .as_ref()
                            .and_then(|d| d.xauthority.as_deref()),
                    },
                    tmp_size_bytes: bwrap::TMP_SIZE_BYTES,
                    home: SANDBOX_HOME,
                    runtime: SANDBOX_RUNTIME,
                    cache: SANDBOX_CACHE,
                }));
                c.arg("--").arg(spec.renderer);
                c
            }
            _ => Command::new(spec.renderer),
        };
        if let Some(probe) = spec.probe {
            command.arg("--probe").arg(probe);
        }
        command.env_clear();
        command.envs(self.environment(spec.tab_id, spec.runtime_dir, namespaces, spec.display));
        command.stdin(Stdio::null());
        let setup = hygiene::ChildSetup::new(spec.up, spec.down, self.filter());
        // SAFETY: `ChildSetup::run` only makes async-signal-safe calls (dup2, fcntl, close_range,
        // setpgid, prctl, sigprocmask, sigaction, setrlimit, seccomp) and does not allocate.
        unsafe {
            command.pre_exec(move || setup.run());
        }
        command
    }

    /// The X sockets of the host a sandboxed renderer needs: the web processes' headless
    /// display, and the user's when its view lives there (`--display-isolation none`).
    fn displays(&self, user: bool) -> Vec<u32> {
        let mut displays: Vec<u32> = match user {
            true => self.user_display.iter().map(|d| d.number).collect(),
            false => Vec::new(),
        };
        if let Some(web) = &self.web_display {
            displays.push(web.number());
        }
        displays
    }

    /// The renderer's whole environment, built here and nowhere else: what GTK and WebKit need,
    /// nothing of the user's session they must not reach (`SSH_AUTH_SOCK`, `GPG_AGENT_INFO`,
    /// the session bus, `XDG_RUNTIME_DIR`…).
    pub fn environment(
        &self,
        tab_id: TabId,
        runtime_dir: &Path,
        namespaces: bool,
        display: Option<&crate::nested::RendererView<'_>>,
    ) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = Vec::new();
        let mut set = |k: &str, v: &std::ffi::OsStr| env.push((k.into(), v.to_owned()));
        set(warren_ipc::ENV_TAB_ID, tab_id.to_string().as_ref());
        set("PATH", "/usr/local/bin:/usr/bin:/bin".as_ref());
        set("GDK_BACKEND", "x11".as_ref());
        // WebKit's DMA-BUF renderer needs a GPU device the sandbox does not offer.
        set("WEBKIT_DISABLE_DMABUF_RENDERER", "1".as_ref());
        // No accessibility bus: it would be reached (or autolaunched) over the session bus.
        set("NO_AT_BRIDGE", "1".as_ref());
        match (display, &self.user_display) {
            (Some(nested), _) => {
                set("DISPLAY", nested.display.as_ref());
                set("XAUTHORITY", nested.xauthority.as_os_str());
            }
            (None, Some(d)) => {
                set("DISPLAY", d.name.as_ref());
                if let Some(xauth) = &d.xauthority {
                    set("XAUTHORITY", xauth.as_os_str());
                }
            }
            (None, None) => {}
        }
        let session_bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS");
        match session_bus {
            // Only an unsandboxed renderer may talk to the user's session bus.
            Some(bus) if !self.enabled => set("DBUS_SESSION_BUS_ADDRESS", &bus),
            _ => set("DBUS_SESSION_BUS_ADDRESS", NO_SESSION_BUS.as_ref()),
        }
        if self.enabled {
            // WebKit's own sandbox runs bubblewrap in a user namespace: forced only where ours
            // works, or every web process would fail to start.
            if namespaces {
                set("WEBKIT_FORCE_SANDBOX", "1".as_ref());
            }
            let layers: Vec<&str> = self.planned_layers().iter().map(|l| l.name()).collect();
            set(warren_ipc::ENV_SANDBOX, layers.join(",").as_ref());
            if let Some(web) = &self.web_display {
                set(warren_ipc::ENV_WEB_DISPLAY, web.name().as_ref());
            }
        }
        if namespaces {
            // Only where the sandbox hides /dev/dri: elsewhere WebKit may find a real GPU.
            set("WEBKIT_WEB_RENDER_DEVICE_FILE", NO_RENDER_NODE.as_ref());
            set("HOME", SANDBOX_HOME.as_ref());
            set("TMPDIR", SANDBOX_TMP.as_ref());
            set("XDG_RUNTIME_DIR", SANDBOX_RUNTIME.as_ref());
            set("XDG_CACHE_HOME", SANDBOX_CACHE.as_ref());
        } else {
            if let Some(home) = std::env::var_os("HOME") {
                set("HOME", &home);
            }
            set("TMPDIR", runtime_dir.as_os_str());
            set("XDG_RUNTIME_DIR", runtime_dir.as_os_str());
        }
        // The user's language, time zone and look: harmless, and pages must see them.
        for name in [
            "LANG",
            "LANGUAGE",
            "LC_ALL",
            "LC_CTYPE",
            "LC_MESSAGES",
            "LC_NUMERIC",
            "LC_TIME",
            "LC_COLLATE",
            "LC_MONETARY",
            "LC_PAPER",
            "LC_MEASUREMENT",
            "TZ",
            "XDG_DATA_DIRS",
            "XDG_CONFIG_DIRS",
            "GTK_THEME",
            "XCURSOR_THEME",
            "XCURSOR_SIZE",
            "GDK_SCALE",
            "GDK_DPI_SCALE",
            "LIBGL_ALWAYS_SOFTWARE",
            "RUST_LOG",
            "RUST_BACKTRACE",
        ] {
            if let Some(v) = std::env::var_os(name) {
                set(name, &v);
            }
        }
        for name in &self.passenv {
            if let Some(v) = std::env::var_os(name) {
                set(name, &v);
            }
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(bwrap: Result<PathBuf, String>) -> Sandbox {
        Sandbox {
            enabled: true,
            bwrap,
            filter: Err("not compiled in this test".into()),
            web_display: None,
            user_display: display::Address::parse(":7"),
            passenv: vec!["WARREN_TEST_PASSED".into()],
        }
    }

    fn env_of(s: &Sandbox, namespaces: bool) -> std::collections::HashMap<String, String> {
        s.environment(
            TabId(3),
            Path::new("/run/user/1/warren-1/tab-3-1"),
            namespaces,
            None,
        )
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
    }

    #[test]
    fn the_environment_is_built_here_and_holds_nothing_of_the_session() {
        // SAFETY (edition 2021: safe to call; sound here because no other thread of this test
        // reads these variables): the browser's own environment, as a desktop session has it.
        std::env::set_var("SSH_AUTH_SOCK", "/run/user/1/ssh-agent");
        std::env::set_var("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1/bus");
        std::env::set_var("WARREN_TEST_PASSED", "yes");
        let with_ns = sandbox(Ok("/usr/bin/bwrap".into()));
        let env = env_of(&with_ns, true);
        assert!(!env.contains_key("SSH_AUTH_SOCK"));
        assert_eq!(env["DBUS_SESSION_BUS_ADDRESS"], NO_SESSION_BUS);
        assert_eq!(env["NO_AT_BRIDGE"], "1");
        assert_eq!(env["WARREN_TAB_ID"], "3");
        assert_eq!(env["DISPLAY"], ":7");
        assert_eq!(env["TMPDIR"], SANDBOX_TMP);
        assert_eq!(env["HOME"], SANDBOX_HOME);
        assert_eq!(env["WEBKIT_FORCE_SANDBOX"], "1");
        assert_eq!(env["WEBKIT_WEB_RENDER_DEVICE_FILE"], NO_RENDER_NODE);
        assert_eq!(env["WARREN_TEST_PASSED"], "yes");
        assert_eq!(env[warren_ipc::ENV_SANDBOX], "namespaces,landlock");
        assert_eq!(
            with_ns.planned_layers(),
            [Layer::Namespaces, Layer::Landlock]
        );

        // Without namespaces WebKit's sandbox (bubblewrap too) is not forced: it would fail.
        let without = sandbox(Err("no user namespaces".into()));
        let env = env_of(&without, false);
        assert!(!env.contains_key("WEBKIT_FORCE_SANDBOX"));
        assert!(!env.contains_key("WEBKIT_WEB_RENDER_DEVICE_FILE"));
        assert_eq!(env["TMPDIR"], "/run/user/1/warren-1/tab-3-1");
        assert_eq!(env["DBUS_SESSION_BUS_ADDRESS"], NO_SESSION_BUS);
        assert_eq!(without.planned_layers(), [Layer::Landlock]);
        assert!(without
            .missing(Layer::Webkit)
            .is_some_and(|why| why.contains("bubblewrap")));

        // --no-sandbox: the user's bus, nothing forced.
        let off = Sandbox {
            enabled: false,
            ..sandbox(Err("--no-sandbox".into()))
        };
        let env = env_of(&off, false);
        assert_eq!(env["DBUS_SESSION_BUS_ADDRESS"], "unix:path=/run/user/1/bus");
        assert!(!env.contains_key(warren_ipc::ENV_SANDBOX));
        assert!(off.planned_layers().is_empty());
    }
}
