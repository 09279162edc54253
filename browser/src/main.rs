//! `browser`: Warren's trusted process — the window, the tabs, and the renderers they run in.

mod app;
mod chrome;
mod gl;
mod keys;
mod menu;
mod task_window;
mod taskman;
mod window;

use std::io;
use std::process::ExitCode;

use warren_browser::cli::{self, Invocation, Options};
use warren_browser::ctl;

fn main() -> ExitCode {
    // Parsing starts no thread, so it may come before the signal mask below.
    let options: Options = match cli::parse_from(std::env::args_os(), &mut io::stderr()) {
        Ok(Invocation::Browser(options)) => options,
        Ok(Invocation::Ctl(args)) => {
            return ExitCode::from(u8::try_from(ctl::run(&args)).unwrap_or(2));
        }
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            e.print();
            return ExitCode::from(e.exit_code());
        }
    };
    // Termination signals are taken by a thread of the browser (see `app::run`) so the browser
    // shuts its renderers down and removes its sockets; block them before any thread starts.
    let _ = app::termination_signals().thread_block();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Some(json) = options.self_test {
        // Before any window: the self-test starts one renderer in probe mode and exits.
        return ExitCode::from(warren_browser::selftest::main(&options, json));
    }
    match app::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("browser: {e}");
            ExitCode::FAILURE
        }
    }
}
