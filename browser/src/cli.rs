//! The command line: the browser's options (with the tab lifecycle settings) and the `ctl` subcommand, parsed with clap.
//!
//! [`parse_from`] turns the arguments into an [`Invocation`]: the browser's [`Options`], or the
//! [`CtlArgs`] of `browser ctl`. `ctl` is recognised only as the first argument, so a URL spelled
//! `ctl` after other arguments still opens as a URL. Help and version requests, and usage errors,
//! come back as a [`CliError`] that knows what to print and the exit status (0 for help and
//! version, 2 for usage errors).

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use thiserror::Error;

use crate::{policy, profile, url_input};

/// The longest `--freeze-after` / `--discard-after`, in seconds (ten years): far beyond any use,
/// and small enough that adding it to a clock never overflows.
pub const MAX_IDLE_SECS: u64 = 10 * 365 * 24 * 60 * 60;

const ABOUT: &str =
    "Warren: a multi-process browser shell. Every tab runs in its own renderer process.";

const USAGE: &str = "browser [OPTIONS] [URL...]\n       browser ctl --socket PATH CMD [JSON-ARGS]";

/// Usage first, as the hand-written help had it.
const HELP_TEMPLATE: &str =
    "{usage-heading} {usage}\n\n{about-with-newline}\n{all-args}{after-help}";

const SHORTCUTS: &str = "\
Shortcuts: Ctrl+T new tab, Ctrl+W close, Ctrl+Tab / Ctrl+Shift+Tab switch, Ctrl+1..9 select,
Ctrl+L address bar, Ctrl+R or F5 reload, Alt+Left / Alt+Right history, Shift+Esc task manager,
Ctrl+Q quit.";

const CTL_USAGE: &str = "browser ctl --socket PATH CMD [JSON-ARGS]";

