//! Warren's renderer: one untrusted process per tab that hosts a WebKitGTK view inside the browser's window.
//!
//! Life of a renderer:
//!
//! 1. Start-up ([`startup`]): die with the parent (`PR_SET_PDEATHSIG`), take the up socket on
//!    descriptor 3, send `Hello` with the name of a one-shot ipc-channel server, accept the
//!    browser's `Launch`.
//! 2. GTK on the main thread, on the tab's own nested display (waiting for its socket first); the
//!    web view ([`view`]) is a full-screen window there (with `--display-isolation none`, a child
//!    window of the browser's X window).
//!    `Ready` goes up once it exists; then it loads the launch URL, or brings back the tab's
//!    snapshot ([`state`]: history, scroll offset, zoom, edited form fields).
//! 3. A thread blocks on the down channel and hands each message to the GTK main loop; the view's
//!    WebKit signals become up frames ([`up`]), and the tab's history is pushed up as it changes
//!    ([`session`]). Scripts of the renderer's own run in an isolated script world ([`scripts`]).
//! 4. Exit: on `Shutdown` (status 0), when the browser is gone (down channel closed or an up write
//!    fails; status 0), or when WebKit's web process dies (status [`EXIT_WEB_PROCESS_CRASHED`]).
//!    WebKit's web and network processes notice their closed connections and end with us.

mod focus;
mod landlock;
mod probe;
mod protocol;
mod sandbox;
mod scripts;
mod session;
mod startup;
mod state;
mod up;
mod view;
mod webkit_state;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::Write;
use std::pin::Pin;
use std::process::ExitCode;
use std::rc::Rc;

use futures_core::Stream;
use ipc_channel::ipc::IpcReceiver;
use ipc_channel::IpcError;
use warren_ipc::{frame, BrowserToRenderer, Launch, TabId, UpFrame, ViewSetup};

use crate::up::Up;
use crate::view::{Tab, Warm};

/// Exit status when start-up fails.
const EXIT_STARTUP_FAILED: u8 = 1;

/// How long the renderer waits for its nested display's socket.
pub(crate) const DISPLAY_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Exit status after WebKit's web process died.
const EXIT_WEB_PROCESS_CRASHED: u8 = 3;

/// Why the renderer is leaving its main loop.
#[derive(Debug)]
pub enum ExitReason {
    /// The browser sent `Shutdown`.
    Shutdown,
    /// The browser closed the down channel or the up socket.
    BrowserGone(String),
    /// WebKit's web process for this tab died.
    WebProcessCrashed(String),
    /// A spare could not build its tab's view.
    ViewFailed(String),
}

impl ExitReason {
    fn status(&self) -> u8 {
        match self {
            Self::Shutdown | Self::BrowserGone(_) => 0,
            Self::WebProcessCrashed(_) => EXIT_WEB_PROCESS_CRASHED,
            Self::ViewFailed(_) => EXIT_STARTUP_FAILED,
        }
    }
}

thread_local! {
    /// The first exit request; later ones are ignored.
    static EXIT: RefCell<Option<ExitReason>> = const { RefCell::new(None) };
    /// Whether `gtk::main` is running (so `gtk::main_quit` is valid).
    static IN_MAIN_LOOP: Cell<bool> = const { Cell::new(false) };
}

/// Asks the main loop to stop; the process then exits with the reason's status. Only the first
/// request counts. Must be called on the main thread.
pub fn request_exit(reason: ExitReason) {
    let first = EXIT.with(|exit| {
        let mut exit = exit.borrow_mut();
        if exit.is_some() {
            return false;
        }
        log::info!(target: "renderer", "exiting: {reason:?}");
        *exit = Some(reason);
        true
    });
    if first && IN_MAIN_LOOP.with(Cell::get) {
        gtk::main_quit();
    }
}

/// Whether an exit has been requested (signals that follow from tearing down are then ignored).
pub fn exiting() -> bool {
    EXIT.with(|exit| exit.borrow().is_some())
}

/// What the down thread hands to the main loop.
enum Down {
    Msg(BrowserToRenderer),
    Closed(IpcError),
}

