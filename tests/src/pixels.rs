//! Waiting for a page's solid colour to appear on an X screen, cheaply enough to poll every few
//! milliseconds while the browser being measured runs on the same two cores.
//!
//! A whole-screen `GetImage` is 4 MB at 1280x800; taken every 5 ms it would cost the machine more
//! than the browser being timed. Instead each poll reads one pixel row every [`GRID`] pixels (a
//! few tens of kilobytes): any block of [`BLOCK`]x[`BLOCK`] pixels contains exactly two grid
//! columns and two grid rows (since `BLOCK == 2 * GRID`), so four grid points that form a
//! `GRID`-sized square of the colour are a necessary sign of such a block. Only then is the
//! region every such block must lie in read in full and checked pixel by pixel, so a reported
//! time is never a near miss (a progress bar, a half-painted frame or anti-aliased edge).

use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder};
use x11rb::rust_connection::RustConnection;

/// The side of the square of exactly the colour that counts as "the page is visible".
pub const BLOCK: u32 = 200;

/// The spacing of the sampled rows and columns; half of [`BLOCK`] (see the module comment).
const GRID: u32 = BLOCK / 2;

/// The pause between polls.
const INTERVAL: Duration = Duration::from_millis(5);

/// Polls the screen of `display` (such as `":50"`) every 5 ms until a block of at least
/// 200x200 pixels of exactly `rgb` is shown, and returns when it was first seen: the instant the
/// poll that saw it sent its requests (the block appeared between the previous poll and that
/// instant plus the poll's own duration, well under a millisecond for the sampled rows).
/// Errors at `deadline` with what the screen showed at the sample points, or if the display
/// cannot be read.
pub fn wait_for_colour(display: &str, rgb: [u8; 3], deadline: Instant) -> Result<Instant, String> {
    let screen = Screen::connect(display)?;
    loop {
        let polled = Instant::now();
        let rows = screen.grid_rows()?;
        if screen.find_block(&rows, rgb)? {
            return Ok(polled);
        }
        if polled >= deadline {
            return Err(format!(
                "no {BLOCK}x{BLOCK} block of {} on {display} by the deadline; the screen's \
                 most common sampled colours were {}",
                crate::x11::hex(rgb),
                describe_rows(&rows)
            ));
        }
        std::thread::sleep(INTERVAL.min(deadline.saturating_duration_since(Instant::now())));
    }
}

/// Whether the screen of `display` shows a 200x200 block of exactly `rgb` right now.
pub fn shows_colour(display: &str, rgb: [u8; 3]) -> Result<bool, String> {
    let screen = Screen::connect(display)?;
    let rows = screen.grid_rows()?;
    screen.find_block(&rows, rgb)
}

/// A connection to one X screen, with what is needed to decode its root window's pixels.
struct Screen {
    conn: RustConnection,
    display: String,
    root: u32,
    width: u32,
    height: u32,
    format: PixelFormat,
}

/// How a `ZPixmap` pixel of the root window's depth is laid out.
#[derive(Clone, Copy, Debug)]
struct PixelFormat {
    bytes_per_pixel: usize,
    little_endian: bool,
    /// Bit shift and width of the red, green and blue masks of the root visual.
    channels: [(u32, u32); 3],
}

impl PixelFormat {
    fn decode(&self, bytes: &[u8]) -> [u8; 3] {
        let mut value: u32 = 0;
        for i in 0..self.bytes_per_pixel.min(4) {
            let b = if self.little_endian {
                bytes[self.bytes_per_pixel - 1 - i]
            } else {
                bytes[i]
            };
            value = (value << 8) | u32::from(b);
        }
        self.channels.map(|(shift, bits)| {
            let raw = (value >> shift) & ((1u32 << bits) - 1);
            // Scale to 8 bits (exact for the usual 8-bit channels).
            if bits >= 8 {
                (raw >> (bits - 8)) as u8
            } else {
                ((raw * 255) / ((1 << bits) - 1)) as u8
            }
        })
    }
}

