//! The lifecycle policy: which background tabs to freeze or discard, decided from a clock and memory readings only (no processes, no UI), so unit tests drive it with fakes.
//!
//! The tab model describes every tab as [`TabFacts`], [`crate::memory::read`] supplies
//! [`Readings`], and [`decide`] returns a [`Plan`]: the tabs to discard (end the renderer tree,
//! keep a snapshot) and the tabs to freeze (SIGSTOP the renderer tree). The caller runs `decide`
//! every few seconds and whenever the tab set changes; the plan is a pure function of its inputs.
//!
//! # Words
//!
//! * A tab is **live** while it has a renderer: [`Life::Starting`], [`Life::Live`] or
//!   [`Life::Frozen`]. Discarded and crashed tabs, and tabs being discarded, are
//!   [`Life::NotLive`]: they count for nothing and are never chosen.
//! * **Least recently used** (LRU) order sorts by [`TabFacts::last_active`], oldest first, and
//!   breaks ties by the smaller [`TabId`] (the tab opened first).
//!
//! # Protections
//!
//! [`protection`] names the strongest protection of a tab, checked in this order:
//!
//! | protection | when | kind |
//! |---|---|---|
//! | [`Protection::Active`] | the tab is the active tab | hard |
//! | [`Protection::Pinned`] | the tab is pinned | hard |
//! | [`Protection::FormInput`] | the page has edited, unsubmitted form input | hard |
//! | [`Protection::RecentlyRestored`] | the user restored it from discarded less than [`STORM_GUARD`] (60 s) ago: the storm guard, so the policy does not discard a tab again as soon as the user brought it back | hard |
//! | [`Protection::PlayingAudio`] | the page plays audio | soft |
//! | [`Protection::RecentlyVisible`] | it was the active tab less than [`RECENTLY_VISIBLE`] (10 s) ago (a tab opened in the background counts from its opening) | soft |
//!
//! **Hard** protections are never overridden by the automatic policy. **Soft** ones are
//! overridden by the two hard caps (`--max-live-tabs`, `--memory-budget`) and respected by the
//! low-memory rule and the idle timers. A tab is **capped-eligible** when no hard protection
//! covers it, **fully eligible** when no protection at all covers it.
//!
//! # Rules, in the order [`decide`] applies them
//!
//! No tab is chosen twice: a tab one rule discards is not considered by the later rules, and a
//! discarded tab is never also frozen.
//!
//! 1. **`--max-live-tabs N`** ([`Reason::MaxLiveTabs`]): while more than N tabs are live, discard
//!    the least recently used capped-eligible live tab. Tabs still starting count, and may be
//!    chosen: otherwise a burst of new background tabs could never be brought under the cap.
//! 2. **`--memory-budget`** ([`Reason::MemoryBudget`]): the estimate is the summed
//!    [`TabFacts::memory_kb`] of the live tabs not discarded by rule 1 (an unmeasured tab counts
//!    0). While it exceeds the budget, discard the least recently used capped-eligible live tab
//!    and subtract its footprint. A tab whose footprint is unknown (or 0) is skipped: discarding
//!    it cannot lower the estimate, so the rule would discard it and still go on to the next one.
//! 3. **Low memory** ([`Reason::LowMemory`]): the system is under pressure when MemAvailable is
//!    below `--low-memory-percent` percent of MemTotal, or when the memory PSI `some avg10` is at
//!    least [`PSI_SOME_AVG10_PRESSURE`]. Under pressure, discard **one** tab per call: the least
//!    recently used fully eligible tab that is [`Life::Live`] or [`Life::Frozen`] (a starting
//!    tab has not grown yet and has no history to keep). One per call because freed memory takes
//!    a few seconds to show in the readings; the caller calls again, and carries out the next
//!    such discard only [`LOW_MEMORY_COOLDOWN`] after the last. `--low-memory-percent 0`
//!    turns the whole rule off, PSI included, so the user has one switch for it. Missing
//!    readings (no MemAvailable, no PSI on this kernel) never mean pressure.
//! 4. **Idle timers** ([`Reason::Idle`]), fully eligible tabs only, idle since
//!    `max(last_active, live_since)` (a thawed or restarted renderer starts a new idle period):
//!    idle for at least `--discard-after` → discard (a [`Life::Live`] or [`Life::Frozen`] tab);
//!    otherwise idle for at least `--freeze-after` → freeze (a [`Life::Live`] tab only: a
//!    starting tab is not frozen half-way through its start, a frozen one already is). Discard
//!    wins over freeze for the same tab.
//!
//! # Over the cap
//!
//! When the hard-protected tabs alone keep the live count above `--max-live-tabs` (or their
//! footprint above `--memory-budget`), [`Plan::over_cap`] explains it in one line for the Task
//! Manager, for example `5 tabs are live, over --max-live-tabs 3: the others are protected (1
//! active, 2 pinned, 1 form input)`. Both explanations are joined with `; ` when both apply.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use warren_ipc::TabId;

/// How long after it was last the active tab a tab stays protected as "recently visible".
pub const RECENTLY_VISIBLE: Duration = Duration::from_secs(10);

/// How long after the user restored a discarded tab the automatic policy leaves it alone.
pub const STORM_GUARD: Duration = Duration::from_secs(60);

/// How long the caller waits after a low-memory discard before it carries out another: freed
/// memory takes a few seconds to show in MemAvailable, and PSI `some avg10` is an average over
/// 10 s, so readings taken sooner still show the pressure the last discard relieved.
pub const LOW_MEMORY_COOLDOWN: Duration = Duration::from_secs(10);

/// The memory PSI `some avg10` (percent of the last 10 s in which at least one task stalled
/// waiting for memory) at or above which the system counts as under memory pressure.
///
/// A healthy system reads 0; stalls start when the kernel reclaims hard (refaulting page cache,
/// swapping in). At 10 % the machine lost a tenth of its time to memory stalls, which users
/// notice as jank, yet it is far from thrashing: that is the moment when giving memory back by
/// discarding a background tab is cheap and helps. It sits in the range low-memory killers act
/// on (Android's lmkd starts killing cached apps at 70 ms of partial stall per second, 7 %), a
/// little higher because a discarded tab costs the user a reload.
pub const PSI_SOME_AVG10_PRESSURE: f64 = 10.0;

