//! Checks that the hostile renderer really misbehaves as each mode promises, by playing the browser's side of its channels (no browser, no X, no sandbox).

use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ipc_channel::ipc::{self, IpcSender};
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{
    recvmsg, socket, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
};
use nix::unistd::Pid;
use warren_ipc::frame::{self, FrameDecoder, FrameError};
use warren_ipc::{Bounds, BrowserToRenderer, Launch, RendererToBrowser, TabId, UpFrame, ViewSetup};
use warren_tests::procs::{with_arguments, Proc};
use warren_tests::renderer_driver::place_descriptors;
use warren_tests::wait_until;

const TAB: u64 = 42;

/// A hostile renderer started the way the browser starts renderers without the sandbox, with our
/// end of the up socket for reading and the launch channel's sender.
struct Hostile {
    child: Child,
    up: UnixStream,
    launch: Option<IpcSender<Launch>>,
    tmp: tempfile::TempDir,
    _outside: tempfile::TempDir,
}

impl Hostile {
    fn start(mode: &str) -> Hostile {
        Hostile::start_with(mode, TAB, &[])
    }

    fn start_with(mode: &str, tab: u64, env: &[(&str, &str)]) -> Hostile {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        let (launch, launch_rx) = ipc::channel::<Launch>().expect("launch channel");
        // TMPDIR is a subdirectory, so that `$TMPDIR/..` stays inside our temporary directory.
        let tmp = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(tmp.path().join("rt")).expect("runtime dir");
        let outside = tempfile::tempdir().expect("temp dir");
        let theirs: OwnedFd = theirs.into();
        let down = OwnedFd::from(launch_rx);
        let (up_fd, down_fd) = (theirs.as_raw_fd(), down.as_raw_fd());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostile-renderer"));
        cmd.env("WARREN_HOSTILE_MODE", mode)
            .env("WARREN_TAB_ID", tab.to_string())
            .env("TMPDIR", tmp.path().join("rt"))
            .env("WARREN_HOSTILE_OUTSIDE_DIR", outside.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // SAFETY: only fcntl and dup2 run between fork and exec, which are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || place_descriptors(up_fd, down_fd));
        }
        let child = cmd.spawn().expect("spawn the hostile renderer");
        drop(theirs);
        drop(down);
        ours.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Hostile {
            child,
            up: ours,
            launch: Some(launch),
            tmp,
            _outside: outside,
        }
    }

    /// The renderer's TMPDIR.
    fn rt(&self) -> PathBuf {
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

    /// Reads one whole frame's payload, without decoding it.
    fn raw_payload(&mut self) -> Vec<u8> {
        let mut prefix = [0u8; 4];
        self.up.read_exact(&mut prefix).expect("a length prefix");
        let mut payload = vec![0u8; u32::from_le_bytes(prefix) as usize];
        self.up.read_exact(&mut payload).expect("the payload");
        payload
    }

    /// Reads an old-style `Hello { server_name }` frame, checks that today's decoder refuses it,
    /// and returns the name.
    fn old_style_hello(&mut self, tab: u64) -> String {
        let payload = self.raw_payload();
        assert!(
            matches!(
                frame::decode_payload(&payload),
                Err(FrameError::TrailingBytes(_))
            ),
            "today's decoder must refuse an old-style Hello: {:?}",
            frame::decode_payload(&payload)
        );
        let (got_tab, rest) = varint(&payload);
        assert_eq!(got_tab, tab, "tab id of the old-style Hello");
        assert_eq!(rest.first(), Some(&0), "variant 0 (Hello)");
        let (len, name) = varint(&rest[1..]);
        assert_eq!(len as usize, name.len(), "the name fills the frame");
        String::from_utf8(name.to_vec()).expect("a UTF-8 name")
    }

    /// Does the browser's part of the handshake on a Hello: sends the Launch on the inherited
    /// channel.
    fn launch(&mut self, hello: &UpFrame) -> IpcSender<BrowserToRenderer> {
        assert_eq!(hello.msg, RendererToBrowser::Hello, "expected Hello");
        let (tx, rx) = ipc::channel().unwrap();
        self.launch
            .take()
            .expect("one launch per renderer")
            .send(Launch {
                tab_id: hello.tab_id,
                view: ViewSetup {
                    parent_window: Some(0),
                    bounds: Bounds::default(),
                    visible: true,
                    url: "http://127.0.0.1/".into(),
                    website_data_dir: self.tmp.path().into(),
                    cookie_file: self.tmp.path().join("c"),
                    restore: None,
                    spare: false,
                },
                receiver: rx,
            })
            .expect("send Launch");
        tx
    }

    /// Hello, Launch and the first `n` frames after it (Ready first).
    fn handshake(&mut self, n: usize) -> (IpcSender<BrowserToRenderer>, Vec<UpFrame>) {
        let hello = self.frames(1).remove(0);
        let down = self.launch(&hello);
        let frames = self.frames(n);
        assert_eq!(
            frames[0].msg,
            RendererToBrowser::Ready { landlock: false },
            "Ready after the Launch"
        );
        (down, frames)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
        // `deep-dir` leaves a chain too deep for tempfile's recursive removal.
        let _ = warren_tests::remove_tree(self.tmp.path());
    }
}

/// A postcard (LEB128) varint at the start of `bytes`, and the bytes after it.
fn varint(bytes: &[u8]) -> (u64, &[u8]) {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (value, &bytes[i + 1..]);
        }
    }
    panic!("no varint at the start of {bytes:?}");
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
    assert_eq!(f.msg, RendererToBrowser::Hello);
}

