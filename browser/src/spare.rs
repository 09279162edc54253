//! When to start a spare renderer.
//!
//! Like Chromium, the browser keeps one renderer started ahead of need ([`crate::tabs::Tabs::prewarm`]):
//! bubblewrap, the tab's nested display (Xephyr), GTK and WebKit's web and network processes are
//! up before the user asks, so a new tab, or the restore of a discarded one, costs a navigation.
//! Starting all that takes about a second of CPU, which must not compete with what the user is
//! doing: a spare is started only when no tab is loading, none started in the last moments, the
//! machine's CPUs were mostly idle since the last look, and memory is not short.

use std::time::{Duration, Instant};

/// The machine is idle when at least this share of all CPU time since the last look was idle.
pub const IDLE_SHARE: f64 = 0.6;

/// A spare that died, or could not be started, is tried again after this long.
pub const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The CPU counters of `/proc/stat`'s first line, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTimes {
    /// Idle and waiting for I/O.
    pub idle: u64,
    /// Every state.
    pub total: u64,
}

/// Parses the aggregate `cpu` line of `/proc/stat` (user nice system idle iowait irq softirq
/// steal ...; guest time is already counted in user).
pub fn parse_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if fields.len() < 5 {
        return None;
    }
    Some(CpuTimes {
        idle: fields[3] + fields[4],
        total: fields.iter().sum(),
    })
}

/// The share of CPU time that was idle between two readings; `None` when no time passed.
pub fn idle_share(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let idle = after.idle.checked_sub(before.idle)?;
    (total > 0).then(|| idle.min(total) as f64 / total as f64)
}

/// Watches the machine's CPU use between looks.
#[derive(Debug, Default)]
pub struct IdleGauge {
    last: Option<CpuTimes>,
}

impl IdleGauge {
    /// Whether the CPUs were mostly idle since the last call (false on the first call, or when
    /// `/proc/stat` cannot be read).
    pub fn idle_since_last(&mut self) -> bool {
        let now = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| parse_stat(&t));
        let before = std::mem::replace(&mut self.last, now);
        match (before, now) {
            (Some(before), Some(now)) => idle_share(before, now).is_some_and(|s| s >= IDLE_SHARE),
            _ => false,
        }
    }
}

/// When a spare may be started next, after one failed.
#[derive(Debug, Default)]
pub struct Backoff {
    not_before: Option<Instant>,
}

impl Backoff {
    pub fn failed(&mut self, now: Instant) {
        self.not_before = Some(now + RETRY_AFTER);
    }

    pub fn allows(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 5 50 800 45 0 0 0 0 0\ncpu0 50 2 25 400 20 0 0 0 0 0\nintr 1\n";

    #[test]
    fn reads_the_aggregate_line() {
        assert_eq!(
            parse_stat(STAT),
            Some(CpuTimes {
                idle: 845,
                total: 1000
            })
        );
        assert_eq!(parse_stat("cpu0 1 2 3 4 5\n"), None);
        assert_eq!(parse_stat("cpu  1 2 x 4 5\n"), None);
        assert_eq!(parse_stat("cpu  1 2 3\n"), None);
    }

    #[test]
    fn idle_share_between_readings() {
        let a = CpuTimes {
            idle: 800,
            total: 1000,
        };
        let busy = CpuTimes {
            idle: 850,
            total: 1200,
        };
        let quiet = CpuTimes {
            idle: 980,
            total: 1200,
        };
        assert_eq!(idle_share(a, busy), Some(0.25));
        assert_eq!(idle_share(a, quiet), Some(0.9));
        assert_eq!(idle_share(a, a), None);
        // Counters that went backwards (a reading from another boot) say nothing.
        assert_eq!(idle_share(quiet, a), None);
    }

    #[test]
    fn backoff_waits_after_a_failure() {
        let now = Instant::now();
        let mut backoff = Backoff::default();
        assert!(backoff.allows(now));
        backoff.failed(now);
        assert!(!backoff.allows(now + RETRY_AFTER / 2));
        assert!(backoff.allows(now + RETRY_AFTER));
    }

    #[test]
    fn the_gauge_reads_this_machine() {
        let mut gauge = IdleGauge::default();
        assert!(
            !gauge.idle_since_last(),
            "the first look has nothing to compare"
        );
        assert!(gauge.last.is_some(), "/proc/stat is readable");
    }
}
