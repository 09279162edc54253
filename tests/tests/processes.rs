//! End-to-end: one renderer process per tab, crash isolation, and no process left behind after close, shutdown or a killed browser.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use warren_tests::procs::{ancestors_up_to, describe, still_alive};
use warren_tests::{
    solid_page, wait_until, wait_web_process, Browser, BrowserOpts, HttpServer, Proc, Xvfb,
    LOAD_TIMEOUT,
};

/// Serves three solid pages and returns their URLs.
fn pages(http: &HttpServer) -> Vec<String> {
    [("one", "#c00000"), ("two", "#00c000"), ("three", "#0000c0")]
        .iter()
        .map(|(name, colour)| http.html(&format!("/{name}"), &solid_page(name, colour)))
        .collect()
}

/// Starts a browser with `urls[0]` and opens the rest as tabs; returns the tab ids, all loaded.
fn browser_with_tabs(x: &Xvfb, urls: &[String]) -> (Browser, Vec<u64>) {
    let b = Browser::start(
        x,
        BrowserOpts {
            urls: vec![urls[0].clone()],
            ..Default::default()
        },
    );
    let mut ids = b.tab_ids();
    assert_eq!(
        ids.len(),
        1,
        "one tab for one URL on the command line: {:?}",
        b.tabs()
    );
    for url in &urls[1..] {
        ids.push(b.new_tab(url));
    }
    for (id, url) in ids.iter().zip(urls) {
        b.wait_loaded(*id, Some(url), LOAD_TIMEOUT);
    }
    (b, ids)
}

/// The browser's children that exited but were not reaped.
fn zombies_of(b: &Browser) -> Vec<Proc> {
    warren_tests::procs::all_processes()
        .into_iter()
        .filter(|p| p.ppid == b.pid() && p.state == 'Z')
        .collect()
}

/// Waits up to 3 s for the browser to have reaped every child that exited.
fn assert_reaped(b: &Browser, when: &str) {
    let reaped = wait_until(Duration::from_secs(3), || {
        zombies_of(b).is_empty().then_some(())
    });
    assert!(
        reaped.is_some(),
        "{when}: the browser left unreaped children:\n{}",
        describe(&zombies_of(b))
    );
}

fn pid_of(b: &Browser, tab: u64) -> i32 {
    b.renderer_pid(tab)
        .unwrap_or_else(|| panic!("tab {tab} has no renderer_pid: {:?}", b.tab(tab)))
}

