//! The renderer's seccomp-bpf policy (sandbox layer 3): the reviewed deny list in
//! `resources/sandbox/seccomp.json`, compiled once and installed in the forked child before
//! `exec`, so bubblewrap, the renderer, WebKit's web and network processes and every thread any
//! of them starts carry it (a seccomp filter survives `fork`, `clone` and `execve` and cannot be
//! removed).
//!
//! The policy is data, in seccompiler's JSON format, embedded in the binary with `include_str!` so
//! that what runs is what was reviewed. It is a deny list, not an allow list: the renderer hosts
//! GTK and all of WebKitGTK (and through it GLib, Mesa, GStreamer, libsoup, fontconfig …), whose
//! system calls change with every library upgrade, so an allow list would break on users'
//! machines in ways no test here can see. What the policy denies is kernel surface no browser tab
//! needs — tracing and reading other processes, loading kernel code, eBPF, perf counters, the
//! keyrings, `userfaultfd`, file handles, clocks, io_uring, terminal injection — each with a
//! comment in the file saying what it does and why nothing here needs it. Denied calls fail with
//! `EPERM`, as WebKit's own web-process filter does, so code that probes a call falls back instead
//! of dying.
//!
//! Deliberately *not* denied, because bubblewrap (ours, and WebKit's own nested one for the web
//! process) needs them inside the renderer's user namespace: `clone`/`clone3`/`unshare` with
//! namespace flags, `mount`, `umount2`, `pivot_root`, `chroot`, `setns`, `capset`, `prctl` and
//! `seccomp`. The kernel already confines them to namespaces the renderer owns.
//!
//! The file has a section for every architecture (`renderer`) and one per architecture for calls
//! only that architecture has (`renderer_x86_64`: `iopl`, `ioperm`, `modify_ldt`, `uselib`);
//! [`compile_policy`] merges the two. On x86_64 two holes of any x86_64 deny list are closed in the
//! compiled program: a system call made through the 32-bit ABI (`int 0x80`) kills the process
//! (seccompiler's architecture check: its numbers differ, so the list would not match them), and
//! one made through the x32 ABI (numbers with bit 30 set, same architecture) fails with `EPERM`
//! before the list is consulted.
//!
//! `resources/sandbox/README.md` says how to review, extend and test the policy.

use std::collections::HashSet;
use std::io;
use std::sync::OnceLock;

use seccompiler::{sock_filter, TargetArch};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The reviewed policy, as it was when the browser was built.
pub const POLICY_JSON: &str = include_str!("../../../resources/sandbox/seccomp.json");

/// Where the policy lives in the source tree, for error messages.
const POLICY_PATH: &str = "resources/sandbox/seccomp.json";

/// The section that applies on every architecture.
const COMMON_SECTION: &str = "renderer";

/// Prefix of the per-architecture sections (`renderer_x86_64`).
const ARCH_SECTION_PREFIX: &str = "renderer_";

/// The architectures seccompiler has system-call tables for.
pub const SUPPORTED_ARCHES: &[&str] = &["x86_64", "aarch64", "riscv64"];

/// `AUDIT_ARCH_X86_64` from `<linux/audit.h>` (EM_X86_64 | 64-bit | little-endian).
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

/// `__X32_SYSCALL_BIT`: x32 system calls are x86_64 calls with this bit set in their number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets into `struct seccomp_data`.
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;

/// Why the policy cannot be compiled. None of these can happen with a policy that passed this
/// module's tests, except [`SeccompError::UnsupportedArch`] on an architecture nobody built for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeccompError {
    /// The file is not JSON, or not the expected shape.
    #[error("the seccomp policy ({POLICY_PATH}) is not valid: {0}")]
    Malformed(String),
    /// The file breaks a rule this module relies on (a comment for every rule, one action, …).
    #[error("the seccomp policy ({POLICY_PATH}) breaks a rule of its format: {0}")]
    Policy(String),
    /// seccompiler has no system-call table for this architecture.
    #[error(
        "there is no seccomp policy for the {0} architecture (seccompiler knows x86_64, aarch64 \
         and riscv64); renderers cannot be sandboxed with seccomp here"
    )]
    UnsupportedArch(String),
    /// seccompiler refused the policy (an unknown system-call name, a bad condition, too long).
    #[error("cannot compile the seccomp policy ({POLICY_PATH}) for {arch}: {message}")]
    Compile { arch: String, message: String },
}

/// One rule of the policy, for listings (the self-test, `--help`-style output, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedSyscall {
    /// The system call's name.
    pub name: String,
    /// `None` when every call is denied; otherwise when it is, from the conditions' comments
    /// (`"TIOCSTI (0x5412)"`).
    pub when: Option<String>,
    /// Why it is denied, from the policy.
    pub comment: String,
}

