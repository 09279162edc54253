//! New tab to first pixels: `new_tab` of a local solid-colour page, timed to the tab's load
//! finished (`tabs` shows `loading: false`) and to the page's colour on the screen (a poll of the
//! root window's pixels, `warren_tests::pixels`), with the machine idle and, when the browser
//! keeps one, a prewarmed spare renderer ready before each run.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warren_tests::procs::{self, still_alive};
use warren_tests::{pixels, solid_page, Browser, BrowserOpts, HttpServer, Xvfb};

use crate::{
    call, interrupt, ms, open_tab, poll, renderer_pid, shut_down, task_manager_rows, wait_helpers,
    Report, STEP_TIMEOUT,
};

/// Issue 9: new tab to first pixels, median.
pub const NEW_TAB_TARGET: Duration = Duration::from_millis(250);
/// How long a run waits for the machine to go idle before it starts anyway (and says so).
pub const IDLE_WAIT: Duration = Duration::from_secs(20);
/// How long a run waits for a spare renderer, once the browser has shown it keeps one.
pub const SPARE_WAIT: Duration = Duration::from_secs(15);
/// The background of the page the browser starts with, which is on screen between runs.
const BASE_COLOUR: &str = "#f4f4f4";

/// One counted run.
#[derive(Clone, Debug)]
pub struct NewTabRun {
    pub loaded: Duration,
    pub pixels: Duration,
    /// A spare renderer was ready when `new_tab` was sent.
    pub spare_at_start: bool,
    /// The PSS of the spare's whole tree then, KiB.
    pub spare_kb: Option<u64>,
    /// The machine was idle when the run started (else it waited in vain).
    pub idle_at_start: bool,
    pub renderer_pid: i32,
}

impl NewTabRun {
    pub fn to_json(&self) -> Value {
        json!({
            "loaded_ms": self.loaded.as_secs_f64() * 1000.0,
            "pixels_ms": self.pixels.as_secs_f64() * 1000.0,
            "spare_at_start": self.spare_at_start,
            "spare_pss_kb": self.spare_kb,
            "idle_at_start": self.idle_at_start,
            "renderer_pid": self.renderer_pid,
        })
    }
}

/// The colour of run `run`'s page: distinct from the base page's and from the previous run's, so
/// the colour on screen can only be the new tab's.
pub fn run_colour(run: usize) -> [u8; 3] {
    [
        40 + (run % 10) as u8 * 20,
        200 - ((run / 10) % 10) as u8 * 15,
        100 + (run % 7) as u8 * 20,
    ]
}

