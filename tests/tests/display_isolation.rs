//! End-to-end: display isolation (issue 8). A renderer taken over by its page (the hostile
//! renderer's `x11-attack` mode) reaches nothing of the user's display, of the browser or of other
//! tabs; real pages still render in place, take keys in the user's layout, the wheel and cursor
//! shapes, and the clipboard both ways; the Task Manager shows each tab's display.
//!
//! Real pages and hostile tabs share one browser: every renderer is the hostile renderer, and the
//! tabs that should be real run its `exec-real` mode, which becomes a copy of the real renderer put
//! into the profile's website-data directory (the one directory of the profile the sandbox shows).
//!
//! `x11_attack_without_isolation_opens_tabs` is the control experiment: the same attack with
//! `--display-isolation none` (today's behaviour) must succeed, which proves the checks of
//! `x11_attack_from_a_renderer_reaches_nothing` can fail.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warren_tests::x11::{self, Attempt};
use warren_tests::{
    expect_content, run_browser_once, solid_page, wait_until, Browser, BrowserOpts, HttpServer,
    Image, Xvfb, LOAD_TIMEOUT,
};

/// The displays this test binary may use for its own X servers.
const DISPLAYS: std::ops::RangeInclusive<u32> = 70..=79;

/// The chrome: tab strip (34 px) and toolbar (40 px) above the content area, at scale 1.
const CHROME_HEIGHT: u32 = 74;
/// A point inside the address bar.
const ADDRESS_BAR: (u32, u32) = (400, 54);

const VICTIM: [u8; 3] = [0x2e, 0x8b, 0x57];
const VICTIM_CSS: &str = "#2e8b57";
const OTHER: [u8; 3] = [0x8a, 0x2b, 0xe2];
const OTHER_CSS: &str = "#8a2be2";

/// How many rounds the attack makes (2 s apart).
const ROUNDS: u32 = 5;

fn start_x() -> Xvfb {
    Xvfb::start_in(DISPLAYS)
}

/// Whether the browser under test has `--display-isolation` (the control experiment passes
/// `none` only then: before issue 8 there is no other mode).
fn has_isolation_flag(x: &Xvfb) -> bool {
    let out = run_browser_once(x.display(), &["--help"], Duration::from_secs(20));
    out.output.contains("--display-isolation")
}

/// The flags that turn display isolation off (none on a browser from before issue 8).
fn without_isolation(x: &Xvfb) -> &'static [&'static str] {
    if has_isolation_flag(x) {
        &["--display-isolation", "none"]
    } else {
        &[]
    }
}

/// A fresh profile whose website-data directory holds a copy of the real renderer, and that copy's
/// path (see the module docs).
struct Profile {
    _dir: tempfile::TempDir,
    path: PathBuf,
    real_renderer: PathBuf,
}

impl Profile {
    fn new() -> Profile {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = tempfile::Builder::new()
            .prefix("warren-isolation-")
            .tempdir()
            .expect("temp dir");
        let path = dir.path().join("profile");
        let data = path.join("website-data");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data)
            .expect("create the website-data directory");
        let real_renderer = data.join("real-renderer");
        std::fs::copy(warren_tests::bin_path("renderer"), &real_renderer)
            .expect("copy the renderer into the profile");
        std::fs::set_permissions(&real_renderer, std::fs::Permissions::from_mode(0o755))
            .expect("make the copy executable");
        Profile {
            _dir: dir,
            path,
            real_renderer,
        }
    }
}

/// Starts a browser on `urls` whose tabs run the hostile renderer's `modes` (tabs that should be
/// real pages: `exec-real`), told the user's display, with `args`.
fn start_mixed(
    x: &Xvfb,
    profile: &Profile,
    urls: &[String],
    modes: &str,
    args: &[&str],
) -> Browser {
    Browser::start(
        x,
        BrowserOpts {
            renderer: Some(env!("CARGO_BIN_EXE_hostile-renderer").into()),
            urls: urls.to_vec(),
            profile: Some(profile.path.clone()),
            args: args.iter().map(|a| a.to_string()).collect(),
            renderer_env: vec![
                ("WARREN_HOSTILE_MODE".into(), modes.into()),
                (
                    "WARREN_HOSTILE_REAL_RENDERER".into(),
                    profile.real_renderer.display().to_string(),
                ),
                ("WARREN_HOSTILE_OUTER_DISPLAY".into(), x.display_env()),
                ("WARREN_HOSTILE_X11_ROUNDS".into(), ROUNDS.to_string()),
            ],
            ..Default::default()
        },
    )
}

