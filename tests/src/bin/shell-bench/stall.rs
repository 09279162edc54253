//! The UI thread's longest stall while the Task Manager refreshes over many tabs: the control
//! socket's `version` is answered by the browser's UI loop, so its reply latency, sampled every
//! 10 ms for 10 s, shows how long the loop was busy (a PSS read of many large processes must
//! happen off that thread). Measured without and with the Task Manager window open. Also the
//! wake-up count of a process, for the idle-cost figures.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warren_tests::{solid_page, Ctl, HttpServer, Xvfb};

use crate::{call, close_task_manager, open_tab, open_task_manager, shut_down, Report};

/// How many tabs are open while the stall is measured.
pub const STALL_TABS: usize = 12;
/// How long `version` is sampled, and how often.
const WINDOW: Duration = Duration::from_secs(10);
const INTERVAL: Duration = Duration::from_millis(10);

/// `version` reply latencies in ms, without and with the Task Manager window.
#[derive(Clone, Debug)]
pub struct Stall {
    pub tabs: usize,
    pub without_window_ms: Vec<f64>,
    pub with_window_ms: Result<Vec<f64>, String>,
}

impl Stall {
    pub fn to_json(&self) -> Value {
        json!({
            "tabs": self.tabs,
            "interval_ms": INTERVAL.as_millis() as u64,
            "window_s": WINDOW.as_secs(),
            "without_task_manager_ms": self.without_window_ms,
            "with_task_manager_ms": self.with_window_ms.as_ref().ok(),
            "with_task_manager_error": self.with_window_ms.as_ref().err(),
        })
    }
}

/// The section: a browser with [`STALL_TABS`] idle tabs.
pub fn stall_section(x: &Xvfb, http: &HttpServer, report: &mut Report) {
    let url = |i: usize| {
        http.html(
            &format!("/stall-{i}"),
            &solid_page(&format!("stall {i}"), "#ffffff"),
        )
    };
    let b = crate::lifecycle_browser(x, &url(0), &[]);
    let mut ctl = b.connect();
    eprintln!("shell-bench: UI stall while the Task Manager refreshes, {STALL_TABS} tabs");
    let result = (|| -> Result<Stall, String> {
        for i in 1..STALL_TABS {
            open_tab(&mut ctl, &url(i), true)?;
        }
        crate::poll(Instant::now(), Duration::from_secs(240), || {
            let tabs = crate::tabs(&mut ctl)?;
            Ok((tabs.len() == STALL_TABS
                && tabs
                    .iter()
                    .all(|t| t["loading"] == false && t["renderer_pid"].is_i64()))
            .then_some(()))
        })
        .map_err(|e| format!("the {STALL_TABS} tabs did not load: {e}"))?;
        std::thread::sleep(crate::SETTLE);
        let without_window_ms = sample(&mut ctl)?;
        let with_window_ms = open_task_manager(x).and_then(|_| {
            std::thread::sleep(Duration::from_secs(2));
            let s = sample(&mut ctl);
            close_task_manager(x)?;
            s
        });
        Ok(Stall {
            tabs: STALL_TABS,
            without_window_ms,
            with_window_ms,
        })
    })();
    match result {
        Ok(s) => {
            let fig = |v: &[f64]| {
                let (p99, max) = p99_max(v);
                format!("p99 {p99:.1} ms, max {max:.1} ms")
            };
            eprintln!("  without the window: {}", fig(&s.without_window_ms));
            if let Ok(w) = &s.with_window_ms {
                eprintln!("  with the window: {}", fig(w));
            }
            report.stall = Some(s);
        }
        Err(e) => report.problems.push(format!("UI stall: {e}")),
    }
    shut_down(&b, report);
}

/// `version` every [`INTERVAL`] for [`WINDOW`]: each reply's latency in ms.
fn sample(ctl: &mut Ctl) -> Result<Vec<f64>, String> {
    let start = Instant::now();
    let mut out = Vec::new();
    while start.elapsed() < WINDOW {
        let sent = Instant::now();
        call(ctl, "version", Value::Null)?;
        out.push(sent.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(INTERVAL);
    }
    Ok(out)
}

/// The nearest-rank 99th percentile and the maximum; zeros when empty.
pub fn p99_max(samples: &[f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (99 * sorted.len()).div_ceil(100).max(1);
    (sorted[rank - 1], sorted[sorted.len() - 1])
}

/// The context switches (voluntary and not) of every thread of `pid` so far: how often the
/// process was woken up, or preempted.
pub fn context_switches(pid: i32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            // A thread that ended between the listing and the read.
            continue;
        };
        for line in status.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_switches() {
        let v: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(p99_max(&v), (198.0, 200.0));
        assert_eq!(p99_max(&[]), (0.0, 0.0));
        let me = std::process::id() as i32;
        let before = context_switches(me).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(context_switches(me).unwrap() > before);
        assert_eq!(context_switches(-1), None);
    }
}
