//! Benchmark of the task manager's measurement core: the CPU time of one `Monitor` refresh over a real tree of 30 tabs (about 120 processes).
//!
//! Run with `cargo run --release -p warren-browser --example taskman_bench [TABS] [REFRESHES]`.
//! It starts TABS (default 30) renderer-like trees under itself, each a `sleep` with two children
//! whose executables are copies of `sleep` named `WebKitWebProcess` and `WebKitNetworkProcess`
//! (so classification by executable works as for real WebKit helpers), and beside each one a
//! copy named `Xephyr`, listed as the tab's nested display; it refreshes a `Monitor`
//! REFRESHES times (default 200) without and with PSS, and prints the thread CPU time per refresh
//! against the 10 ms target. Then it runs the real sampler thread with PSS over the same trees
//! for a few rounds while the main thread plays the UI thread, and prints the longest the UI
//! thread's calls into the sampler took. Every process it started is killed by process group at the end, on
//! panic too, and each one also dies with its parent (`PR_SET_PDEATHSIG`) if the benchmark is
//! killed.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use warren_browser::procs::sampler::{self, Sample, Sampler, Watch};
use warren_browser::procs::{Kind, Monitor, Query, Snapshot};
use warren_ipc::TabId;

/// The cost target of the issue: one refresh of 30 tabs without PSS.
const TARGET: Duration = Duration::from_millis(10);

/// The trees this benchmark started; dropping it kills and reaps all of them.
struct Trees {
    leaders: Vec<Pid>,
}

impl Drop for Trees {
    fn drop(&mut self) {
        for &pid in &self.leaders {
            let _ = killpg(pid, Signal::SIGKILL);
            let _ = kill(pid, Signal::SIGKILL);
        }
        // This process is a child subreaper, so the helpers come back to it to be reaped.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(10)),
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => break,
            }
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let tabs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let refreshes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    match run(tabs, refreshes.max(1)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("taskman_bench: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(tabs: usize, refreshes: usize) -> Result<bool, String> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| format!("cannot become a child subreaper: {e}"))?;
    let dir =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let sleep = find_sleep()?;
    let web = copy_executable(&sleep, &dir.path().join("WebKitWebProcess"))?;
    let net = copy_executable(&sleep, &dir.path().join("WebKitNetworkProcess"))?;
    let xephyr = copy_executable(&sleep, &dir.path().join("Xephyr"))?;

    let mut trees = Trees {
        leaders: Vec::new(),
    };
    let mut renderers = Vec::new();
    let mut displays = Vec::new();
    for i in 0..tabs {
        let tab = TabId(i as u64 + 1);
        let pid = spawn_tree(&sleep, &web, &net)?;
        trees.leaders.push(pid);
        renderers.push((tab, pid.as_raw() as u32));
        let display = spawn_display(&xephyr)?;
        trees.leaders.push(display);
        displays.push((tab, display.as_raw() as u32));
    }

    let me = std::process::id();
    let mut monitor = Monitor::new().map_err(|e| e.to_string())?;
    let query = |pss| Query {
        browser_pid: me,
        renderers: &renderers,
        displays: &displays,
        landlocked: &[],
        spares: &[],
        pss,
    };
    // Wait until every helper has exec'd (until then it is a copy of its parent).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let snap = monitor.refresh(&query(false)).map_err(|e| e.to_string())?;
        let count = |kind| snap.processes.iter().filter(|r| r.kind == kind).count();
        let kinds = [Kind::Renderer, Kind::Web, Kind::Network, Kind::Display];
        if kinds.iter().all(|&kind| count(kind) == tabs) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the process trees did not start within 20 s: {} renderers, {} web, {} network, \
                 {} displays",
                count(Kind::Renderer),
                count(Kind::Web),
                count(Kind::Network),
                count(Kind::Display)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let machine = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().as_bytes().iter().all(u8::is_ascii_digit))
                .count()
        })
        .unwrap_or(0);
    let (plain, snap) = measure(&mut monitor, &query(false), refreshes)?;
    println!(
        "Monitor::refresh over {} processes in the browser's tree ({tabs} tabs), {machine} processes in /proc, {refreshes} refreshes",
        snap.processes.len()
    );
    println!(
        "(a refresh reads the stat of the tree and of new processes: {} of {} listed here; \
         every {}th refresh reads all)",
        snap.scan.stat_reads,
        snap.scan.listed,
        warren_browser::procs::FULL_SCAN_EVERY
    );
    println!(
        "{:<32} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "CPU ms per refresh", "mean", "median", "p95", "max", "wall mean"
    );
    report("without PSS", &plain);
    let (with_pss, _) = measure(&mut monitor, &query(true), refreshes)?;
    report("with PSS (smaps_rollup)", &with_pss);

    let walk = measure_walk(me, refreshes);
    report("full walk (procs::descendants)", &walk);

    let mean = plain.mean_cpu();
    let ok = mean <= TARGET && plain.p95_cpu() <= TARGET;
    println!(
        "Target: one refresh without PSS costs at most {} ms of CPU: {} (mean {:.2} ms, p95 {:.2} ms).",
        TARGET.as_millis(),
        if ok { "MET" } else { "NOT MET" },
        ms(mean),
        ms(plain.p95_cpu())
    );
    let period = sampler::INTERVAL.as_secs_f64();
    println!(
        "At one refresh every {period} s (the sampler's period while the Task Manager is open) \
         that is {:.2}% of one core ({:.2}% if every refresh read PSS; with its PSS column shown \
         the window reads PSS every {} s).",
        ms(mean) / 10.0 / period,
        ms(with_pss.mean_cpu()) / 10.0 / period,
        sampler::PSS_INTERVAL.as_secs()
    );

    let stall = ui_stall(&renderers, &displays, STALL_RUN)?;
    println!(
        "UI thread against the sampler's thread reading PSS back to back for {} s ({} rounds \
         with PSS, {:.1} ms wall each at most): what the UI thread does with the sampler \
         (publish the renderers, take the latest reading, ask) took at most {:.3} ms ({} calls); its \
         longest gap between two 1 ms sleeps was {:.1} ms (scheduling on this machine, not the \
         sampler).",
        STALL_RUN.as_secs(),
        stall.rounds,
        ms(stall.longest_round),
        ms(stall.longest_call),
        stall.calls,
        ms(stall.longest_gap)
    );
    drop(trees);
    Ok(ok)
}