const CTL_ABOUT: &str = "\
Sends one request to a running Warren started with --control-socket PATH and
prints its reply, one JSON line: {\"id\":1,\"ok\":true,\"result\":...} or
{\"id\":1,\"ok\":false,\"error\":\"...\"}.";

const CTL_CMD_HELP: &str = "\
A command of the control protocol: version, tabs, new_tab, navigate,
activate, close, reload, back, forward, eval, task_manager,
end_process, discard, freeze, unfreeze, pin, unpin, shutdown;
or top: task_manager's processes as a table (PID PPID KIND TAB CPU%
MEM(MiB) PSS(MiB) TITLE), sorted by tab, then pid";

const CTL_AFTER_HELP: &str = "\
Examples:
  browser ctl --socket /tmp/warren.sock tabs
  browser ctl --socket /tmp/warren.sock new_tab '{\"url\":\"https://example.org\"}'
  browser ctl --socket /tmp/warren.sock eval '{\"tab_id\":1,\"js\":\"document.title\"}'
  browser ctl --socket /tmp/warren.sock top

The request is checked before it is sent: an unknown command or a bad argument
is a usage error, and URLs are normalised as the address bar does (paths
relative to the current directory).

Exit status: 0 when the reply is ok, 1 when it is an error reply, 2 for usage
errors or when the browser can't be reached or does not answer within 15 s.";

/// The browser's command line as clap sees it.
#[derive(Debug, Parser)]
#[command(
    name = "warren",
    bin_name = "browser",
    version,
    about = ABOUT,
    override_usage = USAGE,
    help_template = HELP_TEMPLATE,
    after_help = SHORTCUTS,
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    subcommand: Option<Sub>,

    #[arg(
        value_name = "URL",
        help = "Open these in tabs: web addresses (example.org), http(s)://, file:// URLs\n\
                or paths of existing files. Without any, a new tab page opens (or the\n\
                previous session is restored)."
    )]
    urls: Vec<String>,

    #[arg(
        long,
        value_name = "DIR",
        help = "Profile directory (default: $XDG_DATA_HOME/warren/default).\n\
                If a browser already runs with this profile, the URLs open there."
    )]
    profile: Option<PathBuf>,

    #[arg(
        long,
        value_name = "PATH",
        help = "Serve the control protocol (JSON lines) on this Unix socket (mode 0600)."
    )]
    control_socket: Option<PathBuf>,

    #[arg(
        long,
        value_name = "PATH",
        help = "Renderer executable (default: `renderer` next to this program)."
    )]
    renderer: Option<PathBuf>,

    #[arg(
        long,
        value_name = "N",
        value_parser = parse_max_live_tabs,
        allow_negative_numbers = true,
        help = "Keep at most N tabs (N >= 1) with a live renderer; beyond that the\n\
                least recently used background tabs are discarded."
    )]
    max_live_tabs: Option<usize>,

    #[arg(
        long,
        value_name = "MiB",
        value_parser = parse_memory_budget,
        allow_negative_numbers = true,
        help = "Keep the live renderers' total memory under this many MiB (>= 1)\n\
                by discarding background tabs."
    )]
    memory_budget: Option<u64>,

    #[arg(
        long,
        value_name = "P",
        default_value = "10",
        value_parser = parse_percent,
        allow_negative_numbers = true,
        help = "Discard background tabs while the system's available memory is\n\
                under P% (0-100) of its total; 0 turns this off."
    )]
    low_memory_percent: u8,

    #[arg(
        long,
        value_name = "SECS|off",
        default_value = "300",
        value_parser = parse_idle,
        allow_negative_numbers = true,
        help = "Freeze (stop) background tabs idle this many seconds; off: never."
    )]
    freeze_after: Idle,

    #[arg(
        long,
        value_name = "SECS|off",
        default_value = "off",
        value_parser = parse_idle,
        allow_negative_numbers = true,
        help = "Discard background tabs idle this many seconds; off: never."
    )]
    discard_after: Idle,

    #[arg(long, help = "Do not restore the previous session.")]
    no_restore: bool,

    #[arg(
        long,
        help = "Run renderers without their sandbox (for debugging): a page that takes\n\
                over its renderer gets your full rights. Prints a warning."
    )]
    no_sandbox: bool,

    #[arg(
        long,
        value_enum,
        default_value = "nested",
        value_name = "nested|none",
        help = "Where pages' renderers draw: `nested` gives each its own X server\n\
                (Xephyr) inside the browser window, so no renderer can read or type\n\
                into your other windows; `none` puts them on your display."
    )]
    display_isolation: crate::nested::Isolation,

    #[arg(
        long,
        help = "Do not keep a spare renderer started while the machine is idle: saves\n\
                its memory (about one tab's), but new tabs and restores open slower."
    )]
    no_spare_renderer: bool,

    #[arg(
        long,
        help = "Start one renderer through the real launch path in a probe mode, try\n\
                what its sandbox must deny and what it must allow, print the results\n\
                as a table and exit (status 1 if a row is not as expected)."
    )]
    sandbox_self_test: bool,

    #[arg(
        long,
        requires = "sandbox_self_test",
        help = "With --sandbox-self-test: print JSON."
    )]
    json: bool,

    #[arg(short, long, action = ArgAction::Help, help = "Show this help.")]
    help: Option<bool>,

    #[arg(short = 'V', long, action = ArgAction::Version, help = "Show the version.")]
    version: Option<bool>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    #[command(
        about = "Send one request to a running Warren's control socket and print the reply",
        long_about = CTL_ABOUT,
        override_usage = CTL_USAGE,
        help_template = HELP_TEMPLATE,
        after_help = CTL_AFTER_HELP,
        disable_help_flag = true
    )]
    Ctl(CtlArgs),
}

/// The arguments of `browser ctl --socket PATH CMD [JSON-ARGS]`.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct CtlArgs {
    /// The control socket.
    #[arg(
        long,
        value_name = "PATH",
        help = "The control socket of a Warren started with --control-socket PATH"
    )]
    pub socket: PathBuf,

    /// The command name, or `top`.
    #[arg(value_name = "CMD", help = CTL_CMD_HELP)]
    pub cmd: String,

    /// A JSON object with the command's arguments.
    #[arg(
        value_name = "JSON-ARGS",
        help = "A JSON object with the command's arguments, merged into the request"
    )]
    pub json_args: Option<String>,

    // Always the long help: it holds the description and the examples.
    #[arg(short, long, action = ArgAction::HelpLong, help = "Show this help.")]
    help: Option<bool>,
}

