//! The renderer's namespaces and private view of the filesystem, built with bubblewrap (the tool
//! Flatpak and WebKit use) rather than hand-written clone and mount code.
//!
//! [`args`] is a pure function from what one renderer may see ([`View`]) to bubblewrap's
//! arguments, so the view is reviewed and unit-tested as data; [`probe`] checks once at start-up
//! that this kernel lets bubblewrap make the namespaces at all.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The size cap of the renderer's private `/tmp` (its `$TMPDIR`, `$HOME`, `$XDG_RUNTIME_DIR` and
/// cache live there): tmpfs pages are memory, so a renderer cannot fill the machine through it.
pub const TMP_SIZE_BYTES: u64 = 256 * 1024 * 1024;

/// System directories every renderer sees read-only. Directories that are symbolic links on
/// merged-`/usr` systems (`/bin` → `usr/bin`) are recreated as the same links.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// What of `/etc` GTK, WebKit, fontconfig, glibc's resolver and TLS need; nothing else (no
/// `shadow`, no SSH host keys, no `sudoers`).
const ETC_FILES: &[&str] = &[
    "/etc/fonts",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/crypto-policies",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/machine-id",
    "/etc/gtk-3.0",
    "/etc/xdg",
    "/etc/alternatives",
    "/etc/drirc",
    "/etc/glvnd",
    "/etc/mime.types",
    "/etc/locale.alias",
    "/etc/os-release",
];

/// Everything one renderer's view holds besides the system.
pub struct View<'a> {
    /// The renderer executable, shown read-only at its own path.
    pub renderer: &'a Path,
    /// The profile's website-data directory: the only writable directory outside `/tmp`.
    pub website_data_dir: &'a Path,
    /// Files the user opened in this tab; each is shown read-only with [`mount_for_file`].
    pub files: &'a [PathBuf],
    /// Paths no file's directory may expose (the profile, the control socket, the runtime
    /// directory): a file next to or above them is shown alone.
    pub private: &'a [PathBuf],
    /// X display numbers whose sockets the renderer may reach (`/tmp/.X11-unix/X<n>`).
    pub displays: Vec<u32>,
    /// The directory shown as `/tmp/.X11-unix`: the one the renderer's nested display (Xephyr,
    /// sandboxed too) creates its socket in. `None`: an empty `/tmp/.X11-unix`.
    pub display_sockets: Option<&'a Path>,
    /// The cookie file of the renderer's display, shown read-only.
    pub xauthority: Option<&'a Path>,
    pub tmp_size_bytes: u64,
    /// Directories created on the private `/tmp`.
    pub home: &'a str,
    pub runtime: &'a str,
    pub cache: &'a str,
}

