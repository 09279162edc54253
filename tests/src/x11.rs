//! X11 for the display-isolation tests (issue 8): the hostile renderer's `x11-attack` report read
//! back from the browser log, and what the user's display shows that screenshots do not (the
//! pointer's cursor image).

use serde_json::Value;
use x11rb::connection::Connection;
use x11rb::protocol::xfixes::ConnectionExt as _;

/// The prefix of every line the `x11-attack` mode prints.
const PREFIX: &str = "hostile-renderer: x11 ";

/// One attempt of the hostile renderer's `x11-attack` mode, as it reported it:
/// `hostile-renderer: x11 WHAT STATUS tab=N round=R DETAIL`.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// What it tried, such as `own-xtest` or `outer-path-connect`.
    pub what: String,
    /// `ok`, `denied` or `error`.
    pub status: String,
    pub tab: u64,
    pub round: u32,
    /// The detail, parsed as JSON (a JSON string if it was not JSON).
    pub detail: Value,
}

impl Attempt {
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }
}

/// Every `x11-attack` attempt in a browser log, in order.
pub fn attempts(log: &str) -> Vec<Attempt> {
    log.lines().filter_map(parse_attempt).collect()
}

fn parse_attempt(line: &str) -> Option<Attempt> {
    let rest = &line[line.find(PREFIX)? + PREFIX.len()..];
    let mut parts = rest.splitn(5, ' ');
    let what = parts.next()?.to_owned();
    let status = parts.next()?.to_owned();
    let tab = parts.next()?.strip_prefix("tab=")?.parse().ok()?;
    let round = parts.next()?.strip_prefix("round=")?.parse().ok()?;
    let raw = parts.next().unwrap_or("").trim();
    let detail = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    Some(Attempt {
        what,
        status,
        tab,
        round,
        detail,
    })
}

/// Whether the `x11-attack` renderer of `tab` finished all its rounds.
pub fn attack_done(log: &str, tab: u64) -> bool {
    let done = format!("{PREFIX}done tab={tab}");
    log.lines().any(|l| l.trim_end().ends_with(&done))
}

/// The attempts of one tab named `what`.
pub fn attempts_of<'a>(all: &'a [Attempt], tab: u64, what: &str) -> Vec<&'a Attempt> {
    all.iter()
        .filter(|a| a.tab == tab && a.what == what)
        .collect()
}

/// The colours (`#rrggbb`) a `*-get-image` attempt reported as the most common on its root window.
pub fn image_colours(attempt: &Attempt) -> Vec<String> {
    attempt.detail["colours"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get(0).and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The window names a `*-query-tree` attempt reported.
pub fn window_names(attempt: &Attempt) -> Vec<String> {
    attempt.detail["names"]
        .as_array()
        .map(|ns| {
            ns.iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `#rrggbb` for a colour.
pub fn hex(colour: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", colour[0], colour[1], colour[2])
}

/// Whether a `#rrggbb` string is within `tolerance` of `colour` on every channel.
pub fn hex_near(text: &str, colour: [u8; 3], tolerance: u8) -> bool {
    let Some(digits) = text.strip_prefix('#').filter(|d| d.len() == 6) else {
        return false;
    };
    let channel = |i: usize| u8::from_str_radix(&digits[i..i + 2], 16).ok();
    match (channel(0), channel(2), channel(4)) {
        (Some(r), Some(g), Some(b)) => crate::xvfb::near([r, g, b], colour, tolerance),
        _ => false,
    }
}

/// The pointer's cursor image on a display, as XFixes reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CursorImage {
    pub width: u16,
    pub height: u16,
    pub xhot: u16,
    pub yhot: u16,
    /// The server's serial number of this cursor (changes with the cursor, not with the position).
    pub serial: u32,
    /// ARGB pixels, row-major.
    pub pixels: Vec<u32>,
}

impl CursorImage {
    /// Whether two cursors look the same (size, hot spot and pixels; the serial may differ for
    /// equal images).
    pub fn same_look(&self, other: &CursorImage) -> bool {
        (self.width, self.height, self.xhot, self.yhot, &self.pixels)
            == (
                other.width,
                other.height,
                other.xhot,
                other.yhot,
                &other.pixels,
            )
    }

    /// How many pixels are not fully transparent.
    pub fn visible_pixels(&self) -> usize {
        self.pixels.iter().filter(|p| *p >> 24 != 0).count()
    }
}

/// The cursor image shown at the pointer on display `:N` (XFixes `GetCursorImage`).
pub fn cursor_image(display: u32) -> Result<CursorImage, String> {
    let (conn, _) = x11rb::connect(Some(&format!(":{display}")))
        .map_err(|e| format!("connect to :{display}: {e}"))?;
    conn.xfixes_query_version(5, 0)
        .map_err(|e| e.to_string())?
        .reply()
        .map_err(|e| format!("XFixes on :{display}: {e}"))?;
    let c = conn
        .xfixes_get_cursor_image()
        .map_err(|e| e.to_string())?
        .reply()
        .map_err(|e| format!("GetCursorImage on :{display}: {e}"))?;
    conn.flush().map_err(|e| e.to_string())?;
    Ok(CursorImage {
        width: c.width,
        height: c.height,
        xhot: c.xhot,
        yhot: c.yhot,
        serial: c.cursor_serial,
        pixels: c.cursor_image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attack_lines() {
        let log = "noise\n[renderer] hostile-renderer: x11 own-get-image ok tab=2 round=3 \
            {\"width\":10,\"colours\":[[\"#ff0000\",5],[\"#000000\",1]]}\n\
            hostile-renderer: x11 outer-path-connect denied tab=2 round=3 {\"errno\":\"ENOENT\"}\n\
            hostile-renderer: x11 landlock error tab=2 round=0 \"no\"\n\
            hostile-renderer: x11 done tab=2\n";
        let a = attempts(log);
        assert_eq!(a.len(), 3, "{a:?}");
        assert_eq!(
            (a[0].what.as_str(), a[0].ok(), a[0].tab, a[0].round),
            ("own-get-image", true, 2, 3)
        );
        assert_eq!(image_colours(&a[0]), ["#ff0000", "#000000"]);
        assert!(hex_near(&image_colours(&a[0])[0], [250, 5, 0], 8));
        assert_eq!(a[1].detail["errno"], "ENOENT");
        assert_eq!(a[2].detail, Value::String("no".into()));
        assert!(attack_done(log, 2));
        assert!(!attack_done(log, 3));
        assert_eq!(attempts_of(&a, 2, "landlock").len(), 1);
    }
}