pub fn hex(rgb: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

/// The section: one browser, one warm-up run and `runs` counted runs, each after waiting up to
/// `idle_wait` for the machine to go idle.
pub fn new_tab(x: &Xvfb, http: &HttpServer, runs: usize, idle_wait: Duration, report: &mut Report) {
    let base = http.html("/newtab-base", &solid_page("new tab base", BASE_COLOUR));
    let b = Browser::start(
        x,
        BrowserOpts {
            urls: vec![base],
            // As users run it: a spare renderer, started when the machine is idle.
            spare: true,
            ..Default::default()
        },
    );
    interrupt::watch(b.pid(), Some(b.dir()));
    let mut ctl = b.connect();
    let base_tab = b.tab_ids()[0];
    if let Err(e) = crate::wait_loaded(&mut ctl, base_tab, "new tab base", Instant::now()) {
        report
            .problems
            .push(format!("new tab: the first tab did not load: {e}"));
        return shut_down(&b, report);
    }
    let display = format!(":{}", x.display());
    eprintln!("shell-bench: new tab to pixels, 1 warm-up run + {runs} runs");
    // Whether the browser keeps a spare renderer: learnt before the warm-up run, by waiting for
    // one as long as a later run would.
    let mut spare_seen = false;
    for run in 0..=runs {
        let idle_at_start = wait_machine_idle(idle_wait);
        let wait = if run == 0 || spare_seen {
            SPARE_WAIT
        } else {
            Duration::ZERO
        };
        let spare_kb = match wait_spare(&mut ctl, wait) {
            Ok(kb) => kb,
            Err(e) => {
                report.problems.push(format!("new tab run {run}: {e}"));
                break;
            }
        };
        spare_seen |= spare_kb.is_some();
        match one_run(&mut ctl, http, &display, run) {
            Ok((loaded, pixels, pid)) => {
                let r = NewTabRun {
                    loaded,
                    pixels,
                    spare_at_start: spare_kb.is_some(),
                    spare_kb,
                    idle_at_start,
                    renderer_pid: pid,
                };
                eprintln!(
                    "  run {run}{}: loaded {}, pixels {}, spare {}",
                    if run == 0 { " (warm-up)" } else { "" },
                    ms(r.loaded),
                    ms(r.pixels),
                    if r.spare_at_start { "ready" } else { "none" }
                );
                if run == 0 {
                    report.notes.push(format!(
                        "new tab warm-up run (not counted): loaded {}, pixels {}",
                        ms(r.loaded),
                        ms(r.pixels)
                    ));
                } else {
                    report.new_tab_runs.push(r);
                }
            }
            Err(e) => {
                eprintln!("  run {run} failed: {e}");
                report.problems.push(format!("new tab run {run}: {e}"));
                ctl = b.connect();
                for id in b.tab_ids().into_iter().filter(|id| *id != base_tab) {
                    let _ = b.ctl("close", json!({ "tab_id": id }));
                }
            }
        }
    }
    if !spare_seen {
        report.notes.push(
            "new tab: the browser showed no spare renderer (no `spare` row in `task_manager`) \
             in any run"
                .into(),
        );
    }
    report.new_tab_requested = runs;
    shut_down(&b, report);
}

/// Opens run `run`'s page in the foreground and times it to loaded and to its colour on screen;
/// then closes the tab and waits until its processes are gone. Returns both times and the
/// renderer's pid.
fn one_run(
    ctl: &mut warren_tests::Ctl,
    http: &HttpServer,
    display: &str,
    run: usize,
) -> Result<(Duration, Duration, i32), String> {
    let rgb = run_colour(run);
    let title = format!("new tab {run}");
    let url = http.html(&format!("/newtab-{run}"), &solid_page(&title, &hex(rgb)));
    let start = Instant::now();
    let ((tab, (entry, loaded)), seen) =
        with_pixel_watch(display, Some(rgb), start + STEP_TIMEOUT, || {
            let tab = open_tab(ctl, &url, false)?;
            Ok((tab, crate::wait_loaded(ctl, tab, &title, start)?))
        })?;
    let pixels = seen
        .ok_or("no pixel time")?
        .saturating_duration_since(start);
    let pid = renderer_pid(&entry)?;
    let tree = wait_helpers(pid)?;
    call(ctl, "close", json!({ "tab_id": tab }))?;
    poll(Instant::now(), STEP_TIMEOUT, || {
        Ok(still_alive(&tree).is_empty().then_some(()))
    })
    .map_err(|e| format!("after `close` of tab {tab} its processes stayed alive ({e})"))?;
    Ok((loaded, pixels, pid))
}

/// Runs `action` while a thread watches the screen of `display` for `rgb` (until `deadline`);
/// returns its value and when the colour was first seen (`None` without a colour). The colour must
/// not be on screen before, or the time would mean nothing.
pub fn with_pixel_watch<T>(
    display: &str,
    rgb: Option<[u8; 3]>,
    deadline: Instant,
    action: impl FnOnce() -> Result<T, String>,
) -> Result<(T, Option<Instant>), String> {
    let Some(rgb) = rgb else {
        return action().map(|v| (v, None));
    };
    if pixels::shows_colour(display, rgb)? {
        return Err(format!("{} is on screen before the run", hex(rgb)));
    }
    let watched = display.to_string();
    let watcher = std::thread::Builder::new()
        .name("pixels".into())
        .spawn(move || pixels::wait_for_colour(&watched, rgb, deadline))
        .map_err(|e| format!("spawn the pixel watcher: {e}"))?;
    let result = action();
    let seen = watcher
        .join()
        .map_err(|_| "the pixel watcher panicked".to_string())?;
    let value = result?;
    Ok((value, Some(seen?)))
}

/// Waits up to `wait` until `task_manager` lists a warm spare renderer: a process of kind `spare`
/// and, below it, its web process (the spare's warm-up load started it; a spare whose row has
/// just appeared is still starting, and a run then would time its start-up). Then lets the
/// machine go idle again (the warm-up load). Returns the PSS of the spare's processes (its
/// sandbox and its display's, with everything below them), or `None` when there is none by then.
pub fn wait_spare(ctl: &mut warren_tests::Ctl, wait: Duration) -> Result<Option<u64>, String> {
    let start = Instant::now();
    loop {
        let rows = task_manager_rows(ctl)?;
        let spares: Vec<i32> = rows
            .iter()
            .filter(|r| r["kind"] == "spare")
            .filter_map(|r| r["pid"].as_i64())
            .map(|pid| pid as i32)
            .collect();
        let warm = rows
            .iter()
            .any(|r| r["kind"] == "web" && r["tab_id"].is_null());
        if !spares.is_empty() && warm {
            wait_machine_idle(Duration::from_secs(5));
            let kb = spares
                .iter()
                .flat_map(|&pid| procs::process_tree(pid))
                .filter_map(|p| procs::pss_kb(p.pid))
                .sum();
            return Ok(Some(kb));
        }
        if start.elapsed() >= wait {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (at most `max`) until the whole machine's CPU use over half a second is below a quarter
/// of its cores; whether it got there. The machine is shared; a figure taken while something else
/// builds says so in the raw data.
pub fn wait_machine_idle(max: Duration) -> bool {
    let start = Instant::now();
    loop {
        let Some(before) = cpu_times() else {
            return false;
        };
        std::thread::sleep(Duration::from_millis(500));
        let Some(after) = cpu_times() else {
            return false;
        };
        let total = after.0.saturating_sub(before.0).max(1);
        let idle = after.1.saturating_sub(before.1);
        if (total - idle.min(total)) as f64 / (total as f64) < 0.25 {
            return true;
        }
        if start.elapsed() >= max {
            return false;
        }
    }
}

/// All CPUs' (total, idle + iowait) ticks from `/proc/stat`.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((fields.iter().sum(), idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_colours_differ_from_their_neighbours_and_the_base() {
        for run in 0..200 {
            assert_ne!(run_colour(run), run_colour(run + 1));
            assert_ne!(hex(run_colour(run)), BASE_COLOUR);
        }
        assert_eq!(hex([1, 0xab, 255]), "#01abff");
    }
}