/// bubblewrap's arguments (without the trailing `-- COMMAND`).
pub fn args(view: &View<'_>) -> Vec<OsString> {
    let mut a = Args::default();
    // Namespaces: own user, PID, IPC, UTS and (where possible) cgroup namespaces. Not the
    // network: WebKit's network process runs in here and needs it.
    a.flags(&[
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        // bubblewrap and everything in the sandbox die with the browser.
        "--die-with-parent",
        // A new session: no controlling terminal to push input into (TIOCSTI).
        "--new-session",
    ]);
    a.system();
    a.pair("--proc", "/proc".as_ref());
    a.pair("--dev", "/dev".as_ref());
    // Mesa and WebKit read device and CPU topology from /sys; nothing there is the user's data.
    a.pair2("--ro-bind-try", "/sys".as_ref(), "/sys".as_ref());
    a.pair("--size", view.tmp_size_bytes.to_string().as_ref());
    a.pair("--tmpfs", "/tmp".as_ref());
    for dir in [view.home, view.runtime, view.cache] {
        a.pair("--perms", "0700".as_ref());
        a.pair("--dir", dir.as_ref());
    }
    match view.display_sockets {
        // The nested display's socket appears there after the renderer started.
        Some(dir) => a.pair2("--bind", dir.as_os_str(), "/tmp/.X11-unix".as_ref()),
        None if !view.displays.is_empty() => a.pair("--dir", "/tmp/.X11-unix".as_ref()),
        None => {}
    }
    if !view.displays.is_empty() {
        for n in &view.displays {
            let socket = format!("/tmp/.X11-unix/X{n}");
            a.pair2("--ro-bind-try", socket.as_ref(), socket.as_ref());
        }
    }
    if let Some(xauth) = view.xauthority {
        a.pair2("--ro-bind-try", xauth.as_os_str(), xauth.as_os_str());
    }
    a.pair2(
        "--ro-bind",
        view.renderer.as_os_str(),
        view.renderer.as_os_str(),
    );
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let mut shown: Vec<PathBuf> = Vec::new();
    for file in view.files {
        let Some(mount) = mount_for_file(file, home.as_deref(), view.private) else {
            continue;
        };
        if shown.iter().any(|s| mount.starts_with(s)) {
            continue;
        }
        a.pair2("--ro-bind-try", mount.as_os_str(), mount.as_os_str());
        shown.push(mount);
    }
    // Writable last: a file's directory shown read-only above must not cover the profile.
    a.pair2(
        "--bind",
        view.website_data_dir.as_os_str(),
        view.website_data_dir.as_os_str(),
    );
    a.pair("--chdir", "/".as_ref());
    a.0
}

/// What a nested display server (Xephyr, [`crate::nested`]) sees.
pub struct XephyrView<'a> {
    /// The browser's directory Xephyr creates its socket in, shown as `/tmp/.X11-unix`.
    pub sockets: &'a Path,
    /// Its cookie file (`-auth`), shown read-only.
    pub xauthority: &'a Path,
    /// The user's display, Xephyr's host: its socket is shown, nothing else of `/tmp`.
    pub user_display: u32,
    /// The user's Xauthority file, shown read-only.
    pub user_xauthority: Option<&'a Path>,
}

/// bubblewrap's arguments for a nested display server: own user, PID, network (its abstract
/// socket is seen by nobody), UTS and cgroup namespaces, the system read-only, a private `/tmp`,
/// and two sockets: the user's display and its own. Not a new IPC namespace: Xephyr shares
/// images with the user's X server through MIT-SHM (System V shared memory), which draws pages
/// several times faster than sending every frame over the socket.
pub fn xephyr_args(view: &XephyrView<'_>) -> Vec<OsString> {
    let mut a = Args(Vec::new());
    a.flags(&[
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
    ]);
    a.system();
    // The keyboard configuration Xephyr compiles its keymap from.
    a.pair2("--ro-bind-try", "/etc/X11".as_ref(), "/etc/X11".as_ref());
    a.pair("--proc", "/proc".as_ref());
    a.pair("--dev", "/dev".as_ref());
    a.pair("--size", (64u64 * 1024 * 1024).to_string().as_ref());
    a.pair("--tmpfs", "/tmp".as_ref());
    a.pair2(
        "--bind",
        view.sockets.as_os_str(),
        "/tmp/.X11-unix".as_ref(),
    );
    let user = format!("/tmp/.X11-unix/X{}", view.user_display);
    a.pair2("--ro-bind", user.as_ref(), user.as_ref());
    a.pair2(
        "--ro-bind",
        view.xauthority.as_os_str(),
        view.xauthority.as_os_str(),
    );
    if let Some(xauth) = view.user_xauthority {
        a.pair2("--ro-bind-try", xauth.as_os_str(), xauth.as_os_str());
    }
    a.pair("--chdir", "/".as_ref());
    a.0
}

