//! System memory readings for the lifecycle policy: MemTotal and MemAvailable from `/proc/meminfo`, memory pressure (PSI) from `/proc/pressure/memory`.
//!
//! The parsers are pure functions over the files' text, so tests feed them samples; the readers
//! return `None` for whatever the kernel does not provide (PSI needs Linux 4.20 with
//! `CONFIG_PSI` and is switched off by `psi=0`, and then reading the file fails). Both files
//! describe the whole machine, not the browser's cgroup.

use std::path::Path;

use crate::policy::Readings;

const MEMINFO: &str = "/proc/meminfo";
const PRESSURE_MEMORY: &str = "/proc/pressure/memory";

/// The two `/proc/meminfo` fields the policy uses, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total_kb: Option<u64>,
    /// The kernel's estimate of the memory available for new work without swapping.
    pub available_kb: Option<u64>,
}

/// The `avg10` values of `/proc/pressure/memory`, in percent of the last 10 seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pressure {
    /// Time in which at least one task stalled waiting for memory.
    pub some_avg10: Option<f64>,
    /// Time in which every non-idle task stalled waiting for memory.
    pub full_avg10: Option<f64>,
}

/// Reads the system's memory figures now.
pub fn read() -> Readings {
    let info = read_meminfo().unwrap_or_default();
    Readings {
        mem_total_kb: info.total_kb,
        mem_available_kb: info.available_kb,
        psi_some_avg10: read_pressure().and_then(|p| p.some_avg10),
    }
}

/// `/proc/meminfo`, or `None` when it cannot be read.
pub fn read_meminfo() -> Option<MemInfo> {
    read_small(Path::new(MEMINFO)).map(|text| parse_meminfo(&text))
}

/// `/proc/pressure/memory`, or `None` when this kernel has no PSI.
pub fn read_pressure() -> Option<Pressure> {
    read_small(Path::new(PRESSURE_MEMORY)).map(|text| parse_pressure(&text))
}

fn read_small(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            log::debug!(target: "memory", "cannot read {}: {e}", path.display());
            None
        }
    }
}

/// Parses `/proc/meminfo` text (`MemTotal:       16303428 kB`). A field that is missing,
/// repeated (the first one counts), not a number, or not in kB is `None`.
pub fn parse_meminfo(text: &str) -> MemInfo {
    // `Some(None)` is a malformed field already seen, so that a later duplicate cannot replace it.
    let mut total: Option<Option<u64>> = None;
    let mut available: Option<Option<u64>> = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut available,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(parse_kb(value));
        }
    }
    let total_kb = total.flatten();
    // An available figure larger than the total is not a sane meminfo.
    let available_kb = available
        .flatten()
        .filter(|&a| total_kb.is_none_or(|t| a <= t));
    MemInfo {
        total_kb,
        available_kb,
    }
}

/// `  16303428 kB` → 16303428.
fn parse_kb(value: &str) -> Option<u64> {
    let number = value.trim().strip_suffix("kB")?.trim_end();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse().ok()
}