/// The user's lifecycle settings (command-line flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `--max-live-tabs N`: at most this many tabs have a live renderer.
    pub max_live_tabs: Option<usize>,
    /// `--memory-budget MiB`, in KiB: the live renderers' total footprint stays under it.
    pub memory_budget_kb: Option<u64>,
    /// `--low-memory-percent P`: discard when MemAvailable falls under this share of MemTotal.
    pub low_memory_percent: u8,
    /// `--freeze-after SECS`: freeze background tabs idle this long (`None`: never).
    pub freeze_after: Option<Duration>,
    /// `--discard-after SECS`: discard background tabs idle this long (`None`: never).
    pub discard_after: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_live_tabs: None,
            memory_budget_kb: None,
            low_memory_percent: 10,
            freeze_after: Some(Duration::from_secs(300)),
            discard_after: None,
        }
    }
}

/// Whether a tab has a renderer, as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Life {
    /// The renderer is starting (no `Ready` yet).
    Starting,
    /// The renderer runs.
    Live,
    /// The renderer tree is stopped (SIGSTOP).
    Frozen,
    /// No renderer: discarded, crashed, or being discarded.
    NotLive,
}

impl Life {
    /// Whether the tab has a renderer (counts toward `--max-live-tabs` and `--memory-budget`).
    pub fn is_live(self) -> bool {
        !matches!(self, Self::NotLive)
    }
}

/// What the policy needs to know of one tab; the tab model builds one per tab.
#[derive(Clone, Debug, PartialEq)]
pub struct TabFacts {
    pub id: TabId,
    pub life: Life,
    /// The tab is the active tab of the window.
    pub active: bool,
    pub pinned: bool,
    pub playing_audio: bool,
    /// The page has edited, unsubmitted form input.
    pub form_input: bool,
    /// When it was last the active tab: the active tab says `now`, a tab opened in the
    /// background says when it was opened.
    pub last_active: Instant,
    /// When its renderer started or was last thawed.
    pub live_since: Option<Instant>,
    /// The last time the user restored it from discarded (by activating it).
    pub restored_at: Option<Instant>,
    /// Its renderer tree's footprint in KiB, when measured.
    pub memory_kb: Option<u64>,
}

/// System memory readings (see [`crate::memory::read`]); `None` where the kernel does not say.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Readings {
    /// MemTotal from `/proc/meminfo`, in KiB.
    pub mem_total_kb: Option<u64>,
    /// MemAvailable from `/proc/meminfo`, in KiB.
    pub mem_available_kb: Option<u64>,
    /// `some avg10` from `/proc/pressure/memory`, in percent.
    pub psi_some_avg10: Option<f64>,
}

/// Why a tab is exempt from some or all of the automatic policy. Variants are listed strongest
/// first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protection {
    Active,
    Pinned,
    FormInput,
    RecentlyRestored,
    PlayingAudio,
    RecentlyVisible,
}

impl Protection {
    /// Every protection, strongest first.
    pub const ALL: [Protection; 6] = [
        Self::Active,
        Self::Pinned,
        Self::FormInput,
        Self::RecentlyRestored,
        Self::PlayingAudio,
        Self::RecentlyVisible,
    ];

    /// The name the UI and the control socket (`"protected"`) show.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pinned => "pinned",
            Self::FormInput => "form input",
            Self::RecentlyRestored => "recently restored",
            Self::PlayingAudio => "playing audio",
            Self::RecentlyVisible => "recently visible",
        }
    }

    /// Whether even the hard caps leave a tab with this protection alone.
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            Self::Active | Self::Pinned | Self::FormInput | Self::RecentlyRestored
        )
    }
}

/// The strongest protection that covers `tab` at `now`, in the order of [`Protection::ALL`].
pub fn protection(tab: &TabFacts, now: Instant) -> Option<Protection> {
    let within = |since: Instant, span: Duration| now.saturating_duration_since(since) < span;
    if tab.active {
        Some(Protection::Active)
    } else if tab.pinned {
        Some(Protection::Pinned)
    } else if tab.form_input {
        Some(Protection::FormInput)
    } else if tab.restored_at.is_some_and(|t| within(t, STORM_GUARD)) {
        Some(Protection::RecentlyRestored)
    } else if tab.playing_audio {
        Some(Protection::PlayingAudio)
    } else if within(tab.last_active, RECENTLY_VISIBLE) {
        Some(Protection::RecentlyVisible)
    } else {
        None
    }
}

/// Why the policy discards a tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// More tabs are live than `--max-live-tabs` allows.
    MaxLiveTabs,
    /// The live tabs' footprint exceeds `--memory-budget`.
    MemoryBudget,
    /// The system is low on memory.
    LowMemory,
    /// The tab was idle for `--discard-after`.
    Idle,
}

impl Reason {
    /// A short name for logs and the control socket.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MaxLiveTabs => "max live tabs",
            Self::MemoryBudget => "memory budget",
            Self::LowMemory => "low memory",
            Self::Idle => "idle",
        }
    }
}

/// What to do now. Every tab appears at most once in `discard` and `freeze` together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Tabs to discard, in the order the rules chose them.
    pub discard: Vec<(TabId, Reason)>,
    /// Tabs to freeze, least recently used first.
    pub freeze: Vec<TabId>,
    /// Why the live tabs stay over a hard cap, when protected tabs keep them there.
    pub over_cap: Option<String>,
}

/// Whether `readings` show memory pressure under `config` (rule 3 of the module docs).
pub fn under_pressure(config: &Config, readings: &Readings) -> bool {
    if config.low_memory_percent == 0 {
        return false;
    }
    let low_available = match (readings.mem_available_kb, readings.mem_total_kb) {
        (Some(available), Some(total)) if total > 0 => {
            u128::from(available) * 100 < u128::from(total) * u128::from(config.low_memory_percent)
        }
        _ => false,
    };
    let stalling = readings
        .psi_some_avg10
        .is_some_and(|avg| avg >= PSI_SOME_AVG10_PRESSURE);
    low_available || stalling
}