impl CtlArgs {
    /// Arguments for a request (for tests and callers that build them directly).
    pub fn new(socket: impl Into<PathBuf>, cmd: &str, json_args: Option<&str>) -> Self {
        Self {
            socket: socket.into(),
            cmd: cmd.to_owned(),
            json_args: json_args.map(str::to_owned),
            help: None,
        }
    }
}

/// The browser's settings from its command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The profile directory.
    pub profile: PathBuf,
    /// Where to serve the control protocol, if anywhere.
    pub control_socket: Option<PathBuf>,
    /// The renderer executable.
    pub renderer: PathBuf,
    /// The URLs to open, already normalised with [`url_input::fixup`].
    pub urls: Vec<String>,
    /// When background tabs are frozen and discarded.
    pub lifecycle: policy::Config,
    /// Whether to restore the previous session (`--no-restore` turns it off).
    pub restore: bool,
    /// Whether renderers run in their sandbox (`--no-sandbox` turns it off).
    pub sandbox: bool,
    /// Whether each renderer gets a nested display (`--display-isolation`).
    pub display_isolation: crate::nested::Isolation,
    /// Whether a spare renderer is kept for the next new tab (`--no-spare-renderer` turns it off).
    pub spare_renderer: bool,
    /// `--sandbox-self-test`: probe the sandbox instead of running the browser; `Some(true)`
    /// with `--json`.
    pub self_test: Option<bool>,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Run the browser.
    Browser(Options),
    /// `browser ctl`: send one control request.
    Ctl(CtlArgs),
}

/// Why the command line does not start anything: a usage error, or a request for help or the
/// version (clap's "errors" of kind `DisplayHelp` and `DisplayVersion`).
#[derive(Debug, Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(#[from] clap::Error),
    #[error("cannot read the current directory to resolve the URLs: {0}; start the browser from a directory that exists")]
    CurrentDir(#[source] io::Error),
    #[error("cannot find this program's own path to locate the renderer next to it: {0}; pass --renderer PATH")]
    CurrentExe(#[source] io::Error),
}

impl CliError {
    /// The process exit status: 0 for help and version, 2 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(e) => u8::try_from(e.exit_code()).unwrap_or(2),
            Self::CurrentDir(_) | Self::CurrentExe(_) => 2,
        }
    }

    /// Prints the help or version to stdout, or the error to stderr.
    pub fn print(&self) {
        match self {
            Self::Usage(e) => {
                let _ = e.print();
            }
            other => eprintln!("browser: {other}"),
        }
    }
}

/// Parses the whole command line (`args` starts with the program name). URLs that cannot be
/// opened are left out, each with a line on `warn`.
pub fn parse_from<I, T>(args: I, warn: &mut dyn Write) -> Result<Invocation, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    if let Some(Sub::Ctl(ctl)) = cli.subcommand {
        return Ok(Invocation::Ctl(ctl));
    }
    let urls = if cli.urls.is_empty() {
        Vec::new()
    } else {
        let cwd = std::env::current_dir().map_err(CliError::CurrentDir)?;
        let mut urls = Vec::with_capacity(cli.urls.len());
        for raw in cli.urls {
            match url_input::fixup(&raw, &cwd) {
                Ok(url) => urls.push(url),
                Err(e) => {
                    let _ = writeln!(warn, "browser: skipping {raw:?}: {e}");
                }
            }
        }
        urls
    };
    let renderer = match cli.renderer {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(CliError::CurrentExe)?
            .with_file_name("renderer"),
    };
    Ok(Invocation::Browser(Options {
        profile: cli.profile.unwrap_or_else(profile::default_dir),
        control_socket: cli.control_socket,
        renderer,
        urls,
        lifecycle: policy::Config {
            max_live_tabs: cli.max_live_tabs,
            memory_budget_kb: cli.memory_budget,
            low_memory_percent: cli.low_memory_percent,
            freeze_after: cli.freeze_after.0,
            discard_after: cli.discard_after.0,
        },
        restore: !cli.no_restore,
        sandbox: !cli.no_sandbox,
        display_isolation: cli.display_isolation,
        spare_renderer: !cli.no_spare_renderer,
        self_test: cli.sandbox_self_test.then_some(cli.json),
    }))
}

