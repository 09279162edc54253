//! The process sampler: measures the browser's process tree on a thread of its own, so the UI thread never reads `/proc` for the Task Manager, the control socket's `task_manager` or the memory budget.
//!
//! Reading `smaps_rollup` makes the kernel walk every page table entry of every mapping: about
//! 10 ms for a process that maps 4 GiB, so a few hundred large processes take seconds (200 large
//! renderer trees stalled the UI thread for 3 s when it read them itself). The UI thread now only
//! publishes what it knows (which tab has which renderer and nested display), says what it
//! wants, and reads the latest completed [`Sample`]; it never waits for a round.
//!
//! # Rounds
//!
//! The sampler's thread owns one [`Monitor`] and measures in rounds:
//!
//! * **Periodic** rounds, one [`INTERVAL`] after the end of the previous round, while somebody
//!   watches ([`Sampler::watch`]): the Task Manager window (with PSS every [`PSS_INTERVAL`] when
//!   its PSS column is shown, and at once when it is turned on) or the memory budget (without).
//!   Their result is [`Sampler::latest`]: it describes the tree as it was at most one interval
//!   plus two rounds ago (a few milliseconds for a round of an ordinary tree, up to
//!   [`PSS_DEADLINE`] and a little more for a huge one with PSS).
//! * **Requested** rounds ([`Sampler::request`], the control socket's `task_manager`): the
//!   request is answered, on the sampler's thread, with the first round that *starts* after it
//!   arrived, with PSS; so the reply lists the renderers of that moment and is never older than
//!   the request. Requests that arrive while a round runs share the next round.
//!
//! Each round reads PSS for at most [`PSS_DEADLINE`]; processes reached later have no PSS in that
//! round ([`super::Snapshot::pss_skipped`]), so a round stays well inside the control socket's
//! 10 s reply deadline however large the tree. CPU % is over the interval since the previous
//! round, whatever asked for it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use warren_ipc::TabId;

use super::{Monitor, Query, Snapshot};

/// How often periodic rounds run while somebody watches.
///
/// Every round wakes the UI thread and repaints the open Task Manager, so this sets the idle
/// cost of an open Task Manager: with 10 idle tabs (about 130 processes) a round took about
/// 4 ms of the sampler's thread and a repaint about 5 ms on software GL (llvmpipe, as under
/// Xvfb or in a VM), 1.3% of a core at one round a second, over the 1% the browser may spend
/// idle. Two seconds halves that and is still a live view (htop refreshes every 1.5 s, KDE's
/// System Monitor every 2 s, top every 3 s); a user's action (freeze, discard, end, showing PSS,
/// opening the window) still gets a round at once ([`Sampler::refresh_soon`], [`Sampler::watch`]),
/// and the CPU column averages over the whole interval, so it jitters less.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// How often periodic rounds read PSS while the Task Manager shows its PSS column; the rounds in
/// between measure everything else, and the window keeps showing the last PSS read.
///
/// PSS makes the kernel walk every page table of every process: with 10 idle tabs (about 130
/// processes, WebKit's mapping tens of GiB each) a round with PSS took 80 to 90 ms of the
/// sampler's thread, 4 to 5% of a core at one round every [`INTERVAL`]. PSS is shared pages split
/// between their users, which moves slowly; ten seconds is live enough for it.
pub const PSS_INTERVAL: Duration = Duration::from_secs(10);

/// How long one round may spend reading PSS.
pub const PSS_DEADLINE: Duration = Duration::from_secs(4);

/// One completed round.
#[derive(Debug)]
pub struct Sample {
    pub snapshot: Snapshot,
    /// When the round started.
    pub started: Instant,
    /// How long it took.
    pub took: Duration,
    /// Rounds completed before this one: a new value means a new sample.
    pub seq: u64,
}

/// Called on the sampler's thread with the result of a requested round. Must not block.
pub type Answer = Box<dyn FnOnce(Result<Arc<Sample>, String>) + Send>;