/// Applies the rules of the module docs to `tabs` at `now`.
pub fn decide(config: &Config, tabs: &[TabFacts], readings: &Readings, now: Instant) -> Plan {
    // The live tabs, least recently used first, each with its protection.
    let mut live: Vec<(&TabFacts, Option<Protection>)> = tabs
        .iter()
        .filter(|t| t.life.is_live())
        .map(|t| (t, protection(t, now)))
        .collect();
    live.sort_by_key(|(t, _)| (t.last_active, t.id));
    let capped_eligible = |p: Option<Protection>| !p.is_some_and(Protection::is_hard);

    let mut plan = Plan::default();
    let mut chosen: HashSet<TabId> = HashSet::new();
    let mut over_cap: Vec<String> = Vec::new();

    if let Some(max) = config.max_live_tabs {
        let mut count = live.len();
        for &(tab, prot) in &live {
            if count <= max {
                break;
            }
            if capped_eligible(prot) && chosen.insert(tab.id) {
                plan.discard.push((tab.id, Reason::MaxLiveTabs));
                count -= 1;
            }
        }
        if count > max {
            let kept = remaining(&live, &chosen, |_| true);
            over_cap.push(format!(
                "{}, over --max-live-tabs {max}: {} ({})",
                tabs_are_live(live.len()),
                protected_phrase(kept.len(), live.len()),
                breakdown(&kept),
            ));
        }
    }

    if let Some(budget) = config.memory_budget_kb {
        let footprint = |t: &TabFacts| t.memory_kb.unwrap_or(0);
        let total: u64 = live.iter().map(|(t, _)| footprint(t)).sum();
        let mut estimate: u64 = live
            .iter()
            .filter(|(t, _)| !chosen.contains(&t.id))
            .map(|(t, _)| footprint(t))
            .sum();
        for &(tab, prot) in &live {
            if estimate <= budget {
                break;
            }
            if capped_eligible(prot) && footprint(tab) > 0 && chosen.insert(tab.id) {
                plan.discard.push((tab.id, Reason::MemoryBudget));
                estimate -= footprint(tab);
            }
        }
        if estimate > budget {
            let holders = remaining(&live, &chosen, |t| footprint(t) > 0);
            let share = if estimate == total {
                "all of it is in protected tabs".to_owned()
            } else {
                format!("{} MiB of it is in protected tabs", mib(estimate))
            };
            over_cap.push(format!(
                "the live tabs use {} MiB, over --memory-budget {} MiB: {share} ({})",
                mib(total),
                mib(budget),
                breakdown(&holders),
            ));
        }
    }

    if under_pressure(config, readings) {
        let victim = live.iter().find(|(t, p)| {
            p.is_none() && matches!(t.life, Life::Live | Life::Frozen) && !chosen.contains(&t.id)
        });
        if let Some(&(tab, _)) = victim {
            chosen.insert(tab.id);
            plan.discard.push((tab.id, Reason::LowMemory));
        }
    }

    if config.discard_after.is_some() || config.freeze_after.is_some() {
        for &(tab, prot) in &live {
            if prot.is_some() || chosen.contains(&tab.id) {
                continue;
            }
            let since = tab
                .live_since
                .map_or(tab.last_active, |s| s.max(tab.last_active));
            let idle = now.saturating_duration_since(since);
            let past = |limit: Option<Duration>| limit.is_some_and(|l| idle >= l);
            if past(config.discard_after) && matches!(tab.life, Life::Live | Life::Frozen) {
                chosen.insert(tab.id);
                plan.discard.push((tab.id, Reason::Idle));
            } else if past(config.freeze_after) && tab.life == Life::Live {
                chosen.insert(tab.id);
                plan.freeze.push(tab.id);
            }
        }
    }

    if !over_cap.is_empty() {
        plan.over_cap = Some(over_cap.join("; "));
    }
    plan
}

/// The protections of the live tabs not chosen so far that pass `keep`.
fn remaining(
    live: &[(&TabFacts, Option<Protection>)],
    chosen: &HashSet<TabId>,
    keep: impl Fn(&TabFacts) -> bool,
) -> Vec<Option<Protection>> {
    live.iter()
        .filter(|(t, _)| !chosen.contains(&t.id) && keep(t))
        .map(|&(_, p)| p)
        .collect()
}

fn tabs_are_live(count: usize) -> String {
    if count == 1 {
        "1 tab is live".to_owned()
    } else {
        format!("{count} tabs are live")
    }
}

fn protected_phrase(kept: usize, live: usize) -> &'static str {
    if kept < live {
        "the others are protected"
    } else if kept == 1 {
        "it is protected"
    } else {
        "all are protected"
    }
}

/// "1 active, 2 pinned, 1 form input": how many tabs each protection covers, strongest first.
fn breakdown(protections: &[Option<Protection>]) -> String {
    let mut parts: Vec<String> = Protection::ALL
        .iter()
        .filter_map(|&kind| {
            let n = protections.iter().filter(|&&p| p == Some(kind)).count();
            (n > 0).then(|| format!("{n} {}", kind.as_str()))
        })
        .collect();
    let unprotected = protections.iter().filter(|p| p.is_none()).count();
    if unprotected > 0 {
        parts.push(format!("{unprotected} unprotected"));
    }
    parts.join(", ")
}