/// The shift and width of a contiguous colour mask.
fn mask_bits(mask: u32) -> (u32, u32) {
    if mask == 0 {
        return (0, 1);
    }
    (
        mask.trailing_zeros(),
        (mask >> mask.trailing_zeros()).trailing_ones(),
    )
}

/// One pixel row of the screen, decoded.
struct Row {
    y: u32,
    pixels: Vec<[u8; 3]>,
}

impl Screen {
    fn connect(display: &str) -> Result<Screen, String> {
        let (conn, screen_num) =
            x11rb::connect(Some(display)).map_err(|e| format!("connect to X {display}: {e}"))?;
        let setup = conn.setup();
        let screen = &setup.roots[screen_num];
        let depth = screen.root_depth;
        let visual = screen
            .allowed_depths
            .iter()
            .flat_map(|d| &d.visuals)
            .find(|v| v.visual_id == screen.root_visual)
            .ok_or_else(|| format!("{display}: the root visual is not listed"))?;
        let bits_per_pixel = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map(|f| f.bits_per_pixel)
            .ok_or_else(|| format!("{display}: no pixmap format for depth {depth}"))?;
        if bits_per_pixel % 8 != 0 || !(16..=32).contains(&bits_per_pixel) {
            return Err(format!(
                "{display}: unsupported {bits_per_pixel} bits per pixel (depth {depth})"
            ));
        }
        let format = PixelFormat {
            bytes_per_pixel: usize::from(bits_per_pixel / 8),
            little_endian: setup.image_byte_order == ImageOrder::LSB_FIRST,
            channels: [
                mask_bits(visual.red_mask),
                mask_bits(visual.green_mask),
                mask_bits(visual.blue_mask),
            ],
        };
        Ok(Screen {
            root: screen.root,
            width: u32::from(screen.width_in_pixels),
            height: u32::from(screen.height_in_pixels),
            format,
            display: display.to_owned(),
            conn,
        })
    }

    /// Reads a rectangle of the root window, decoded row by row.
    fn region(&self, x: u32, y: u32, w: u32, h: u32) -> Result<Vec<Vec<[u8; 3]>>, String> {
        let reply = self
            .request_region(x, y, w, h)?
            .reply()
            .map_err(|e| format!("GetImage on {}: {e}", self.display))?;
        Ok(self.decode_rows(&reply.data, w, h))
    }

