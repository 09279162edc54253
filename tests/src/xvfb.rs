//! A private Xvfb server per test, X screenshots as raw RGB, and xdotool input.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{pipe2, Pid};

/// The screen every test runs on.
pub const SCREEN_WIDTH: u32 = 1280;
pub const SCREEN_HEIGHT: u32 = 800;

/// A running Xvfb on a display number it picked itself (`-displayfd`). Holding one also holds
/// the harness's serial lock, so end-to-end tests never overlap even under the default parallel
/// test runner. Killed and reaped on drop.
pub struct Xvfb {
    child: Child,
    display: u32,
    _serial: MutexGuard<'static, ()>,
}

impl Xvfb {
    /// Starts Xvfb with a 1280x800x24 screen and no TCP listener, and waits until it has
    /// announced its display number (up to 20 s).
    pub fn start() -> Xvfb {
        Xvfb::launch(None)
    }

    /// Like [`Xvfb::start`], on the first display of `displays` whose socket and lock file do not
    /// exist (for tests whose display numbers are assigned to them, such as `:70` to `:79`).
    /// Panics if none is free.
    pub fn start_in(displays: std::ops::RangeInclusive<u32>) -> Xvfb {
        Xvfb::launch(Some(displays))
    }

    fn launch(displays: Option<std::ops::RangeInclusive<u32>>) -> Xvfb {
        let serial = crate::serial_lock();
        // Chosen under the lock: the previous test's server is gone by then.
        let fixed = displays.map(|range| {
            range
                .clone()
                .find(|n| {
                    !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                        && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
                })
                .unwrap_or_else(|| panic!("no free X display among :{range:?}"))
        });
        let (read_end, write_end) = pipe2(OFlag::O_CLOEXEC).expect("create a pipe for -displayfd");
        let write_fd = write_end.as_raw_fd();
        let mut cmd = Command::new("Xvfb");
        if let Some(n) = fixed {
            cmd.arg(format!(":{n}"));
        }
        cmd.arg("-displayfd")
            .arg(write_fd.to_string())
            .args([
                "-screen",
                "0",
                &format!("{SCREEN_WIDTH}x{SCREEN_HEIGHT}x24"),
            ])
            .args(["-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: between fork and exec only fcntl runs, which is async-signal-safe; it lets the
        // pipe's write end survive exec so Xvfb can report its display on it.
        unsafe {
            cmd.pre_exec(move || {
                let fd = std::os::fd::BorrowedFd::borrow_raw(write_fd);
                fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
                    .map(|_| ())
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = cmd
            .spawn()
            .expect("start Xvfb: install it (Debian: apt-get install xvfb) or run `make test`");
        drop(write_end);
        let display = match read_display(read_end, Duration::from_secs(20)) {
            Ok(display) => display,
            Err(why) => {
                let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.wait();
                panic!("Xvfb did not report a display number: {why}");
            }
        };
        Xvfb {
            child,
            display,
            _serial: serial,
        }
    }

    /// The display number N (use as `:N`).
    pub fn display(&self) -> u32 {
        self.display
    }

    /// The value for `$DISPLAY`.
    pub fn display_env(&self) -> String {
        format!(":{}", self.display)
    }

    /// Xvfb's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// A screenshot of the whole screen.
    pub fn screenshot(&self) -> Image {
        screenshot(self.display)
    }

    /// Runs xdotool on this display; panics with its stderr if it fails.
    pub fn xdotool(&self, args: &[&str]) -> String {
        xdotool(self.display, args)
    }

    /// Every window on this display (`xwininfo -root -tree`).
    pub fn windows(&self) -> Vec<XWindow> {
        windows(self.display)
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = kill(pid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Reads "N\n" from the -displayfd pipe, giving up after `timeout`.
fn read_display(read_end: OwnedFd, timeout: Duration) -> Result<u32, String> {
    let deadline = Instant::now() + timeout;
    let mut file = File::from(read_end);
    let mut text = String::new();
    loop {
        if let Some(line) = text.strip_suffix('\n') {
            return line
                .trim()
                .parse()
                .map_err(|_| format!("unexpected display text {line:?}"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out after {timeout:?} (got {text:?})"));
        }
        let millis = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&file),
            PollFlags::POLLIN,
        )];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let mut buf = [0u8; 32];
        let n = file.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!(
                "Xvfb closed the pipe (it probably exited); got {text:?}"
            ));
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// A screenshot as 8-bit RGB, row-major.
#[derive(Clone)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Image {
    /// The colour at (x, y); panics outside the image.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        assert!(
            x < self.width && y < self.height,
            "pixel ({x},{y}) outside the image"
        );
        let i = ((y * self.width + x) * 3) as usize;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Whether every given point is within `tolerance` of `colour` on each channel.
    pub fn all_near(&self, points: &[(u32, u32)], colour: [u8; 3], tolerance: u8) -> bool {
        points
            .iter()
            .all(|&(x, y)| near(self.pixel(x, y), colour, tolerance))
    }

    /// The colours at the given points, for assertion messages.
    pub fn describe(&self, points: &[(u32, u32)]) -> String {
        points
            .iter()
            .map(|&(x, y)| {
                let [r, g, b] = self.pixel(x, y);
                format!("({x},{y})=#{r:02x}{g:02x}{b:02x}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Writes the image as a binary PPM, which the `save_png` helper converts.
    pub fn to_ppm(&self) -> Vec<u8> {
        let mut out = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.rgb);
        out
    }

    /// Saves the image as PNG (through ImageMagick), for looking at a failure.
    pub fn save_png(&self, path: &Path) -> Result<(), String> {
        let mut child = Command::new("convert")
            .args(["ppm:-", &format!("png:{}", path.display())])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("run convert: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            std::io::Write::write_all(&mut stdin, &self.to_ppm()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Parses a binary PPM (P6, maxval 255) as written by ImageMagick.
    pub fn from_ppm(data: &[u8]) -> Result<Image, String> {
        // The header is four whitespace-separated tokens: P6, width, height, maxval, then one
        // whitespace byte and the pixels. ImageMagick writes no comments.
        let mut tokens = Vec::new();
        let mut pos = 0;
        while tokens.len() < 4 {
            while pos < data.len() && data[pos].is_ascii_whitespace() {
                pos += 1;
            }
            let start = pos;
            while pos < data.len() && !data[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if start == pos {
                return Err("truncated PPM header".into());
            }
            tokens.push(String::from_utf8_lossy(&data[start..pos]).into_owned());
        }
        pos += 1;
        if tokens[0] != "P6" || tokens[3] != "255" {
            return Err(format!("unsupported PPM header {tokens:?}"));
        }
        let width: u32 = tokens[1].parse().map_err(|_| "bad PPM width")?;
        let height: u32 = tokens[2].parse().map_err(|_| "bad PPM height")?;
        let len = (width * height * 3) as usize;
        let rgb = data
            .get(pos..pos + len)
            .ok_or("PPM shorter than its header says")?
            .to_vec();
        Ok(Image { width, height, rgb })
    }
}

/// Whether two colours differ by at most `tolerance` on each channel.
pub fn near(a: [u8; 3], b: [u8; 3], tolerance: u8) -> bool {
    a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= tolerance)
}

/// A screenshot of display `:N`'s root window, taken with ImageMagick's `import`.
pub fn screenshot(display: u32) -> Image {
    try_screenshot(display).unwrap_or_else(|e| panic!("screenshot of :{display} failed: {e}"))
}

/// A screenshot that reports failure instead of panicking (for use while already panicking).
pub fn try_screenshot(display: u32) -> Result<Image, String> {
    let out = Command::new("import")
        .args([
            "-display",
            &format!(":{display}"),
            "-window",
            "root",
            "-depth",
            "8",
            "ppm:-",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!("cannot run `import` ({e}): install imagemagick or run `make test`")
        })?;
    if !out.status.success() {
        return Err(format!(
            "import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Image::from_ppm(&out.stdout).map_err(|e| format!("unreadable screenshot: {e}"))
}

/// Runs `xdotool ARGS` against display `:N`; panics with its stderr if it fails.
pub fn xdotool(display: u32, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", format!(":{display}"))
        .stdin(Stdio::null())
        .output()
        .expect("run xdotool: install it or run `make test`");
    assert!(
        out.status.success(),
        "xdotool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One X window as `xwininfo -root -tree` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XWindow {
    /// The window id as xwininfo prints it (`0x200030`), which `import -window` and xdotool take.
    pub id: String,
    /// The window's name; `None` for "(has no name)".
    pub name: Option<String>,
    /// How far below the root window it sits: 1 for a top-level window (a child of the root).
    pub depth: usize,
    pub width: u32,
    pub height: u32,
    /// The window's absolute position on the screen.
    pub x: i32,
    pub y: i32,
}

/// Every window of display `:N`, in `xwininfo -root -tree` order (parents before children).
pub fn windows(display: u32) -> Vec<XWindow> {
    let out = Command::new("xwininfo")
        .args(["-display", &format!(":{display}"), "-root", "-tree"])
        .stdin(Stdio::null())
        .output()
        .expect("run xwininfo: install x11-utils or run `make test`");
    assert!(
        out.status.success(),
        "xwininfo -root -tree failed on :{display}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_window_tree(&String::from_utf8_lossy(&out.stdout))
}

/// Parses the window lines of `xwininfo -root -tree`, such as
/// `     0x200030 "Task Manager": ("browser" "Browser")  800x600+10+10  +10+10`; children are
/// indented three more spaces than their parent, top-level windows five.
fn parse_window_tree(text: &str) -> Vec<XWindow> {
    text.lines().filter_map(parse_window_line).collect()
}

fn parse_window_line(line: &str) -> Option<XWindow> {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    if !trimmed.starts_with("0x") || indent < 5 {
        return None;
    }
    let (id, rest) = trimmed.split_once(' ')?;
    let (name, rest) = if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find("\": (")?;
        (Some(quoted[..end].to_string()), &quoted[end + 2..])
    } else {
        (None, rest.strip_prefix("(has no name):")?)
    };
    // The class list comes next, in parentheses, then the geometry WxH+X+Y relative to the
    // parent and the absolute position +X+Y.
    let rest = &rest[rest.rfind(')')? + 1..];
    let mut tokens = rest.split_whitespace();
    let size = tokens.next()?;
    let absolute = tokens.next()?;
    let (width, size_rest) = size.split_once('x')?;
    let height_end = size_rest.find(['+', '-']).unwrap_or(size_rest.len());
    let (x, y) = parse_offsets(absolute)?;
    Some(XWindow {
        id: id.to_string(),
        name,
        depth: (indent - 5) / 3 + 1,
        width: width.parse().ok()?,
        height: size_rest[..height_end].parse().ok()?,
        x,
        y,
    })
}

/// Parses `+X+Y` where each number may be negative (`+-1+-1`).
fn parse_offsets(text: &str) -> Option<(i32, i32)> {
    let text = text.strip_prefix('+')?;
    // The second '+' that is not directly followed by the first number's sign.
    let split = text.char_indices().skip(1).find(|&(_, c)| c == '+')?.0;
    Some((text[..split].parse().ok()?, text[split + 1..].parse().ok()?))
}

/// Asks a window to close the way a window manager's close button does: a `WM_PROTOCOLS` client
/// message carrying `WM_DELETE_WINDOW` (xdotool has no such command; its `windowclose` destroys
/// the window instead). `id` is a window id as xwininfo prints it (`0x200030`).
pub fn request_close(display: u32, id: &str) -> Result<(), String> {
    use x11_dl::xlib;
    let window = u64::from_str_radix(id.trim_start_matches("0x"), 16)
        .map_err(|e| format!("window id {id:?}: {e}"))?;
    let lib = xlib::Xlib::open().map_err(|e| format!("load libX11: {e}"))?;
    let name = std::ffi::CString::new(format!(":{display}")).expect("no NUL in a display name");
    // SAFETY: plain Xlib calls on a connection opened here and closed before returning; the
    // event is fully initialised (zeroed, then every field a ClientMessage uses is set).
    unsafe {
        let dpy = (lib.XOpenDisplay)(name.as_ptr());
        if dpy.is_null() {
            return Err(format!("cannot open display :{display}"));
        }
        let protocols = (lib.XInternAtom)(dpy, c"WM_PROTOCOLS".as_ptr(), xlib::False);
        let delete = (lib.XInternAtom)(dpy, c"WM_DELETE_WINDOW".as_ptr(), xlib::False);
        let mut event: xlib::XEvent = std::mem::zeroed();
        event.client_message.type_ = xlib::ClientMessage;
        event.client_message.send_event = xlib::True;
        event.client_message.display = dpy;
        event.client_message.window = window;
        event.client_message.message_type = protocols;
        event.client_message.format = 32;
        event
            .client_message
            .data
            .set_long(0, delete as std::os::raw::c_long);
        event
            .client_message
            .data
            .set_long(1, xlib::CurrentTime as std::os::raw::c_long);
        let sent = (lib.XSendEvent)(dpy, window, xlib::False, xlib::NoEventMask, &mut event);
        (lib.XSync)(dpy, xlib::False);
        (lib.XCloseDisplay)(dpy);
        if sent == 0 {
            return Err(format!("XSendEvent to {id} failed"));
        }
    }
    Ok(())
}

/// Saves one window's contents as a PNG (ImageMagick's `import -window ID`).
pub fn window_png(display: u32, id: &str, path: &Path) -> Result<(), String> {
    let out = Command::new("import")
        .args(["-display", &format!(":{display}"), "-window", id])
        .arg(format!("png:{}", path.display()))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run import: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_xwininfo_tree() {
        let text = "\nxwininfo: Window id: 0x50d (the root window) (has no name)\n\n  \
            Root window id: 0x50d (the root window) (has no name)\n  Parent window id: 0x0 (none)\n     \
            2 children:\n     0x200030 \"Task \"Manager\"\": (\"browser\" \"Browser\")  800x600+10+20  +10+20\n        \
            1 child:\n        0x200031 (has no name): ()  98x52+-1+-1  +9+19\n     \
            0x400001 \"Warren\": ()  1024x768+0+0  +0+0\n";
        let w = parse_window_tree(text);
        assert_eq!(w.len(), 3, "{w:?}");
        assert_eq!(w[0].id, "0x200030");
        assert_eq!(w[0].name.as_deref(), Some("Task \"Manager\""));
        assert_eq!(
            (w[0].depth, w[0].width, w[0].height, w[0].x, w[0].y),
            (1, 800, 600, 10, 20)
        );
        assert_eq!(
            (w[1].name.clone(), w[1].depth, w[1].x, w[1].y),
            (None, 2, 9, 19)
        );
        assert_eq!((w[2].name.as_deref(), w[2].depth), (Some("Warren"), 1));
        assert_eq!(parse_offsets("+-1+-1"), Some((-1, -1)));
    }

    #[test]
    fn xvfb_starts_screenshots_and_stops() {
        let x = Xvfb::start();
        let pid = x.pid();
        let img = x.screenshot();
        assert_eq!((img.width, img.height), (SCREEN_WIDTH, SCREEN_HEIGHT));
        // xdotool talks to it too.
        let loc = x.xdotool(&["getmouselocation"]);
        assert!(loc.contains("x:"), "{loc}");
        let proc = crate::procs::Proc::read(pid).expect("Xvfb is running");
        drop(x);
        assert!(!proc.is_alive(), "Xvfb outlived its handle");
    }

    #[test]
    fn ppm_round_trip() {
        let img = Image {
            width: 2,
            height: 1,
            rgb: vec![255, 0, 0, 0, 0, 255],
        };
        let back = Image::from_ppm(&img.to_ppm()).unwrap();
        assert_eq!(back.pixel(0, 0), [255, 0, 0]);
        assert_eq!(back.pixel(1, 0), [0, 0, 255]);
    }
}