/// KiB to MiB, rounded up, so a footprint just over a budget never reads as equal to it.
fn mib(kb: u64) -> u64 {
    kb.div_ceil(1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    /// A fixed origin for fake clocks; `at(s)` is `s` seconds after it.
    struct Clock(Instant);

    impl Clock {
        fn new() -> Self {
            Self(Instant::now())
        }
        fn at(&self, secs: u64) -> Instant {
            self.0 + Duration::from_secs(secs)
        }
    }

    const NOW: u64 = 10_000;

    /// A live, unprotected background tab last active at `last_active` seconds.
    fn tab(clock: &Clock, id: u64, last_active: u64) -> TabFacts {
        TabFacts {
            id: TabId(id),
            life: Life::Live,
            active: false,
            pinned: false,
            playing_audio: false,
            form_input: false,
            last_active: clock.at(last_active),
            live_since: Some(clock.at(last_active.saturating_sub(5))),
            restored_at: None,
            memory_kb: Some(100 * 1024),
        }
    }

    /// Gives `tab` exactly the protection `p` at `NOW`.
    fn protect(clock: &Clock, tab: &mut TabFacts, p: Protection) {
        match p {
            Protection::Active => {
                tab.active = true;
                tab.last_active = clock.at(NOW);
            }
            Protection::Pinned => tab.pinned = true,
            Protection::FormInput => tab.form_input = true,
            Protection::RecentlyRestored => tab.restored_at = Some(clock.at(NOW - 30)),
            Protection::PlayingAudio => tab.playing_audio = true,
            Protection::RecentlyVisible => tab.last_active = clock.at(NOW - 3),
        }
        assert_eq!(protection(tab, clock.at(NOW)), Some(p));
    }

    fn ids(plan: &Plan) -> Vec<u64> {
        plan.discard.iter().map(|(id, _)| id.0).collect()
    }

    fn no_timers() -> Config {
        Config {
            max_live_tabs: None,
            memory_budget_kb: None,
            low_memory_percent: 0,
            freeze_after: None,
            discard_after: None,
        }
    }

    fn calm() -> Readings {
        Readings {
            mem_total_kb: Some(16 * 1024 * 1024),
            mem_available_kb: Some(8 * 1024 * 1024),
            psi_some_avg10: Some(0.0),
        }
    }

    fn pressed() -> Readings {
        Readings {
            mem_total_kb: Some(16 * 1024 * 1024),
            mem_available_kb: Some(100 * 1024),
            psi_some_avg10: Some(0.0),
        }
    }

    /// The five rules, each set up so that it alone would choose the one tab of `tabs` that is
    /// not the active tab (id 1 is active, id 2 is the candidate).
    #[derive(Clone, Copy, Debug)]
    enum Rule {
        MaxLive,
        Budget,
        LowMemory,
        IdleDiscard,
        IdleFreeze,
    }

    const RULES: [Rule; 5] = [
        Rule::MaxLive,
        Rule::Budget,
        Rule::LowMemory,
        Rule::IdleDiscard,
        Rule::IdleFreeze,
    ];

    /// Runs `rule` over an active tab and `candidate`; true if the candidate was chosen.
    fn chosen_by(clock: &Clock, rule: Rule, candidate: &TabFacts) -> bool {
        let mut active = tab(clock, 1, NOW);
        active.active = true;
        active.memory_kb = Some(10);
        let mut config = no_timers();
        let mut readings = calm();
        match rule {
            Rule::MaxLive => config.max_live_tabs = Some(1),
            Rule::Budget => config.memory_budget_kb = Some(50 * 1024),
            Rule::LowMemory => {
                config.low_memory_percent = 10;
                readings = pressed();
            }
            Rule::IdleDiscard => config.discard_after = Some(Duration::from_secs(60)),
            Rule::IdleFreeze => config.freeze_after = Some(Duration::from_secs(60)),
        }
        let plan = decide(
            &config,
            &[active, candidate.clone()],
            &readings,
            clock.at(NOW),
        );
        assert!(!ids(&plan).contains(&1) && !plan.freeze.contains(&TabId(1)));
        let discarded = ids(&plan) == [2];
        let frozen = plan.freeze == [TabId(2)];
        match rule {
            Rule::IdleFreeze => assert!(!discarded),
            _ => assert!(!frozen),
        }
        discarded || frozen
    }

    #[test]
    fn every_rule_chooses_an_unprotected_idle_tab() {
        let clock = Clock::new();
        let candidate = tab(&clock, 2, NOW - 1000);
        for rule in RULES {
            assert!(chosen_by(&clock, rule, &candidate), "{rule:?}");
        }
    }

    #[test]
    fn hard_protections_hold_against_every_rule() {
        let clock = Clock::new();
        for p in Protection::ALL.into_iter().filter(|p| p.is_hard()) {
            let mut candidate = tab(&clock, 2, NOW - 1000);
            protect(&clock, &mut candidate, p);
            for rule in RULES {
                assert!(!chosen_by(&clock, rule, &candidate), "{p:?} vs {rule:?}");
            }
        }
    }

    #[test]
    fn soft_protections_yield_to_the_caps_only() {
        let clock = Clock::new();
        for p in [Protection::PlayingAudio, Protection::RecentlyVisible] {
            assert!(!p.is_hard());
            let mut candidate = tab(&clock, 2, NOW - 1000);
            protect(&clock, &mut candidate, p);
            for rule in RULES {
                let expected = matches!(rule, Rule::MaxLive | Rule::Budget);
                assert_eq!(
                    chosen_by(&clock, rule, &candidate),
                    expected,
                    "{p:?} vs {rule:?}"
                );
            }
        }
    }

    #[test]
    fn protection_names_and_strength_order() {
        let names: Vec<&str> = Protection::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "active",
                "pinned",
                "form input",
                "recently restored",
                "playing audio",
                "recently visible"
            ]
        );
        let clock = Clock::new();
        let now = clock.at(NOW);
        let mut t = tab(&clock, 2, NOW - 5);
        assert_eq!(protection(&t, now), Some(Protection::RecentlyVisible));
        t.playing_audio = true;
        assert_eq!(protection(&t, now), Some(Protection::PlayingAudio));
        t.restored_at = Some(clock.at(NOW - 1));
        assert_eq!(protection(&t, now), Some(Protection::RecentlyRestored));
        t.form_input = true;
        assert_eq!(protection(&t, now), Some(Protection::FormInput));
        t.pinned = true;
        assert_eq!(protection(&t, now), Some(Protection::Pinned));
        t.active = true;
        assert_eq!(protection(&t, now), Some(Protection::Active));
        // Recently visible ends at exactly 10 s.
        let t = tab(&clock, 3, NOW - 9);
        assert_eq!(protection(&t, now), Some(Protection::RecentlyVisible));
        let t = tab(&clock, 3, NOW - 10);
        assert_eq!(protection(&t, now), None);
    }

    #[test]
    fn max_live_tabs_discards_least_recently_used_first() {
        let clock = Clock::new();
        let mut active = tab(&clock, 1, NOW);
        active.active = true;
        let tabs = vec![
            active,
            tab(&clock, 2, NOW - 100),
            tab(&clock, 3, NOW - 500),
            tab(&clock, 4, NOW - 300),
            tab(&clock, 5, NOW - 200),
        ];
        let config = Config {
            max_live_tabs: Some(3),
            ..no_timers()
        };
        let plan = decide(&config, &tabs, &calm(), clock.at(NOW));
        assert_eq!(
            plan.discard,
            [
                (TabId(3), Reason::MaxLiveTabs),
                (TabId(4), Reason::MaxLiveTabs)
            ]
        );
        assert_eq!(plan.over_cap, None);
        assert!(plan.freeze.is_empty());
    }

    #[test]
    fn ties_in_last_active_go_to_the_smaller_id() {
        let clock = Clock::new();
        let tabs = vec![
            tab(&clock, 9, NOW - 100),
            tab(&clock, 4, NOW - 100),
            tab(&clock, 7, NOW - 100),
        ];
        let config = Config {
            max_live_tabs: Some(1),
            ..no_timers()
        };
        let plan = decide(&config, &tabs, &calm(), clock.at(NOW));
        assert_eq!(ids(&plan), [4, 7]);
        let config = Config {
            low_memory_percent: 10,
            ..no_timers()
        };
        let plan = decide(&config, &tabs, &pressed(), clock.at(NOW));
        assert_eq!(ids(&plan), [4]);
        let config = Config {
            freeze_after: Some(Duration::from_secs(10)),
            ..no_timers()
        };
        let plan = decide(&config, &tabs, &calm(), clock.at(NOW));
        assert_eq!(plan.freeze, [TabId(4), TabId(7), TabId(9)]);
    }

    #[test]
    fn only_live_tabs_count_and_starting_ones_count_too() {
        let clock = Clock::new();
        let mut discarded = tab(&clock, 2, NOW - 900);
        discarded.life = Life::NotLive;
        let mut frozen = tab(&clock, 3, NOW - 800);
        frozen.life = Life::Frozen;
        let mut starting = tab(&clock, 4, NOW - 700);
        starting.life = Life::Starting;
        let mut active = tab(&clock, 5, NOW);
        active.active = true;
        let tabs = vec![discarded, frozen, starting, active];
        let config = Config {
            max_live_tabs: Some(3),
            ..no_timers()
        };
        assert_eq!(
            decide(&config, &tabs, &calm(), clock.at(NOW)),
            Plan::default()
        );
        let config = Config {
            max_live_tabs: Some(1),
            ..no_timers()
        };
        let plan = decide(&config, &tabs, &calm(), clock.at(NOW));
        assert_eq!(ids(&plan), [3, 4]);
    }

    #[test]
    fn memory_budget_discards_until_the_estimate_fits() {
        let clock = Clock::new();
        let mut active = tab(&clock, 1, NOW);
        active.active = true;
        active.memory_kb = Some(200 * 1024);
        let mut a = tab(&clock, 2, NOW - 500);
        a.memory_kb = Some(100 * 1024);
        let mut b = tab(&clock, 3, NOW - 400);
        b.memory_kb = Some(300 * 1024);
        let mut c = tab(&clock, 4, NOW - 300);
        c.memory_kb = Some(100 * 1024);
        let tabs = vec![active, a, b, c];
        // 700 MiB live, budget 350 MiB: drop 2 (600 left), then 3 (300 left).
        let config = Config {
            memory_budget_kb: Some(350 * 1024),
            ..no_timers()
        };
        let plan = decide(&config, &tabs, &calm(), clock.at(NOW));
        assert_eq!(
            plan.discard,
            [
                (TabId(2), Reason::MemoryBudget),
                (TabId(3), Reason::MemoryBudget)
            ]
        );
        assert_eq!(plan.over_cap, None);
        // Exactly at the budget is within it.
        let config = Config {
            memory_budget_kb: Some(700 * 1024),
            ..no_timers()
        };
        assert_eq!(
            decide(&config, &tabs, &calm(), clock.at(NOW)),
            Plan::default()
        );
    }

    #[test]
    fn memory_budget_counts_unknown_footprints_as_zero_and_skips_them() {
        let clock = Clock::new();
        let mut unknown = tab(&clock, 2, NOW - 900);
        unknown.memory_kb = None;
        let mut known = tab(&clock, 3, NOW - 100);
        known.memory_kb = Some(300 * 1024);
        let mut also_unknown = tab(&clock, 4, NOW - 50);
        also_unknown.memory_kb = None;
        let config = Config {
            memory_budget_kb: Some(200 * 1024),
            ..no_timers()
        };
        let tabs = vec![unknown.clone(), known, also_unknown.clone()];
        let plan = decide(&config, &tabs, &calm(), clock.at(NOW));
        assert_eq!(plan.discard, [(TabId(3), Reason::MemoryBudget)]);
        // Unmeasured tabs alone never exceed a budget.
        let config = Config {
            memory_budget_kb: Some(0),
            ..no_timers()
        };
        let tabs = vec![unknown, also_unknown];
        assert_eq!(
            decide(&config, &tabs, &calm(), clock.at(NOW)),
            Plan::default()
        );
    }

    #[test]
    fn the_budget_does_not_discard_again_what_the_live_cap_took() {
        let clock = Clock::new();
        let mut active = tab(&clock, 1, NOW);
        active.active = true;
        active.memory_kb = Some(100 * 1024);
        let mut big = tab(&clock, 2, NOW - 900);
        big.memory_kb = Some(500 * 1024);
        let mut small = tab(&clock, 3, NOW - 100);
        small.memory_kb = Some(300 * 1024);
        let tabs = vec![active, big, small];
        // The cap takes 2; its 500 MiB leave 400 MiB, within 450 MiB: nothing for the budget.
        let config = Config {
            max_live_tabs: Some(2),
            memory_budget_kb: Some(450 * 1024),
            ..no_timers()
        };
        let plan = decide(&config, &tabs, &calm(), clock.at(NOW));
        assert_eq!(plan.discard, [(TabId(2), Reason::MaxLiveTabs)]);
        // With a budget of 350 MiB the budget takes the next one, 3.
        let config = Config {
            max_live_tabs: Some(2),
            memory_budget_kb: Some(350 * 1024),
            ..no_timers()
        };
        let plan = decide(&config, &tabs, &calm(), clock.at(NOW));
        assert_eq!(
            plan.discard,
            [
                (TabId(2), Reason::MaxLiveTabs),
                (TabId(3), Reason::MemoryBudget)
            ]
        );
    }

    #[test]
    fn pressure_by_mem_available() {
        let config = Config {
            low_memory_percent: 10,
            ..no_timers()
        };
        let readings = |available| Readings {
            mem_total_kb: Some(1000),
            mem_available_kb: Some(available),
            psi_some_avg10: None,
        };
        assert!(under_pressure(&config, &readings(99)));
        assert!(!under_pressure(&config, &readings(100)));
        assert!(!under_pressure(&config, &readings(1000)));
        // Missing or nonsensical readings are not pressure.
        assert!(!under_pressure(&config, &Readings::default()));
        let no_total = Readings {
            mem_total_kb: Some(0),
            mem_available_kb: Some(0),
            psi_some_avg10: None,
        };
        assert!(!under_pressure(&config, &no_total));
        // Huge values do not overflow.
        let huge = Readings {
            mem_total_kb: Some(u64::MAX),
            mem_available_kb: Some(u64::MAX / 20),
            psi_some_avg10: None,
        };
        assert!(under_pressure(&config, &huge));
    }

    #[test]
    fn pressure_by_psi() {
        let config = Config {
            low_memory_percent: 10,
            ..no_timers()
        };
        let psi = |avg| Readings {
            psi_some_avg10: Some(avg),
            ..calm()
        };
        assert!(under_pressure(&config, &psi(PSI_SOME_AVG10_PRESSURE)));
        assert!(under_pressure(&config, &psi(55.0)));
        assert!(!under_pressure(&config, &psi(9.99)));
        assert!(!under_pressure(&config, &psi(f64::NAN)));
        // PSI alone is enough when meminfo is unreadable.
        let only_psi = Readings {
            psi_some_avg10: Some(20.0),
            ..Readings::default()
        };
        assert!(under_pressure(&config, &only_psi));
    }

    #[test]
    fn low_memory_percent_zero_turns_the_rule_off() {
        let clock = Clock::new();
        let tabs = vec![tab(&clock, 2, NOW - 900)];
        let dire = Readings {
            mem_total_kb: Some(1000),
            mem_available_kb: Some(1),
            psi_some_avg10: Some(90.0),
        };
        let off = no_timers();
        assert!(!under_pressure(&off, &dire));
        assert_eq!(decide(&off, &tabs, &dire, clock.at(NOW)), Plan::default());
        let on = Config {
            low_memory_percent: 1,
            ..no_timers()
        };
        assert_eq!(
            decide(&on, &tabs, &dire, clock.at(NOW)).discard,
            [(TabId(2), Reason::LowMemory)]
        );
    }

    #[test]
    fn low_memory_discards_one_live_or_frozen_tab_per_call() {
        let clock = Clock::new();
        let mut starting = tab(&clock, 2, NOW - 900);
        starting.life = Life::Starting;
        let mut frozen = tab(&clock, 3, NOW - 800);
        frozen.life = Life::Frozen;
        let tabs = vec![starting, frozen, tab(&clock, 4, NOW - 700)];
        let config = Config {
            low_memory_percent: 10,
            ..no_timers()
        };
        let plan = decide(&config, &tabs, &pressed(), clock.at(NOW));
        assert_eq!(plan.discard, [(TabId(3), Reason::LowMemory)]);
        let psi = Readings {
            psi_some_avg10: Some(12.5),
            ..calm()
        };
        let plan = decide(&config, &tabs, &psi, clock.at(NOW));
        assert_eq!(plan.discard, [(TabId(3), Reason::LowMemory)]);
        assert_eq!(
            decide(&config, &tabs, &calm(), clock.at(NOW)),
            Plan::default()
        );
    }

    #[test]
    fn storm_guard_lasts_sixty_seconds_for_every_rule() {
        let clock = Clock::new();
        for rule in RULES {
            let mut candidate = tab(&clock, 2, NOW - 1000);
            candidate.restored_at = Some(clock.at(NOW - 59));
            assert!(!chosen_by(&clock, rule, &candidate), "59 s, {rule:?}");
            candidate.restored_at = Some(clock.at(NOW - 61));
            assert!(chosen_by(&clock, rule, &candidate), "61 s, {rule:?}");
        }
    }

    #[test]
    fn idle_timers_freeze_then_discard() {
        let clock = Clock::new();
        let config = Config {
            freeze_after: Some(Duration::from_secs(300)),
            discard_after: Some(Duration::from_secs(600)),
            ..no_timers()
        };
        let plan_for = |idle: u64, life: Life| {
            let mut t = tab(&clock, 2, NOW - idle);
            t.life = life;
            decide(&config, &[t], &calm(), clock.at(NOW))
        };
        assert_eq!(plan_for(299, Life::Live), Plan::default());
        assert_eq!(plan_for(300, Life::Live).freeze, [TabId(2)]);
        assert!(plan_for(300, Life::Live).discard.is_empty());
        // Discard wins over freeze.
        let plan = plan_for(600, Life::Live);
        assert_eq!(plan.discard, [(TabId(2), Reason::Idle)]);
        assert!(plan.freeze.is_empty());
        // A starting tab is neither frozen nor discarded by the timers; a frozen one is not frozen
        // again but is discarded when its time comes.
        assert_eq!(plan_for(5000, Life::Starting), Plan::default());
        assert_eq!(plan_for(400, Life::Frozen), Plan::default());
        assert_eq!(
            plan_for(600, Life::Frozen).discard,
            [(TabId(2), Reason::Idle)]
        );
        assert_eq!(plan_for(5000, Life::NotLive), Plan::default());
    }

    #[test]
    fn idle_time_counts_from_the_last_thaw() {
        let clock = Clock::new();
        let config = Config {
            freeze_after: Some(Duration::from_secs(300)),
            discard_after: Some(Duration::from_secs(600)),
            ..no_timers()
        };
        // Background for 1000 s, but thawed (or restarted) 100 s ago.
        let mut t = tab(&clock, 2, NOW - 1000);
        t.live_since = Some(clock.at(NOW - 100));
        assert_eq!(
            decide(&config, &[t.clone()], &calm(), clock.at(NOW)),
            Plan::default()
        );
        t.live_since = Some(clock.at(NOW - 350));
        let plan = decide(&config, &[t.clone()], &calm(), clock.at(NOW));
        assert_eq!((plan.freeze, plan.discard), (vec![TabId(2)], vec![]));
        t.live_since = Some(clock.at(NOW - 650));
        let plan = decide(&config, &[t.clone()], &calm(), clock.at(NOW));
        assert_eq!(plan.discard, [(TabId(2), Reason::Idle)]);
        // A renderer started long ago counts from when the tab was last active.
        t.live_since = Some(clock.at(0));
        t.last_active = clock.at(NOW - 310);
        let plan = decide(&config, &[t.clone()], &calm(), clock.at(NOW));
        assert_eq!(plan.freeze, [TabId(2)]);
        // No start time known: the last activation alone.
        t.live_since = None;
        let plan = decide(&config, &[t], &calm(), clock.at(NOW));
        assert_eq!(plan.freeze, [TabId(2)]);
    }

    #[test]
    fn over_cap_explains_protected_tabs() {
        let clock = Clock::new();
        let mut tabs = Vec::new();
        for (id, p) in [
            (1, Some(Protection::Active)),
            (2, Some(Protection::Pinned)),
            (3, Some(Protection::Pinned)),
            (4, Some(Protection::FormInput)),
            (5, None),
        ] {
            let mut t = tab(&clock, id, NOW - 1000 + id);
            if let Some(p) = p {
                protect(&clock, &mut t, p);
            }
            tabs.push(t);
        }
        let config = Config {
            max_live_tabs: Some(3),
            ..no_timers()
        };
        let plan = decide(&config, &tabs, &calm(), clock.at(NOW));
        assert_eq!(plan.discard, [(TabId(5), Reason::MaxLiveTabs)]);
        assert_eq!(
            plan.over_cap.as_deref(),
            Some(
                "5 tabs are live, over --max-live-tabs 3: the others are protected \
                 (1 active, 2 pinned, 1 form input)"
            )
        );
        // Once the tab is gone, all the remaining ones are protected.
        tabs[4].life = Life::NotLive;
        let plan = decide(&config, &tabs, &calm(), clock.at(NOW));
        assert!(plan.discard.is_empty());
        assert_eq!(
            plan.over_cap.as_deref(),
            Some(
                "4 tabs are live, over --max-live-tabs 3: all are protected \
                 (1 active, 2 pinned, 1 form input)"
            )
        );
        let config = Config {
            max_live_tabs: Some(0),
            ..no_timers()
        };
        let plan = decide(&config, &tabs[..1], &calm(), clock.at(NOW));
        assert_eq!(
            plan.over_cap.as_deref(),
            Some("1 tab is live, over --max-live-tabs 0: it is protected (1 active)")
        );
        // At the cap there is nothing to explain.
        let config = Config {
            max_live_tabs: Some(4),
            ..no_timers()
        };
        assert_eq!(
            decide(&config, &tabs, &calm(), clock.at(NOW)).over_cap,
            None
        );
    }

    #[test]
    fn over_cap_explains_the_memory_budget_and_joins_both() {
        let clock = Clock::new();
        let mut active = tab(&clock, 1, NOW);
        protect(&clock, &mut active, Protection::Active);
        active.memory_kb = Some(300 * 1024);
        let mut pinned = tab(&clock, 2, NOW - 900);
        protect(&clock, &mut pinned, Protection::Pinned);
        pinned.memory_kb = Some(250 * 1024);
        let mut plain = tab(&clock, 3, NOW - 800);
        plain.memory_kb = Some(100 * 1024);
        let tabs = vec![active, pinned, plain];
        let config = Config {
            memory_budget_kb: Some(500 * 1024),
            ..no_timers()
        };
        let plan = decide(&config, &tabs, &calm(), clock.at(NOW));
        assert_eq!(plan.discard, [(TabId(3), Reason::MemoryBudget)]);
        assert_eq!(
            plan.over_cap.as_deref(),
            Some(
                "the live tabs use 650 MiB, over --memory-budget 500 MiB: 550 MiB of it is in \
                 protected tabs (1 active, 1 pinned)"
            )
        );
        let config = Config {
            max_live_tabs: Some(1),
            memory_budget_kb: Some(500 * 1024),
            ..no_timers()
        };
        let plan = decide(&config, &tabs[..2], &calm(), clock.at(NOW));
        assert!(plan.discard.is_empty());
        assert_eq!(
            plan.over_cap.as_deref(),
            Some(
                "2 tabs are live, over --max-live-tabs 1: all are protected (1 active, \
                 1 pinned); the live tabs use 550 MiB, over --memory-budget 500 MiB: all of it \
                 is in protected tabs (1 active, 1 pinned)"
            )
        );
    }

    #[test]
    fn a_tab_every_rule_wants_is_chosen_once() {
        let clock = Clock::new();
        let mut active = tab(&clock, 1, NOW);
        active.active = true;
        let mut old = tab(&clock, 2, NOW - 5000);
        old.memory_kb = Some(900 * 1024);
        let config = Config {
            max_live_tabs: Some(1),
            memory_budget_kb: Some(1024),
            low_memory_percent: 10,
            freeze_after: Some(Duration::from_secs(1)),
            discard_after: Some(Duration::from_secs(2)),
        };
        let plan = decide(&config, &[active, old], &pressed(), clock.at(NOW));
        assert_eq!(plan.discard, [(TabId(2), Reason::MaxLiveTabs)]);
        assert!(plan.freeze.is_empty());
    }

    /// Random fact sets under random configurations: the invariants of the module docs hold.
    #[test]
    fn invariants_hold_for_random_tab_sets() {
        let mut rng = StdRng::seed_from_u64(0x5741_5252_454e);
        let clock = Clock::new();
        let now = clock.at(NOW);
        let lives = [Life::Starting, Life::Live, Life::Frozen, Life::NotLive];
        for round in 0..5000 {
            let count = rng.random_range(0..12u64);
            let active_id = rng.random_range(1..=count.max(1) + 1);
            let tabs: Vec<TabFacts> = (1..=count)
                .map(|id| {
                    let active = id == active_id;
                    let last_active = if active && rng.random_bool(0.7) {
                        NOW
                    } else {
                        // Few distinct times, so ties happen.
                        NOW - rng.random_range(0..8u64) * 15
                    };
                    TabFacts {
                        id: TabId(id),
                        life: lives[rng.random_range(0..lives.len())],
                        active,
                        pinned: rng.random_bool(0.15),
                        playing_audio: rng.random_bool(0.15),
                        form_input: rng.random_bool(0.15),
                        last_active: clock.at(last_active),
                        live_since: rng
                            .random_bool(0.8)
                            .then(|| clock.at(NOW - rng.random_range(0..200u64))),
                        restored_at: rng
                            .random_bool(0.3)
                            .then(|| clock.at(NOW - rng.random_range(0..120u64))),
                        memory_kb: rng
                            .random_bool(0.8)
                            .then(|| rng.random_range(0..400_000u64)),
                    }
                })
                .collect();
            let secs = |rng: &mut StdRng| {
                rng.random_bool(0.6)
                    .then(|| Duration::from_secs(rng.random_range(0..150)))
            };
            let config = Config {
                max_live_tabs: rng.random_bool(0.6).then(|| rng.random_range(0..6)),
                memory_budget_kb: rng.random_bool(0.5).then(|| rng.random_range(0..1_500_000)),
                low_memory_percent: rng.random_range(0..3u8) * 10,
                freeze_after: secs(&mut rng),
                discard_after: secs(&mut rng),
            };
            let readings = Readings {
                mem_total_kb: Some(1_000_000),
                mem_available_kb: Some(rng.random_range(0..1_000_000)),
                psi_some_avg10: Some(rng.random_range(0.0..30.0)),
            };
            let plan = decide(&config, &tabs, &readings, now);
            let context = format!("round {round}: {config:?} {tabs:#?} -> {plan:?}");
            let facts = |id: TabId| tabs.iter().find(|t| t.id == id).unwrap();

            let mut seen = HashSet::new();
            for id in plan
                .discard
                .iter()
                .map(|(id, _)| *id)
                .chain(plan.freeze.iter().copied())
            {
                assert!(seen.insert(id), "chosen twice: {context}");
                let t = facts(id);
                assert!(!t.active, "the active tab was chosen: {context}");
                assert!(
                    t.life.is_live(),
                    "a tab without renderer was chosen: {context}"
                );
            }
            for &(id, reason) in &plan.discard {
                let t = facts(id);
                let p = protection(t, now);
                match reason {
                    Reason::MaxLiveTabs | Reason::MemoryBudget => {
                        assert!(!p.is_some_and(Protection::is_hard), "{context}")
                    }
                    Reason::LowMemory | Reason::Idle => {
                        assert!(p.is_none(), "{context}");
                        assert!(matches!(t.life, Life::Live | Life::Frozen), "{context}");
                    }
                }
                if reason == Reason::MemoryBudget {
                    assert!(t.memory_kb.unwrap_or(0) > 0, "{context}");
                }
            }
            for &id in &plan.freeze {
                let t = facts(id);
                assert_eq!(t.life, Life::Live, "{context}");
                assert_eq!(protection(t, now), None, "{context}");
            }
            let low = plan
                .discard
                .iter()
                .filter(|(_, r)| *r == Reason::LowMemory)
                .count();
            assert!(
                low <= usize::from(under_pressure(&config, &readings)),
                "{context}"
            );

            // The live cap: met, or every tab left live is hard-protected and it is explained.
            // And no capped-eligible tab it spared is older than one it discarded.
            if let Some(max) = config.max_live_tabs {
                let by_cap: Vec<&TabFacts> = plan
                    .discard
                    .iter()
                    .filter(|(_, r)| *r == Reason::MaxLiveTabs)
                    .map(|(id, _)| facts(*id))
                    .collect();
                let left: Vec<&TabFacts> = tabs
                    .iter()
                    .filter(|t| t.life.is_live() && !by_cap.iter().any(|d| d.id == t.id))
                    .collect();
                if left.len() > max {
                    assert!(plan.over_cap.is_some(), "{context}");
                    for t in &left {
                        assert!(
                            protection(t, now).is_some_and(Protection::is_hard),
                            "{context}"
                        );
                    }
                }
                for spared in left
                    .iter()
                    .filter(|t| !protection(t, now).is_some_and(Protection::is_hard))
                {
                    for d in &by_cap {
                        assert!(
                            (d.last_active, d.id) < (spared.last_active, spared.id),
                            "{context}"
                        );
                    }
                }
            }
            if config.max_live_tabs.is_none() && config.memory_budget_kb.is_none() {
                assert_eq!(plan.over_cap, None, "{context}");
            }
        }
    }
}