/// Blocks on the down channel on its own thread and forwards each message, in order, to the
/// main loop; the GTK side is woken by the channel, never by polling.
fn spawn_down_thread(
    receiver: IpcReceiver<BrowserToRenderer>,
) -> std::io::Result<futures_channel::mpsc::UnboundedReceiver<Down>> {
    let (tx, rx) = futures_channel::mpsc::unbounded();
    std::thread::Builder::new()
        .name("down".into())
        .spawn(move || loop {
            match receiver.recv() {
                Ok(msg) => {
                    if tx.unbounded_send(Down::Msg(msg)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.unbounded_send(Down::Closed(e));
                    break;
                }
            }
        })?;
    Ok(rx)
}

/// A spare, on the GTK main context: waits for its tab ([`BrowserToRenderer::Start`]), keeping
/// the content area's size, then builds the tab's view on its head start and serves the tab.
async fn serve_spare(
    mut setup: ViewSetup,
    up: Rc<Up>,
    landlock: bool,
    warm: Warm,
    mut rx: futures_channel::mpsc::UnboundedReceiver<Down>,
) {
    loop {
        // The down thread ends the stream only after it sent `Closed`.
        let Some(down) = poll_fn(|cx| Pin::new(&mut rx).poll_next(cx)).await else {
            return;
        };
        if exiting() {
            return;
        }
        match down {
            Down::Msg(BrowserToRenderer::Start {
                url,
                restore,
                visible,
            }) => {
                setup.url = url;
                setup.restore = restore;
                // Built shown, as a tab's first view is: a view shown only after it was built
                // hidden kept its first load waiting about a second (measured).
                setup.visible = visible;
                setup.spare = false;
                break;
            }
            Down::Msg(BrowserToRenderer::SetBounds(bounds)) => setup.bounds = bounds,
            Down::Msg(BrowserToRenderer::Shutdown) => {
                request_exit(ExitReason::Shutdown);
                return;
            }
            // Nothing else means anything before there is a page (the browser sends nothing else).
            Down::Msg(_) => {}
            Down::Closed(e) => {
                down_closed(e);
                return;
            }
        }
    }
    match Tab::build(&setup, up, landlock, Some(warm)) {
        Ok(tab) => {
            log::debug!(target: "renderer", "the spare now serves its tab");
            serve_down(tab, rx).await;
        }
        Err(e) => {
            log::error!(target: "renderer", "{e}");
            request_exit(ExitReason::ViewFailed(e.to_string()));
        }
    }
}

/// Runs on the GTK main context: applies down messages until the channel closes.
///
/// The view is never torn down, even after the channel closed: the X server destroys our windows
/// when the connection closes, and WebKit's helpers end when their connections to this process
/// close. Tearing down by hand could instead hit X errors when the browser's window is already
/// gone.
async fn serve_down(tab: Rc<Tab>, mut rx: futures_channel::mpsc::UnboundedReceiver<Down>) {
    std::mem::forget(Rc::clone(&tab));
    while let Some(down) = poll_fn(|cx| Pin::new(&mut rx).poll_next(cx)).await {
        if exiting() {
            return;
        }
        match down {
            Down::Msg(msg) => tab.handle(msg),
            Down::Closed(e) => {
                down_closed(e);
                return;
            }
        }
    }
}

fn down_closed(e: IpcError) {
    let why = match e {
        IpcError::Disconnected => "the browser closed the down channel".to_owned(),
        other => format!("the down channel failed: {other}"),
    };
    request_exit(ExitReason::BrowserGone(why));
}

fn init_logging(tab_id: TabId) {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("renderer=info,warn"),
    )
    .format(move |buf, record| {
        writeln!(
            buf,
            "[{} {} renderer tab {tab_id}] {}",
            buf.timestamp_millis(),
            record.level(),
            record.args()
        )
    })
    .init();
    // Panics go to the same log as everything else, so the browser's stderr shows which tab.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        log::error!(target: "renderer", "panic: {info}");
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            default_hook(info);
        }
    }));
}

fn main() -> ExitCode {
    // Before anything else (and before any thread exists): die with the browser.
    if let Err(e) = startup::die_with_parent() {
        eprintln!("renderer: {e}");
        return ExitCode::from(EXIT_STARTUP_FAILED);
    }
    let tab_id = match startup::tab_id_from_env() {
        Ok(id) => id,
        Err(e) => {
            eprintln!("renderer: {e}");
            return ExitCode::from(EXIT_STARTUP_FAILED);
        }
    };
    init_logging(tab_id);
    // `browser --sandbox-self-test` starts the renderer through the same launch path to probe
    // its sandbox.
    if let Some(targets) = probe::requested() {
        return probe::run(&targets);
    }
    match run(tab_id) {
        Ok(reason) => ExitCode::from(reason.status()),
        Err(e) => {
            log::error!(target: "renderer", "{e}");
            ExitCode::from(EXIT_STARTUP_FAILED)
        }
    }
}

/// Why the renderer could not get going.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Startup(#[from] startup::StartupError),
    #[error("cannot initialize GTK (is DISPLAY set to the browser's X display?): {0}")]
    Gtk(glib::BoolError),
    #[error(transparent)]
    View(#[from] view::ViewError),
    #[error("cannot start the down-channel thread: {0}")]
    Thread(std::io::Error),
}

fn run(tab_id: TabId) -> Result<ExitReason, RunError> {
    let started = std::time::Instant::now();
    let up_stream = startup::take_up_socket()?;
    let launch = startup::handshake(tab_id, |hello| {
        let bytes = frame::encode(&UpFrame { tab_id, msg: hello }).map_err(|e| e.to_string())?;
        (&up_stream).write_all(&bytes).map_err(|e| e.to_string())
    })?;
    log::debug!(target: "renderer", "launched after {:?}", started.elapsed());

    if launch.view.parent_window.is_none() {
        // The tab's nested display starts beside the renderer; its socket appears shortly.
        startup::wait_for_display(DISPLAY_START_TIMEOUT)?;
    }
    gtk::init().map_err(RunError::Gtk)?;
    // The X connection exists: the renderer's own sandbox layers, before any web content.
    let landlock = sandbox::enter();
    let up = Up::new(
        tab_id,
        up_stream,
        Box::new(|why| request_exit(ExitReason::BrowserGone(why.to_owned()))),
    );
    let Launch {
        view: setup,
        receiver,
        ..
    } = launch;
    let rx = spawn_down_thread(receiver).map_err(RunError::Thread)?;
    if setup.spare {
        // A spare: WebKit's processes start now; the tab's view is built when its tab arrives.
        let warm = Warm::start(&setup)?;
        log::info!(target: "renderer", "spare ready after {:?}", started.elapsed());
        glib::MainContext::default().spawn_local(serve_spare(setup, up, landlock, warm, rx));
    } else {
        let tab = Tab::build(&setup, up, landlock, None)?;
        log::info!(target: "renderer", "ready after {:?}", started.elapsed());
        glib::MainContext::default().spawn_local(serve_down(tab, rx));
    }

    if !exiting() {
        IN_MAIN_LOOP.with(|m| m.set(true));
        gtk::main();
        IN_MAIN_LOOP.with(|m| m.set(false));
    }
    let reason = EXIT
        .with(|exit| exit.borrow_mut().take())
        .unwrap_or(ExitReason::Shutdown);
    Ok(reason)
}