/// What the periodic rounds are for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watch {
    /// Whether periodic rounds run at all.
    pub periodic: bool,
    /// Whether they read PSS.
    pub pss: bool,
}

/// The handle the UI thread holds. Dropping it stops the thread after its current round (the
/// handle does not wait for it), and fails the requests still waiting.
pub struct Sampler {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Default)]
struct State {
    browser_pid: u32,
    renderers: Vec<(TabId, u32)>,
    /// Each tab's nested display (the process the browser started for it).
    displays: Vec<(TabId, u32)>,
    /// Tabs whose renderer reported its Landlock scoping in force.
    landlocked: Vec<TabId>,
    /// The spare renderer's started process and its display's, if there is a spare.
    spares: Vec<u32>,
    watch: Watch,
    /// A round is wanted as soon as possible (with the watch's PSS setting).
    soon: bool,
    waiting: Vec<Answer>,
    latest: Option<Arc<Sample>>,
    /// When the last round ended: the next periodic one starts an interval later, so rounds
    /// that take long (hundreds of large processes) still leave the sampler idle in between.
    last_round: Option<Instant>,
    /// When the last periodic round that read PSS started; `None` makes the next one read it.
    last_pss_round: Option<Instant>,
    rounds: u64,
    stop: bool,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sampler {
    /// Starts the sampler's thread with `monitor`, measuring the tree of `browser_pid`.
    /// `on_sample` is called on that thread after every round (wake the UI loop; must not block).
    pub fn start(
        monitor: Monitor,
        browser_pid: u32,
        on_sample: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                browser_pid,
                ..State::default()
            }),
            wake: Condvar::new(),
        });
        let for_thread = Arc::clone(&shared);
        thread::Builder::new()
            .name("procs-sampler".into())
            .spawn(move || run(&for_thread, monitor, &on_sample))?;
        Ok(Self { shared })
    }

    /// Which tab has which renderer, for the rounds to come (a renderer not listed counts as a
    /// stray process of the browser).
    pub fn set_renderers(&self, renderers: Vec<(TabId, u32)>) {
        lock(&self.shared.state).renderers = renderers;
    }

    /// Which tab has which nested display (the pid of the process the browser started for it:
    /// bubblewrap, or `Xephyr` without namespaces), so its memory counts in the tab's.
    pub fn set_displays(&self, displays: Vec<(TabId, u32)>) {
        lock(&self.shared.state).displays = displays;
    }

    /// Which tabs' renderers reported Landlock scoping in force (no process can read that from
    /// `/proc`).
    pub fn set_landlocked(&self, tabs: Vec<TabId>) {
        lock(&self.shared.state).landlocked = tabs;
    }

    /// The processes the browser started for its spare renderer (its sandbox and its nested
    /// display's): shown as the spare, not as strays.
    pub fn set_spares(&self, spares: Vec<u32>) {
        lock(&self.shared.state).spares = spares;
    }

    /// Starts, stops or changes the periodic rounds. Turning PSS on asks for a round at once.
    pub fn watch(&self, watch: Watch) {
        let mut state = lock(&self.shared.state);
        if state.watch == watch {
            return;
        }
        let pss_on = watch.pss && !(state.watch.periodic && state.watch.pss);
        let sooner = watch.periodic && (!state.watch.periodic || pss_on);
        state.watch = watch;
        state.soon |= sooner;
        if pss_on {
            state.last_pss_round = None;
        }
        drop(state);
        self.shared.wake.notify_all();
    }

    /// Asks for a round as soon as possible (the Task Manager acted on a tab and shows the
    /// result); [`Sampler::latest`] has it when the round is done.
    pub fn refresh_soon(&self) {
        lock(&self.shared.state).soon = true;
        self.shared.wake.notify_all();
    }

    /// Asks for a round with PSS that starts after this call, with `renderers` and `displays` as
    /// they are now; `answer` is called with it on the sampler's thread.
    pub fn request(
        &self,
        renderers: Vec<(TabId, u32)>,
        displays: Vec<(TabId, u32)>,
        landlocked: Vec<TabId>,
        spares: Vec<u32>,
        answer: Answer,
    ) {
        let mut state = lock(&self.shared.state);
        state.renderers = renderers;
        state.displays = displays;
        state.landlocked = landlocked;
        state.spares = spares;
        state.waiting.push(answer);
        drop(state);
        self.shared.wake.notify_all();
    }

    /// The latest completed round, if any. Never waits for a round.
    pub fn latest(&self) -> Option<Arc<Sample>> {
        lock(&self.shared.state).latest.clone()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.wake.notify_all();
    }
}

