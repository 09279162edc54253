//! The clipboard broker against real X servers: an outer Xvfb, Xephyr servers nested in it, and
//! `xclip`/`xdotool` as the user's applications and as pages.
//!
//! Each test uses its own display numbers (:60 to :68), so they run in parallel.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use warren_browser::clipboard::{Broker, BrokerEvent, NestedAddress};
use warren_ipc::TabId;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux, EventMask,
    InputFocus, PropMode, Property, SelectionNotifyEvent, WindowClass, SELECTION_NOTIFY_EVENT,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::CURRENT_TIME;

/// A process killed and reaped when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        // SIGTERM first: an X server then removes its socket and lock, and the next test on the
        // same display number does not find them stale.
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn socket(display: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/.X11-unix/X{display}"))
}

/// Waits until the server accepts connections (a killed server may have left its socket behind).
fn wait_for_socket(display: u32, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(socket(display)).is_err() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "X server :{display} exited"
        );
        assert!(
            Instant::now() < deadline,
            "X server :{display} did not start"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

fn xvfb(display: u32) -> Proc {
    let mut child = Command::new("Xvfb")
        .args([
            format!(":{display}").as_str(),
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb");
    wait_for_socket(display, &mut child);
    Proc(child)
}

/// An outer display with one host window per tab, as the browser would have.
struct Outer {
    display: u32,
    conn: RustConnection,
    _server: Proc,
}

impl Outer {
    fn start(display: u32) -> Outer {
        let server = xvfb(display);
        let (conn, _) = RustConnection::connect(Some(&format!(":{display}"))).unwrap();
        Outer {
            display,
            conn,
            _server: server,
        }
    }

    fn name(&self) -> String {
        format!(":{}", self.display)
    }

    /// A mapped 640x400 window at `x`.
    fn host_window(&self, x: i16) -> u32 {
        let root = self.conn.setup().roots[0].root;
        let id = self.conn.generate_id().unwrap();
        self.conn
            .create_window(
                0,
                id,
                root,
                x,
                0,
                640,
                400,
                0,
                WindowClass::INPUT_OUTPUT,
                0,
                &CreateWindowAux::new().background_pixel(0x808080),
            )
            .unwrap();
        self.conn.map_window(id).unwrap();
        self.conn.flush().unwrap();
        id
    }

    fn run(&self, args: &[&str]) -> Output {
        run_on(&self.name(), None, args)
    }
}

/// A nested Xephyr inside a host window, with its cookie.
struct Nested {
    display: u32,
    auth: PathBuf,
    cookie: [u8; 16],
    window: u32,
    _server: Proc,
}

impl Nested {
    fn start(outer: &Outer, display: u32, host: u32) -> Nested {
        let dir = PathBuf::from("/tmp/clip");
        std::fs::create_dir_all(&dir).unwrap();
        let auth = dir.join(format!("auth{display}"));
        let mut cookie = [0u8; 16];
        for (i, b) in cookie.iter_mut().enumerate() {
            *b = (display as u8).wrapping_mul(31).wrapping_add(i as u8 * 7);
        }
        write_xauthority(&auth, &cookie);
        let mut child = Command::new("Xephyr")
            .args([
                format!(":{display}").as_str(),
                "-parent",
                &host.to_string(),
                "-screen",
                "640x400",
                "-no-host-grab",
                "-nolisten",
                "tcp",
                "-auth",
                auth.to_str().unwrap(),
            ])
            .env("DISPLAY", outer.name())
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("Xephyr");
        wait_for_socket(display, &mut child);
        // Xephyr's window appears in the host once it is up.
        let deadline = Instant::now() + Duration::from_secs(10);
        let window = loop {
            let tree = outer.conn.query_tree(host).unwrap().reply().unwrap();
            if let Some(&w) = tree.children.first() {
                break w;
            }
            assert!(Instant::now() < deadline, "no Xephyr window in the host");
            thread::sleep(Duration::from_millis(20));
        };
        Nested {
            display,
            auth,
            cookie,
            window,
            _server: Proc(child),
        }
    }

    fn address(&self) -> NestedAddress {
        NestedAddress {
            socket: socket(self.display),
            cookie: self.cookie,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        run_on(&format!(":{}", self.display), Some(&self.auth), args)
    }

    fn spawn(&self, args: &[&str], stdin: &str) -> Proc {
        spawn_on(&format!(":{}", self.display), Some(&self.auth), args, stdin)
    }

    fn connect(&self) -> RustConnection {
        let stream = std::os::unix::net::UnixStream::connect(socket(self.display)).unwrap();
        let (stream, _) = x11rb::rust_connection::DefaultStream::from_unix_stream(stream).unwrap();
        RustConnection::connect_to_stream_with_auth_info(
            stream,
            0,
            b"MIT-MAGIC-COOKIE-1".to_vec(),
            self.cookie.to_vec(),
        )
        .unwrap()
    }
}

fn write_xauthority(path: &Path, cookie: &[u8; 16]) {
    let mut data = Vec::new();
    data.extend(0xffffu16.to_be_bytes()); // FamilyWild
    for field in [&b""[..], &b""[..], &b"MIT-MAGIC-COOKIE-1"[..], &cookie[..]] {
        data.extend(u16::try_from(field.len()).unwrap().to_be_bytes());
        data.extend(field);
    }
    std::fs::write(path, data).unwrap();
}

fn command_on(display: &str, auth: Option<&Path>, args: &[&str]) -> Command {
    // `timeout` bounds a reader that the broker would leave waiting: that is a failure too.
    let mut command = Command::new("timeout");
    command.arg("5").args(args).env("DISPLAY", display);
    match auth {
        Some(auth) => command.env("XAUTHORITY", auth),
        None => command.env_remove("XAUTHORITY"),
    };
    command
}

fn run_on(display: &str, auth: Option<&Path>, args: &[&str]) -> Output {
    command_on(display, auth, args)
        .stdin(Stdio::null())
        .output()
        .expect("run")
}

/// Starts an owner of a selection (`xclip -quiet -i` stays in the foreground) and waits until it
/// owns it.
fn spawn_on(display: &str, auth: Option<&Path>, args: &[&str], stdin: &str) -> Proc {
    let mut child = command_on(display, auth, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    thread::sleep(Duration::from_millis(200));
    Proc(child)
}

fn text(output: &Output) -> Option<String> {
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Polls `read` until it returns `want` or `within` passes.
fn eventually(within: Duration, mut read: impl FnMut() -> Option<String>, want: &str) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if read().as_deref() == Some(want) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

const CLIP_IN: [&str; 5] = ["xclip", "-quiet", "-selection", "clipboard", "-i"];
const CLIP_OUT: [&str; 4] = ["xclip", "-selection", "clipboard", "-o"];
const HTML_IN: [&str; 7] = [
    "xclip",
    "-quiet",
    "-selection",
    "clipboard",
    "-t",
    "text/html",
    "-i",
];
const HTML_OUT: [&str; 6] = ["xclip", "-selection", "clipboard", "-t", "text/html", "-o"];
const PRIMARY_IN: [&str; 5] = ["xclip", "-quiet", "-selection", "primary", "-i"];
const PRIMARY_OUT: [&str; 4] = ["xclip", "-selection", "primary", "-o"];

fn focus(outer: &Outer, window: u32) {
    outer
        .conn
        .set_input_focus(InputFocus::PARENT, window, CURRENT_TIME)
        .unwrap();
    outer.conn.flush().unwrap();
    outer.conn.get_input_focus().unwrap().reply().unwrap();
}

fn start_broker(outer: &Outer) -> (Broker, Arc<Mutex<Vec<BrokerEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let broker = Broker::start(Some(&outer.name()), move |e| sink.lock().unwrap().push(e)).unwrap();
    (broker, events)
}

#[test]
fn a_page_copy_reaches_the_user_and_survives_the_tab() {
    let outer = Outer::start(60);
    let host = outer.host_window(0);
    let nested = Nested::start(&outer, 61, host);
    let (broker, _) = start_broker(&outer);
    broker.add_display(TabId(1), nested.address(), host);
    broker.set_active(Some(TabId(1)));
    thread::sleep(Duration::from_millis(300));

    let _page = nested.spawn(&CLIP_IN, "copied in the page");
    assert!(eventually(
        Duration::from_secs(3),
        || text(&outer.run(&CLIP_OUT)),
        "copied in the page"
    ));
    let _html = nested.spawn(&HTML_IN, "<b>bold</b>");
    assert!(eventually(
        Duration::from_secs(3),
        || text(&outer.run(&HTML_OUT)),
        "<b>bold</b>"
    ));
    // Larger than one request: the broker reads it with INCR and serves it with INCR.
    let big: String = (0..3_000_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let _big = nested.spawn(&CLIP_IN, &big);
    assert!(eventually(
        Duration::from_secs(5),
        || text(&outer.run(&CLIP_OUT)),
        &big
    ));
    let _html = nested.spawn(&HTML_IN, "<i>last</i>");
    assert!(eventually(
        Duration::from_secs(3),
        || text(&outer.run(&HTML_OUT)),
        "<i>last</i>"
    ));
    // The tab closes: the copied data stays.
    broker.remove_display(TabId(1));
    drop(nested);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(text(&outer.run(&HTML_OUT)).as_deref(), Some("<i>last</i>"));
}

/// Presses Ctrl+V on the outer display; returns when the key is sent.
fn press_ctrl_v(outer: &Outer) {
    assert!(outer.run(&["xdotool", "key", "ctrl+v"]).status.success());
}

#[test]
fn pastes_need_a_gesture_into_the_shown_tab() {
    let outer = Outer::start(62);
    let host1 = outer.host_window(0);
    let host2 = outer.host_window(640);
    let page1 = Nested::start(&outer, 63, host1);
    let page2 = Nested::start(&outer, 64, host2);
    let (broker, _) = start_broker(&outer);
    broker.add_display(TabId(1), page1.address(), host1);
    broker.add_display(TabId(2), page2.address(), host2);
    broker.set_active(Some(TabId(1)));
    thread::sleep(Duration::from_millis(500));
    focus(&outer, page1.window);

    let _user = spawn_on(&outer.name(), None, &CLIP_IN, "the user's text");
    // No gesture: a page reading from a timer gets nothing.
    assert_eq!(text(&page1.run(&CLIP_OUT)), None);

    // Gesture, then the read.
    press_ctrl_v(&outer);
    let start = Instant::now();
    let got = text(&page1.run(&CLIP_OUT));
    let took = start.elapsed();
    assert_eq!(got.as_deref(), Some("the user's text"));
    eprintln!("gesture to data (xclip -o run, small text): {took:?}");

    // The read first, the gesture right after it.
    let reader = command_on(&format!(":{}", page1.display), Some(&page1.auth), &CLIP_OUT)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(30));
    press_ctrl_v(&outer);
    let output = reader.wait_with_output().unwrap();
    assert_eq!(text(&output).as_deref(), Some("the user's text"));

    // Large pastes go through INCR both ways.
    let big: String = (0..2_000_000)
        .map(|i| char::from(b'A' + (i % 26) as u8))
        .collect();
    let _user_big = spawn_on(&outer.name(), None, &CLIP_IN, &big);
    press_ctrl_v(&outer);
    assert_eq!(text(&page1.run(&CLIP_OUT)).as_deref(), Some(big.as_str()));
    let _user = spawn_on(&outer.name(), None, &CLIP_IN, "the user's text");

    // After the gesture window, nothing again.
    thread::sleep(Duration::from_millis(1200));
    assert_eq!(text(&page1.run(&CLIP_OUT)), None);

    // A background tab gets nothing: not with the shown tab's gesture, not with a gesture made
    // into it, not after a gesture into it just before it was hidden.
    press_ctrl_v(&outer);
    assert_eq!(text(&page2.run(&CLIP_OUT)), None);
    focus(&outer, page2.window);
    press_ctrl_v(&outer);
    assert_eq!(text(&page2.run(&CLIP_OUT)), None);
    thread::sleep(Duration::from_millis(1100));
    focus(&outer, page1.window);
    press_ctrl_v(&outer);
    broker.set_active(Some(TabId(2)));
    thread::sleep(Duration::from_millis(50));
    assert_eq!(text(&page1.run(&CLIP_OUT)), None);
    broker.set_active(Some(TabId(1)));
    focus(&outer, page2.window);

    // Nor may it set the user's clipboard.
    let _background = page2.spawn(&CLIP_IN, "background copy");
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        text(&outer.run(&CLIP_OUT)).as_deref(),
        Some("the user's text")
    );

    // The page copies, then the user copies elsewhere: a paste in the page gets the user's new
    // text, not the page's own.
    focus(&outer, page1.window);
    let _page_copy = page1.spawn(&CLIP_IN, "page text");
    assert!(eventually(
        Duration::from_secs(3),
        || text(&outer.run(&CLIP_OUT)),
        "page text"
    ));
    let _user2 = spawn_on(&outer.name(), None, &CLIP_IN, "newer user text");
    thread::sleep(Duration::from_millis(200));
    press_ctrl_v(&outer);
    assert_eq!(
        text(&page1.run(&CLIP_OUT)).as_deref(),
        Some("newer user text")
    );

    // Shift+Insert pastes too; a page may paste what another page copied.
    let _page1_copy = page1.spawn(&CLIP_IN, "copied by page one");
    assert!(eventually(
        Duration::from_secs(3),
        || text(&outer.run(&CLIP_OUT)),
        "copied by page one"
    ));
    broker.set_active(Some(TabId(2)));
    focus(&outer, page2.window);
    thread::sleep(Duration::from_millis(100));
    assert!(outer
        .run(&["xdotool", "key", "shift+Insert"])
        .status
        .success());
    assert_eq!(
        text(&page2.run(&CLIP_OUT)).as_deref(),
        Some("copied by page one")
    );
    // The other page copies: page one's own copy is stale, and its next paste gets the new one.
    let _page2_copy = page2.spawn(&CLIP_IN, "copied by page two");
    assert!(eventually(
        Duration::from_secs(3),
        || text(&outer.run(&CLIP_OUT)),
        "copied by page two"
    ));
    broker.set_active(Some(TabId(1)));
    focus(&outer, page1.window);
    thread::sleep(Duration::from_millis(100));
    press_ctrl_v(&outer);
    assert_eq!(
        text(&page1.run(&CLIP_OUT)).as_deref(),
        Some("copied by page two")
    );
}

#[test]
fn middle_click_pastes_primary_and_reports_the_press() {
    let outer = Outer::start(65);
    let host = outer.host_window(100);
    let page = Nested::start(&outer, 66, host);
    let (broker, events) = start_broker(&outer);
    broker.add_display(TabId(7), page.address(), host);
    broker.set_active(Some(TabId(7)));
    thread::sleep(Duration::from_millis(500));

    // The page selects text: a middle click elsewhere pastes it.
    let _selected = page.spawn(&PRIMARY_IN, "selected in the page");
    assert!(eventually(
        Duration::from_secs(3),
        || text(&outer.run(&PRIMARY_OUT)),
        "selected in the page"
    ));

    // The user selects text elsewhere; the page gets it only on a middle click into it.
    let _user = spawn_on(&outer.name(), None, &PRIMARY_IN, "selected by the user");
    thread::sleep(Duration::from_millis(200));
    assert_eq!(text(&page.run(&PRIMARY_OUT)), None);
    // A click outside any page is no gesture, and reports nothing.
    assert!(outer
        .run(&["xdotool", "mousemove", "900", "600", "click", "2"])
        .status
        .success());
    assert_eq!(text(&page.run(&PRIMARY_OUT)), None);
    assert!(events.lock().unwrap().is_empty());

    assert!(outer
        .run(&["xdotool", "mousemove", "300", "200", "click", "2"])
        .status
        .success());
    assert_eq!(
        text(&page.run(&PRIMARY_OUT)).as_deref(),
        Some("selected by the user")
    );
    // Ctrl+V is no PRIMARY gesture.
    thread::sleep(Duration::from_millis(1100));
    focus(&outer, page.window);
    press_ctrl_v(&outer);
    assert_eq!(text(&page.run(&PRIMARY_OUT)), None);

    // Any button over the page is reported, for focus.
    events.lock().unwrap().clear();
    assert!(outer.run(&["xdotool", "click", "1"]).status.success());
    let deadline = Instant::now() + Duration::from_secs(2);
    while events.lock().unwrap().is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        events.lock().unwrap().as_slice(),
        &[BrokerEvent::PagePressed { tab: TabId(7) }]
    );
}

/// A page that owns CLIPBOARD and answers every request as badly as it can: never, or with an
/// endless INCR transfer.
fn hostile_owner(
    page: &Nested,
    endless_incr: bool,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    let conn = page.connect();
    thread::spawn(move || {
        let root = conn.setup().roots[0].root;
        let window = conn.generate_id().unwrap();
        conn.create_window(
            0,
            window,
            root,
            0,
            0,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new(),
        )
        .unwrap();
        let clipboard = conn
            .intern_atom(false, b"CLIPBOARD")
            .unwrap()
            .reply()
            .unwrap()
            .atom;
        let incr = conn
            .intern_atom(false, b"INCR")
            .unwrap()
            .reply()
            .unwrap()
            .atom;
        conn.set_selection_owner(window, clipboard, CURRENT_TIME)
            .unwrap();
        conn.flush().unwrap();
        let mut transfers = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let Some(event) = conn.poll_for_event().unwrap() else {
                thread::sleep(Duration::from_millis(1));
                continue;
            };
            match event {
                Event::SelectionRequest(req) if endless_incr => {
                    conn.change_window_attributes(
                        req.requestor,
                        &ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE),
                    )
                    .unwrap();
                    conn.change_property32(
                        PropMode::REPLACE,
                        req.requestor,
                        req.property,
                        incr,
                        &[100 << 20],
                    )
                    .unwrap();
                    let notify = SelectionNotifyEvent {
                        response_type: SELECTION_NOTIFY_EVENT,
                        sequence: 0,
                        time: req.time,
                        requestor: req.requestor,
                        selection: req.selection,
                        target: req.target,
                        property: req.property,
                    };
                    conn.send_event(false, req.requestor, EventMask::NO_EVENT, notify)
                        .unwrap();
                    conn.flush().unwrap();
                    transfers.push((req.requestor, req.property));
                }
                Event::PropertyNotify(p)
                    if p.state == Property::DELETE && transfers.contains(&(p.window, p.atom)) =>
                {
                    let chunk = vec![b'x'; 256 * 1024];
                    let _ = conn.change_property8(
                        PropMode::REPLACE,
                        p.window,
                        p.atom,
                        AtomEnum::STRING,
                        &chunk,
                    );
                    let _ = conn.flush();
                }
                _ => {}
            }
        }
    })
}

#[test]
fn a_hostile_page_does_not_stall_the_broker() {
    let outer = Outer::start(67);
    let host1 = outer.host_window(0);
    let host2 = outer.host_window(640);
    let hostile = Nested::start(&outer, 68, host1);
    let good = Nested::start(&outer, 69, host2);
    let (broker, _) = start_broker(&outer);
    broker.add_display(TabId(1), hostile.address(), host1);
    broker.add_display(TabId(2), good.address(), host2);
    thread::sleep(Duration::from_millis(500));

    for (round, endless_incr) in [false, true].into_iter().enumerate() {
        broker.set_active(Some(TabId(1)));
        thread::sleep(Duration::from_millis(100));
        let stop = Arc::new(AtomicBool::new(false));
        let owner = hostile_owner(&hostile, endless_incr, stop.clone());
        thread::sleep(Duration::from_millis(100));
        // The user switches to the other tab and copies there.
        broker.set_active(Some(TabId(2)));
        let want = format!("good copy {round}");
        let start = Instant::now();
        let _copy = good.spawn(&CLIP_IN, &want);
        assert!(
            eventually(
                Duration::from_secs(3),
                || text(&outer.run(&CLIP_OUT)),
                &want
            ),
            "the good tab's copy did not arrive (endless INCR: {endless_incr})"
        );
        eprintln!(
            "good copy after a hostile owner (endless INCR: {endless_incr}): {:?}",
            start.elapsed()
        );
        stop.store(true, Ordering::Relaxed);
        owner.join().unwrap();
    }
    // The user's clipboard never held the hostile page's junk.
    assert_eq!(text(&outer.run(&CLIP_OUT)).as_deref(), Some("good copy 1"));
}
