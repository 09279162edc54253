//! Process-tree inspection and cleanup through /proc, by pid and process group, never by name.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::PathBuf;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// One process as read from /proc. `start_time` (clock ticks since boot) together with `pid`
/// identifies the process across pid reuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub state: char,
    pub start_time: u64,
    /// The kernel's short name (at most 15 bytes: `WebKitWebProces`).
    pub comm: String,
    /// The executable's path, when readable.
    pub exe: Option<PathBuf>,
}

impl Proc {
    /// Reads one process; `None` if it does not exist (or vanished while being read).
    pub fn read(pid: i32) -> Option<Proc> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The name sits in parentheses and may itself contain spaces and parentheses, so the
        // fields after it start behind the last ')'.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_string();
        let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
        // rest[0] is field 3 (state); field N is rest[N - 3].
        let state = rest.first()?.chars().next()?;
        let ppid = rest.get(1)?.parse().ok()?;
        let pgrp = rest.get(2)?.parse().ok()?;
        let start_time = rest.get(19)?.parse().ok()?;
        let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
        Some(Proc {
            pid,
            ppid,
            pgrp,
            state,
            start_time,
            comm,
            exe,
        })
    }

    /// The executable's file name (from its path, else the kernel's short name), without a
    /// " (deleted)" suffix.
    pub fn name(&self) -> String {
        match &self.exe {
            Some(exe) => {
                let name = exe.file_name().map(|n| n.to_string_lossy().into_owned());
                let name = name.unwrap_or_else(|| self.comm.clone());
                name.trim_end_matches(" (deleted)").to_string()
            }
            None => self.comm.clone(),
        }
    }

    /// Whether this is one of WebKit's web content processes.
    pub fn is_webkit_web_process(&self) -> bool {
        self.name() == "WebKitWebProcess" || self.comm == "WebKitWebProces"
    }

    /// Whether this is one of WebKit's network processes.
    pub fn is_webkit_network_process(&self) -> bool {
        self.name() == "WebKitNetworkProcess" || self.comm == "WebKitNetworkP"
    }

    /// Whether this very process (same pid and start time) still exists and is not a zombie.
    /// Zombies are ignored because PID 1 on the test machines may never reap orphans.
    pub fn is_alive(&self) -> bool {
        match Proc::read(self.pid) {
            Some(now) => now.start_time == self.start_time && now.state != 'Z' && now.state != 'X',
            None => false,
        }
    }
}

impl std::fmt::Display for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} ({}) ppid {} pgrp {} state {}",
            self.pid,
            self.name(),
            self.ppid,
            self.pgrp,
            self.state
        )
    }
}

/// Every process currently in /proc, zombies included.
pub fn all_processes() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(Proc::read)
        .collect()
}