/// `--freeze-after` / `--discard-after`: a number of seconds, or `None` for `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Idle(Option<Duration>);

fn parse_idle(s: &str) -> Result<Idle, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Idle(None));
    }
    let secs = whole_number(s).ok_or_else(|| {
        "expected a whole number of seconds (such as 300), or off to turn it off".to_owned()
    })?;
    if secs > MAX_IDLE_SECS {
        return Err(format!(
            "at most {MAX_IDLE_SECS} seconds (ten years); use off to turn it off"
        ));
    }
    Ok(Idle(Some(Duration::from_secs(secs))))
}

fn parse_max_live_tabs(s: &str) -> Result<usize, String> {
    match whole_number(s).map(usize::try_from) {
        Some(Ok(n)) if n >= 1 => Ok(n),
        Some(Ok(_)) => Err("at least one tab must stay live; give 1 or more".to_owned()),
        Some(Err(_)) => Err("too large".to_owned()),
        None => Err("expected a whole number of tabs, 1 or more".to_owned()),
    }
}

/// Returns the budget in KiB.
fn parse_memory_budget(s: &str) -> Result<u64, String> {
    match whole_number(s) {
        Some(0) => Err("the budget must be at least 1 MiB".to_owned()),
        Some(mib) => mib.checked_mul(1024).ok_or_else(|| "too large".to_owned()),
        None => Err("expected a whole number of MiB, 1 or more".to_owned()),
    }
}

fn parse_percent(s: &str) -> Result<u8, String> {
    match whole_number(s) {
        Some(p @ 0..=100) => Ok(p as u8),
        _ => Err("expected a whole percentage from 0 to 100 (0 turns the rule off)".to_owned()),
    }
}