#[test]
fn three_tabs_have_own_renderers_and_a_stopped_one_stalls_only_itself_and_turns_unresponsive() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let urls = pages(&http);
    let (b, ids) = browser_with_tabs(&x, &urls);

    let pids: Vec<i32> = ids.iter().map(|t| pid_of(&b, *t)).collect();
    let mut distinct = pids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        3,
        "renderer pids must be distinct: {pids:?}"
    );
    let browser_group = Proc::read(b.pid()).expect("browser in /proc").pgrp;
    for pid in &pids {
        let p = Proc::read(*pid).unwrap_or_else(|| panic!("renderer {pid} is not running"));
        // Sandboxed (the default), the browser's child is bubblewrap, and the renderer runs below
        // it in the tab's own PID namespace.
        let chain = ancestors_up_to(&p, b.pid());
        assert!(
            chain.iter().all(|a| a.name() == "bwrap"),
            "renderer {p} must run below the browser {}, through bubblewrap only; between them:\n{}",
            b.pid(),
            describe(&chain)
        );
        assert_ne!(
            p.pgrp, browser_group,
            "renderer {p} must run in its own process group"
        );
        let tree = wait_web_process(*pid);
        // The web process belongs to this renderer alone.
        for other in pids.iter().filter(|o| *o != pid) {
            assert!(
                tree.iter().all(|q| q.pid != *other),
                "renderer {other} sits below renderer {pid}"
            );
        }
        eprintln!("renderer tree of {pid}:\n{}", describe(&tree));
    }

    // Freeze the middle tab's whole process group.
    let stalled = ids[1];
    let group = Proc::read(pids[1]).expect("renderer").pgrp;
    killpg(Pid::from_raw(group), Signal::SIGSTOP).expect("SIGSTOP the renderer's group");
    let stopped_at = Instant::now();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        std::thread::scope(|s| {
            // The stalled eval on its own connection, so it cannot hold up the other requests.
            let stalled_eval = s.spawn(|| {
                let mut conn = b.connect();
                let start = Instant::now();
                let reply = conn.call("eval", json!({ "tab_id": stalled, "js": "1 + 1" }));
                (reply, start.elapsed())
            });
            std::thread::sleep(Duration::from_millis(500));
            for tab in [ids[0], ids[2]] {
                let start = Instant::now();
                let v = b.eval(tab, "1 + 1");
                let took = start.elapsed();
                assert_eq!(
                    v,
                    Ok(json!(2)),
                    "eval in tab {tab} while tab {stalled} is stopped"
                );
                assert!(
                    took < Duration::from_secs(5),
                    "eval in the running tab {tab} took {took:?} while tab {stalled} was stopped"
                );
            }
            let start = Instant::now();
            let tabs = b.tabs();
            assert_eq!(tabs.len(), 3);
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "`tabs` took {:?}",
                start.elapsed()
            );
            let (reply, took) = stalled_eval.join().expect("stalled eval thread");
            let reply =
                reply.unwrap_or_else(|e| panic!("eval in the stopped tab got no reply: {e}"));
            assert!(
                reply.is_err(),
                "eval in the stopped tab must fail, got {reply:?}"
            );
            assert!(
                took < Duration::from_secs(13),
                "eval in the stopped tab must fail within the protocol's 10 s, took {took:?}"
            );
            eprintln!("eval in the stopped tab failed after {took:?}: {reply:?}");
        });
        // A renderer that answers no ping for 15 s is marked unresponsive: at worst 5 s until the
        // next ping, 15 s without its answer, 1 s until the browser's next check; the rest is
        // room for a loaded machine.
        let marked = wait_until(
            Duration::from_secs(35).saturating_sub(stopped_at.elapsed()),
            || (b.tab(stalled)?.get("responsive") == Some(&json!(false))).then_some(()),
        );
        assert!(
            marked.is_some(),
            "tab {stalled}, stopped for {:?}, is not marked unresponsive: {:?}",
            stopped_at.elapsed(),
            b.tab(stalled)
        );
        for tab in [ids[0], ids[2]] {
            assert_eq!(
                b.tab(tab).and_then(|t| t.get("responsive").cloned()),
                Some(json!(true))
            );
        }
    }));
    killpg(Pid::from_raw(group), Signal::SIGCONT).expect("SIGCONT the renderer's group");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    // Once continued, the tab works again.
    let back = wait_until(Duration::from_secs(15), || {
        (b.eval(stalled, "2 + 3") == Ok(json!(5))).then_some(())
    });
    assert!(
        back.is_some(),
        "tab {stalled} did not answer eval after SIGCONT: {:?}",
        b.tab(stalled)
    );
    let responsive = wait_until(Duration::from_secs(20), || {
        (b.tab(stalled)?.get("responsive") == Some(&json!(true))).then_some(())
    });
    assert!(
        responsive.is_some(),
        "tab {stalled} stays unresponsive after SIGCONT: {:?}",
        b.tab(stalled)
    );
}