/// Parses `/proc/pressure/memory` text:
///
/// ```text
/// some avg10=0.00 avg60=0.00 avg300=0.00 total=0
/// full avg10=0.00 avg60=0.00 avg300=0.00 total=0
/// ```
///
/// A value that is missing, not a number, or outside 0–100 % is `None`.
pub fn parse_pressure(text: &str) -> Pressure {
    let mut pressure = Pressure::default();
    for line in text.lines() {
        let mut words = line.split_ascii_whitespace();
        let slot = match words.next() {
            Some("some") => &mut pressure.some_avg10,
            Some("full") => &mut pressure.full_avg10,
            _ => continue,
        };
        if slot.is_some() {
            continue;
        }
        *slot = words
            .find_map(|word| word.strip_prefix("avg10="))
            .and_then(|value| value.parse::<f64>().ok())
            .filter(|avg| (0.0..=100.0).contains(avg));
    }
    pressure
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO_SAMPLE: &str = "\
MemTotal:       16303428 kB
MemFree:         1183200 kB
MemAvailable:    9127804 kB
Buffers:          431744 kB
Cached:          7571748 kB
SwapTotal:       2097148 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
";

    const PSI_SAMPLE: &str = "\
some avg10=12.34 avg60=3.10 avg300=0.85 total=123456789
full avg10=1.50 avg60=0.20 avg300=0.05 total=2345678
";

    #[test]
    fn parses_meminfo() {
        assert_eq!(
            parse_meminfo(MEMINFO_SAMPLE),
            MemInfo {
                total_kb: Some(16_303_428),
                available_kb: Some(9_127_804),
            }
        );
    }

    #[test]
    fn malformed_meminfo_fields_are_none() {
        assert_eq!(parse_meminfo(""), MemInfo::default());
        assert_eq!(parse_meminfo("garbage\n\0\0\n"), MemInfo::default());
        // No MemAvailable (kernels before 3.14).
        assert_eq!(
            parse_meminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n"),
            MemInfo {
                total_kb: Some(1000),
                available_kb: None
            }
        );
        for bad in [
            "MemTotal: 1000\n",
            "MemTotal: 1000 MB\n",
            "MemTotal: -5 kB\n",
            "MemTotal: 1.5 kB\n",
            "MemTotal: kB\n",
            "MemTotal: 99999999999999999999999 kB\n",
            "MemTotal: 12 34 kB\n",
        ] {
            assert_eq!(parse_meminfo(bad).total_kb, None, "{bad:?}");
        }
        // The first field wins, even when it was malformed.
        assert_eq!(
            parse_meminfo("MemTotal: 1000 kB\nMemTotal: 5 kB\n").total_kb,
            Some(1000)
        );
        assert_eq!(
            parse_meminfo("MemTotal: x kB\nMemTotal: 5 kB\n").total_kb,
            None
        );
        // Available above total is not believed.
        assert_eq!(
            parse_meminfo("MemTotal: 1000 kB\nMemAvailable: 2000 kB\n"),
            MemInfo {
                total_kb: Some(1000),
                available_kb: None
            }
        );
        // A prefix of the key is another field.
        assert_eq!(parse_meminfo("MemTotalX: 1000 kB\n").total_kb, None);
    }

    #[test]
    fn parses_pressure() {
        assert_eq!(
            parse_pressure(PSI_SAMPLE),
            Pressure {
                some_avg10: Some(12.34),
                full_avg10: Some(1.5),
            }
        );
        // Older kernels have no "full" line for memory's sibling files; only "some" here.
        assert_eq!(
            parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"),
            Pressure {
                some_avg10: Some(0.0),
                full_avg10: None,
            }
        );
    }

    #[test]
    fn malformed_pressure_values_are_none() {
        assert_eq!(parse_pressure(""), Pressure::default());
        for bad in [
            "some avg60=1.00 avg300=0.00 total=0\n",
            "some avg10= avg60=1.00\n",
            "some avg10=abc\n",
            "some avg10=NaN\n",
            "some avg10=inf\n",
            "some avg10=-1.00\n",
            "some avg10=100.01\n",
            "somes avg10=5.00\n",
            "avg10=5.00\n",
        ] {
            assert_eq!(parse_pressure(bad).some_avg10, None, "{bad:?}");
        }
        assert_eq!(
            parse_pressure("some avg10=7.00\nsome avg10=99.00\n").some_avg10,
            Some(7.0)
        );
    }

    #[test]
    fn reads_this_machine() {
        let info = read_meminfo().expect("/proc/meminfo is readable on Linux");
        let total = info.total_kb.expect("MemTotal is present");
        assert!(total > 0);
        let readings = read();
        assert_eq!(readings.mem_total_kb, Some(total));
        if let Some(available) = readings.mem_available_kb {
            assert!(available <= total);
        }
        if let Some(avg) = readings.psi_some_avg10 {
            assert!((0.0..=100.0).contains(&avg));
        }
    }
}