/// What one round does, decided under the lock.
struct Round {
    query_pss: bool,
    browser_pid: u32,
    renderers: Vec<(TabId, u32)>,
    displays: Vec<(TabId, u32)>,
    landlocked: Vec<TabId>,
    spares: Vec<u32>,
    answers: Vec<Answer>,
}

/// The sampler's thread: waits for a reason to measure, measures without the lock, publishes.
fn run(shared: &Shared, mut monitor: Monitor, on_sample: &dyn Fn()) {
    loop {
        let Some(round) = next_round(shared) else {
            return;
        };
        let started = Instant::now();
        let query = Query {
            browser_pid: round.browser_pid,
            renderers: &round.renderers,
            displays: &round.displays,
            landlocked: &round.landlocked,
            spares: &round.spares,
            pss: round.query_pss,
        };
        let measured = monitor.refresh_until(&query, started + PSS_DEADLINE);
        let took = started.elapsed();
        let result = {
            let mut state = lock(&shared.state);
            state.last_round = Some(Instant::now());
            let seq = state.rounds;
            state.rounds += 1;
            match measured {
                Ok(snapshot) => {
                    if snapshot.pss_skipped > 0 {
                        log::warn!(
                            target: "procs",
                            "PSS of {} processes not read: the round passed its {} s deadline",
                            snapshot.pss_skipped,
                            PSS_DEADLINE.as_secs()
                        );
                    }
                    let sample = Arc::new(Sample {
                        snapshot,
                        started,
                        took,
                        seq,
                    });
                    state.latest = Some(Arc::clone(&sample));
                    Ok(sample)
                }
                Err(e) => {
                    log::warn!(target: "procs", "cannot measure the processes: {e}");
                    Err(e.to_string())
                }
            }
        };
        for answer in round.answers {
            answer(result.clone());
        }
        on_sample();
    }
}