#[test]
fn killed_renderer_crashes_only_its_tab_and_reload_recovers() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let urls = pages(&http);
    let (b, ids) = browser_with_tabs(&x, &urls[..2]);
    let (victim, other) = (ids[0], ids[1]);
    let victim_pid = pid_of(&b, victim);
    let other_pid = pid_of(&b, other);
    let victim_tree = wait_web_process(victim_pid);
    let _ = b.tree();

    kill(Pid::from_raw(victim_pid), Signal::SIGKILL).expect("kill -9 the renderer");
    let crashed = b.wait_state(victim, "crashed", Duration::from_secs(5));
    assert_eq!(
        crashed.get("renderer_pid"),
        Some(&Value::Null),
        "a crashed tab has no renderer: {crashed}"
    );
    assert!(
        b.eval(victim, "1").is_err(),
        "eval in a crashed tab must fail"
    );
    assert_eq!(
        b.eval(other, "1 + 1"),
        Ok(json!(2)),
        "the other tab must still answer"
    );
    assert_eq!(
        b.renderer_pid(other),
        Some(other_pid),
        "the other tab keeps its renderer"
    );
    let leftovers = wait_until(Duration::from_secs(5), || {
        let alive = still_alive(&victim_tree);
        alive.is_empty().then_some(())
    });
    assert!(
        leftovers.is_some(),
        "the crashed renderer's processes are still alive after 5 s:\n{}",
        describe(&still_alive(&victim_tree))
    );

    assert_reaped(&b, "after a renderer was killed");

    b.ok("reload", json!({ "tab_id": victim }));
    let new_pid =
        wait_until(LOAD_TIMEOUT, || b.renderer_pid(victim)).expect("reload starts a renderer");
    assert_ne!(new_pid, victim_pid, "reload must start a fresh renderer");
    b.wait_loaded(victim, Some(&urls[0]), LOAD_TIMEOUT);
    assert_eq!(b.eval(victim, "document.title"), Ok(json!("one")));
    let state = b.state(victim).unwrap_or_default();
    assert!(
        state == "active" || state == "background",
        "reloaded tab state {state:?}"
    );
    assert_eq!(b.eval(other, "1 + 1"), Ok(json!(2)));
}

#[test]
fn close_and_shutdown_leave_no_processes() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let urls = pages(&http);
    let (b, ids) = browser_with_tabs(&x, &urls[..2]);
    let closing_tree = wait_web_process(pid_of(&b, ids[1]));
    let _ = wait_web_process(pid_of(&b, ids[0]));
    let _ = b.tree();

    b.ok("close", json!({ "tab_id": ids[1] }));
    let closed = wait_until(Duration::from_secs(3), || {
        (b.tab_ids() == vec![ids[0]]).then_some(())
    });
    assert!(
        closed.is_some(),
        "the closed tab must leave `tabs`: {:?}",
        b.tabs()
    );
    let gone = wait_until(Duration::from_secs(3), || {
        still_alive(&closing_tree).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "3 s after `close` these processes of the closed tab are alive:\n{}",
        describe(&still_alive(&closing_tree))
    );
    assert_eq!(
        b.eval(ids[0], "1 + 1"),
        Ok(json!(2)),
        "the remaining tab still works"
    );
    assert_reaped(&b, "after `close`");

    let tree = b.tree();
    assert!(
        tree.iter().any(Proc::is_webkit_web_process),
        "tree before shutdown:\n{}",
        describe(&tree)
    );
    let status = b.shutdown();
    assert!(
        status.success(),
        "the browser must exit cleanly on `shutdown`: {status}"
    );
    let gone = wait_until(Duration::from_secs(5), || {
        still_alive(&tree).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "5 s after `shutdown` these processes of the browser's tree are alive:\n{}",
        describe(&still_alive(&tree))
    );
}

#[test]
fn killing_the_browser_leaves_no_renderer_behind_not_even_a_frozen_one() {
    let x = Xvfb::start();
    let http = HttpServer::start();
    let urls = pages(&http);
    let (b, ids) = browser_with_tabs(&x, &urls[..2]);
    for id in &ids {
        let _ = wait_web_process(pid_of(&b, *id));
    }
    let tree: Vec<Proc> = b.tree().into_iter().filter(|p| p.pid != b.pid()).collect();
    assert!(
        tree.len() >= 4,
        "two renderers with WebKit helpers expected:\n{}",
        describe(&tree)
    );
    // One tab is frozen: its whole tree is stopped, so it cannot notice anything by itself.
    let background = b
        .tabs()
        .iter()
        .find(|t| t["state"] == "background")
        .and_then(|t| t["tab_id"].as_u64())
        .expect("a background tab");
    b.ok("freeze", json!({ "tab_id": background }));

    b.kill9();
    let gone = wait_until(Duration::from_secs(5), || {
        still_alive(&tree).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "5 s after kill -9 of the browser these of its processes are alive:\n{}",
        describe(&still_alive(&tree))
    );
}