/// The live (non-zombie) descendants of `pid`, parents before children, `pid` itself excluded.
pub fn descendants(pid: i32) -> Vec<Proc> {
    let all = all_processes();
    let mut children: HashMap<i32, Vec<&Proc>> = HashMap::new();
    for p in &all {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut queue = vec![pid];
    let mut seen = BTreeSet::new();
    while let Some(parent) = queue.pop() {
        for child in children.get(&parent).into_iter().flatten() {
            if seen.insert(child.pid) {
                queue.push(child.pid);
                if child.state != 'Z' && child.state != 'X' {
                    out.push((*child).clone());
                }
            }
        }
    }
    out
}

/// `pid` itself (if alive) followed by its live descendants.
pub fn process_tree(pid: i32) -> Vec<Proc> {
    let mut tree: Vec<Proc> = Proc::read(pid)
        .filter(|p| p.state != 'Z')
        .into_iter()
        .collect();
    tree.extend(descendants(pid));
    tree
}

/// The processes of `procs` that are still alive (same pid and start time, not zombies).
pub fn still_alive(procs: &[Proc]) -> Vec<Proc> {
    procs.iter().filter(|p| p.is_alive()).cloned().collect()
}

/// A one-line-per-process description, for assertion messages.
pub fn describe(procs: &[Proc]) -> String {
    if procs.is_empty() {
        return "(none)".to_string();
    }
    procs.iter().map(|p| format!("  {p}\n")).collect()
}

/// The live processes whose command line holds every one of `args` (each as a whole argument).
/// For finding a process a test planted a marker in, wherever it ended up in the process tree.
pub fn with_arguments(args: &[&str]) -> Vec<Proc> {
    all_processes()
        .into_iter()
        .filter(|p| p.state != 'Z' && p.state != 'X')
        .filter(|p| {
            fs::read(format!("/proc/{}/cmdline", p.pid)).is_ok_and(|cmdline| {
                args.iter()
                    .all(|want| cmdline.split(|b| *b == 0).any(|arg| arg == want.as_bytes()))
            })
        })
        .collect()
}

/// The processes between `p` and its ancestor `top` (both excluded), nearest first: empty for a
/// child of `top`, the bubblewrap processes for a sandboxed renderer of the browser `top`. Panics
/// if `top` is not an ancestor of `p`.
pub fn ancestors_up_to(p: &Proc, top: i32) -> Vec<Proc> {
    let mut chain = Vec::new();
    let mut parent = p.ppid;
    while parent != top {
        let q = Proc::read(parent)
            .unwrap_or_else(|| panic!("{p} is not below {top}: its ancestor {parent} is gone"));
        assert!(q.pid > 1, "{p} is not below {top}:\n{}", describe(&chain));
        parent = q.ppid;
        chain.push(q);
    }
    chain
}

/// One field of `/proc/PID/status` as text (such as `SigBlk` or `Seccomp`), trimmed.
pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        Some(rest.trim().to_owned())
    })
}

/// The PID namespace a process lives in (the target of `/proc/PID/ns/pid`, `pid:[INODE]`).
pub fn pid_namespace(pid: i32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}

/// The time since boot in clock ticks, the unit of [`Proc::start_time`]: a process with a larger
/// start time started after this call.
pub fn now_ticks() -> u64 {
    let uptime = fs::read_to_string("/proc/uptime").unwrap_or_default();
    let seconds: f64 = uptime
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    (seconds * clock_ticks_per_second() as f64) as u64
}

/// SIGKILLs every process of `procs` that is still the same process, and every process group
/// they lead or belong to, except the test process's own group. Never matches by name.
pub fn kill_all(procs: &[Proc]) {
    let own_group = nix::unistd::getpgrp().as_raw();
    let mut groups = BTreeSet::new();
    for p in procs {
        if p.is_alive() {
            let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
        }
        if p.pgrp > 1 && p.pgrp != own_group {
            groups.insert(p.pgrp);
        }
    }
    for group in groups {
        // The group may be gone already; that is the goal.
        let _ = killpg(Pid::from_raw(group), Signal::SIGKILL);
    }
}

/// One `kB` field of `/proc/PID/status` (such as `VmRSS` or `RssAnon`), if readable.
pub fn status_kb(pid: i32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kb(&status, field)
}

/// One `kB` field of the text of a `/proc/PID/status` file.
fn status_field_kb(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| {
        l.strip_prefix(field)
            .is_some_and(|rest| rest.starts_with(':'))
    })?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory of a process in KiB (VmRSS), if readable.
pub fn rss_kb(pid: i32) -> Option<u64> {
    status_kb(pid, "VmRSS")
}

/// A process's private memory footprint in KiB: RssAnon + VmSwap from one read of
/// `/proc/PID/status` (what the task manager reports as `memory_kb`). A kernel without swap
/// accounting shows no VmSwap line; it counts as 0.
pub fn footprint_kb(pid: i32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let anon = status_field_kb(&status, "RssAnon")?;
    Some(anon + status_field_kb(&status, "VmSwap").unwrap_or(0))
}

