//! Harness for Warren's end-to-end tests: fresh binaries, a private Xvfb, the browser driven over its control socket, /proc and screenshots.
//!
//! Every test starts its own [`Xvfb`] (which also takes a process-wide lock, so tests of one
//! binary never overlap) and its own [`Browser`] with a temporary profile and control socket.
//! Everything a test starts is stopped in `Drop`, by pid and process group, never by name. A
//! failing test prints the browser's log and saves a screenshot under
//! `target/warren-test-artifacts/`.

pub mod browser;
pub mod http;
/// The IPC round trip and one-way throughput between a driver and a real renderer (issue 9).
pub mod ipc_bench;
/// Epiphany, surf and Chromium started, measured and stopped like Warren (issue 9).
pub mod peers;
/// Waiting for a solid colour on screen, cheaply enough to time page loads (issue 9).
pub mod pixels;
pub mod procs;
pub mod renderer_driver;
pub mod x11;
pub mod xvfb;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

pub use browser::{run_browser_once, Browser, BrowserOpts, Ctl, OnceOutput};
pub use http::{solid_page, HttpServer};
pub use procs::{descendants, process_tree, Proc};
pub use xvfb::{request_close, screenshot, window_png, windows, xdotool, Image, XWindow, Xvfb};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where failing tests leave screenshots.
pub fn artifacts_dir() -> PathBuf {
    workspace_root()
        .join("target")
        .join("warren-test-artifacts")
}

/// How long a page may take to load in a test (a cold renderer + WebKit start on 2 cores).
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The points of the screen that lie well inside the content area of the 1024x768 browser window
/// (below the chrome, which is at most 80 px tall), for pixel checks.
pub const CONTENT_POINTS: [(u32, u32); 9] = [
    (100, 300),
    (500, 300),
    (900, 300),
    (100, 500),
    (500, 500),
    (900, 500),
    (100, 700),
    (500, 700),
    (900, 700),
];

/// The live WebKitWebProcess processes below a renderer.
pub fn web_processes(renderer_pid: i32) -> Vec<Proc> {
    descendants(renderer_pid)
        .into_iter()
        .filter(Proc::is_webkit_web_process)
        .collect()
}

/// Waits (up to 30 s) until a renderer has a WebKitWebProcess below it and returns the
/// renderer's whole live tree (renderer first). Panics with the tree otherwise.
pub fn wait_web_process(renderer_pid: i32) -> Vec<Proc> {
    let found = wait_until(Duration::from_secs(30), || {
        let tree = process_tree(renderer_pid);
        tree.iter().any(Proc::is_webkit_web_process).then_some(tree)
    });
    found.unwrap_or_else(|| {
        panic!(
            "renderer {renderer_pid} has no WebKitWebProcess below it after 30 s; its tree:\n{}",
            procs::describe(&process_tree(renderer_pid))
        )
    })
}

/// Polls `f` every 100 ms until it returns `Some`, or `timeout` passes (then `None`). `f` runs at
/// least once, and once more at the deadline.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes the directory tree at `root` without recursion and without ever opening a long path:
/// each directory's subdirectories are first moved up next to `root` (so no path is ever deeper
/// than two levels), then its files are unlinked and it is removed. A hostile renderer may leave
/// a 15,000-deep chain behind, on which `std::fs::remove_dir_all` (recursive) overflows the stack
/// of the thread that calls it, and with it `tempfile::TempDir`'s drop. Missing `root` is fine.
pub fn remove_tree(root: &Path) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let meta = match std::fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return std::fs::remove_file(root);
    }
    let base = root.parent().unwrap_or(Path::new("/"));
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                let moved = base.join(format!(
                    ".warren-remove-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::rename(entry.path(), &moved)?;
                pending.push(moved);
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        std::fs::remove_dir(&dir)?;
    }
    Ok(())
}

static SERIAL: Mutex<()> = Mutex::new(());