/// How long the UI-stall measurement runs: a few of the sampler's periodic rounds.
const STALL_RUN: Duration = Duration::from_secs(10);

/// What the UI thread saw while the sampler measured on its own thread.
struct Stall {
    /// The longest the UI thread's calls into the sampler took (waiting for its lock included).
    longest_call: Duration,
    /// The longest time between two iterations of the UI loop (its 1 ms sleep included).
    longest_gap: Duration,
    calls: u64,
    /// Rounds completed, and the longest one's wall time.
    rounds: u64,
    longest_round: Duration,
}

/// Runs a [`Sampler`] over the trees with rounds that read PSS back to back (a control-socket
/// `task_manager` request asked again as soon as it is answered, the worst case; the window's
/// periodic rounds read PSS only every [`sampler::PSS_INTERVAL`]), while this thread does what
/// the browser's UI thread does with the sampler, every millisecond: publishes the renderers and
/// displays, takes the latest reading, and asks for the next request when one was answered.
/// PSS is read on the sampler's thread only, so these calls must stay short however long a
/// round takes: they only wait for the sampler's lock, which a round never holds while it reads.
fn ui_stall(
    renderers: &[(TabId, u32)],
    displays: &[(TabId, u32)],
    run_for: Duration,
) -> Result<Stall, String> {
    let monitor = Monitor::new().map_err(|e| e.to_string())?;
    let sampler = Sampler::start(monitor, std::process::id(), || {})
        .map_err(|e| format!("cannot start the sampler: {e}"))?;
    sampler.watch(Watch {
        periodic: true,
        pss: true,
    });
    let mut stall = Stall {
        longest_call: Duration::ZERO,
        longest_gap: Duration::ZERO,
        calls: 0,
        rounds: 0,
        longest_round: Duration::ZERO,
    };
    let (answered, answers) = std::sync::mpsc::channel();
    let mut outstanding = false;
    let start = Instant::now();
    let mut last = start;
    while start.elapsed() < run_for {
        let before = Instant::now();
        stall.longest_gap = stall.longest_gap.max(before - last);
        sampler.set_renderers(renderers.to_vec());
        sampler.set_displays(displays.to_vec());
        std::hint::black_box(sampler.latest());
        if let Ok(answer) = answers.try_recv() {
            let sample: Arc<Sample> = answer?;
            if !sample.snapshot.pss {
                return Err("a requested round did not read PSS".into());
            }
            stall.rounds += 1;
            stall.longest_round = stall.longest_round.max(sample.took);
            outstanding = false;
        }
        if !outstanding {
            let answered = answered.clone();
            sampler.request(
                renderers.to_vec(),
                displays.to_vec(),
                Vec::new(),
                Vec::new(),
                Box::new(move |result| {
                    let _ = answered.send(result);
                }),
            );
            outstanding = true;
        }
        let after = Instant::now();
        stall.longest_call = stall.longest_call.max(after - before);
        stall.calls += 1;
        last = after;
        std::thread::sleep(Duration::from_millis(1));
    }
    if stall.rounds == 0 {
        return Err("the sampler completed no round".into());
    }
    Ok(stall)
}