/// What of the file system to show for a file the user opened: its directory, so that local pages
/// can link to their neighbours (images, stylesheets, other pages), unless that directory is the
/// home directory, an ancestor of it, the root, or holds one of the `private` paths — then the
/// file alone. `None` for paths that are not absolute and normal.
pub fn mount_for_file(file: &Path, home: Option<&Path>, private: &[PathBuf]) -> Option<PathBuf> {
    use std::path::Component;
    if !file.is_absolute()
        || file
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return None;
    }
    let dir = file.parent()?;
    let too_wide = dir.parent().is_none()
        || home.is_some_and(|h| h.starts_with(dir))
        || private.iter().any(|p| p.starts_with(dir));
    if too_wide {
        Some(file.to_path_buf())
    } else {
        Some(dir.to_path_buf())
    }
}

/// Paths no file's directory may expose, set once at start-up ([`set_private`]).
static PRIVATE: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();

/// Records the browser's private paths (profile, control socket, runtime directory) for
/// [`shows`] and [`super::Sandbox::command`]. Only the first call counts.
pub fn set_private(paths: Vec<PathBuf>) {
    let _ = PRIVATE.set(paths);
}

/// The paths recorded with [`set_private`].
pub fn private() -> &'static [PathBuf] {
    PRIVATE.get().map_or(&[], Vec::as_slice)
}

/// Whether a sandbox made for `files` already shows `file`.
pub fn shows(files: &[PathBuf], file: &Path) -> bool {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    files
        .iter()
        .filter_map(|f| mount_for_file(f, home.as_deref(), private()))
        .any(|mount| file.starts_with(&mount))
}