/// The lock that keeps end-to-end tests of one test binary from running at the same time (each
/// runs a browser with several WebKit processes; the machines have 2 cores). A test that failed
/// while holding it does not poison it for the next one.
pub fn serial_lock() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits (up to 15 s) until every content-area sample point ([`CONTENT_POINTS`]) shows
/// `colour`; panics with what the screen showed, and saves that screenshot in the artifacts
/// directory as `<what>.png`.
pub fn expect_content(x: &Xvfb, colour: [u8; 3], what: &str) {
    let mut last: Option<Image> = None;
    let ok = wait_until(std::time::Duration::from_secs(15), || {
        let img = x.screenshot();
        let ok = img.all_near(&CONTENT_POINTS, colour, 12);
        last = Some(img);
        ok.then_some(())
    });
    if ok.is_none() {
        let img = last.expect("at least one screenshot");
        let dir = artifacts_dir();
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{}.png", what.replace(' ', "-")));
        let saved = img.save_png(&path).map(|_| path.display().to_string());
        panic!(
            "{what}: the content area should be #{:02x}{:02x}{:02x}; it shows {} (screenshot: {saved:?})",
            colour[0],
            colour[1],
            colour[2],
            img.describe(&CONTENT_POINTS)
        );
    }
}

/// The directory with the `browser` and `renderer` binaries: `$WARREN_BIN_DIR`, else the
/// workspace's `target/release/`.
pub fn bin_dir() -> PathBuf {
    match std::env::var_os("WARREN_BIN_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target").join("release"),
    }
}

/// The path of one of Warren's binaries (`browser`, `renderer`), checked to exist and to be newer
/// than every Rust source it is built from. Panics with what to do otherwise.
pub fn bin_path(name: &str) -> PathBuf {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| check_binaries(&bin_dir(), &["browser", "renderer"]));
    if let Err(why) = checked {
        panic!("{why}");
    }
    bin_dir().join(name)
}

/// The source directories (relative to the workspace) each binary is built from.
fn sources_of(name: &str) -> &'static [&'static str] {
    match name {
        "browser" => &["browser/src", "ipc/src"],
        "renderer" => &["renderer/src", "ipc/src"],
        "hostile-renderer" => &["tests/src/bin", "ipc/src"],
        _ => &["ipc/src"],
    }
}

/// Checks that each binary exists and is not older than the newest source it is built from (its
/// `.rs` files, and the `.js` files the renderer embeds; cargo relinks a binary whenever one of
/// those changes, and leaves it alone otherwise).
pub(crate) fn check_binaries(dir: &Path, names: &[&str]) -> Result<(), String> {
    let root = workspace_root();
    for name in names {
        let path = dir.join(name);
        let meta = std::fs::metadata(&path).map_err(|e| {
            format!(
                "the end-to-end tests need {} ({e}). Build the binaries first: run `make test` \
                 (or `cargo build --release --bins`), or point WARREN_BIN_DIR at them.",
                path.display()
            )
        })?;
        let built = meta
            .modified()
            .map_err(|e| format!("mtime of {}: {e}", path.display()))?;
        // Cargo's dep-info next to the binary lists exactly the files it was built from (test-only
        // modules are not among them); without it, every source of the crates it is built from.
        let newest = match dep_info_sources(&path, &root) {
            Some(files) => files
                .into_iter()
                .filter_map(|f| Some((std::fs::metadata(&f).ok()?.modified().ok()?, f)))
                .max_by_key(|(t, _)| *t),
            None => sources_of(name)
                .iter()
                .filter_map(|s| newest_source(&root.join(s)))
                .max_by_key(|(t, _)| *t),
        };
        if let Some((source_time, source)) = &newest {
            if built < *source_time {
                return Err(format!(
                    "{} is older than {}: the tests would run a stale binary. Run `make test` \
                     (it builds with `cargo build --release --bins` first).",
                    path.display(),
                    source.display()
                ));
            }
        }
    }
    Ok(())
}