/// A non-negative whole number in decimal digits only (no sign, no spaces).
fn whole_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> (Result<Invocation, CliError>, String) {
        let mut warnings = Vec::new();
        let argv = std::iter::once("browser").chain(args.iter().copied());
        let result = parse_from(argv, &mut warnings);
        (result, String::from_utf8(warnings).unwrap())
    }

    fn options(args: &[&str]) -> Options {
        match parse(args).0 {
            Ok(Invocation::Browser(options)) => options,
            Ok(other) => panic!("{args:?}: {other:?}"),
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    fn usage_error(args: &[&str]) -> String {
        match parse(args).0 {
            Err(e @ CliError::Usage(_)) => {
                assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
                e.to_string()
            }
            Err(e) => panic!("{args:?}: {e}"),
            Ok(ok) => panic!("{args:?} was accepted: {ok:?}"),
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let o = options(&[]);
        assert_eq!(o.lifecycle, policy::Config::default());
        assert!(o.restore);
        assert_eq!(o.urls, Vec::<String>::new());
        assert_eq!(o.control_socket, None);
        assert_eq!(o.profile, profile::default_dir());
        let exe = std::env::current_exe().unwrap();
        assert_eq!(o.renderer, exe.with_file_name("renderer"));
    }

    #[test]
    fn every_flag() {
        let dir = env!("CARGO_MANIFEST_DIR");
        let o = options(&[
            "--profile",
            "/p",
            "--control-socket=/tmp/c.sock",
            "--renderer",
            "/opt/r",
            "--max-live-tabs",
            "3",
            "--memory-budget",
            "512",
            "--low-memory-percent",
            "0",
            "--freeze-after",
            "off",
            "--discard-after",
            "600",
            "--no-restore",
            "example.org",
            "--",
            "./Cargo.toml",
        ]);
        assert_eq!(
            o,
            Options {
                profile: "/p".into(),
                control_socket: Some("/tmp/c.sock".into()),
                renderer: "/opt/r".into(),
                urls: vec![
                    "https://example.org/".to_owned(),
                    format!("file://{dir}/Cargo.toml"),
                ],
                lifecycle: policy::Config {
                    max_live_tabs: Some(3),
                    memory_budget_kb: Some(512 * 1024),
                    low_memory_percent: 0,
                    freeze_after: None,
                    discard_after: Some(Duration::from_secs(600)),
                },
                restore: false,
                sandbox: true,
                display_isolation: crate::nested::Isolation::Nested,
                spare_renderer: true,
                self_test: None,
            }
        );
        assert_eq!(
            options(&["--freeze-after", "0", "--discard-after", "OFF"]).lifecycle,
            policy::Config {
                freeze_after: Some(Duration::ZERO),
                discard_after: None,
                ..policy::Config::default()
            }
        );
        let max = MAX_IDLE_SECS.to_string();
        assert_eq!(
            options(&["--freeze-after", &max, "--low-memory-percent", "100"]).lifecycle,
            policy::Config {
                freeze_after: Some(Duration::from_secs(MAX_IDLE_SECS)),
                low_memory_percent: 100,
                ..policy::Config::default()
            }
        );
        // After `--`, what looks like a flag is a URL (refused by the address rules here).
        let (result, warnings) = parse(&["--", "-x"]);
        assert!(matches!(result, Ok(Invocation::Browser(_))), "{result:?}");
        assert!(
            warnings.starts_with("browser: skipping \"-x\""),
            "{warnings}"
        );
    }

    #[test]
    fn bad_urls_are_skipped_with_a_message() {
        let (result, warnings) = parse(&["javascript:alert(1)", "example.org", "hello world"]);
        let Ok(Invocation::Browser(o)) = result else {
            panic!("{result:?}");
        };
        assert_eq!(o.urls, ["https://example.org/"]);
        let lines: Vec<&str> = warnings.lines().collect();
        assert_eq!(lines.len(), 2, "{warnings}");
        assert!(
            lines[0].starts_with("browser: skipping \"javascript:alert(1)\": ")
                && lines[0].contains("unsupported scheme"),
            "{warnings}"
        );
        assert!(
            lines[1].starts_with("browser: skipping \"hello world\": "),
            "{warnings}"
        );
    }

    #[test]
    fn refuses_bad_values() {
        for (args, needle) in [
            (
                &["--max-live-tabs", "0"][..],
                "at least one tab must stay live",
            ),
            (
                &["--max-live-tabs", "-2"][..],
                "expected a whole number of tabs",
            ),
            (
                &["--max-live-tabs", "two"][..],
                "expected a whole number of tabs",
            ),
            (&["--max-live-tabs"][..], "a value is required"),
            (&["--memory-budget", "0"][..], "at least 1 MiB"),
            (
                &["--memory-budget", "1.5"][..],
                "expected a whole number of MiB",
            ),
            (
                &["--memory-budget", "18446744073709551615"][..],
                "too large",
            ),
            (&["--low-memory-percent", "101"][..], "from 0 to 100"),
            (&["--low-memory-percent", "-1"][..], "from 0 to 100"),
            (&["--freeze-after", "-1"][..], "whole number of seconds"),
            (&["--freeze-after", "5m"][..], "whole number of seconds"),
            (&["--freeze-after", ""][..], "whole number of seconds"),
            (&["--discard-after", "+5"][..], "whole number of seconds"),
            (
                &["--discard-after", "999999999999"][..],
                "at most 315360000 seconds",
            ),
            (&["--frobnicate"][..], "unexpected argument '--frobnicate'"),
            (&["-x"][..], "unexpected argument '-x'"),
            (&["--no-restore=yes"][..], "--no-restore"),
        ] {
            let message = usage_error(args);
            assert!(message.contains(needle), "{args:?}: {message}");
        }
        // The message names the flag and the value.
        let message = usage_error(&["--freeze-after", "-1"]);
        assert!(
            message.contains("invalid value '-1' for '--freeze-after <SECS|off>'"),
            "{message}"
        );
    }

    #[test]
    fn help_and_version() {
        for flag in ["-h", "--help"] {
            let Err(CliError::Usage(e)) = parse(&[flag]).0 else {
                panic!("{flag} did not ask for help");
            };
            assert_eq!(e.kind(), ErrorKind::DisplayHelp);
            assert_eq!(e.exit_code(), 0);
            let help = e.render().to_string();
            assert!(
                help.starts_with(
                    "Usage: browser [OPTIONS] [URL...]\n       browser ctl --socket PATH CMD [JSON-ARGS]\n"
                ),
                "{help}"
            );
            for needle in [
                "Warren: a multi-process browser shell.",
                "--profile <DIR>",
                "--control-socket <PATH>",
                "--renderer <PATH>",
                "--max-live-tabs <N>",
                "--memory-budget <MiB>",
                "--low-memory-percent <P>",
                "[default: 10]",
                "--freeze-after <SECS|off>",
                "[default: 300]",
                "--discard-after <SECS|off>",
                "[default: off]",
                "--no-restore",
                "-h, --help",
                "-V, --version",
                "ctl  Send one request to a running Warren's control socket",
                "Shortcuts: Ctrl+T new tab",
                "Shift+Esc task manager",
            ] {
                assert!(help.contains(needle), "{needle} not in:\n{help}");
            }
        }
        for flag in ["-V", "--version"] {
            let Err(CliError::Usage(e)) = parse(&[flag]).0 else {
                panic!("{flag} did not ask for the version");
            };
            assert_eq!(e.kind(), ErrorKind::DisplayVersion);
            assert_eq!(e.exit_code(), 0);
            assert_eq!(
                e.render().to_string(),
                format!("warren {}\n", env!("CARGO_PKG_VERSION"))
            );
        }
    }

    #[test]
    fn ctl_subcommand() {
        assert_eq!(
            parse(&["ctl", "--socket", "/s", "tabs"]).0.unwrap(),
            Invocation::Ctl(CtlArgs::new("/s", "tabs", None))
        );
        assert_eq!(
            parse(&["ctl", "eval", "--socket=/s", r#"{"tab_id":1,"js":"1"}"#])
                .0
                .unwrap(),
            Invocation::Ctl(CtlArgs::new("/s", "eval", Some(r#"{"tab_id":1,"js":"1"}"#)))
        );
        assert_eq!(
            parse(&["ctl", "--socket", "/s", "top"]).0.unwrap(),
            Invocation::Ctl(CtlArgs::new("/s", "top", None))
        );
        // `ctl` is a subcommand only as the first argument, as before clap: later it is a URL
        // (which the address rules refuse, having no dot).
        let (result, warnings) = parse(&["--no-restore", "ctl"]);
        assert!(matches!(result, Ok(Invocation::Browser(_))), "{result:?}");
        assert!(
            warnings.starts_with("browser: skipping \"ctl\""),
            "{warnings}"
        );
        for (args, needle) in [
            (&["ctl", "tabs"][..], "--socket <PATH>"),
            (
                &["ctl", "--socket"][..],
                "a value is required for '--socket <PATH>'",
            ),
            (
                &["ctl", "--socket="][..],
                "a value is required for '--socket <PATH>'",
            ),
            (&["ctl", "--socket", "/s"][..], "<CMD>"),
            (
                &["ctl", "--socket", "/s", "a", "{}", "b"][..],
                "unexpected argument 'b'",
            ),
            (
                &["ctl", "--sock", "/s", "tabs"][..],
                "unexpected argument '--sock'",
            ),
        ] {
            let message = usage_error(args);
            assert!(message.contains(needle), "{args:?}: {message}");
        }
        // -h and --help both show the whole help, with the description and the examples.
        for flag in ["-h", "--help"] {
            let Err(CliError::Usage(e)) = parse(&["ctl", flag]).0 else {
                panic!("ctl {flag} did not ask for help");
            };
            assert_eq!(e.exit_code(), 0);
            let help = e.render().to_string();
            assert!(
                help.starts_with("Usage: browser ctl --socket PATH CMD [JSON-ARGS]\n"),
                "{help}"
            );
            for needle in [
                "Sends one request to a running Warren",
                "--socket <PATH>",
                "end_process, discard, freeze, unfreeze, pin, unpin, shutdown",
                "or top: task_manager's processes as a table",
                "JSON-ARGS",
                "Examples:",
                "browser ctl --socket /tmp/warren.sock top",
                "Exit status: 0 when the reply is ok, 1 when it is an error reply, 2 for usage",
            ] {
                assert!(help.contains(needle), "{needle} not in:\n{help}");
            }
        }
    }
}
