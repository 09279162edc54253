//! The browser↔renderer IPC figures of issue 9: the round trip of a `Ping` and the one-way
//! message rate, measured against one real `renderer` binary with the framing and codec the
//! browser uses ([`crate::renderer_driver`]).
//!
//! # What the figures cover
//!
//! A `Ping` goes down the ipc-channel (sent on the measuring thread, as the browser's writer
//! thread sends it), is received by the renderer's down thread, handed to its GTK main loop,
//! answered there with a `Pong` written to the up socket (postcard frame), read and decoded by the
//! driver's reader thread and handed to the measuring thread through a channel: the same hops as
//! in the browser, whose reader thread also hands frames to the UI thread through a channel. Not
//! covered: the browser's frame validation (a few hundred nanoseconds) and its UI thread, which
//! handles renderer events in batches at most every 25 ms (docs/ARCHITECTURE.md, "Channels") —
//! so a ping as the browser's liveness check sees it can take up to 25 ms more than this round
//! trip; that wait is a UI scheduling choice, not the channel's cost.
//!
//! The one-way rate is `Ping`s sent back to back, timed from the first send to the arrival of
//! the last `Pong`. `Ping` is the cheapest message the renderer handles (no WebKit call, one up
//! write), and every down message has a cost on the renderer's main loop, so this is the rate at
//! which the channel and the renderer's dispatch move messages, not page work. Both directions
//! carry the same number of messages concurrently (down on the ipc-channel, up on the socket,
//! each with its own threads), so the slower direction sets the figure: it is a lower bound of
//! either direction's one-way rate. The browser's validator would allow only 1000 up messages a
//! second sustained (5000 in a burst); the driver does not enforce that budget, so the figure is
//! the channel's capacity.
//!
//! The renderer is started the way the browser starts one (without its sandbox and nested
//! display, which do not sit on this path), loads a local solid-colour page, and is measured only
//! once that page is on screen and a warm-up of pings has been answered, so no start-up work
//! competes with the pings.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use warren_ipc::{BrowserToRenderer, RendererToBrowser};

use crate::renderer_driver::{Launched, ParentWindow, Renderer};
use crate::{solid_page, HttpServer};

/// The round trips and the one-way rate measured on one renderer.
#[derive(Debug, Clone)]
pub struct IpcFigures {
    /// Every measured round trip, in microseconds, in the order taken.
    pub round_trip_us: Vec<f64>,
    /// Messages per second through the channel one way (see the module comment).
    pub one_way_per_sec: f64,
}

impl IpcFigures {
    /// The `p`-th percentile (0 to 100, nearest rank) of the round trips, in microseconds;
    /// NaN without any.
    pub fn round_trip_percentile_us(&self, p: f64) -> f64 {
        percentile(&self.round_trip_us, p)
    }
}

/// The `p`-th percentile (0 to 100) of `values` by nearest rank; NaN for no values.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// How many round trips are made and discarded before measuring.
const WARM_UP: usize = 200;

/// How long one answer may take before the run counts as broken.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The colour of the page the renderer shows while measured.
const PAGE_COLOUR: [u8; 3] = [0x3c, 0x8d, 0x5e];

/// Starts a renderer on `display` (such as `":50"`), waits until its page is loaded and shown,
/// and measures `pings` round trips one at a time and then the one-way rate of `one_way` pings
/// sent back to back. Errors if the renderer does not start, load or answer.
pub fn measure(display: &str, pings: usize, one_way: usize) -> Result<IpcFigures, String> {
    let server = HttpServer::start();
    let url = server.html("/ipc.html", &solid_page("ipc", "#3c8d5e"));
    let parent_and_renderer = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let parent = ParentWindow::create_on(display);
        let mut renderer = Renderer::start_on(
            display,
            &parent,
            Launched {
                url: url.clone(),
                restore: None,
            },
        );
        renderer.wait_seen("Ready", crate::LOAD_TIMEOUT, |m| {
            matches!(m, RendererToBrowser::Ready { .. })
        });
        renderer.wait_loaded(&url, crate::LOAD_TIMEOUT);
        (parent, renderer)
    }));
    let (_parent, mut renderer) = parent_and_renderer
        .map_err(|panic| format!("the renderer did not start: {}", panic_text(&*panic)))?;
    crate::pixels::wait_for_colour(display, PAGE_COLOUR, Instant::now() + crate::LOAD_TIMEOUT)
        .map_err(|e| format!("the renderer's page is not on screen: {e}"))?;

    let mut seq = 0u64;
    for _ in 0..WARM_UP {
        seq += 1;
        round_trip(&mut renderer, seq)?;
    }
    let mut round_trip_us = Vec::with_capacity(pings);
    for _ in 0..pings {
        seq += 1;
        round_trip_us.push(round_trip(&mut renderer, seq)?.as_secs_f64() * 1e6);
    }
    let one_way_per_sec = burst(&mut renderer, seq + 1, one_way)?;
    Ok(IpcFigures {
        round_trip_us,
        one_way_per_sec,
    })
}