/// A process's proportional set size in KiB, from `/proc/PID/smaps_rollup`, if readable.
pub fn pss_kb(pid: i32) -> Option<u64> {
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    status_field_kb(&rollup, "Pss")
}

/// The user + system CPU time a process has used so far, in clock ticks (fields 14 and 15 of
/// `/proc/PID/stat`); see [`clock_ticks_per_second`].
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // rest[0] is field 3; utime is field 14, stime field 15.
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel's clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn reads_itself() {
        let me = Proc::read(std::process::id() as i32).expect("own /proc entry");
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(me.is_alive());
        assert!(me.exe.is_some());
    }

    #[test]
    fn reads_memory_and_cpu_of_itself() {
        let me = std::process::id() as i32;
        let rss = rss_kb(me).expect("own VmRSS");
        let footprint = footprint_kb(me).expect("own RssAnon");
        let pss = pss_kb(me).expect("own Pss");
        assert!(footprint > 0 && footprint <= rss, "{footprint} vs {rss}");
        assert!(pss > 0 && pss <= rss, "{pss} vs {rss}");
        assert!(cpu_ticks(me).is_some());
        assert!(clock_ticks_per_second() > 0);
    }

    #[test]
    fn status_fields_match_whole_names() {
        let text =
            "VmRSS:\t  2000 kB\nRssAnon:\t 1200 kB\nRssAnonX: 5 kB\nPss_Anon: 7 kB\nPss: 9 kB\n";
        assert_eq!(status_field_kb(text, "RssAnon"), Some(1200));
        assert_eq!(status_field_kb(text, "Pss"), Some(9));
        assert_eq!(status_field_kb(text, "VmSwap"), None);
    }

    #[test]
    fn finds_a_process_by_its_arguments_and_reads_its_status() {
        let marker = format!("warren-marker-{}", std::process::id());
        let before = now_ticks();
        // The marker is the shell's $0 (sleep itself would refuse it as a duration and exit).
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30; true", &marker])
            .spawn()
            .expect("spawn sh");
        let found = crate::wait_until(std::time::Duration::from_secs(5), || {
            let found = with_arguments(&["sleep 30; true", &marker]);
            (!found.is_empty()).then_some(found)
        })
        .expect("the shell with the marker shows up");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pid, child.id() as i32);
        // Clock ticks are 10 ms: a process started after `before` may share its tick.
        assert!(
            found[0].start_time + 1 >= before,
            "{} < {before}",
            found[0].start_time
        );
        assert!(with_arguments(&["sleep 31; true", &marker]).is_empty());
        let me = std::process::id() as i32;
        assert!(status_field(me, "SigBlk").is_some_and(|v| v.len() == 16));
        assert_eq!(status_field(me, "NoSuchField"), None);
        assert_eq!(pid_namespace(me), pid_namespace(child.id() as i32));
        // The shell runs in the test's own group: kill its tree by pid.
        kill_all(&process_tree(child.id() as i32));
        let _ = child.wait();
    }

    #[test]
    fn finds_and_kills_a_grandchild() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .expect("spawn sh");
        let pid = child.id() as i32;
        let found = crate::wait_until(std::time::Duration::from_secs(5), || {
            let tree = descendants(pid);
            tree.iter().any(|p| p.name() == "sleep").then_some(tree)
        })
        .expect("the sleep grandchild shows up in /proc");
        let mut tree = process_tree(pid);
        assert_eq!(tree[0].pid, pid);
        assert_eq!(tree.len(), found.len() + 1);
        // The shell runs in the test's own group, which kill_all must never signal: kill by pid.
        kill_all(&tree);
        let _ = child.wait();
        // SIGKILL is asynchronous: give the grandchild a moment to die.
        let gone = crate::wait_until(std::time::Duration::from_secs(5), || {
            still_alive(&tree).is_empty().then_some(())
        });
        tree.retain(|p| p.is_alive());
        assert!(gone.is_some(), "still alive:\n{}", describe(&tree));
    }
}
