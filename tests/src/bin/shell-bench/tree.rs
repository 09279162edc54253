//! Memory of the whole process tree by tab count and page: PSS of the browser and of every
//! process below it (each renderer's tree with its sandbox, each tab's nested display, the spare
//! renderer, the headless Xvfb of WebKit's web processes) with 1, 5, 10 and 20 live tabs of one
//! kind of page, and 20 tabs under `--max-live-tabs 3`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warren_tests::procs;
use warren_tests::{solid_page, Browser, Ctl, HttpServer, Xvfb};

use crate::static_files::StaticServer;
use crate::{
    mib, open_tab, poll, shut_down, tabs, task_manager_rows, wait_helpers, Report, SETTLE,
};

/// The tab counts of the all-live runs.
pub const LEVELS: [usize; 4] = [1, 5, 10, 20];
/// The tab count and cap of the capped run.
pub const CAPPED_TABS: usize = 20;
pub const CAP: usize = 3;
/// Issue 9: (PSS with 10 live minimal tabs − PSS with 1) / 9, MiB.
pub const MARGINAL_TARGET_MIB: f64 = 45.0;
/// How long a level's tabs may take to load and settle (20 cold renderers on 2 cores).
const LEVEL_TIMEOUT: Duration = Duration::from_secs(240);
/// How steady the tree must be before its memory counts: the same processes and a total within
/// 2% over this window, reached within the timeout.
const STEADY_WINDOW: Duration = Duration::from_secs(2);
const STEADY_TIMEOUT: Duration = Duration::from_secs(60);
/// The text-heavy and the animated bench pages.
const TEXT_PAGE: &str = include_str!("../../../../resources/bench/text.html");
const ANIMATION_PAGE: &str = include_str!("../../../../resources/bench/animation.html");
/// Pages of the Rust standard library's documentation, opened one per tab (cycled, with a query
/// to keep the URLs distinct, should fewer exist).
const RUST_DOC_PAGES: [&str; 20] = [
    "std/index.html",
    "std/vec/struct.Vec.html",
    "std/string/struct.String.html",
    "std/collections/struct.HashMap.html",
    "std/option/enum.Option.html",
    "std/result/enum.Result.html",
    "std/iter/trait.Iterator.html",
    "std/fs/index.html",
    "std/io/index.html",
    "std/sync/struct.Mutex.html",
    "std/sync/struct.Arc.html",
    "std/thread/index.html",
    "std/net/struct.TcpStream.html",
    "std/path/struct.PathBuf.html",
    "std/process/struct.Command.html",
    "std/boxed/struct.Box.html",
    "std/rc/struct.Rc.html",
    "std/fmt/index.html",
    "std/time/struct.Duration.html",
    "std/env/index.html",
];

/// One kind of page and the URLs of its tabs (the n-th tab opens `urls[n]`), shared with the
/// peers so every browser loads the same pages.
pub struct PageSet {
    pub name: &'static str,
    pub urls: Vec<String>,
    /// The title every tab must show once loaded, when the page's title is known.
    pub title: Option<String>,
}

/// The bench pages, and the Rust documentation when installed (served by `docs`, which must live
/// as long as the URLs are used). `quick` keeps only the minimal page.
pub fn page_sets(http: &HttpServer, docs: Option<&StaticServer>, quick: bool) -> Vec<PageSet> {
    let n = CAPPED_TABS.max(LEVELS[LEVELS.len() - 1]);
    let mut sets = vec![PageSet {
        name: "minimal",
        // One title for all, so the check is the same for every tab.
        urls: (0..n)
            .map(|i| {
                http.html(
                    &format!("/minimal-{i}"),
                    &solid_page("bench minimal", "#ffffff"),
                )
            })
            .collect(),
        title: Some("bench minimal".into()),
    }];
    if quick {
        return sets;
    }
    sets.push(PageSet {
        name: "text",
        urls: (0..n)
            .map(|i| http.html(&format!("/text-{i}"), TEXT_PAGE))
            .collect(),
        title: Some("Warren bench: text page".into()),
    });
    sets.push(PageSet {
        name: "animation",
        urls: (0..n)
            .map(|i| http.html(&format!("/animation-{i}"), ANIMATION_PAGE))
            .collect(),
        title: Some("Warren bench: animation page".into()),
    });
    if let Some(docs) = docs {
        let root = rust_docs_dir();
        let present: Vec<&str> = RUST_DOC_PAGES
            .iter()
            .copied()
            .filter(|p| root.as_ref().is_some_and(|r| r.join(p).is_file()))
            .collect();
        if !present.is_empty() {
            sets.push(PageSet {
                name: "rust-docs",
                urls: (0..n)
                    .map(|i| {
                        let page = present[i % present.len()];
                        if i < present.len() {
                            docs.url(page)
                        } else {
                            format!("{}?tab={i}", docs.url(page))
                        }
                    })
                    .collect(),
                title: None,
            });
        }
    }
    sets
}