/// Sends `Ping { seq }` and waits for its `Pong`; other messages in between are skipped.
fn round_trip(renderer: &mut Renderer, seq: u64) -> Result<Duration, String> {
    let sent = Instant::now();
    renderer.send(BrowserToRenderer::Ping { seq });
    wait_pong(renderer, seq, sent + ANSWER_TIMEOUT)?;
    Ok(sent.elapsed())
}

/// Sends `count` pings from `first_seq` on back to back and returns messages per second from
/// the first send to the last `Pong`, checking that every `Pong` came back, in order.
fn burst(renderer: &mut Renderer, first_seq: u64, count: usize) -> Result<f64, String> {
    if count == 0 {
        return Err("a one-way rate needs at least one message".into());
    }
    let start = Instant::now();
    let last = first_seq + count as u64 - 1;
    for seq in first_seq..=last {
        renderer.send(BrowserToRenderer::Ping { seq });
    }
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let mut expected = first_seq;
    while expected <= last {
        let left = deadline.saturating_duration_since(Instant::now());
        match renderer.next(left) {
            Some(RendererToBrowser::Pong { seq }) if seq == expected => expected += 1,
            Some(RendererToBrowser::Pong { seq }) => {
                return Err(format!("Pong {seq} came when {expected} was due"))
            }
            Some(_) => {}
            None => return Err(no_answer(renderer, expected)),
        }
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// Takes messages until `Pong { seq }`.
fn wait_pong(renderer: &mut Renderer, seq: u64, deadline: Instant) -> Result<(), String> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match renderer.next(left) {
            Some(RendererToBrowser::Pong { seq: s }) if s == seq => return Ok(()),
            Some(_) => {}
            None => return Err(no_answer(renderer, seq)),
        }
    }
}

fn no_answer(renderer: &Renderer, seq: u64) -> String {
    match renderer.closed() {
        Some(why) => format!("the renderer closed its channel before Pong {seq}: {why}"),
        None => format!(
            "no Pong {seq} within {ANSWER_TIMEOUT:?}\n{}",
            renderer.report()
        ),
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[7.0], 50.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}

#[cfg(test)]
mod renderer_tests {
    use super::*;
    use crate::Xvfb;

    #[test]
    #[ignore = "starts the release renderer binary; run with --ignored after building it"]
    fn measures_a_real_renderer() {
        let x = Xvfb::start_in(crate::pixels::TEST_DISPLAYS);
        let f = measure(&x.display_env(), 10_000, 100_000).expect("measured");
        assert_eq!(f.round_trip_us.len(), 10_000);
        let (p50, p99) = (
            f.round_trip_percentile_us(50.0),
            f.round_trip_percentile_us(99.0),
        );
        eprintln!(
            "IPC round trip p50 {p50:.1} us, p99 {p99:.1} us, max {:.1} us; one way {:.0} msg/s",
            f.round_trip_percentile_us(100.0),
            f.one_way_per_sec
        );
        // A round trip crosses two processes and four threads: never under a microsecond, and
        // on an idle machine far under the 10 s timeout.
        assert!(p50 > 1.0 && p99 < 1e6, "{f:?}");
        assert!(f.one_way_per_sec > 100.0, "{f:?}");
    }
}