/// Waits until a round is due, and takes what it needs; `None` when the sampler is stopped.
fn next_round(shared: &Shared) -> Option<Round> {
    let mut state = lock(&shared.state);
    loop {
        if state.stop {
            let waiting = std::mem::take(&mut state.waiting);
            drop(state);
            for answer in waiting {
                answer(Err("the browser is shutting down".into()));
            }
            return None;
        }
        let now = Instant::now();
        let next_periodic = state
            .watch
            .periodic
            .then(|| state.last_round.map_or(now, |t| t + INTERVAL));
        let due =
            state.soon || !state.waiting.is_empty() || next_periodic.is_some_and(|t| t <= now);
        if due {
            break;
        }
        state = match next_periodic {
            Some(t) => {
                shared
                    .wake
                    .wait_timeout(state, t.saturating_duration_since(now))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0
            }
            None => shared
                .wake
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        };
    }
    let answers = std::mem::take(&mut state.waiting);
    state.soon = false;
    let now = Instant::now();
    let pss_due = state.watch.pss
        && state
            .last_pss_round
            .is_none_or(|t| now.saturating_duration_since(t) >= PSS_INTERVAL);
    if pss_due {
        state.last_pss_round = Some(now);
    }
    Some(Round {
        query_pss: !answers.is_empty() || pss_due,
        browser_pid: state.browser_pid,
        renderers: state.renderers.clone(),
        displays: state.displays.clone(),
        landlocked: state.landlocked.clone(),
        spares: state.spares.clone(),
        answers,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{standard_tree, tree_with_displays, FakeProc, BROWSER, RENDERERS};
    use super::super::Kind;
    use super::*;
    use crossbeam_channel::{bounded, unbounded, Receiver};

    fn started(fp: &FakeProc) -> (Sampler, Receiver<()>) {
        let (tx, rx) = unbounded();
        let sampler = Sampler::start(fp.monitor(), BROWSER, move || {
            let _ = tx.send(());
        })
        .unwrap();
        (sampler, rx)
    }

    fn answer_channel() -> (Answer, Receiver<Result<Arc<Sample>, String>>) {
        let (tx, rx) = bounded(1);
        (
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
            rx,
        )
    }

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn a_request_is_answered_off_the_callers_thread_with_pss() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let (sampler, _rounds) = started(&fp);
        assert!(sampler.latest().is_none(), "no round before anyone asks");
        let (answer, rx) = answer_channel();
        sampler.request(
            RENDERERS.to_vec(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            answer,
        );
        let sample = rx.recv_timeout(WAIT).unwrap().unwrap();
        assert!(sample.snapshot.pss);
        assert_eq!(sample.snapshot.pss_skipped, 0);
        assert_eq!(
            sample.snapshot.tab(TabId(1)).unwrap().sum.pss_kb,
            Some(4000 + 4020 + 4040)
        );
        assert_eq!(sampler.latest().unwrap().seq, sample.seq);
    }

    #[test]
    fn displays_count_in_their_tabs_in_requested_and_periodic_rounds() {
        let fp = FakeProc::new();
        tree_with_displays(&fp);
        let (sampler, rounds) = started(&fp);
        let renderers = vec![(TabId(1), 200), (TabId(3), 702)];
        let (answer, rx) = answer_channel();
        sampler.request(
            renderers.clone(),
            vec![(TabId(3), 690)],
            Vec::new(),
            Vec::new(),
            answer,
        );
        let sample = rx.recv_timeout(WAIT).unwrap().unwrap();
        let tab3 = sample.snapshot.tab(TabId(3)).unwrap();
        assert_eq!((tab3.renderer_pid, tab3.sum.processes), (702, 11));
        assert_eq!(sample.snapshot.process(692).unwrap().kind, Kind::Display);
        // Tab 1's display is not listed: a stray of the browser.
        assert_eq!(sample.snapshot.process(210).unwrap().tab_id, None);

        // Periodic rounds use what was set last.
        sampler.set_renderers(renderers);
        sampler.set_displays(vec![(TabId(1), 210)]);
        sampler.watch(Watch {
            periodic: true,
            pss: false,
        });
        let deadline = Instant::now() + WAIT;
        loop {
            rounds.recv_timeout(WAIT).unwrap();
            let latest = sampler.latest().unwrap();
            if latest.seq > sample.seq {
                let snap = &latest.snapshot;
                assert_eq!(snap.process(210).unwrap().tab_id, Some(TabId(1)));
                assert_eq!(snap.tab(TabId(1)).unwrap().sum.processes, 4);
                assert_eq!(snap.process(692).unwrap().tab_id, None);
                break;
            }
            assert!(Instant::now() < deadline);
        }
    }

    #[test]
    fn a_request_waits_for_a_round_that_starts_after_it() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let (sampler, rounds) = started(&fp);
        let (first, rx1) = answer_channel();
        sampler.request(Vec::new(), Vec::new(), Vec::new(), Vec::new(), first);
        let before = rx1.recv_timeout(WAIT).unwrap().unwrap();
        // Tab 2 is not known as a tab in the first round; a later request sees it.
        assert!(before.snapshot.tab(TabId(2)).is_none());
        rounds.recv_timeout(WAIT).unwrap();
        let (second, rx2) = answer_channel();
        sampler.request(
            RENDERERS.to_vec(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            second,
        );
        let after = rx2.recv_timeout(WAIT).unwrap().unwrap();
        assert!(after.seq > before.seq);
        assert!(after.started >= before.started + before.took);
        assert!(after.snapshot.tab(TabId(2)).is_some());
    }

    #[test]
    fn periodic_rounds_follow_the_watch() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let (sampler, rounds) = started(&fp);
        sampler.set_renderers(RENDERERS.to_vec());
        // Nobody watches: no rounds.
        assert!(rounds.recv_timeout(Duration::from_millis(300)).is_err());
        sampler.watch(Watch {
            periodic: true,
            pss: false,
        });
        rounds.recv_timeout(WAIT).unwrap();
        let first = sampler.latest().unwrap();
        assert!(!first.snapshot.pss);
        assert!(first.snapshot.tab(TabId(1)).unwrap().sum.memory_kb > 0);
        // The next one comes about an interval later.
        rounds.recv_timeout(WAIT).unwrap();
        let second = sampler.latest().unwrap();
        assert!(second.seq > first.seq);
        assert!(second.started >= first.started + INTERVAL - Duration::from_millis(50));
        // Showing PSS asks for a round at once, with PSS.
        sampler.watch(Watch {
            periodic: true,
            pss: true,
        });
        rounds.recv_timeout(WAIT).unwrap();
        let with_pss = sampler.latest().unwrap();
        assert!(with_pss.snapshot.pss);
        // The next periodic round, within PSS_INTERVAL of that one, measures without PSS.
        rounds.recv_timeout(WAIT).unwrap();
        let next = sampler.latest().unwrap();
        assert!(next.seq > with_pss.seq);
        assert!(next.started < with_pss.started + PSS_INTERVAL);
        assert!(!next.snapshot.pss, "PSS is read every PSS_INTERVAL only");
        assert!(next.snapshot.tab(TabId(1)).unwrap().sum.memory_kb > 0);
        // Turned off and on again, it is read at once.
        sampler.watch(Watch {
            periodic: true,
            pss: false,
        });
        sampler.watch(Watch {
            periodic: true,
            pss: true,
        });
        rounds.recv_timeout(WAIT).unwrap();
        assert!(sampler.latest().unwrap().snapshot.pss);
        // Unwatched, the rounds stop (one may have been under way).
        sampler.watch(Watch::default());
        let _ = rounds.recv_timeout(Duration::from_millis(100));
        assert!(rounds.recv_timeout(INTERVAL * 2).is_err());
        // A refresh asked for while nobody watches still runs once.
        sampler.refresh_soon();
        rounds.recv_timeout(WAIT).unwrap();
    }

    #[test]
    fn dropping_the_sampler_fails_what_waits_and_stops_the_thread() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        // Without the browser in the tree every round fails, and says why.
        let (sampler, _rounds) = {
            let (tx, rx) = unbounded();
            let s = Sampler::start(fp.monitor(), 4242, move || {
                let _ = tx.send(());
            })
            .unwrap();
            (s, rx)
        };
        let (answer, rx) = answer_channel();
        sampler.request(Vec::new(), Vec::new(), Vec::new(), Vec::new(), answer);
        let err = rx.recv_timeout(WAIT).unwrap().unwrap_err();
        assert!(err.contains("4242"), "{err}");
        drop(sampler);
    }

    #[test]
    fn a_round_past_its_deadline_skips_pss_but_measures_the_rest() {
        let fp = FakeProc::new();
        standard_tree(&fp);
        let mut monitor = fp.monitor();
        let query = Query {
            browser_pid: BROWSER,
            renderers: RENDERERS,
            displays: &[],
            landlocked: &[],
            spares: &[],
            pss: true,
        };
        // A deadline already passed: no PSS at all, every other figure still there.
        let snap = monitor.refresh_until(&query, Instant::now()).unwrap();
        assert_eq!(snap.pss_skipped, snap.processes.len());
        assert!(snap.processes.iter().all(|r| r.pss_kb.is_none()));
        assert!(snap.processes.iter().all(|r| r.memory_kb.is_some()));
        // A far one: all of it.
        let snap = monitor
            .refresh_until(&query, Instant::now() + Duration::from_secs(60))
            .unwrap();
        assert_eq!(snap.pss_skipped, 0);
        assert!(snap.processes.iter().all(|r| r.pss_kb.is_some()));
    }
}