/// The workspace files listed in `binary`'s dep-info (`binary.d`, written by Cargo), if it exists.
fn dep_info_sources(binary: &Path, root: &Path) -> Option<Vec<PathBuf>> {
    let mut d = binary.as_os_str().to_owned();
    d.push(".d");
    let text = std::fs::read_to_string(d).ok()?;
    let first = text.lines().next()?;
    let (_, deps) = first.split_once(": ")?;
    // Make's escaping: a space inside a path is `\ `.
    let deps = deps.replace("\\ ", "\u{0}");
    Some(
        deps.split_whitespace()
            .map(|p| PathBuf::from(p.replace('\u{0}', " ")))
            .filter(|p| p.starts_with(root))
            .collect(),
    )
}

/// The newest source file (`.rs`, or `.js` embedded with `include_str!`) under `dir` and its
/// modification time.
fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut best: Option<(SystemTime, PathBuf)> = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "js") {
                if let Ok(t) = meta.modified() {
                    if best.as_ref().is_none_or(|(b, _)| t > *b) {
                        best = Some((t, path));
                    }
                }
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_returns_value_or_none() {
        let mut n = 0;
        assert_eq!(
            wait_until(Duration::from_secs(5), || {
                n += 1;
                (n == 3).then_some(n)
            }),
            Some(3)
        );
        assert_eq!(wait_until(Duration::from_millis(200), || None::<()>), None);
    }

    #[test]
    fn remove_tree_takes_a_chain_deeper_than_path_max() {
        use std::os::fd::AsFd;
        let scratch = tempfile::tempdir().unwrap();
        let top = scratch.path().join("deep");
        std::fs::create_dir(&top).unwrap();
        let flags = nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY;
        let mode = nix::sys::stat::Mode::from_bits_truncate(0o700);
        let mut dir = nix::fcntl::open(&top, flags, mode).unwrap();
        // 3,000 levels of "dd/" are 9,000 bytes: more than PATH_MAX, so no path reaches the bottom.
        for _ in 0..3000 {
            nix::sys::stat::mkdirat(dir.as_fd(), "dd", mode).unwrap();
            std::fs::write(
                format!("/proc/self/fd/{}/f", std::os::fd::AsRawFd::as_raw_fd(&dir)),
                b"x",
            )
            .unwrap();
            dir = nix::fcntl::openat(dir.as_fd(), "dd", flags, mode).unwrap();
        }
        drop(dir);
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        assert_eq!(
            std::fs::read_dir(scratch.path()).unwrap().count(),
            0,
            "nothing left beside it"
        );
        remove_tree(&top).expect("a missing tree is already removed");
    }

    #[test]
    fn missing_binary_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_binaries(dir.path(), &["browser"]).unwrap_err();
        assert!(err.contains("make test"), "{err}");
    }

    #[test]
    fn stale_binary_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("browser");
        std::fs::write(&bin, b"").unwrap();
        let old = std::fs::File::options().write(true).open(&bin).unwrap();
        old.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1))
            .unwrap();
        let err = check_binaries(dir.path(), &["browser"]).unwrap_err();
        assert!(err.contains("stale"), "{err}");
    }

    #[test]
    fn dep_info_decides_which_sources_count() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("browser");
        std::fs::write(&bin, b"").unwrap();
        let root = workspace_root();
        let this = root.join("tests/src/lib.rs");
        // Only what Cargo says the binary was built from counts: this file is newer than the
        // (old) binary, so the binary is stale; a dep-info that does not list it, fresh.
        std::fs::write(
            dir.path().join("browser.d"),
            format!("{}: {}\n", bin.display(), this.display()),
        )
        .unwrap();
        let old = std::fs::File::options().write(true).open(&bin).unwrap();
        old.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1))
            .unwrap();
        let err = check_binaries(dir.path(), &["browser"]).unwrap_err();
        assert!(err.contains("tests/src/lib.rs"), "{err}");
        std::fs::write(
            dir.path().join("browser.d"),
            format!("{}: /nonexistent/x.rs\n", bin.display()),
        )
        .unwrap();
        check_binaries(dir.path(), &["browser"]).unwrap();
    }
}