/// Checks once that bubblewrap exists and that this kernel lets it make the namespaces the
/// renderers get (some distributions refuse unprivileged user namespaces). Returns its path, or
/// what the user should know.
pub fn probe() -> Result<PathBuf, String> {
    let bwrap = ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| "bubblewrap is not installed (Debian: apt install bubblewrap)".to_owned())?;
    let output = Command::new(&bwrap)
        .args([
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--die-with-parent",
            "--ro-bind",
            "/",
            "/",
            "--proc",
            "/proc",
            "--",
            "/bin/true",
        ])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bwrap.display()))?;
    if output.status.success() {
        Ok(bwrap)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!(
            "this kernel does not let bubblewrap create user namespaces ({}); see \
             /proc/sys/kernel/unprivileged_userns_clone or your distribution's AppArmor policy",
            stderr.trim()
        ))
    }
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    /// The system directories and the whitelist of `/etc`, read-only.
    fn system(&mut self) {
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            match std::fs::read_link(path) {
                Ok(target) => self.pair2("--symlink", target.as_os_str(), path.as_os_str()),
                Err(_) if path.is_dir() => {
                    self.pair2("--ro-bind", path.as_os_str(), path.as_os_str())
                }
                Err(_) => {}
            }
        }
        for file in ETC_FILES {
            self.pair2("--ro-bind-try", file.as_ref(), file.as_ref());
        }
    }

    fn flags(&mut self, flags: &[&str]) {
        self.0.extend(flags.iter().map(OsString::from));
    }
    fn pair(&mut self, flag: &str, value: &std::ffi::OsStr) {
        self.0.push(flag.into());
        self.0.push(value.to_owned());
    }
    fn pair2(&mut self, flag: &str, a: &std::ffi::OsStr, b: &std::ffi::OsStr) {
        self.0.push(flag.into());
        self.0.push(a.to_owned());
        self.0.push(b.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(files: &'a [PathBuf]) -> View<'a> {
        View {
            renderer: Path::new("/opt/warren/renderer"),
            website_data_dir: Path::new("/home/u/.local/share/warren/default/website-data"),
            files,
            private: &[],
            displays: vec![0, 57],
            display_sockets: None,
            xauthority: Some(Path::new("/home/u/.Xauthority")),
            tmp_size_bytes: TMP_SIZE_BYTES,
            home: "/tmp/home",
            runtime: "/tmp/run",
            cache: "/tmp/cache",
        }
    }

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// The arguments that follow each occurrence of `flag`.
    fn after(args: &[String], flag: &str, n: usize) -> Vec<Vec<String>> {
        args.iter()
            .enumerate()
            .filter(|(_, a)| *a == flag)
            .map(|(i, _)| args[i + 1..i + 1 + n].to_vec())
            .collect()
    }

    #[test]
    fn namespaces_but_not_the_network() {
        let a = strings(&args(&view(&[])));
        for flag in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--die-with-parent",
            "--new-session",
        ] {
            assert!(a.iter().any(|x| x == flag), "{flag} missing: {a:?}");
        }
        assert!(!a
            .iter()
            .any(|x| x == "--unshare-net" || x == "--unshare-all"));
        assert!(!a.iter().any(|x| x == "--share-net"));
    }

    #[test]
    fn only_website_data_is_writable_and_home_is_absent() {
        let a = strings(&args(&view(&[])));
        let writable = after(&a, "--bind", 2);
        assert_eq!(
            writable,
            vec![vec![
                "/home/u/.local/share/warren/default/website-data".to_owned(),
                "/home/u/.local/share/warren/default/website-data".to_owned()
            ]]
        );
        for (flag, n) in [("--ro-bind", 2), ("--ro-bind-try", 2)] {
            for pair in after(&a, flag, n) {
                let src = &pair[0];
                assert!(
                    !src.starts_with("/home") || src == "/home/u/.Xauthority",
                    "{src} shown"
                );
                assert!(!src.starts_with("/run"), "{src} shown");
                assert!(src != "/etc" && src != "/" && src != "/etc/shadow", "{src}");
            }
        }
        // /tmp is private and size-capped, holding only the display sockets.
        let tmp = a.iter().position(|x| x == "--tmpfs").unwrap();
        assert_eq!(a[tmp + 1], "/tmp");
        assert_eq!(a[tmp - 2], "--size");
        assert_eq!(a[tmp - 1], TMP_SIZE_BYTES.to_string());
        let sockets: Vec<_> = after(&a, "--ro-bind-try", 2)
            .into_iter()
            .filter(|p| p[0].starts_with("/tmp/"))
            .map(|p| p[0].clone())
            .collect();
        assert_eq!(sockets, ["/tmp/.X11-unix/X0", "/tmp/.X11-unix/X57"]);
    }

    #[test]
    fn opened_files_show_their_directory_or_only_themselves() {
        let home = Path::new("/home/u");
        assert_eq!(
            mount_for_file(Path::new("/home/u/docs/a.html"), Some(home), &[]),
            Some(PathBuf::from("/home/u/docs"))
        );
        // A file directly in $HOME, in / or in an ancestor of $HOME: the file alone.
        for f in ["/home/u/notes.html", "/home/x.html", "/a.html"] {
            assert_eq!(
                mount_for_file(Path::new(f), Some(home), &[]),
                Some(PathBuf::from(f)),
                "{f}"
            );
        }
        assert_eq!(
            mount_for_file(Path::new("relative.html"), Some(home), &[]),
            None
        );
        assert_eq!(
            mount_for_file(Path::new("/home/u/docs/../.ssh/id"), Some(home), &[]),
            None
        );
        // A directory that holds the profile (or the control socket) is never shown whole.
        let private = [PathBuf::from("/srv/site/.warren/profile")];
        assert_eq!(
            mount_for_file(Path::new("/srv/site/index.html"), Some(home), &private),
            Some(PathBuf::from("/srv/site/index.html"))
        );
        let files = [
            PathBuf::from("/srv/site/index.html"),
            PathBuf::from("/srv/site/b.html"),
        ];
        let a = strings(&args(&view(&files)));
        let shown: Vec<_> = after(&a, "--ro-bind-try", 2)
            .into_iter()
            .filter(|p| p[0].starts_with("/srv"))
            .collect();
        assert_eq!(
            shown,
            vec![vec!["/srv/site".to_owned(), "/srv/site".to_owned()]]
        );
    }
}