/// The compiled policy for one architecture: a classic BPF program ready for `seccomp(2)`.
#[derive(Debug)]
pub struct Filter {
    arch: String,
    /// The program. Never empty, at most `BPF_MAXINSNS` (4096) instructions.
    program: Vec<sock_filter>,
    rules: Vec<DeniedSyscall>,
}

impl Filter {
    /// Installs the filter on the calling thread: `PR_SET_NO_NEW_PRIVS`, then
    /// `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)`.
    ///
    /// # Contract
    ///
    /// Made to run in a `Command::pre_exec` closure, in the child between `fork` and `exec`: it
    /// makes two raw system calls on memory compiled before the fork and neither allocates nor
    /// takes a lock, so it is async-signal-safe. The filter covers the calling thread and every
    /// thread and process it creates afterwards, across `exec`; threads that already exist are
    /// not covered, so call it while the process has one thread (a forked child always has).
    /// It cannot be undone; a second call stacks a second copy.
    pub fn install(&self) -> io::Result<()> {
        let prog = libc::sock_fprog {
            // `compile` refuses programs longer than BPF_MAXINSNS, so this cannot truncate.
            len: self.program.len() as libc::c_ushort,
            // seccompiler's `sock_filter` is `#[repr(C)]` with the same four fields as the
            // kernel's (u16 code, u8 jt, u8 jf, u32 k); the kernel only reads through it.
            filter: self.program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: plain system calls; `prog` points into `self.program`, which outlives the call
        // (the kernel copies the program before returning).
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            let flags: libc::c_ulong = 0;
            if libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// The architecture the program was compiled for (`"x86_64"`).
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// Number of BPF instructions in the program.
    pub fn instructions(&self) -> usize {
        self.program.len()
    }

    /// Every rule of the policy for this architecture, in file order.
    pub fn rules(&self) -> &[DeniedSyscall] {
        &self.rules
    }

    /// The names of the system calls the policy denies, always or under a condition, in file
    /// order and each once.
    pub fn denied_syscalls(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.rules
            .iter()
            .map(|rule| rule.name.as_str())
            .filter(|name| seen.insert(*name))
            .collect()
    }
}

/// The renderer's filter for the architecture the browser runs on, compiled on first use.
///
/// Call it in the parent before forking (compiling allocates); the child then only calls
/// [`Filter::install`].
pub fn renderer_filter() -> Result<&'static Filter, SeccompError> {
    static FILTER: OnceLock<Result<Filter, SeccompError>> = OnceLock::new();
    FILTER
        .get_or_init(|| compile_policy(std::env::consts::ARCH))
        .as_ref()
        .map_err(Clone::clone)
}

/// Compiles the embedded policy for `arch` (one of [`SUPPORTED_ARCHES`]).
pub fn compile_policy(arch: &str) -> Result<Filter, SeccompError> {
    compile(POLICY_JSON, arch)
}

/// One section of the file, as far as this module checks it (seccompiler checks the rest).
#[derive(Deserialize)]
struct Section {
    mismatch_action: Value,
    match_action: Value,
    filter: Vec<RuleText>,
}

#[derive(Deserialize)]
struct RuleText {
    syscall: String,
    #[serde(default)]
    args: Option<Vec<ConditionText>>,
    #[serde(default)]
    comment: Option<String>,
}

#[derive(Deserialize)]
struct ConditionText {
    #[serde(default)]
    comment: Option<String>,
}

fn compile(json: &str, arch: &str) -> Result<Filter, SeccompError> {
    let target =
        TargetArch::try_from(arch).map_err(|_| SeccompError::UnsupportedArch(arch.to_owned()))?;
    let sections: Map<String, Value> =
        serde_json::from_str(json).map_err(|e| SeccompError::Malformed(e.to_string()))?;
    for name in sections.keys() {
        let known = name == COMMON_SECTION
            || name
                .strip_prefix(ARCH_SECTION_PREFIX)
                .is_some_and(|a| SUPPORTED_ARCHES.contains(&a));
        if !known {
            return Err(SeccompError::Policy(format!(
                "unknown section {name:?} (expected {COMMON_SECTION:?} or \
                 \"{ARCH_SECTION_PREFIX}<arch>\" for one of {SUPPORTED_ARCHES:?})"
            )));
        }
    }
    let common = sections.get(COMMON_SECTION).ok_or_else(|| {
        SeccompError::Policy(format!("the {COMMON_SECTION:?} section is missing"))
    })?;
    let arch_name = format!("{ARCH_SECTION_PREFIX}{arch}");
    let mut parts = vec![(COMMON_SECTION, common)];
    if let Some(section) = sections.get(&arch_name) {
        parts.push((arch_name.as_str(), section));
    }

    let mut rules = Vec::new();
    let mut merged_rules = Vec::new();
    let mut unconditional = HashSet::new();
    let mut conditional = HashSet::new();
    for (name, value) in &parts {
        let section = Section::deserialize(*value)
            .map_err(|e| SeccompError::Malformed(format!("section {name:?}: {e}")))?;
        // Every section must be the same deny list with EPERM: the guard below returns EPERM,
        // and the sandbox self-test and WebKit's fallbacks expect it.
        if section.mismatch_action != "allow"
            || section.match_action != serde_json::json!({ "errno": libc::EPERM })
        {
            return Err(SeccompError::Policy(format!(
                "section {name:?} must have \"mismatch_action\": \"allow\" and \"match_action\": \
                 {{\"errno\": 1}} (a deny list failing with EPERM)"
            )));
        }
        for rule in &section.filter {
            let comment = rule.comment.as_deref().map(str::trim).unwrap_or("");
            if comment.len() < 20 {
                return Err(SeccompError::Policy(format!(
                    "the rule for {:?} in section {name:?} needs a \"comment\" saying what the \
                     call does and why no renderer needs it",
                    rule.syscall
                )));
            }
            let when = match &rule.args {
                None => {
                    if !unconditional.insert(rule.syscall.clone())
                        || conditional.contains(&rule.syscall)
                    {
                        return Err(duplicate(&rule.syscall));
                    }
                    None
                }
                Some(args) => {
                    // seccompiler drops an unconditional rule for a call that also has
                    // conditional ones, which would silently allow it: refuse the mix.
                    if unconditional.contains(&rule.syscall) {
                        return Err(duplicate(&rule.syscall));
                    }
                    conditional.insert(rule.syscall.clone());
                    let parts: Vec<&str> = args
                        .iter()
                        .map(|c| c.comment.as_deref().unwrap_or("a condition"))
                        .collect();
                    Some(parts.join(" and "))
                }
            };
            rules.push(DeniedSyscall {
                name: rule.syscall.clone(),
                when,
                comment: comment.to_owned(),
            });
        }
        // The section's raw rules go into the merged filter unchanged, so seccompiler sees
        // exactly what the file says.
        if let Some(raw) = value.get("filter").and_then(Value::as_array) {
            merged_rules.extend(raw.iter().cloned());
        }
    }

    let merged = serde_json::json!({
        COMMON_SECTION: {
            "mismatch_action": "allow",
            "match_action": { "errno": libc::EPERM },
            "filter": merged_rules,
        }
    });
    let compile_error = |message: String| SeccompError::Compile {
        arch: arch.to_owned(),
        message,
    };
    let mut programs = seccompiler::compile_from_json(merged.to_string().as_bytes(), target)
        .map_err(|e| compile_error(e.to_string()))?;
    let compiled = programs
        .remove(COMMON_SECTION)
        .ok_or_else(|| compile_error("seccompiler returned no program".to_owned()))?;

    let mut program = Vec::with_capacity(compiled.len() + 5);
    if target == TargetArch::x86_64 {
        program.extend(x32_guard());
    }
    program.extend(compiled);
    if program.len() > libc::BPF_MAXINSNS as usize {
        return Err(compile_error(format!(
            "the program has {} instructions, the kernel takes at most {}",
            program.len(),
            libc::BPF_MAXINSNS
        )));
    }
    Ok(Filter {
        arch: arch.to_owned(),
        program,
        rules,
    })
}

fn duplicate(syscall: &str) -> SeccompError {
    SeccompError::Policy(format!(
        "{syscall:?} is listed more than once with a rule that denies every call; list it once \
         without \"args\", or only with \"args\""
    ))
}

/// Instructions run before seccompiler's program on x86_64: an x32 system call (same audit
/// architecture as x86_64, number with bit 30 set) fails with `EPERM`, so a deny list written in
/// x86_64 numbers cannot be side-stepped through the x32 numbers of the same calls. Anything that
/// is not x86_64 falls through to seccompiler's own architecture check, which kills the process.
fn x32_guard() -> [sock_filter; 5] {
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let jge = libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let insn = |code: u32, jt: u8, jf: u8, k: u32| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    [
        insn(ld, 0, 0, SECCOMP_DATA_ARCH),
        // Not x86_64: skip the three x32 instructions.
        insn(jeq, 0, 3, AUDIT_ARCH_X86_64),
        insn(ld, 0, 0, SECCOMP_DATA_NR),
        // Below the x32 bit: skip the return.
        insn(jge, 0, 1, X32_SYSCALL_BIT),
        insn(
            ret,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | (libc::EPERM as u32 & libc::SECCOMP_RET_DATA),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::ffi::CString;
    use std::fs::File;
    use std::io::Read;
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    /// The calls issue 7 names; taking one out of the policy must fail a test.
    const REQUIRED: &[&str] = &[
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "swapon",
        "swapoff",
        "reboot",
        "bpf",
        "perf_event_open",
        "keyctl",
        "add_key",
        "request_key",
        "userfaultfd",
        "open_by_handle_at",
        "name_to_handle_at",
        "acct",
        "settimeofday",
        "clock_settime",
        "clock_adjtime",
        "adjtimex",
    ];

    /// Only x86 has these.
    const REQUIRED_X86_64: &[&str] = &["iopl", "ioperm"];

    /// What bubblewrap (ours and WebKit's nested one), GLib and Mesa need: never denied outright.
    const NEEDED: &[&str] = &[
        "clone",
        "clone3",
        "fork",
        "unshare",
        "setns",
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "capset",
        "prctl",
        "seccomp",
        "memfd_create",
        "pidfd_open",
        "pidfd_send_signal",
        "kcmp",
        "landlock_create_ruleset",
        "landlock_add_rule",
        "landlock_restrict_self",
        "ioctl",
        "personality",
    ];

    #[test]
    fn embedded_policy_compiles_for_every_supported_arch() {
        for arch in SUPPORTED_ARCHES {
            let started = Instant::now();
            let filter = compile_policy(arch)
                .unwrap_or_else(|e| panic!("the policy does not compile for {arch}: {e}"));
            println!(
                "{arch}: {} rules, {} BPF instructions, compiled in {:?}",
                filter.rules().len(),
                filter.instructions(),
                started.elapsed()
            );
            assert_eq!(filter.arch(), *arch);
            let denied = filter.denied_syscalls();
            for name in REQUIRED {
                assert!(denied.contains(name), "{arch}: {name} is not denied");
            }
            for name in REQUIRED_X86_64 {
                assert_eq!(denied.contains(name), *arch == "x86_64", "{arch}: {name}");
            }
        }
    }

    #[test]
    fn the_file_is_plain_seccompiler_json_for_x86_64() {
        // Every section compiles as it is with seccompiler alone (as seccompiler-bin would), so
        // the file stays in the documented format and can be checked with upstream tools.
        let programs = seccompiler::compile_from_json(POLICY_JSON.as_bytes(), TargetArch::x86_64)
            .expect("seccompiler compiles the file as it is");
        let mut names: Vec<_> = programs.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["renderer", "renderer_x86_64"]);
    }

    #[test]
    fn what_the_sandbox_needs_is_never_denied_outright() {
        let filter = compile_policy("x86_64").unwrap();
        for name in NEEDED {
            assert!(
                !filter
                    .rules()
                    .iter()
                    .any(|r| r.name == *name && r.when.is_none()),
                "{name} is denied outright, but bubblewrap, GLib or Mesa need it"
            );
        }
        let when = |name: &str| -> Vec<String> {
            filter
                .rules()
                .iter()
                .filter(|r| r.name == name)
                .filter_map(|r| r.when.clone())
                .collect()
        };
        assert_eq!(
            when("ioctl"),
            [
                "TIOCSTI (0x5412)",
                "TIOCLINUX (0x541C)",
                "USERFAULTFD_IOC_NEW (0xAA00)"
            ]
        );
        assert_eq!(
            when("personality"),
            ["not PER_LINUX and not the 0xffffffff query"]
        );
    }

    #[test]
    fn renderer_filter_is_compiled_once_for_this_arch() {
        let first = renderer_filter().expect("the policy compiles for this machine");
        let second = renderer_filter().unwrap();
        assert!(std::ptr::eq(first, second));
        assert_eq!(first.arch(), std::env::consts::ARCH);
    }

    fn policy(sections: Value) -> String {
        sections.to_string()
    }

    fn section(rules: Value) -> Value {
        serde_json::json!({
            "mismatch_action": "allow",
            "match_action": { "errno": 1 },
            "filter": rules,
        })
    }

    const COMMENT: &str = "a comment long enough to be a reason";

    #[test]
    fn policies_that_break_the_format_are_refused() {
        let ok = policy(serde_json::json!({
            "renderer": section(serde_json::json!([{ "syscall": "ptrace", "comment": COMMENT }])),
        }));
        assert!(compile(&ok, "x86_64").is_ok());

        let cases = [
            ("not json", "{".to_owned()),
            (
                "no comment",
                policy(serde_json::json!({
                    "renderer": section(serde_json::json!([{ "syscall": "ptrace" }])),
                })),
            ),
            (
                "unknown call",
                policy(serde_json::json!({
                    "renderer": section(serde_json::json!([
                        { "syscall": "no_such_call", "comment": COMMENT }
                    ])),
                })),
            ),
            (
                "listed twice",
                policy(serde_json::json!({
                    "renderer": section(serde_json::json!([
                        { "syscall": "ptrace", "comment": COMMENT },
                        { "syscall": "ptrace", "comment": COMMENT },
                    ])),
                })),
            ),
            (
                "outright and conditional",
                policy(serde_json::json!({
                    "renderer": section(serde_json::json!([
                        { "syscall": "ioctl", "comment": COMMENT },
                        { "syscall": "ioctl", "comment": COMMENT, "args": [
                            { "index": 1, "type": "dword", "op": "eq", "val": 21522 }
                        ] },
                    ])),
                })),
            ),
            (
                "allow list",
                policy(serde_json::json!({
                    "renderer": {
                        "mismatch_action": { "errno": 1 },
                        "match_action": "allow",
                        "filter": [{ "syscall": "read", "comment": COMMENT }],
                    },
                })),
            ),
            (
                "unknown section",
                policy(serde_json::json!({
                    "renderer": section(serde_json::json!([])),
                    "renderer_sparc": section(serde_json::json!([])),
                })),
            ),
            ("no common section", policy(serde_json::json!({}))),
        ];
        for (what, text) in cases {
            let err = compile(&text, "x86_64").expect_err(what);
            println!("{what}: {err}");
        }
        assert_eq!(
            compile(&ok, "sparc64").unwrap_err(),
            SeccompError::UnsupportedArch("sparc64".into())
        );
    }

    /// An x86_64-only name in the common section fails on aarch64: the reason for the sections.
    #[test]
    fn arch_specific_calls_belong_in_their_section() {
        let text = policy(serde_json::json!({
            "renderer": section(serde_json::json!([{ "syscall": "iopl", "comment": COMMENT }])),
        }));
        assert!(compile(&text, "x86_64").is_ok());
        assert!(matches!(
            compile(&text, "aarch64"),
            Err(SeccompError::Compile { .. })
        ));
    }

    // ---- The filter in a real process --------------------------------------------------------

    /// One system call tried in a child; returns 0 on success or the errno.
    struct Probe {
        name: &'static str,
        /// The call fails with something other than EPERM without the filter whatever the
        /// caller's privileges, so EPERM with it can only come from the filter.
        distinguishing: bool,
        run: fn(&Scratch) -> i32,
    }

    /// What probes need, prepared before the fork (the child does not allocate).
    struct Scratch {
        dir: CString,
    }

    fn errno_of(ret: libc::c_long) -> i32 {
        if ret < 0 {
            io::Error::last_os_error().raw_os_error().unwrap_or(-1)
        } else {
            0
        }
    }

    /// A pid no process has (above the largest `pid_max`).
    const NO_PID: libc::c_long = 0x7fff_fff0;

    fn vm_iov(buf: &mut [u8; 1]) -> libc::iovec {
        libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: 1,
        }
    }

    // SAFETY (all probes): raw system calls with arguments that are valid or deliberately
    // invalid (null pointers, bad descriptors), which the kernel rejects without touching memory.
    const DENIED: &[Probe] = &[
        Probe {
            name: "ptrace(PTRACE_ATTACH)",
            distinguishing: true,
            run: |_| unsafe {
                errno_of(libc::ptrace(
                    libc::PTRACE_ATTACH,
                    NO_PID as libc::pid_t,
                    std::ptr::null_mut::<libc::c_void>(),
                    std::ptr::null_mut::<libc::c_void>(),
                ))
            },
        },
        Probe {
            name: "process_vm_readv",
            distinguishing: true,
            run: |_| {
                let (mut a, mut b) = ([0u8; 1], [0u8; 1]);
                let (local, remote) = (vm_iov(&mut a), vm_iov(&mut b));
                unsafe {
                    errno_of(libc::syscall(
                        libc::SYS_process_vm_readv,
                        NO_PID,
                        &local,
                        1,
                        &remote,
                        1,
                        0,
                    ))
                }
            },
        },
        Probe {
            name: "process_vm_writev",
            distinguishing: true,
            run: |_| {
                let (mut a, mut b) = ([0u8; 1], [0u8; 1]);
                let (local, remote) = (vm_iov(&mut a), vm_iov(&mut b));
                unsafe {
                    errno_of(libc::syscall(
                        libc::SYS_process_vm_writev,
                        NO_PID,
                        &local,
                        1,
                        &remote,
                        1,
                        0,
                    ))
                }
            },
        },
        Probe {
            name: "perf_event_open",
            distinguishing: true,
            run: |_| unsafe {
                errno_of(libc::syscall(
                    libc::SYS_perf_event_open,
                    std::ptr::null::<u8>(),
                    0,
                    -1,
                    -1,
                    0,
                ))
            },
        },
        Probe {
            name: "keyctl",
            distinguishing: true,
            run: |_| unsafe { errno_of(libc::syscall(libc::SYS_keyctl, 0xffff, 0, 0, 0, 0)) },
        },
        Probe {
            name: "add_key",
            distinguishing: true,
            run: |_| unsafe {
                errno_of(libc::syscall(
                    libc::SYS_add_key,
                    std::ptr::null::<u8>(),
                    std::ptr::null::<u8>(),
                    std::ptr::null::<u8>(),
                    0,
                    0,
                ))
            },
        },
        Probe {
            name: "request_key",
            distinguishing: true,
            run: |_| unsafe {
                errno_of(libc::syscall(
                    libc::SYS_request_key,
                    std::ptr::null::<u8>(),
                    std::ptr::null::<u8>(),
                    std::ptr::null::<u8>(),
                    0,
                ))
            },
        },
        Probe {
            name: "ioctl(TIOCSTI)",
            distinguishing: true,
            run: |_| {
                let c = b'x';
                unsafe { errno_of(libc::ioctl(-1, libc::TIOCSTI, &c).into()) }
            },
        },
        Probe {
            name: "ioctl(TIOCLINUX)",
            distinguishing: true,
            run: |_| {
                let c = 0u8;
                unsafe { errno_of(libc::ioctl(-1, libc::TIOCLINUX, &c).into()) }
            },
        },
        Probe {
            name: "personality(ADDR_NO_RANDOMIZE)",
            distinguishing: true,
            run: |_| unsafe { errno_of(libc::personality(libc::ADDR_NO_RANDOMIZE as _).into()) },
        },
        Probe {
            name: "bpf",
            distinguishing: false,
            run: |_| unsafe {
                errno_of(libc::syscall(
                    libc::SYS_bpf,
                    0xffff,
                    std::ptr::null::<u8>(),
                    0,
                ))
            },
        },
        Probe {
            name: "userfaultfd",
            distinguishing: false,
            run: |_| unsafe { errno_of(libc::syscall(libc::SYS_userfaultfd, !0u32)) },
        },
        Probe {
            name: "kexec_load",
            distinguishing: false,
            run: |_| unsafe {
                errno_of(libc::syscall(
                    libc::SYS_kexec_load,
                    0,
                    1000,
                    std::ptr::null::<u8>(),
                    !0u64,
                ))
            },
        },
        Probe {
            name: "open_by_handle_at",
            distinguishing: false,
            run: |_| unsafe {
                errno_of(libc::syscall(
                    libc::SYS_open_by_handle_at,
                    -1,
                    std::ptr::null::<u8>(),
                    0,
                ))
            },
        },
        Probe {
            name: "io_uring_setup",
            distinguishing: false,
            run: |_| unsafe {
                errno_of(libc::syscall(
                    libc::SYS_io_uring_setup,
                    0,
                    std::ptr::null::<u8>(),
                ))
            },
        },
        Probe {
            name: "syslog",
            distinguishing: false,
            // SYSLOG_ACTION_SIZE_BUFFER: harmless to run without the filter.
            run: |_| unsafe { errno_of(libc::syscall(libc::SYS_syslog, 10, 0, 0)) },
        },
        #[cfg(target_arch = "x86_64")]
        Probe {
            name: "x32 getpid",
            distinguishing: true,
            run: |_| unsafe { errno_of(libc::syscall(X32_SYSCALL_BIT as libc::c_long | 39)) },
        },
        #[cfg(target_arch = "x86_64")]
        Probe {
            name: "iopl",
            distinguishing: false,
            // Level 0 is the level every process has: harmless without the filter.
            run: |_| unsafe { errno_of(libc::syscall(libc::SYS_iopl, 0)) },
        },
        // Last: without the filter this succeeds and makes the child a tracee of the test.
        Probe {
            name: "ptrace(PTRACE_TRACEME)",
            distinguishing: false,
            run: |_| unsafe {
                errno_of(libc::ptrace(
                    libc::PTRACE_TRACEME,
                    0 as libc::pid_t,
                    std::ptr::null_mut::<libc::c_void>(),
                    std::ptr::null_mut::<libc::c_void>(),
                ))
            },
        },
    ];

    const ALLOWED: &[Probe] = &[
        Probe {
            name: "memfd_create",
            distinguishing: false,
            run: |_| unsafe {
                errno_of(libc::memfd_create(c"probe".as_ptr(), libc::MFD_CLOEXEC).into())
            },
        },
        Probe {
            name: "socket(AF_UNIX)",
            distinguishing: false,
            run: |_| unsafe {
                errno_of(
                    libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0).into(),
                )
            },
        },
        Probe {
            name: "prctl(PR_SET_NAME)",
            distinguishing: false,
            run: |_| unsafe { errno_of(libc::prctl(libc::PR_SET_NAME, c"probe".as_ptr()).into()) },
        },
        Probe {
            name: "pidfd_open",
            distinguishing: false,
            run: |_| unsafe { errno_of(libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0)) },
        },
        Probe {
            name: "kcmp",
            distinguishing: false,
            run: |_| unsafe {
                let pid = libc::getpid();
                // KCMP_FILE (0) of descriptor 0 with itself.
                errno_of(libc::syscall(libc::SYS_kcmp, pid, pid, 0, 0, 0))
            },
        },
        Probe {
            name: "ioctl(FIONREAD)",
            distinguishing: false,
            run: |_| unsafe {
                let mut fds = [0; 2];
                if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
                    return -1;
                }
                let mut n: libc::c_int = 0;
                errno_of(libc::ioctl(fds[0], libc::FIONREAD, &mut n).into())
            },
        },
        Probe {
            name: "personality(query)",
            distinguishing: false,
            run: |_| unsafe { errno_of(libc::personality(0xffff_ffff).into()) },
        },
        Probe {
            name: "personality(PER_LINUX)",
            distinguishing: false,
            run: |_| unsafe { errno_of(libc::personality(0).into()) },
        },
        Probe {
            name: "fork",
            distinguishing: false,
            run: |scratch| in_grandchild(scratch, |_| 0),
        },
        Probe {
            name: "unshare(NEWUSER|NEWNS) + mount tmpfs",
            distinguishing: false,
            run: |scratch| {
                in_grandchild(scratch, |scratch| unsafe {
                    if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
                        return errno_of(-1);
                    }
                    if libc::mount(
                        c"none".as_ptr(),
                        scratch.dir.as_ptr(),
                        c"tmpfs".as_ptr(),
                        0,
                        c"size=64k".as_ptr().cast(),
                    ) != 0
                    {
                        return errno_of(-1);
                    }
                    errno_of(libc::umount2(scratch.dir.as_ptr(), 0).into())
                })
            },
        },
        Probe {
            name: "nested seccomp filter",
            distinguishing: false,
            run: |_| unsafe {
                let allow = [libc::sock_filter {
                    code: (libc::BPF_RET | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 0,
                    k: libc::SECCOMP_RET_ALLOW,
                }];
                let prog = libc::sock_fprog {
                    len: 1,
                    filter: allow.as_ptr() as *mut _,
                };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return errno_of(-1);
                }
                errno_of(libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog,
                ))
            },
        },
    ];

    /// Runs `f` in a forked grandchild and returns its exit status as the probe result (the
    /// grandchild exits with 0 or an errno), so what `f` changes (namespaces) stays there.
    fn in_grandchild(scratch: &Scratch, f: fn(&Scratch) -> i32) -> i32 {
        // SAFETY: the grandchild makes raw system calls only and leaves with `_exit`.
        unsafe {
            match libc::fork() {
                -1 => errno_of(-1),
                0 => libc::_exit(f(scratch)),
                pid => {
                    let mut status = 0;
                    if libc::waitpid(pid, &mut status, 0) != pid {
                        return errno_of(-1);
                    }
                    if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        -2
                    }
                }
            }
        }
    }

    /// Forks a child that installs the filter (or not), runs `probes` and reports their results.
    /// Returns the install result (0 or errno) and one result per probe.
    fn run_in_child(
        filter: Option<&Filter>,
        probes: &[Probe],
        scratch: &Scratch,
    ) -> (i32, Vec<i32>) {
        let (read_end, write_end): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only makes raw system calls on memory prepared before the fork and
        // leaves with `_exit`.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                drop(read_end);
                let mut results = [0i32; 64];
                let installed = filter.map_or(0, |f| {
                    f.install()
                        .err()
                        .and_then(|e| e.raw_os_error())
                        .unwrap_or(0)
                });
                results[0] = installed;
                if installed == 0 {
                    for (slot, probe) in results[1..].iter_mut().zip(probes) {
                        *slot = (probe.run)(scratch);
                    }
                }
                unsafe {
                    let bytes = (1 + probes.len()) * 4;
                    libc::write(write_end.as_raw_fd(), results.as_ptr().cast(), bytes);
                    libc::_exit(0);
                }
            }
            ForkResult::Parent { child } => {
                drop(write_end);
                let mut bytes = Vec::new();
                File::from(read_end).read_to_end(&mut bytes).unwrap();
                let status = waitpid(child, None).unwrap();
                assert_eq!(status, WaitStatus::Exited(child, 0), "the probe child died");
                let ints: Vec<i32> = bytes
                    .chunks_exact(4)
                    .map(|c| i32::from_ne_bytes(c.try_into().unwrap()))
                    .collect();
                assert_eq!(
                    ints.len(),
                    1 + probes.len(),
                    "short report from the probe child"
                );
                (ints[0], ints[1..].to_vec())
            }
        }
    }

    fn describe(result: i32) -> String {
        if result == 0 {
            "ok".into()
        } else {
            format!("{} ({result})", io::Error::from_raw_os_error(result))
        }
    }

    /// A private directory to mount on, removed when dropped.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new(tag: &str) -> ScratchDir {
            let dir = std::env::temp_dir().join(format!(
                "warren-seccomp-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            ScratchDir(dir)
        }

        fn scratch(&self) -> Scratch {
            Scratch {
                dir: CString::new(self.0.as_os_str().as_encoded_bytes()).unwrap(),
            }
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    #[test]
    fn the_filter_denies_with_eperm_in_a_real_process() {
        let filter = renderer_filter().unwrap();
        let dir = ScratchDir::new("deny");
        let scratch = dir.scratch();
        assert!(DENIED.len() < 63);
        let (_, baseline) = run_in_child(None, DENIED, &scratch);
        let (installed, filtered) = run_in_child(Some(filter), DENIED, &scratch);
        assert_eq!(installed, 0, "install failed: {}", describe(installed));
        let mut failures = Vec::new();
        for ((probe, before), after) in DENIED.iter().zip(&baseline).zip(&filtered) {
            println!(
                "{:<34} without filter: {:<40} with filter: {}",
                probe.name,
                describe(*before),
                describe(*after)
            );
            if *after != libc::EPERM {
                failures.push(format!(
                    "{} was not denied: {}",
                    probe.name,
                    describe(*after)
                ));
            }
            if probe.distinguishing && *before == libc::EPERM {
                failures.push(format!(
                    "{} fails with EPERM even without the filter, so the probe proves nothing",
                    probe.name
                ));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn what_the_sandbox_needs_still_works_under_the_filter() {
        let filter = renderer_filter().unwrap();
        let dir = ScratchDir::new("allow");
        let scratch = dir.scratch();
        let (_, baseline) = run_in_child(None, ALLOWED, &scratch);
        let (installed, filtered) = run_in_child(Some(filter), ALLOWED, &scratch);
        assert_eq!(installed, 0, "install failed: {}", describe(installed));
        let mut failures = Vec::new();
        for ((probe, before), after) in ALLOWED.iter().zip(&baseline).zip(&filtered) {
            println!(
                "{:<40} without filter: {:<30} with filter: {}",
                probe.name,
                describe(*before),
                describe(*after)
            );
            if *before != 0 {
                // Only user namespaces can be refused by the kernel itself (a sysctl, an LSM).
                println!(
                    "  skipped: the kernel refuses this even without the filter ({})",
                    describe(*before)
                );
                continue;
            }
            if *after != 0 {
                failures.push(format!(
                    "{} broke under the filter: {}",
                    probe.name,
                    describe(*after)
                ));
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    /// The real shape of a sandboxed renderer: our bubblewrap, and inside it the nested
    /// bubblewrap WebKit starts for its web process, all under the filter.
    #[test]
    fn nested_bubblewrap_runs_under_the_filter() {
        let bwrap = ["/usr/bin/bwrap", "/bin/bwrap"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(bwrap) = bwrap else {
            println!("skipped: bubblewrap is not installed (scripts/install-deps.sh installs it)");
            return;
        };
        let run = |filter: Option<&'static Filter>| {
            let mut cmd = Command::new(bwrap);
            cmd.args([
                "--unshare-user",
                "--unshare-pid",
                "--unshare-ipc",
                "--die-with-parent",
                "--new-session",
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--tmpfs",
                "/tmp",
                "--",
                bwrap,
                "--unshare-pid",
                "--unshare-net",
                "--unshare-uts",
                "--die-with-parent",
                "--ro-bind",
                "/",
                "/",
                "--dev",
                "/dev",
                "--proc",
                "/proc",
                "--tmpfs",
                "/tmp",
                "--",
                "/bin/sh",
                "-c",
                "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status",
            ])
            .stdin(Stdio::null());
            if let Some(filter) = filter {
                // SAFETY: `install` is async-signal-safe (see its contract).
                unsafe {
                    cmd.pre_exec(move || filter.install());
                }
            }
            cmd.output().expect("run bubblewrap")
        };
        let baseline = run(None);
        if !baseline.status.success() {
            println!(
                "skipped: nested bubblewrap fails here even without the filter: {}",
                String::from_utf8_lossy(&baseline.stderr)
            );
            return;
        }
        let started = Instant::now();
        let filtered = run(Some(renderer_filter().unwrap()));
        println!(
            "nested bubblewrap under the filter: {:?}",
            started.elapsed()
        );
        let stdout = String::from_utf8_lossy(&filtered.stdout);
        assert!(
            filtered.status.success(),
            "nested bubblewrap failed under the filter: {}",
            String::from_utf8_lossy(&filtered.stderr)
        );
        // The innermost process carries our filter (mode 2) and no_new_privs.
        assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
        assert!(stdout.contains("NoNewPrivs:\t1"), "{stdout}");
    }

    #[test]
    fn install_cost() {
        let filter = renderer_filter().unwrap();
        // SAFETY: the child makes raw system calls only and leaves with `_exit`.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => unsafe {
                let mut before: libc::timespec = std::mem::zeroed();
                let mut after: libc::timespec = std::mem::zeroed();
                libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut before);
                let ok = filter.install().is_ok();
                libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut after);
                let micros = (after.tv_sec - before.tv_sec) * 1_000_000
                    + (after.tv_nsec - before.tv_nsec) / 1000;
                // Exit status: microseconds, capped, or 255 when install failed.
                libc::_exit(if ok { micros.min(254) as i32 } else { 255 });
            },
            ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, code) => {
                    assert_ne!(code, 255, "install failed in the child");
                    println!(
                        "install of {} instructions: {code} µs (254 = 254 or more)",
                        filter.instructions()
                    );
                }
                other => panic!("the child did not exit: {other:?}"),
            },
        }
    }
}