#[test]
fn flood_handshakes_then_floods_titles() {
    let mut h = Hostile::start("flood");
    let (_down, frames) = h.handshake(5000);
    assert!(frames[1..]
        .iter()
        .all(|f| f.tab_id == tab() && matches!(f.msg, RendererToBrowser::TitleChanged { .. })));
}

#[test]
fn wrong_tab_and_bad_scheme_follow_a_valid_handshake() {
    let mut h = Hostile::start("wrong-tab");
    let (_down, frames) = h.handshake(2);
    assert_ne!(frames[1].tab_id, tab());

    let mut h = Hostile::start("bad-scheme");
    let (_down, frames) = h.handshake(2);
    assert_eq!(
        frames[1].msg,
        RendererToBrowser::UrlChanged {
            url: "javascript:alert(1)".into()
        }
    );
}

#[test]
fn normal_loads_answers_pings_and_obeys_shutdown() {
    let mut h = Hostile::start("normal");
    let (down, frames) = h.handshake(3);
    assert_eq!(
        frames[1].msg,
        RendererToBrowser::UrlChanged {
            url: "http://127.0.0.1/".into()
        }
    );
    assert_eq!(frames[2].msg, RendererToBrowser::Loading(false));
    down.send(BrowserToRenderer::Ping { seq: 9 }).unwrap();
    assert_eq!(h.frames(1)[0].msg, RendererToBrowser::Pong { seq: 9 });
    down.send(BrowserToRenderer::Shutdown).unwrap();
    let exited = wait_until(Duration::from_secs(5), || h.child.try_wait().ok().flatten());
    assert!(
        exited.is_some_and(|s| s.success()),
        "normal exits 0 on Shutdown: {exited:?}"
    );
}

