//! `browser`: Warren's trusted process — the window, the tabs, and the renderers they run in.

mod app;
mod chrome;
mod gl;
mod keys;
mod taskman;

use std::path::PathBuf;
use std::process::ExitCode;

use warren_browser::{ctl, profile, url_input};

const USAGE: &str = "\
Usage: browser [OPTIONS] [URL...]
       browser ctl --socket PATH CMD [JSON-ARGS]

Warren: a multi-process browser shell. Every tab runs in its own renderer process.

Arguments:
  URL...                    Open these in tabs: web addresses (example.org), http(s)://, file:// URLs
                            or paths of existing files. Without any, a new tab page opens.

Options:
  --profile DIR             Profile directory (default: $XDG_DATA_HOME/warren/default).
                            If a browser already runs with this profile, the URLs open there.
  --control-socket PATH     Serve the control protocol (JSON lines) on this Unix socket (mode 0600).
  --renderer PATH           Renderer executable (default: `renderer` next to this program).
  -h, --help                Show this help.
  -V, --version             Show the version.

Shortcuts: Ctrl+T new tab, Ctrl+W close, Ctrl+Tab / Ctrl+Shift+Tab switch, Ctrl+1..9 select,
Ctrl+L address bar, Ctrl+R or F5 reload, Alt+Left / Alt+Right history, Shift+Esc task manager,
Ctrl+Q quit.
";

/// Parsed command line of the browser proper.
#[derive(Debug)]
pub struct Options {
    pub profile: PathBuf,
    pub control_socket: Option<PathBuf>,
    pub renderer: PathBuf,
    pub urls: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut profile = None;
    let mut control_socket = None;
    let mut renderer = None;
    let mut raw_urls = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| {
            iter.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--profile" => profile = Some(PathBuf::from(value("--profile")?)),
            "--control-socket" => control_socket = Some(PathBuf::from(value("--control-socket")?)),
            "--renderer" => renderer = Some(PathBuf::from(value("--renderer")?)),
            "--" => raw_urls.extend(iter.by_ref().cloned()),
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            _ => raw_urls.push(arg.clone()),
        }
    }
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    let mut urls = Vec::new();
    for raw in raw_urls {
        match url_input::fixup(&raw, &cwd) {
            Ok(url) => urls.push(url),
            Err(e) => eprintln!("browser: skipping {raw:?}: {e}"),
        }
    }
    let renderer = match renderer {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|e| format!("cannot locate this program: {e}"))?
            .with_file_name("renderer"),
    };
    Ok(Options {
        profile: profile.unwrap_or_else(profile::default_dir),
        control_socket,
        renderer,
        urls,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ctl") => return ExitCode::from(ctl::run(&args[1..]).clamp(0, 255) as u8),
        Some("-h" | "--help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("warren {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    // Termination signals are taken by a thread of the browser (see `app::run`) so the browser
    // shuts its renderers down and removes its sockets; block them before any thread starts.
    let _ = app::termination_signals().thread_block();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("browser: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match app::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("browser: {e}");
            ExitCode::FAILURE
        }
    }
}