/// The HTML documentation installed with a Rust toolchain (`~/.rustup/toolchains/*/share/doc/
/// rust/html`), the stable toolchain's first; `None` when there is none.
pub fn rust_docs_dir() -> Option<PathBuf> {
    let home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".rustup")))?;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(home.join("toolchains"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("share/doc/rust/html"))
        .filter(|d| d.join("std/index.html").is_file())
        .collect();
    dirs.sort_by_key(|d| {
        let stable = d
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with("stable-"));
        (!stable, d.clone())
    });
    dirs.into_iter().next()
}

/// The whole tree's PSS at one tab count.
#[derive(Clone, Debug)]
pub struct TreeLevel {
    pub tabs: usize,
    pub live: usize,
    pub discarded: usize,
    pub processes: usize,
    pub total_kb: u64,
    /// By the `task_manager` kind of each process (`unlisted` for a process it did not list).
    pub by_kind: BTreeMap<String, u64>,
    /// The spare renderer's tree, counted in the total too (it is not a live tab).
    pub spare_kb: u64,
}

impl TreeLevel {
    pub fn to_json(&self) -> Value {
        json!({
            "tabs": self.tabs,
            "live": self.live,
            "discarded": self.discarded,
            "processes": self.processes,
            "total_pss_kb": self.total_kb,
            "pss_kb_by_kind": self.by_kind,
            "spare_pss_kb": self.spare_kb,
        })
    }
}

/// One page's runs in Warren.
#[derive(Clone, Debug, Default)]
pub struct PageMemory {
    pub page: String,
    pub levels: Vec<TreeLevel>,
    pub capped: Option<TreeLevel>,
}

impl PageMemory {
    pub fn level(&self, tabs: usize) -> Option<&TreeLevel> {
        self.levels.iter().find(|l| l.tabs == tabs)
    }

    /// (PSS at 10 − PSS at 1) / 9, KiB.
    pub fn marginal_kb(&self) -> Option<f64> {
        let (one, ten) = (self.level(1)?, self.level(10)?);
        Some((ten.total_kb as f64 - one.total_kb as f64) / 9.0)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "page": self.page,
            "levels": self.levels.iter().map(TreeLevel::to_json).collect::<Vec<_>>(),
            "capped": self.capped.as_ref().map(TreeLevel::to_json),
            "capped_max_live_tabs": CAP,
            "marginal_live_tab_kb": self.marginal_kb(),
        })
    }
}

/// The section: for each page set, one browser taken through the live levels, then one with the
/// cap. `levels` is [`LEVELS`] (or fewer in the quick case); `capped` whether to run the cap;
/// `idle_wait` how long each reading waits for the machine to go idle first.
pub fn tree_memory(
    x: &Xvfb,
    sets: &[PageSet],
    levels: &[usize],
    capped: bool,
    idle_wait: Duration,
    report: &mut Report,
) {
    for set in sets {
        let mut page = PageMemory {
            page: set.name.to_string(),
            ..Default::default()
        };
        eprintln!(
            "shell-bench: whole-tree memory, {} page, {levels:?} live tabs",
            set.name
        );
        let b = crate::lifecycle_browser(x, &set.urls[0], &[]);
        let mut ctl = b.connect();
        let mut open = 1;
        for &level in levels {
            let step = (|| -> Result<TreeLevel, String> {
                while open < level {
                    open_tab(&mut ctl, &set.urls[open], true)?;
                    open += 1;
                }
                measure(&b, &mut ctl, set, level, level, idle_wait)
            })();
            match step {
                Ok(m) => {
                    eprintln!(
                        "  {level} tabs: {} MiB (spare {} MiB)",
                        mib(m.total_kb),
                        mib(m.spare_kb)
                    );
                    page.levels.push(m);
                }
                Err(e) => {
                    report
                        .problems
                        .push(format!("tree memory, {} page, {level} tabs: {e}", set.name));
                    break;
                }
            }
        }
        shut_down(&b, report);
        if capped {
            eprintln!(
                "shell-bench: whole-tree memory, {} page, {CAPPED_TABS} tabs with --max-live-tabs {CAP}",
                set.name
            );
            let b = crate::lifecycle_browser(
                x,
                &set.urls[0],
                &["--max-live-tabs".into(), CAP.to_string()],
            );
            let mut ctl = b.connect();
            let step = (|| -> Result<TreeLevel, String> {
                // One after the other in the foreground, each loaded before the next, as a user
                // opens tabs: the cap discards the least recently used ones on the way.
                wait_tabs(&mut ctl, set, 1, 1, Instant::now())?;
                for url in &set.urls[1..CAPPED_TABS] {
                    let id = open_tab(&mut ctl, url, false)?;
                    poll(Instant::now(), LEVEL_TIMEOUT, || {
                        let all = tabs(&mut ctl)?;
                        Ok(crate::tab_entry(&all, id)
                            .is_some_and(|t| t["loading"] == false && t["renderer_pid"].is_i64())
                            .then_some(()))
                    })
                    .map_err(|e| format!("tab {id} did not load: {e}"))?;
                }
                measure(&b, &mut ctl, set, CAPPED_TABS, CAP, idle_wait)
            })();
            match step {
                Ok(m) => {
                    eprintln!("  capped: {} MiB", mib(m.total_kb));
                    page.capped = Some(m);
                }
                Err(e) => report.problems.push(format!(
                    "tree memory, {} page, {CAPPED_TABS} tabs capped at {CAP}: {e}",
                    set.name
                )),
            }
            shut_down(&b, report);
        }
        report.tree.push(page);
    }
}