#[test]
fn bad_server_names_point_outside_tmpdir_in_an_old_style_hello() {
    for (mode, check) in [
        ("bad-server-name", "-abs/"),
        ("bad-server-name-dotdot", "/../"),
        ("bad-server-name-symlink", "/link/"),
    ] {
        let mut h = Hostile::start(mode);
        let server_name = h.old_style_hello(TAB);
        assert!(server_name.contains(check), "{mode}: {server_name}");
        let real = std::fs::canonicalize(&server_name).expect("the announced server exists");
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
fn hardlink_names_a_link_to_the_victims_socket() {
    let victim_dir = tempfile::tempdir().unwrap();
    let victim = victim_dir.path().join("victim.sock");
    let listener = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    nix::sys::socket::bind(listener.as_raw_fd(), &UnixAddr::new(&victim).unwrap()).unwrap();
    nix::sys::socket::listen(&listener, nix::sys::socket::Backlog::new(4).unwrap()).unwrap();
    let victim_str = victim.to_str().unwrap();
    let mut h = Hostile::start_with("hardlink", TAB, &[("WARREN_HOSTILE_VICTIM", victim_str)]);
    let name = h.old_style_hello(TAB);
    // Same file system here (no sandbox): the link succeeds and is the victim's very inode.
    assert!(
        Path::new(&name).starts_with(h.rt()),
        "the named link lies in TMPDIR: {name}"
    );
    let (linked, original) = (
        std::fs::metadata(&name).unwrap(),
        std::fs::metadata(&victim).unwrap(),
    );
    assert_eq!(
        (linked.dev(), linked.ino()),
        (original.dev(), original.ino())
    );
}

#[test]
fn stream_hello_names_a_stream_socket() {
    let mut h = Hostile::start("stream-hello");
    let name = h.old_style_hello(TAB);
    assert!(Path::new(&name).starts_with(h.rt()), "{name}");
    // ipc-channel connects with SOCK_SEQPACKET, which a stream socket refuses.
    let seqpacket = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let refused = nix::sys::socket::connect(
        seqpacket.as_raw_fd(),
        &UnixAddr::new(name.as_str()).unwrap(),
    );
    assert_eq!(refused, Err(nix::errno::Errno::EPROTOTYPE));
    UnixStream::connect(&name).expect("a stream connect is accepted");
}

/// The live escaped grandchildren carrying `marker`.
fn escaped(marker: &str) -> Vec<Proc> {
    with_arguments(&["--escaped", marker])
}

/// Kills the escaped grandchildren of `marker` when dropped.
struct KillEscaped(String);

impl Drop for KillEscaped {
    fn drop(&mut self) {
        for p in escaped(&self.0) {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
    }
}

#[test]
fn escape_leaves_a_setsid_grandchild_that_ignores_sigterm() {
    let marker = format!("wself{}", std::process::id());
    let _cleanup = KillEscaped(marker.clone());
    let mut h = Hostile::start_with("escape", TAB, &[("WARREN_HOSTILE_MARKER", &marker)]);
    let (down, _) = h.handshake(3);
    let found = wait_until(Duration::from_secs(10), || {
        let found = escaped(&marker);
        (!found.is_empty()).then_some(found)
    })
    .expect("an escaped grandchild with the marker");
    assert_eq!(found.len(), 1, "{found:?}");
    let g = &found[0];
    assert_eq!(g.comm, marker, "the marker is its comm");
    assert_ne!(g.ppid, h.child.id() as i32, "the grandchild was orphaned");
    // setsid in the middle process, then the fork: a session and process group of its own.
    let renderer = Pid::from_raw(h.child.id() as i32);
    let sid = nix::unistd::getsid(Some(Pid::from_raw(g.pid))).unwrap();
    assert_ne!(
        sid,
        nix::unistd::getsid(Some(renderer)).unwrap(),
        "own session"
    );
    assert_ne!(g.pgrp, h.child.id() as i32, "own process group");
    kill(Pid::from_raw(g.pid), Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(g.is_alive(), "the grandchild ignores SIGTERM");
    // The renderer ignores Shutdown.
    down.send(BrowserToRenderer::Shutdown).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(h.child.try_wait().unwrap(), None, "escape ignores Shutdown");
}

#[test]
fn no_pdeathsig_outlives_its_channels() {
    let marker = format!("wsnpd{}", std::process::id());
    let _cleanup = KillEscaped(marker.clone());
    let mut h = Hostile::start_with("no-pdeathsig", TAB, &[("WARREN_HOSTILE_MARKER", &marker)]);
    let (down, _) = h.handshake(3);
    wait_until(Duration::from_secs(10), || {
        (!escaped(&marker).is_empty()).then_some(())
    })
    .expect("an escaped grandchild with the marker");
    // The browser is gone: both channels close.
    drop(down);
    let _ = h.up.shutdown(std::net::Shutdown::Both);
    kill(Pid::from_raw(h.child.id() as i32), Signal::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        h.child.try_wait().unwrap(),
        None,
        "no-pdeathsig outlives its channels and SIGTERM"
    );
}

#[test]
fn deep_dir_leaves_a_15000_deep_chain_and_exits() {
    let mut h = Hostile::start("deep-dir");
    let _ = h.handshake(1);
    let status = wait_until(Duration::from_secs(60), || {
        h.child.try_wait().ok().flatten()
    })
    .expect("deep-dir exits");
    assert_eq!(status.code(), Some(1));
    // Count the levels without ever opening a long path.
    let flags = nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_RDONLY;
    let mode = nix::sys::stat::Mode::empty();
    let mut dir = nix::fcntl::open(&h.rt().join("deep"), flags, mode).unwrap();
    let mut depth = 0;
    while let Ok(next) = nix::fcntl::openat(&dir, "d", flags, mode) {
        dir = next;
        depth += 1;
    }
    assert_eq!(depth, 15_000);
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
fn by_tab_gives_each_tab_its_own_mode() {
    let spec = "by-tab:41=silent,42=oversize,*=silent";
    let mut a = Hostile::start_with(spec, 42, &[]);
    let mut prefix = [0u8; 4];
    a.up.read_exact(&mut prefix).unwrap();
    assert_eq!(u32::from_le_bytes(prefix), u32::MAX, "tab 42 is oversize");
    // Any other tab gets the `*` mode.
    let mut b = Hostile::start_with("by-tab:42=silent,*=oversize", 43, &[]);
    b.up.read_exact(&mut prefix).unwrap();
    assert_eq!(u32::from_le_bytes(prefix), u32::MAX, "tab 43 is oversize");
    let mut c = Hostile::start_with("by-tab:42=silent,*=oversize", 42, &[]);
    c.up.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 4];
    assert!(c.up.read(&mut buf).is_err(), "tab 42 is silent");
}