    fn request_region(
        &self,
        x: u32,
        y: u32,
        w: u32,
        h: u32,
    ) -> Result<
        x11rb::cookie::Cookie<'_, RustConnection, x11rb::protocol::xproto::GetImageReply>,
        String,
    > {
        // Coordinates are within the screen, which X limits to 16 bits.
        self.conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                x as i16,
                y as i16,
                w as u16,
                h as u16,
                u32::MAX,
            )
            .map_err(|e| format!("GetImage on {}: {e}", self.display))
    }

    fn decode_rows(&self, data: &[u8], w: u32, h: u32) -> Vec<Vec<[u8; 3]>> {
        let bpp = self.format.bytes_per_pixel;
        // ZPixmap rows are padded to the server's scanline pad (32 bits on every server we meet).
        let stride = data.len() / h.max(1) as usize;
        (0..h as usize)
            .map(|r| {
                let row = &data[r * stride..];
                (0..w as usize)
                    .map(|c| self.format.decode(&row[c * bpp..(c + 1) * bpp]))
                    .collect()
            })
            .collect()
    }

    /// The full-width rows at y = 0, GRID, 2*GRID, ..., requested together (one round trip).
    fn grid_rows(&self) -> Result<Vec<Row>, String> {
        let ys: Vec<u32> = (0..self.height).step_by(GRID as usize).collect();
        let cookies = ys
            .iter()
            .map(|&y| self.request_region(0, y, self.width, 1))
            .collect::<Result<Vec<_>, _>>()?;
        ys.into_iter()
            .zip(cookies)
            .map(|(y, cookie)| {
                let reply = cookie
                    .reply()
                    .map_err(|e| format!("GetImage on {}: {e}", self.display))?;
                let mut rows = self.decode_rows(&reply.data, self.width, 1);
                Ok(Row {
                    y,
                    pixels: rows.pop().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Whether a BLOCK x BLOCK square of exactly `rgb` is on screen: candidates from the grid
    /// rows, each confirmed by reading the region every such block must lie in.
    fn find_block(&self, rows: &[Row], rgb: [u8; 3]) -> Result<bool, String> {
        for pair in rows.windows(2) {
            let (top, bottom) = (&pair[0], &pair[1]);
            let columns: Vec<u32> = (0..self.width).step_by(GRID as usize).collect();
            for cols in columns.windows(2) {
                let (gx, gx2) = (cols[0], cols[1]);
                let corners = [
                    top.pixels[gx as usize],
                    top.pixels[gx2 as usize],
                    bottom.pixels[gx as usize],
                    bottom.pixels[gx2 as usize],
                ];
                if corners.iter().any(|&c| c != rgb) {
                    continue;
                }
                // A block [x0, x0 + BLOCK) holding columns gx and gx + GRID starts in
                // (gx - GRID, gx]; so it lies within [gx - GRID + 1, gx + BLOCK), same for y.
                let x0 = (gx + 1).saturating_sub(GRID);
                let y0 = (top.y + 1).saturating_sub(GRID);
                let x1 = (gx + BLOCK).min(self.width);
                let y1 = (top.y + BLOCK).min(self.height);
                let region = self.region(x0, y0, x1 - x0, y1 - y0)?;
                if has_block(&region, rgb, BLOCK as usize) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

/// Whether `region` (rows of pixels) holds a `side` x `side` square of exactly `rgb`: for each
/// column, the run of matching pixels ending at the current row; a square ends at this row when
/// `side` consecutive columns all have runs of at least `side`.
fn has_block(region: &[Vec<[u8; 3]>], rgb: [u8; 3], side: usize) -> bool {
    let width = region.first().map_or(0, Vec::len);
    let mut runs = vec![0usize; width];
    for row in region {
        let mut wide = 0;
        for (x, &p) in row.iter().enumerate() {
            runs[x] = if p == rgb { runs[x] + 1 } else { 0 };
            wide = if runs[x] >= side { wide + 1 } else { 0 };
            if wide >= side {
                return true;
            }
        }
    }
    false
}

/// The most common colours among the sampled rows, for error messages.
fn describe_rows(rows: &[Row]) -> String {
    let mut counts: std::collections::HashMap<[u8; 3], usize> = std::collections::HashMap::new();
    for row in rows {
        for &p in &row.pixels {
            *counts.entry(p).or_default() += 1;
        }
    }
    let total: usize = counts.values().sum();
    let mut by_count: Vec<_> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    by_count
        .iter()
        .take(4)
        .map(|(c, n)| format!("{} ({}%)", crate::x11::hex(*c), n * 100 / total.max(1)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_search_needs_a_full_square() {
        let red = [255, 0, 0];
        let mut region = vec![vec![[0, 0, 0]; 12]; 12];
        for row in region.iter_mut().skip(2).take(5) {
            for p in row.iter_mut().skip(3).take(5) {
                *p = red;
            }
        }
        assert!(has_block(&region, red, 5));
        assert!(!has_block(&region, red, 6));
        // One wrong pixel inside breaks every 5x5 square (the block is exactly 5x5).
        region[4][5] = [254, 0, 0];
        assert!(!has_block(&region, red, 5));
        assert!(has_block(&region, red, 2));
    }

    #[test]
    fn decodes_little_endian_bgrx() {
        let f = PixelFormat {
            bytes_per_pixel: 4,
            little_endian: true,
            channels: [
                mask_bits(0xff0000),
                mask_bits(0x00ff00),
                mask_bits(0x0000ff),
            ],
        };
        assert_eq!(f.decode(&[0x30, 0x20, 0x10, 0x00]), [0x10, 0x20, 0x30]);
        assert_eq!(mask_bits(0xf800), (11, 5));
    }
}

/// The X displays the screen tests of this module and of [`crate::peers`] run on.
#[cfg(test)]
pub(crate) const TEST_DISPLAYS: std::ops::RangeInclusive<u32> = 50..=57;

#[cfg(test)]
mod screen_tests {
    use super::*;
    use crate::Xvfb;
    use x11rb::protocol::xproto::{CreateWindowAux, WindowClass};
    use x11rb::wrapper::ConnectionExt as _;
    use x11rb::COPY_DEPTH_FROM_PARENT;

    /// Maps a window of a solid colour at (x, y) on `display`; returns the connection, which
    /// keeps it shown until dropped.
    fn show_window(display: &str, rgb: [u8; 3], x: i16, y: i16, w: u16, h: u16) -> RustConnection {
        let (conn, n) = x11rb::connect(Some(display)).expect("connect");
        let screen = conn.setup().roots[n].clone();
        let id = conn.generate_id().expect("an id");
        let pixel = (u32::from(rgb[0]) << 16) | (u32::from(rgb[1]) << 8) | u32::from(rgb[2]);
        conn.create_window(
            COPY_DEPTH_FROM_PARENT,
            id,
            screen.root,
            x,
            y,
            w,
            h,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new()
                .background_pixel(pixel)
                .override_redirect(1),
        )
        .expect("create a window");
        conn.map_window(id).expect("map it");
        conn.sync().expect("sync");
        conn
    }

    #[test]
    fn sees_a_block_when_it_appears_and_not_before() {
        let x = Xvfb::start_in(TEST_DISPLAYS);
        let display = x.display_env();
        let teal = [0x12, 0x80, 0x70];
        // Too narrow (150 px) and one colour off: neither may count.
        let _narrow = show_window(&display, teal, 20, 20, 150, 600);
        let _off = show_window(&display, [0x12, 0x80, 0x71], 400, 100, 400, 400);
        let t0 = Instant::now();
        let err = wait_for_colour(&display, teal, t0 + Duration::from_millis(300)).unwrap_err();
        assert!(t0.elapsed() >= Duration::from_millis(300), "{err}");
        assert!(err.contains("#128070") && err.contains("#128071"), "{err}");
        assert!(!shows_colour(&display, teal).unwrap());

        // A 201x203 window at an odd place, shown 400 ms from now by another thread.
        let shown_at = std::thread::scope(|s| {
            let d = display.clone();
            let shower = s.spawn(move || {
                std::thread::sleep(Duration::from_millis(400));
                let at = Instant::now();
                (show_window(&d, teal, 933, 517, 201, 203), at)
            });
            let seen = wait_for_colour(&display, teal, Instant::now() + Duration::from_secs(5))
                .expect("the block is seen");
            let (_conn, at) = shower.join().unwrap();
            assert!(shows_colour(&display, teal).unwrap());
            (seen, at)
        });
        let (seen, mapped) = shown_at;
        // Seen after it was requested, and within a few polls of it being on screen.
        let delay = seen.saturating_duration_since(mapped);
        assert!(
            seen + Duration::from_millis(10) >= mapped,
            "seen {:?} before it was shown",
            mapped - seen
        );
        assert!(
            delay < Duration::from_millis(100),
            "seen {delay:?} after it was shown"
        );
    }

    #[test]
    fn a_missing_display_is_an_error() {
        let err = wait_for_colour(":49999", [0, 0, 0], Instant::now()).unwrap_err();
        assert!(err.contains(":49999"), "{err}");
    }
}