/// Waits until `tabs` tabs settled with exactly `live` of them loaded in distinct renderers (the
/// others discarded), each with its WebKit helpers and one nested display; lets them settle; reads
/// the tree; and checks that the live renderers did not change meanwhile.
fn measure(
    b: &Browser,
    ctl: &mut Ctl,
    set: &PageSet,
    tabs_wanted: usize,
    live: usize,
    idle_wait: Duration,
) -> Result<TreeLevel, String> {
    let pids = wait_tabs(ctl, set, tabs_wanted, live, Instant::now())?;
    for pid in &pids {
        wait_helpers(*pid)?;
    }
    std::thread::sleep(SETTLE);
    crate::newtab::wait_machine_idle(idle_wait);
    // The browser starts its spare once the machine is idle: every level waits for it, so each
    // total holds it (a level without one would make the marginal tab look smaller or larger).
    crate::newtab::wait_spare(ctl, crate::newtab::SPARE_WAIT)?;
    let rows = task_manager_rows(ctl)?;
    // A tab's display has the tab's id; one a spare renderer keeps ready has none.
    let displays = rows
        .iter()
        .filter(|r| r["kind"] == "display" && r["tab_id"].is_u64())
        .count();
    if displays != live {
        return Err(format!(
            "`task_manager` lists {displays} nested displays for {live} live tabs"
        ));
    }
    // Steady: the same processes and a total within 2% over 2 s (as the peers are measured), so
    // a process starting or exiting in the background does not land in one level only.
    let mut m = read_tree(b.pid(), &rows, tabs_wanted, live);
    let steady_by = Instant::now() + STEADY_TIMEOUT;
    loop {
        std::thread::sleep(STEADY_WINDOW);
        let again = read_tree(b.pid(), &task_manager_rows(ctl)?, tabs_wanted, live);
        let close = again.total_kb.abs_diff(m.total_kb) * 50 <= m.total_kb;
        let same = again.processes == m.processes;
        m = again;
        if close && same {
            break;
        }
        if Instant::now() >= steady_by {
            return Err(format!(
                "the tree did not hold steady (2% over {STEADY_WINDOW:?}) within {STEADY_TIMEOUT:?}: \
                 last {} processes, {} MiB",
                m.processes,
                mib(m.total_kb)
            ));
        }
    }
    let now = wait_tabs(ctl, set, tabs_wanted, live, Instant::now())?;
    if now != pids {
        return Err(format!(
            "the live renderers changed while their memory was read: {pids:?} then {now:?}"
        ));
    }
    Ok(m)
}

/// Polls `tabs` until there are `want` tabs, `live` of them loaded (with the set's title when it
/// has one) in distinct renderers and the rest `discarded` without one; returns the live
/// renderers' pids, sorted.
fn wait_tabs(
    ctl: &mut Ctl,
    set: &PageSet,
    want: usize,
    live: usize,
    start: Instant,
) -> Result<Vec<i32>, String> {
    let mut last = String::new();
    poll(start, LEVEL_TIMEOUT, || {
        let all = tabs(ctl)?;
        match settled(&all, set, want, live) {
            Ok(pids) => Ok(Some(pids)),
            Err(why) => {
                last = why;
                Ok(None)
            }
        }
    })
    .map(|(pids, _)| pids)
    .map_err(|e| format!("the tabs did not settle ({e}): {last}"))
}