/// CPU and wall time of each refresh.
struct Samples {
    cpu: Vec<Duration>,
    wall: Vec<Duration>,
}

impl Samples {
    fn mean_cpu(&self) -> Duration {
        self.cpu.iter().sum::<Duration>() / self.cpu.len() as u32
    }

    fn p95_cpu(&self) -> Duration {
        percentile(&self.cpu, 0.95)
    }
}

fn measure(
    monitor: &mut Monitor,
    query: &Query<'_>,
    refreshes: usize,
) -> Result<(Samples, Snapshot), String> {
    // Warm up: caches of names, allocations.
    let mut snap = monitor.refresh(query).map_err(|e| e.to_string())?;
    let mut samples = Samples {
        cpu: Vec::with_capacity(refreshes),
        wall: Vec::with_capacity(refreshes),
    };
    for _ in 0..refreshes {
        let (cpu0, wall0) = (thread_cpu_time(), Instant::now());
        snap = monitor.refresh(query).map_err(|e| e.to_string())?;
        samples.wall.push(wall0.elapsed());
        samples.cpu.push(thread_cpu_time().saturating_sub(cpu0));
    }
    Ok((samples, snap))
}

fn measure_walk(me: u32, refreshes: usize) -> Samples {
    let mut samples = Samples {
        cpu: Vec::with_capacity(refreshes),
        wall: Vec::with_capacity(refreshes),
    };
    for _ in 0..refreshes {
        let (cpu0, wall0) = (thread_cpu_time(), Instant::now());
        std::hint::black_box(warren_browser::procs::descendants(me));
        samples.wall.push(wall0.elapsed());
        samples.cpu.push(thread_cpu_time().saturating_sub(cpu0));
    }
    samples
}

fn report(label: &str, samples: &Samples) {
    let wall_mean = samples.wall.iter().sum::<Duration>() / samples.wall.len() as u32;
    println!(
        "{label:<32} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>10.3}",
        ms(samples.mean_cpu()),
        ms(percentile(&samples.cpu, 0.5)),
        ms(samples.p95_cpu()),
        ms(percentile(&samples.cpu, 1.0)),
        ms(wall_mean)
    );
}

fn percentile(values: &[Duration], p: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU time of the calling thread (user + system, which includes the kernel's work for `/proc`).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec it is given, which lives on this stack.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "CLOCK_THREAD_CPUTIME_ID is not available");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn find_sleep() -> Result<PathBuf, String> {
    ["/usr/bin/sleep", "/bin/sleep"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| "cannot find the sleep program in /usr/bin or /bin".to_owned())
}

fn copy_executable(from: &Path, to: &Path) -> Result<CString, String> {
    std::fs::copy(from, to)
        .and_then(|_| std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    CString::new(to.as_os_str().as_bytes()).map_err(|_| format!("{} has a NUL byte", to.display()))
}

/// Starts the `Xephyr` copy of `sleep` for 600 s in a new process group; it dies with its parent.
fn spawn_display(xephyr: &CString) -> Result<Pid, String> {
    let path = std::ffi::OsStr::from_bytes(xephyr.as_bytes());
    let mut command = Command::new(path);
    command
        .arg("600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls prctl.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.to_string_lossy()))?;
    Ok(Pid::from_raw(child.id() as i32))
}

/// Starts `sleep 600` in a new process group, after it has forked two children that exec the
/// `web` and `network` copies; every process dies with its parent.
fn spawn_tree(sleep: &Path, web: &CString, net: &CString) -> Result<Pid, String> {
    let (web, net) = (web.clone(), net.clone());
    let arg = CString::new("600").expect("no NUL");
    let mut command = Command::new(sleep);
    command
        .arg("600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only makes async-signal-safe
    // calls (prctl, fork, execv, _exit) on memory prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            for path in [&web, &net] {
                match libc::fork() {
                    -1 => return Err(std::io::Error::last_os_error()),
                    0 => {
                        libc::prctl(
                            libc::PR_SET_PDEATHSIG,
                            libc::SIGKILL as libc::c_ulong,
                            0,
                            0,
                            0,
                        );
                        let argv = [path.as_ptr(), arg.as_ptr(), std::ptr::null()];
                        libc::execv(path.as_ptr(), argv.as_ptr());
                        libc::_exit(127);
                    }
                    _ => {}
                }
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", sleep.display()))?;
    Ok(Pid::from_raw(child.id() as i32))
}