/// `(tab_id, url)` of every tab.
fn tab_urls(b: &Browser) -> Vec<(u64, String)> {
    b.tabs()
        .iter()
        .map(|t| {
            (
                t["tab_id"].as_u64().unwrap_or(0),
                t["url"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Waits until the attacking tab `tab` has reported round `round` (or finished).
fn wait_round(b: &Browser, tab: u64, round: u32) {
    let reached = wait_until(Duration::from_secs(60), || {
        let log = b.log();
        (x11::attack_done(&log, tab)
            || x11::attempts(&log)
                .iter()
                .any(|a| a.tab == tab && a.what == "round" && a.round >= round))
        .then_some(())
    });
    assert!(
        reached.is_some(),
        "the x11-attack renderer of tab {tab} did not reach round {round} within 60 s; its lines:\n{}",
        lines_of(&b.log(), tab)
    );
}

/// Waits until the attacking tab finished every round; returns its attempts.
fn wait_attack_done(b: &Browser, tab: u64) -> Vec<Attempt> {
    let done = wait_until(Duration::from_secs(90), || {
        x11::attack_done(&b.log(), tab).then_some(())
    });
    assert!(
        done.is_some(),
        "the x11-attack renderer of tab {tab} did not finish within 90 s; its lines:\n{}",
        lines_of(&b.log(), tab)
    );
    x11::attempts(&b.log())
        .into_iter()
        .filter(|a| a.tab == tab)
        .collect()
}

/// The `x11` lines of one tab, for failure messages.
fn lines_of(log: &str, tab: u64) -> String {
    let tag = format!("tab={tab} ");
    let done = format!("done tab={tab}");
    log.lines()
        .filter(|l| {
            l.contains("hostile-renderer: x11 ") && (l.contains(&tag) || l.ends_with(&done))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The attempts named `what`.
fn named<'a>(attempts: &'a [Attempt], what: &str) -> Vec<&'a Attempt> {
    attempts.iter().filter(|a| a.what == what).collect()
}

/// The pixels of rows `top..bottom` (all columns up to `width`).
fn rows(img: &Image, top: u32, bottom: u32, width: u32) -> Vec<[u8; 3]> {
    (top..bottom)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| img.pixel(x, y))
        .collect()
}

/// The share of pixels that differ between two equally long pixel lists.
fn differing(a: &[[u8; 3]], b: &[[u8; 3]]) -> f64 {
    let n = a.iter().zip(b).filter(|(p, q)| p != q).count();
    n as f64 / a.len().max(1) as f64
}

/// What one attack run saw and did.
struct AttackRun {
    attempts: Vec<Attempt>,
    before: Vec<(u64, String)>,
    after: Vec<(u64, String)>,
    toolbar_before: Vec<[u8; 3]>,
    toolbar_after: Vec<[u8; 3]>,
    victim_tab: u64,
    attacker: u64,
}

impl AttackRun {
    /// The colours every `own-get-image` of the attacker reported, by round.
    fn own_colours(&self) -> Vec<(u32, Vec<String>)> {
        named(&self.attempts, "own-get-image")
            .into_iter()
            .map(|a| (a.round, x11::image_colours(a)))
            .collect()
    }

    fn saw_victim(&self) -> bool {
        self.own_colours()
            .iter()
            .chain(
                named(&self.attempts, "outer-get-image")
                    .into_iter()
                    .map(|a| (a.round, x11::image_colours(a)))
                    .collect::<Vec<_>>()
                    .iter(),
            )
            .any(|(_, cs)| cs.iter().any(|c| x11::hex_near(c, VICTIM, 12)))
    }

    fn report(&self) -> String {
        let mut out = format!(
            "tabs before: {:?}\ntabs after: {:?}\nattempts:\n",
            self.before, self.after
        );
        for a in &self.attempts {
            out.push_str(&format!(
                "  round {} {} {} {}\n",
                a.round, a.what, a.status, a.detail
            ));
        }
        out
    }
}

/// A browser whose tab 1 is a real page of the victim colour, loaded and shown, with what must
/// outlive it. Fields drop in order: the browser first, then its profile and the pages' server.
struct VictimScene {
    b: Browser,
    victim_tab: u64,
    /// The page attacker tabs are opened on.
    hostile: String,
    _profile: Profile,
    _http: HttpServer,
}

impl VictimScene {
    /// `modes` is the hostile renderer's `by-tab:` rule; tab 1 must be `exec-real`.
    fn start(x: &Xvfb, modes: &str, args: &[&str], what: &str) -> VictimScene {
        let http = HttpServer::start();
        let victim = http.html("/victim", &solid_page("victim page", VICTIM_CSS));
        let hostile = http.html("/hostile", &solid_page("hostile", "#ffffff"));
        let profile = Profile::new();
        let b = start_mixed(x, &profile, std::slice::from_ref(&victim), modes, args);
        let victim_tab = b.tab_ids()[0];
        b.wait_loaded(victim_tab, Some(&victim), LOAD_TIMEOUT);
        expect_content(x, VICTIM, what);
        VictimScene {
            b,
            victim_tab,
            hostile,
            _profile: profile,
            _http: http,
        }
    }
}

/// Tab 1 a real page of the victim colour, tab 2 (background) the attacker: the attack's rounds
/// run while tab 1 is active (rounds 1–2), while the attacker is active (3–4) and after (5).
fn attack_run(x: &Xvfb, args: &[&str]) -> (VictimScene, AttackRun) {
    // Tabs the attack manages to open (without isolation) stay quiet: `normal`.
    let scene = VictimScene::start(
        x,
        "by-tab:1=exec-real,2=x11-attack,*=normal",
        args,
        "victim tab before the attack",
    );
    let (b, hostile, victim_tab) = (&scene.b, &scene.hostile, scene.victim_tab);
    let shot = x.screenshot();
    let toolbar_before = rows(&shot, 36, CHROME_HEIGHT - 2, 1024);
    let attacker = b.new_tab_with(hostile, true);
    assert_eq!(attacker, 2, "the attacker's tab id");
    let before = tab_urls(b);

    wait_round(b, attacker, 3);
    b.ok("activate", json!({ "tab_id": attacker }));
    wait_round(b, attacker, 5);
    b.ok("activate", json!({ "tab_id": victim_tab }));
    let attempts = wait_attack_done(b, attacker);
    // The last round's typing lands within a second; let the browser act on it.
    std::thread::sleep(Duration::from_secs(3));
    let after = tab_urls(b);
    let shot = x.screenshot();
    let toolbar_after = rows(&shot, 36, CHROME_HEIGHT - 2, 1024);
    (
        scene,
        AttackRun {
            attempts,
            before,
            after,
            toolbar_before,
            toolbar_after,
            victim_tab,
            attacker,
        },
    )
}

#[test]
fn x11_attack_from_a_renderer_reaches_nothing() {
    let x = start_x();
    let outer = x.display();
    let (scene, run) = attack_run(&x, &[]);
    let b = &scene.b;
    let report = run.report();

    // The attack really ran against its own display, every round.
    for what in ["own-connect", "own-window"] {
        assert!(
            named(&run.attempts, what).iter().any(|a| a.ok()),
            "the attacker never got {what}:\n{report}"
        );
    }
    let env = named(&run.attempts, "own-env");
    assert!(
        env.iter()
            .all(|a| a.detail["DISPLAY"] != json!(format!(":{outer}"))),
        "the renderer's DISPLAY is the user's display :{outer}:\n{report}"
    );
    assert_eq!(
        named(&run.attempts, "own-get-image")
            .iter()
            .filter(|a| a.ok())
            .count(),
        ROUNDS as usize,
        "every round reads its own display's pixels:\n{report}"
    );

    // Nothing reached the browser: no tab opened, no URL changed, no address bar typed into.
    assert_eq!(
        run.after, run.before,
        "XTEST / SendEvent from a renderer changed the tabs:\n{report}"
    );
    let changed = differing(&run.toolbar_before, &run.toolbar_after);
    assert!(
        changed < 0.01,
        "the toolbar changed ({:.1} % of its pixels) during the attack:\n{report}",
        changed * 100.0
    );
    expect_content(&x, VICTIM, "victim tab after the attack");

    // Its own display shows nothing of the browser or of the other tab.
    for a in named(&run.attempts, "own-query-tree") {
        let names = x11::window_names(a);
        assert!(
            names
                .iter()
                .all(|n| !n.contains("Warren") && !n.contains("victim page")),
            "round {}: the attacker lists the browser's windows: {names:?}\n{report}",
            a.round
        );
    }
    for (round, colours) in run.own_colours() {
        assert!(
            !colours.iter().any(|c| x11::hex_near(c, VICTIM, 12)),
            "round {round}: the attacker's GetImage shows the victim tab's colour {}: {colours:?}\n{report}",
            x11::hex(VICTIM)
        );
    }

    // The user's display is out of reach: no socket file (a mount point left empty refuses the
    // connection), the abstract one refused.
    for a in named(&run.attempts, "outer-path-connect") {
        assert!(
            a.status == "denied"
                && ["ENOENT", "ECONNREFUSED"].contains(&a.detail["errno"].as_str().unwrap_or("")),
            "round {}: connecting to /tmp/.X11-unix/X{outer}: {} {}\n{report}",
            a.round,
            a.status,
            a.detail
        );
    }
    for a in named(&run.attempts, "outer-abstract-connect") {
        assert!(
            a.status == "denied"
                && ["EPERM", "ECONNREFUSED", "EACCES"]
                    .contains(&a.detail["errno"].as_str().unwrap_or("")),
            "round {}: connecting to @/tmp/.X11-unix/X{outer}: {} {}\n{report}",
            a.round,
            a.status,
            a.detail
        );
    }
    assert!(
        named(&run.attempts, "outer-path-connect").len() == ROUNDS as usize
            && named(&run.attempts, "outer-abstract-connect").len() == ROUNDS as usize,
        "every round tries the user's display:\n{report}"
    );
    assert!(
        named(&run.attempts, "outer-setup").is_empty(),
        "the attacker connected to the user's display:\n{report}"
    );
    for a in named(&run.attempts, "socket-dir") {
        let entries = a.detail.as_array().cloned().unwrap_or_default();
        assert!(
            !entries
                .iter()
                .any(|e| e["name"] == json!(format!("X{outer}")) && e["type"] == json!("socket")),
            "the user's display's socket is in the renderer's view: {entries:?}\n{report}"
        );
        if entries
            .iter()
            .any(|e| e["name"] == json!(format!("X{outer}")))
        {
            eprintln!(
                "note: the renderer's /tmp/.X11-unix names the user's display (not a socket): {entries:?}"
            );
        }
    }
    for a in named(&run.attempts, "xauthority") {
        if a.ok() {
            assert!(
                !a.detail["displays"]
                    .as_array()
                    .is_some_and(|d| d.contains(&json!(outer.to_string()))),
                "the renderer can read a cookie of the user's display: {}\n{report}",
                a.detail
            );
        }
    }
    assert!(
        b.tabs().len() == 2,
        "{:?} (victim {}, attacker {})",
        b.tabs(),
        run.victim_tab,
        run.attacker
    );
    eprintln!("{report}");
}

/// The control experiment: with `--display-isolation none` (and on a browser from before issue 8,
/// which has no other mode) the same attack must work, or the test above proves nothing.
#[test]
fn x11_attack_without_isolation_opens_tabs() {
    let x = start_x();
    let (_scene, run) = attack_run(&x, without_isolation(&x));
    let report = run.report();
    let grew = run.after.len() > run.before.len();
    let navigated = run
        .before
        .iter()
        .any(|(id, url)| run.after.iter().any(|(i, u)| i == id && u != url));
    assert!(
        run.saw_victim(),
        "control: without isolation the attacker should read the victim tab's pixels:\n{report}"
    );
    assert!(
        grew || navigated,
        "control: without isolation XTEST Ctrl+T should open a tab (or change a URL):\n{report}"
    );
    eprintln!(
        "control: the attack opened {} tabs, navigated: {navigated}, read the victim's pixels\n{report}",
        run.after.len().saturating_sub(run.before.len())
    );
}

/// Two attacking tabs and a real one: neither attacker sees the other's bait window (by name in
/// QueryTree, by colour in GetImage) or the real tab's colour.
fn two_attackers(x: &Xvfb, args: &[&str]) -> (VictimScene, Vec<Attempt>, Vec<Attempt>) {
    let scene = VictimScene::start(
        x,
        "by-tab:1=exec-real,2=x11-attack,3=x11-attack,*=normal",
        args,
        "victim tab",
    );
    let (b, hostile) = (&scene.b, &scene.hostile);
    let first = b.new_tab_with(hostile, true);
    let second = b.new_tab_with(hostile, true);
    assert_eq!((first, second), (2, 3), "the attackers' tab ids");
    wait_round(b, first, 2);
    b.ok("activate", json!({ "tab_id": first }));
    wait_round(b, second, 4);
    b.ok("activate", json!({ "tab_id": second }));
    let a = wait_attack_done(b, first);
    let c = wait_attack_done(b, second);
    (scene, a, c)
}

/// What `watcher` saw of `other`'s bait window and of the victim colour: descriptions of each
/// sighting.
fn sightings(watcher: &[Attempt], other: &[Attempt]) -> Vec<String> {
    let bait = named(other, "own-window")
        .into_iter()
        .find(|a| a.ok())
        .map(|a| {
            (
                a.detail["name"].as_str().unwrap_or("").to_owned(),
                a.detail["colour"].as_str().unwrap_or("").to_owned(),
            )
        });
    let Some((name, colour)) = bait else {
        return vec!["(the other tab made no bait window)".into()];
    };
    let rgb = u32::from_str_radix(colour.trim_start_matches('#'), 16).unwrap_or(0);
    let rgb = [(rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8];
    let mut seen = Vec::new();
    for a in named(watcher, "own-query-tree") {
        if x11::window_names(a).contains(&name) {
            seen.push(format!("round {}: window {name}", a.round));
        }
    }
    for a in named(watcher, "own-get-image") {
        for c in x11::image_colours(a) {
            if x11::hex_near(&c, rgb, 6) {
                seen.push(format!("round {}: {name}'s colour {c}", a.round));
            }
            if x11::hex_near(&c, VICTIM, 12) {
                seen.push(format!("round {}: the victim tab's colour {c}", a.round));
            }
        }
    }
    seen
}

#[test]
fn two_tabs_cannot_see_each_other() {
    let x = start_x();
    let (_scene, first, second) = two_attackers(&x, &[]);
    for (who, attempts) in [("first", &first), ("second", &second)] {
        assert!(
            named(attempts, "own-window").iter().any(|a| a.ok()),
            "the {who} attacker made no bait window: {attempts:?}"
        );
        assert_eq!(
            named(attempts, "own-get-image")
                .iter()
                .filter(|a| a.ok())
                .count(),
            ROUNDS as usize,
            "the {who} attacker read its display every round: {attempts:?}"
        );
    }
    let one = sightings(&first, &second);
    let two = sightings(&second, &first);
    assert!(
        one.is_empty() && two.is_empty(),
        "tabs see each other: first saw {one:?}; second saw {two:?}"
    );
}

/// The control experiment for the test above: without isolation the two attackers do see each
/// other's bait windows.
#[test]
fn two_tabs_see_each_other_without_isolation() {
    let x = start_x();
    let (_scene, first, second) = two_attackers(&x, without_isolation(&x));
    let one = sightings(&first, &second);
    let two = sightings(&second, &first);
    assert!(
        one.iter().any(|s| s.contains("window hostile-tab-3"))
            && two.iter().any(|s| s.contains("window hostile-tab-2")),
        "control: without isolation each attacker should list the other's window: first saw \
         {one:?}; second saw {two:?}"
    );
}

// ----- real pages on their nested displays -----

/// Starts a browser with real renderers on `urls` (default display isolation).
fn start_real(x: &Xvfb, urls: &[String]) -> Browser {
    let b = Browser::start(
        x,
        BrowserOpts {
            urls: urls.to_vec(),
            ..Default::default()
        },
    );
    for (tab, url) in b.tab_ids().into_iter().zip(urls) {
        b.wait_loaded(tab, Some(url), LOAD_TIMEOUT);
    }
    b
}

/// The browser's top-level window id (`0x…`), by its title.
fn browser_window(x: &Xvfb) -> String {
    let found = wait_until(Duration::from_secs(10), || {
        x.windows()
            .into_iter()
            .find(|w| w.depth == 1 && w.name.as_deref().is_some_and(|n| n.ends_with("Warren")))
    });
    found
        .unwrap_or_else(|| panic!("no top-level window named \"… Warren\": {:?}", x.windows()))
        .id
}

/// Waits until every point shows `colour`; panics with what they showed.
fn expect_points(x: &Xvfb, points: &[(u32, u32)], colour: [u8; 3], what: &str) {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(15), || {
        let img = x.screenshot();
        let ok = img.all_near(points, colour, 12);
        last = Some(img);
        ok.then_some(())
    });
    if ok.is_none() {
        let img = last.expect("a screenshot");
        let path = warren_tests::artifacts_dir().join(format!("{}.png", what.replace(' ', "-")));
        let _ = std::fs::create_dir_all(warren_tests::artifacts_dir());
        let saved = img.save_png(&path);
        panic!(
            "{what}: expected {} at {points:?}; got {} (screenshot {}: {saved:?})",
            x11::hex(colour),
            img.describe(points),
            path.display()
        );
    }
}

/// Points inside a content area of a `w`x`h` window at the screen's top-left: its corners (10 px
/// in) and centre.
fn content_points(w: u32, h: u32) -> Vec<(u32, u32)> {
    let top = CHROME_HEIGHT + 10;
    vec![
        (10, top),
        (w - 10, top),
        (w / 2, (top + h) / 2),
        (10, h - 10),
        (w - 10, h - 10),
    ]
}

#[test]
fn pages_render_in_place_after_resize_and_switch() {
    let x = start_x();
    let http = HttpServer::start();
    let first = http.html("/first", &solid_page("first", VICTIM_CSS));
    let second = http.html("/second", &solid_page("second", OTHER_CSS));
    let b = start_real(&x, std::slice::from_ref(&first));
    let one = b.tab_ids()[0];
    expect_content(&x, VICTIM, "first tab");
    let two = b.new_tab(&second);
    b.wait_loaded(two, Some(&second), LOAD_TIMEOUT);
    expect_content(&x, OTHER, "second tab after opening it");
    b.ok("activate", json!({ "tab_id": one }));
    expect_content(&x, VICTIM, "first tab after switching back");

    let window = browser_window(&x);
    for (w, h) in [(800u32, 560u32), (1240, 790)] {
        x.xdotool(&["windowsize", &window, &w.to_string(), &h.to_string()]);
        let points = content_points(w, h);
        expect_points(&x, &points, VICTIM, &format!("first tab at {w}x{h}"));
        b.ok("activate", json!({ "tab_id": two }));
        expect_points(&x, &points, OTHER, &format!("second tab at {w}x{h}"));
        b.ok("activate", json!({ "tab_id": one }));
        expect_points(&x, &points, VICTIM, &format!("first tab again at {w}x{h}"));
    }
    // Below the content area of the last size nothing stale is left: the chrome rows still chrome.
    let img = x.screenshot();
    let chrome = img.pixel(600, 20);
    assert!(
        !warren_tests::xvfb::near(chrome, VICTIM, 12)
            && !warren_tests::xvfb::near(chrome, OTHER, 12),
        "the tab strip shows page colour {chrome:?}"
    );
}

/// A page with a big input at the top-left of its content; it records every keydown.
const INPUT_PAGE: &str = "<!doctype html><html style=\"margin:0;height:100%;background:#ffffff\">\
<head><meta charset=\"utf-8\"><title>input</title></head><body style=\"margin:0\">\
<input id=\"i\" autofocus autocomplete=\"off\" style=\"position:absolute;left:0;top:0;width:600px;height:250px;\
margin:0;border:0;padding:0;font-size:40px;background:#ffffcc\">\
<textarea id=\"t\" style=\"position:absolute;left:0;top:300px;width:600px;height:200px;font-size:30px\"></textarea>\
<script>window.keys = []; document.addEventListener('keydown', e => keys.push(e.key), true);</script>\
</body></html>";

/// Screen points inside the input and the textarea of [`INPUT_PAGE`].
const INPUT_POINT: (u32, u32) = (300, CHROME_HEIGHT + 120);
const TEXTAREA_POINT: (u32, u32) = (300, CHROME_HEIGHT + 400);

fn click_at(x: &Xvfb, (px, py): (u32, u32), button: &str) {
    x.xdotool(&["mousemove", &px.to_string(), &py.to_string()]);
    std::thread::sleep(Duration::from_millis(200));
    x.xdotool(&["click", button]);
    std::thread::sleep(Duration::from_millis(400));
}

fn value(b: &Browser, tab: u64, id: &str) -> Value {
    b.eval(tab, &format!("document.getElementById('{id}').value"))
        .unwrap_or(Value::Null)
}

fn wait_value(b: &Browser, tab: u64, id: &str, want: &str) -> Result<(), String> {
    let mut last = Value::Null;
    wait_until(Duration::from_secs(10), || {
        last = value(b, tab, id);
        (last == json!(want)).then_some(())
    })
    .ok_or_else(|| {
        format!(
            "#{id} is {last} (wanted {want:?}); keys seen: {:?}",
            b.eval(tab, "window.keys")
        )
    })
}

#[test]
fn typing_reaches_the_page_with_a_german_layout() {
    let x = start_x();
    // An X server resets its keymap when its last client leaves: stay connected from before
    // `setxkbmap` until the browser is.
    let _keep = x11rb::connect(Some(&x.display_env())).expect("connect to the test display");
    let layout = Command::new("setxkbmap")
        .args(["-display", &x.display_env(), "de"])
        .output()
        .expect("run setxkbmap: install x11-xkb-utils");
    assert!(
        layout.status.success(),
        "setxkbmap de: {}",
        String::from_utf8_lossy(&layout.stderr)
    );
    let http = HttpServer::start();
    let page = http.html("/input", INPUT_PAGE);
    let other = http.html("/other", &solid_page("other", OTHER_CSS));
    let b = start_real(&x, std::slice::from_ref(&page));
    let tab = b.tab_ids()[0];
    std::thread::sleep(Duration::from_secs(1));

    click_at(&x, INPUT_POINT, "1");
    x.xdotool(&["type", "--delay", "80", "zy"]);
    if let Err(e) = wait_value(&b, tab, "i", "zy") {
        panic!("typing `zy` on a German layout: {e}");
    }

    // The browser's shortcut wins over the focused page.
    let before = b.tabs().len();
    x.xdotool(&["key", "ctrl+t"]);
    let opened = wait_until(Duration::from_secs(10), || {
        (b.tabs().len() == before + 1).then_some(())
    });
    assert!(
        opened.is_some(),
        "Ctrl+T with the page focused opened no tab: {:?}",
        b.tabs()
    );
    b.ok("activate", json!({ "tab_id": tab }));
    std::thread::sleep(Duration::from_secs(1));

    // A click on the address bar takes the keyboard from the page.
    click_at(&x, ADDRESS_BAR, "1");
    x.xdotool(&["key", "ctrl+a"]);
    x.xdotool(&["type", "--delay", "40", &other]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        value(&b, tab, "i"),
        json!("zy"),
        "typing into the address bar reached the page"
    );
    x.xdotool(&["key", "Return"]);
    let navigated = wait_until(LOAD_TIMEOUT, || {
        b.tab(tab).filter(|t| t["url"] == json!(other)).map(|_| ())
    });
    assert!(
        navigated.is_some(),
        "the URL typed into the address bar (German layout) did not load: {:?}",
        b.tab(tab)
    );
}

/// A tall page with a big link at its top and plain text below.
const TALL_PAGE: &str = "<!doctype html><html style=\"margin:0\"><head><meta charset=\"utf-8\"><title>tall</title></head>\
<body style=\"margin:0;background:#ffffff\">\
<a href=\"#nowhere\" style=\"display:block;width:700px;height:250px;background:#ddeeff;font-size:60px\">a big link</a>\
<div style=\"height:6000px;background:#ffffff\">plain</div></body></html>";

#[test]
fn wheel_and_cursor() {
    let x = start_x();
    let http = HttpServer::start();
    let page = http.html("/tall", TALL_PAGE);
    let b = start_real(&x, std::slice::from_ref(&page));
    let tab = b.tab_ids()[0];
    std::thread::sleep(Duration::from_secs(1));

    // Cursor: a hand over the link, an arrow (or I-beam) elsewhere, on the user's display.
    let cursor_at = |(px, py): (u32, u32)| {
        x.xdotool(&["mousemove", &px.to_string(), &py.to_string()]);
        // Move a pixel more so the page sees motion inside the element.
        x.xdotool(&["mousemove_relative", "1", "1"]);
        std::thread::sleep(Duration::from_millis(700));
        x11::cursor_image(x.display())
    };
    let over_link = cursor_at((300, CHROME_HEIGHT + 120));
    let over_plain = cursor_at((900, CHROME_HEIGHT + 500));
    match (&over_link, &over_plain) {
        (Ok(link), Ok(plain)) if link.visible_pixels() == 0 && plain.visible_pixels() == 0 => {
            eprintln!(
                "SKIPPED the cursor check: this X server reports empty cursor images ({}x{})",
                link.width, link.height
            );
        }
        (Ok(link), Ok(plain)) => {
            // The hand appears once the page saw the pointer over the link; give it a moment.
            let differs = link.serial != plain.serial && !link.same_look(plain)
                || wait_until(Duration::from_secs(5), || {
                    let l = cursor_at((300, CHROME_HEIGHT + 120)).ok()?;
                    let p = cursor_at((900, CHROME_HEIGHT + 500)).ok()?;
                    (!l.same_look(&p)).then_some(())
                })
                .is_some();
            assert!(
                differs,
                "the pointer looks the same over a link and over plain page ({}x{} hot {},{})",
                link.width, link.height, link.xhot, link.yhot
            );
        }
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("SKIPPED the cursor check: XFixes cursor images are not available: {e}")
        }
    }

    // Wheel: scrolls the page under the pointer.
    x.xdotool(&["mousemove", "500", &(CHROME_HEIGHT + 400).to_string()]);
    std::thread::sleep(Duration::from_millis(300));
    let scrolled = wait_until(Duration::from_secs(10), || {
        x.xdotool(&["click", "5"]);
        let y = b.eval(tab, "window.scrollY").ok()?.as_f64()?;
        (y > 0.0).then_some(y)
    });
    assert!(
        scrolled.is_some(),
        "wheel down over the page did not scroll it (scrollY {:?})",
        b.eval(tab, "window.scrollY")
    );
}

// ----- the clipboard, brokered by the browser -----

/// An `xclip` that owns a selection on the user's display until dropped (`-quiet` keeps it in the
/// foreground, so it is ours to kill).
struct Selection(Child);

impl Selection {
    fn own(x: &Xvfb, selection: &str, text: &str) -> Selection {
        let mut child = Command::new("xclip")
            .args(["-quiet", "-selection", selection, "-i"])
            .env("DISPLAY", x.display_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run xclip: install it");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(text.as_bytes())
            .expect("write to xclip");
        // xclip takes the selection once its input ends.
        std::thread::sleep(Duration::from_millis(500));
        Selection(child)
    }
}

impl Drop for Selection {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The text of a selection on the user's display (`None`: no owner, or it did not answer within
/// 5 s).
fn read_selection(x: &Xvfb, selection: &str) -> Option<String> {
    let out = Command::new("timeout")
        .args(["5", "xclip", "-selection", selection, "-o"])
        .env("DISPLAY", x.display_env())
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A page's attempt to read the clipboard from a timer, without a user gesture: `execCommand`
/// and the async clipboard API; what it got lands in `window.stolen`.
const STEAL_JS: &str = "window.stolen = []; setTimeout(() => {\
   const t = document.getElementById('t'); t.value = ''; t.focus();\
   try { document.execCommand('paste'); } catch (e) {}\
   window.stolen.push('exec:' + t.value);\
   if (navigator.clipboard) navigator.clipboard.readText().then(v => stolen.push('read:' + v), e => stolen.push('refused'));\
   else stolen.push('no navigator.clipboard');\
 }, 300); true";

#[test]
fn clipboard_both_ways() {
    let x = start_x();
    let http = HttpServer::start();
    let page = http.html("/input", INPUT_PAGE);
    let b = start_real(&x, std::slice::from_ref(&page));
    let tab = b.tab_ids()[0];
    std::thread::sleep(Duration::from_secs(1));
    let set = |id: &str, text: &str| {
        b.eval(
            tab,
            &format!(
                "document.getElementById('{id}').value = {}; true",
                json!(text)
            ),
        )
        .expect("set a field");
    };

    // Every part runs even after one failed: the report lists them all.
    let mut failures: Vec<String> = Vec::new();

    // Page → user's clipboard.
    click_at(&x, INPUT_POINT, "1");
    set("i", "copied-from-page");
    b.eval(
        tab,
        "document.getElementById('i').focus(); document.getElementById('i').select(); true",
    )
    .expect("select the input");
    x.xdotool(&["key", "ctrl+c"]);
    let copied = wait_until(Duration::from_secs(10), || {
        read_selection(&x, "clipboard").filter(|t| t == "copied-from-page")
    });
    if copied.is_none() {
        failures.push(format!(
            "ctrl+c in the page did not reach the user's clipboard (it holds {:?})",
            read_selection(&x, "clipboard")
        ));
    }

    // User's clipboard → page, on the user's ctrl+v.
    let _clip = Selection::own(&x, "clipboard", "hello");
    click_at(&x, TEXTAREA_POINT, "1");
    set("t", "");
    x.xdotool(&["key", "ctrl+v"]);
    if let Err(e) = wait_value(&b, tab, "t", "hello") {
        failures.push(format!("ctrl+v of the user's clipboard into the page: {e}"));
    }

    // No gesture, no clipboard: a timer in the page reads nothing.
    let _secret = Selection::own(&x, "clipboard", "secret-no-gesture");
    b.eval(tab, STEAL_JS).expect("start the timer");
    // A background tab tries the same.
    let background = b.new_tab_with(&page, true);
    b.wait_loaded(background, Some(&page), LOAD_TIMEOUT);
    b.eval(background, STEAL_JS).expect("start the timer");
    std::thread::sleep(Duration::from_secs(3));
    for (who, t) in [("the active tab", tab), ("a background tab", background)] {
        let stolen = b.eval(t, "window.stolen").unwrap_or(Value::Null);
        if stolen.to_string().contains("secret-no-gesture") {
            failures.push(format!(
                "{who} read the clipboard without a user gesture: {stolen}"
            ));
        }
    }
    drop(_secret);

    // PRIMARY from another client, pasted with the middle button.
    let _primary = Selection::own(&x, "primary", "primary-text");
    set("t", "");
    click_at(&x, TEXTAREA_POINT, "2");
    let pasted = wait_until(Duration::from_secs(10), || {
        value(&b, tab, "t")
            .as_str()
            .filter(|v| v.contains("primary-text"))
            .map(str::to_owned)
    });
    if pasted.is_none() {
        failures.push(format!(
            "middle click did not paste the PRIMARY selection: the textarea holds {}",
            value(&b, tab, "t")
        ));
    }
    drop(_primary);

    // Address bar → page.
    click_at(&x, ADDRESS_BAR, "1");
    x.xdotool(&["key", "ctrl+a"]);
    x.xdotool(&["key", "ctrl+c"]);
    let on_clipboard = wait_until(Duration::from_secs(5), || {
        read_selection(&x, "clipboard").filter(|t| *t == page)
    });
    click_at(&x, TEXTAREA_POINT, "1");
    set("t", "");
    x.xdotool(&["key", "ctrl+v"]);
    if let Err(e) = wait_value(&b, tab, "t", &page) {
        failures.push(format!(
            "copy from the address bar, paste into the page: {e}; after ctrl+c in the address bar \
             the user's clipboard held {:?}",
            on_clipboard.or_else(|| read_selection(&x, "clipboard"))
        ));
    }

    // Page → address bar: the page's text becomes the URL the tab loads.
    let other = http.html("/other", &solid_page("other", OTHER_CSS));
    click_at(&x, INPUT_POINT, "1");
    set("i", &other);
    b.eval(tab, "document.getElementById('i').select(); true")
        .expect("select");
    x.xdotool(&["key", "ctrl+c"]);
    std::thread::sleep(Duration::from_millis(500));
    click_at(&x, ADDRESS_BAR, "1");
    x.xdotool(&["key", "ctrl+a"]);
    x.xdotool(&["key", "ctrl+v"]);
    x.xdotool(&["key", "Return"]);
    let went = wait_until(LOAD_TIMEOUT, || {
        b.tab(tab).filter(|t| t["url"] == json!(other)).map(|_| ())
    });
    if went.is_none() {
        failures.push(format!(
            "copy from the page, paste into the address bar: the tab is at {:?}",
            b.tab(tab)
        ));
    }
    assert!(failures.is_empty(), "clipboard:\n{}", failures.join("\n"));
}

// ----- the Task Manager -----

/// The `task_manager` rows of kind `display`.
fn display_rows(b: &Browser) -> Vec<Value> {
    let reply = b.ok("task_manager", Value::Null);
    reply["processes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["kind"] == json!("display"))
        .collect()
}

#[test]
fn task_manager_shows_each_tabs_display() {
    let x = start_x();
    let http = HttpServer::start();
    let first = http.html("/first", &solid_page("first", VICTIM_CSS));
    let second = http.html("/second", &solid_page("second", OTHER_CSS));
    let b = start_real(&x, std::slice::from_ref(&first));
    let one = b.tab_ids()[0];
    let two = b.new_tab_with(&second, true);
    b.wait_loaded(two, Some(&second), LOAD_TIMEOUT);

    let started = Instant::now();
    let rows = wait_until(Duration::from_secs(20), || {
        let rows = display_rows(&b);
        let each = [one, two]
            .iter()
            .all(|t| rows.iter().filter(|r| r["tab_id"] == json!(t)).count() == 1);
        let measured = rows
            .iter()
            .all(|r| r["memory_kb"].as_u64().unwrap_or(0) > 0);
        (each && measured).then_some(rows)
    });
    let rows = rows.unwrap_or_else(|| {
        panic!(
            "every live tab needs exactly one `display` row with memory after {:?}: {:?}\nall rows: {}",
            started.elapsed(),
            display_rows(&b),
            b.ok("task_manager", Value::Null)
        )
    });
    // Each display row is a live process below the browser.
    let tree = b.tree();
    for r in &rows {
        let pid = r["pid"].as_i64().unwrap_or(0) as i32;
        assert!(
            tree.iter().any(|p| p.pid == pid),
            "display row {r} is not a process of the browser's tree"
        );
    }
    let two_display = rows
        .iter()
        .find(|r| r["tab_id"] == json!(two))
        .and_then(|r| r["memory_kb"].as_u64())
        .unwrap_or(0);

    // A discarded tab has no display; what discarding freed counts its display.
    let freed = b.ok("discard", json!({ "tab_id": two }));
    let gone = wait_until(Duration::from_secs(15), || {
        let rows = display_rows(&b);
        (!rows.iter().any(|r| r["tab_id"] == json!(two))
            && rows.iter().filter(|r| r["tab_id"] == json!(one)).count() == 1)
            .then_some(())
    });
    assert!(
        gone.is_some(),
        "after discarding tab {two} its display row should be gone and tab {one}'s kept: {:?}",
        display_rows(&b)
    );
    let freed_kb = freed["freed_kb"].as_u64().unwrap_or(0);
    assert!(
        freed_kb >= two_display,
        "discarding freed {freed_kb} KiB, less than the tab's display alone ({two_display} KiB)"
    );
}

#[test]
fn image_helpers_compare_rows() {
    let img = Image {
        width: 2,
        height: 2,
        rgb: vec![0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3],
    };
    let a = rows(&img, 0, 2, 2);
    assert_eq!(a.len(), 4);
    let mut b = a.clone();
    b[0] = [9, 9, 9];
    assert!((differing(&a, &b) - 0.25).abs() < 1e-9);
    assert_eq!(content_points(100, 200)[4], (90, 190));
}