/// The live renderers' pids if the tabs are as wanted; else what is not so yet.
pub fn settled(all: &[Value], set: &PageSet, want: usize, live: usize) -> Result<Vec<i32>, String> {
    if all.len() != want {
        return Err(format!("{} tabs, not {want}", all.len()));
    }
    let mut pids = BTreeSet::new();
    let mut discarded = 0;
    for t in all {
        match (t["state"].as_str(), t["renderer_pid"].as_i64()) {
            (Some("discarded"), None) => discarded += 1,
            (Some("active" | "background"), Some(pid)) if t["loading"] == false => {
                if let Some(title) = &set.title {
                    if t["title"] != title.as_str() {
                        return Err(format!("a live tab shows another page: {t}"));
                    }
                }
                if !pids.insert(pid as i32) {
                    return Err(format!("two live tabs share renderer {pid}"));
                }
            }
            _ => {
                return Err(format!(
                    "a tab is neither loaded and live nor discarded: {t}"
                ))
            }
        }
    }
    if pids.len() != live || discarded != want - live {
        return Err(format!(
            "{} tabs live and {discarded} discarded, not {live} and {}",
            pids.len(),
            want - live
        ));
    }
    Ok(pids.into_iter().collect())
}

/// The PSS of the browser and every process below it, by the kind `task_manager` gave it.
fn read_tree(browser: i32, rows: &[Value], tabs: usize, live: usize) -> TreeLevel {
    let kinds: BTreeMap<i32, String> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r["pid"].as_i64()? as i32,
                r["kind"].as_str().unwrap_or("other").to_string(),
            ))
        })
        .collect();
    let spare_tree: BTreeSet<i32> = kinds
        .iter()
        .filter(|(_, k)| *k == "spare")
        .flat_map(|(pid, _)| procs::process_tree(*pid))
        .map(|p| p.pid)
        .collect();
    let mut m = TreeLevel {
        tabs,
        live,
        discarded: tabs - live,
        processes: 0,
        total_kb: 0,
        by_kind: BTreeMap::new(),
        spare_kb: 0,
    };
    let everyone: Vec<i32> = std::iter::once(browser)
        .chain(procs::descendants(browser).into_iter().map(|p| p.pid))
        .collect();
    for pid in everyone {
        let Some(pss) = procs::pss_kb(pid) else {
            continue;
        };
        m.processes += 1;
        m.total_kb += pss;
        let kind = kinds.get(&pid).map_or("unlisted", String::as_str);
        *m.by_kind.entry(kind.to_string()).or_default() += pss;
        if spare_tree.contains(&pid) {
            m.spare_kb += pss;
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(title: Option<&str>) -> PageSet {
        PageSet {
            name: "t",
            urls: Vec::new(),
            title: title.map(str::to_string),
        }
    }

    fn tab(state: &str, pid: Option<i64>, loading: bool, title: &str) -> Value {
        json!({ "state": state, "renderer_pid": pid, "loading": loading, "title": title })
    }

    #[test]
    fn settled_checks_live_distinct_and_discarded() {
        let s = set(Some("a"));
        let ok = [
            tab("active", Some(10), false, "a"),
            tab("background", Some(11), false, "a"),
            tab("discarded", None, false, "a"),
        ];
        assert_eq!(settled(&ok, &s, 3, 2), Ok(vec![10, 11]));
        assert!(settled(&ok, &s, 3, 3).is_err());
        assert!(settled(&ok, &s, 4, 2).is_err());
        let shared = [
            tab("active", Some(10), false, "a"),
            tab("background", Some(10), false, "a"),
        ];
        assert!(settled(&shared, &s, 2, 2).unwrap_err().contains("share"));
        let loading = [tab("active", Some(10), true, "a")];
        assert!(settled(&loading, &s, 1, 1).is_err());
        let other = [tab("active", Some(10), false, "b")];
        assert!(settled(&other, &s, 1, 1).is_err());
        assert_eq!(settled(&other, &set(None), 1, 1), Ok(vec![10]));
    }

    #[test]
    fn marginal_is_the_slope_from_one_to_ten() {
        let level = |tabs, total_kb| TreeLevel {
            tabs,
            live: tabs,
            discarded: 0,
            processes: 1,
            total_kb,
            by_kind: BTreeMap::new(),
            spare_kb: 0,
        };
        let mut page = PageMemory {
            page: "minimal".into(),
            levels: vec![level(1, 100_000)],
            capped: None,
        };
        assert_eq!(page.marginal_kb(), None);
        page.levels.push(level(10, 100_000 + 9 * 40_000));
        assert_eq!(page.marginal_kb(), Some(40_000.0));
    }
}
