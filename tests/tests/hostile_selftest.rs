//! Checks that the hostile renderer really misbehaves as each mode promises, by playing the browser's side of the up socket (no browser, no X).

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ipc_channel::ipc::{self, IpcSender};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use nix::unistd::Pid;
use warren_ipc::frame::FrameDecoder;
use warren_ipc::{Bounds, BrowserToRenderer, Launch, RendererToBrowser, TabId, UpFrame, ViewSetup};

const TAB: u64 = 42;

/// A hostile renderer started the way the browser starts renderers, with our end of the up
/// socket for reading.
struct Hostile {
    child: Child,
    up: UnixStream,
    tmp: tempfile::TempDir,
    _outside: tempfile::TempDir,
}

impl Hostile {
    fn start(mode: &str) -> Hostile {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        // TMPDIR is a subdirectory, so that `$TMPDIR/..` stays inside our temporary directory.
        let tmp = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(tmp.path().join("rt")).expect("runtime dir");
        let outside = tempfile::tempdir().expect("temp dir");
        let theirs_fd: OwnedFd = theirs.into();
        let raw = theirs_fd.as_raw_fd();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostile-renderer"));
        cmd.env("WARREN_HOSTILE_MODE", mode)
            .env("WARREN_TAB_ID", TAB.to_string())
            .env("TMPDIR", tmp.path().join("rt"))
            .env("WARREN_HOSTILE_OUTSIDE_DIR", outside.path())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: only dup2 runs between fork and exec, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(raw, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn the hostile renderer");
        drop(theirs_fd);
        ours.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Hostile {
            child,
            up: ours,
            tmp,
            _outside: outside,
        }
    }

    /// The renderer's TMPDIR.
    fn rt(&self) -> std::path::PathBuf {
        self.tmp.path().join("rt")
    }

    /// Reads frames until `n` arrived.
    fn frames(&mut self, n: usize) -> Vec<UpFrame> {
        let mut d = FrameDecoder::new();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while out.len() < n {
            while let Some(f) = d.next_frame().expect("well-formed frames") {
                out.push(f);
            }
            if out.len() >= n {
                break;
            }
            let k = self.up.read(&mut buf).expect("read the up socket");
            assert!(k > 0, "the hostile renderer closed the socket");
            d.push(&buf[..k]);
        }
        out
    }

    /// Does the browser's part of the handshake on a Hello.
    fn launch(&self, hello: &UpFrame) -> IpcSender<BrowserToRenderer> {
        let RendererToBrowser::Hello { server_name } = &hello.msg else {
            panic!("expected Hello, got {hello:?}");
        };
        assert!(
            server_name.starts_with(self.rt().to_str().unwrap()),
            "{server_name}"
        );
        let (tx, rx) = ipc::channel().unwrap();
        let sender = IpcSender::<Launch>::connect(server_name.clone()).expect("connect");
        sender
            .send(Launch {
                tab_id: TabId(TAB),
                view: ViewSetup {
                    parent_window: 0,
                    bounds: Bounds::default(),
                    visible: true,
                    url: "http://127.0.0.1/".into(),
                    website_data_dir: self.tmp.path().into(),
                    cookie_file: self.tmp.path().join("c"),
                    restore: None,
                },
                receiver: rx,
            })
            .expect("send Launch");
        tx
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn tab() -> TabId {
    TabId(TAB)
}

#[test]
fn oversize_sends_a_huge_length_prefix() {
    let mut h = Hostile::start("oversize");
    let mut prefix = [0u8; 4];
    h.up.read_exact(&mut prefix).unwrap();
    assert_eq!(u32::from_le_bytes(prefix), u32::MAX);
}

#[test]
fn garbage_is_not_a_valid_stream() {
    let mut h = Hostile::start("garbage");
    let mut buf = vec![0u8; 64 * 1024];
    h.up.read_exact(&mut buf).unwrap();
    let mut d = FrameDecoder::new();
    d.push(&buf);
    let mut bad = false;
    for _ in 0..1000 {
        match d.next_frame() {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => {
                bad = true;
                break;
            }
        }
    }
    assert!(bad, "64 KiB of garbage decoded without an error");
}

#[test]
fn fds_attaches_descriptors_to_a_valid_hello() {
    let h = Hostile::start("fds");
    let mut buf = vec![0u8; 8192];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 253]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<UnixAddr>(
        h.up.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fds = Vec::new();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(r) = c {
            fds.extend(r);
        }
    }
    let n = msg.bytes;
    assert_eq!(fds.len(), 64, "descriptors received");
    for fd in fds {
        unsafe { libc::close(fd) };
    }
    let mut d = FrameDecoder::new();
    d.push(&buf[..n]);
    let f = d.next_frame().unwrap().expect("a whole Hello frame");
    assert_eq!(f.tab_id, tab());
    assert!(matches!(f.msg, RendererToBrowser::Hello { .. }));
}

#[test]
fn flood_handshakes_then_floods_titles() {
    let mut h = Hostile::start("flood");
    let hello = h.frames(1).remove(0);
    let _down = h.launch(&hello);
    let frames = h.frames(5000);
    assert_eq!(
        frames[0],
        UpFrame {
            tab_id: tab(),
            msg: RendererToBrowser::Ready
        }
    );
    assert!(frames[1..]
        .iter()
        .all(|f| f.tab_id == tab() && matches!(f.msg, RendererToBrowser::TitleChanged { .. })));
}

#[test]
fn wrong_tab_and_bad_scheme_follow_a_valid_handshake() {
    let mut h = Hostile::start("wrong-tab");
    let hello = h.frames(1).remove(0);
    let _down = h.launch(&hello);
    let frames = h.frames(2);
    assert_eq!(frames[0].msg, RendererToBrowser::Ready);
    assert_ne!(frames[1].tab_id, tab());

    let mut h = Hostile::start("bad-scheme");
    let hello = h.frames(1).remove(0);
    let _down = h.launch(&hello);
    let frames = h.frames(2);
    assert_eq!(
        frames[1].msg,
        RendererToBrowser::UrlChanged {
            url: "javascript:alert(1)".into()
        }
    );
}

#[test]
fn bad_server_names_point_outside_tmpdir() {
    for (mode, check) in [
        ("bad-server-name", "-abs/"),
        ("bad-server-name-dotdot", "/../"),
        ("bad-server-name-symlink", "/link/"),
    ] {
        let mut h = Hostile::start(mode);
        let hello = h.frames(1).remove(0);
        let RendererToBrowser::Hello { server_name } = &hello.msg else {
            panic!("{mode}: expected Hello, got {hello:?}");
        };
        assert!(server_name.contains(check), "{mode}: {server_name}");
        let real = std::fs::canonicalize(server_name).expect("the announced server exists");
        let tmp = std::fs::canonicalize(h.rt()).unwrap();
        assert!(
            !real.starts_with(&tmp),
            "{mode}: {} is inside {}",
            real.display(),
            tmp.display()
        );
    }
}

#[test]
fn silent_sends_nothing() {
    let mut h = Hostile::start("silent");
    h.up.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 16];
    let err = h.up.read(&mut buf).expect_err("silence");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
}

#[test]
fn queue_mode_gives_each_renderer_its_own_mode() {
    let q = tempfile::tempdir().unwrap();
    std::fs::write(q.path().join("00-oversize"), "").unwrap();
    std::fs::write(q.path().join("01-silent"), "").unwrap();
    let spec = format!("queue:{}", q.path().display());
    let mut a = Hostile::start(&spec);
    let mut prefix = [0u8; 4];
    a.up.read_exact(&mut prefix).unwrap();
    assert_eq!(u32::from_le_bytes(prefix), u32::MAX);
    let _b = Hostile::start(&spec);
    let claimed = crate_wait(|| {
        let names: Vec<String> = std::fs::read_dir(q.path().join("claimed"))
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        (names.len() == 2).then_some(names)
    });
    assert!(claimed.iter().all(|n| n.starts_with("42-")), "{claimed:?}");
}

fn crate_wait<T>(f: impl FnMut() -> Option<T>) -> T {
    warren_tests::wait_until(Duration::from_secs(10), f).expect("condition within 10 s")
}
