//! The PNG charts (plotters, bitmap backend): the whole tree's memory against the tab count for
//! Warren and the peers, one chart per page, and the distribution of new-tab latencies.
//!
//! Text is drawn with a TrueType font read from the system (DejaVu Sans, from the
//! `fonts-dejavu-core` package `scripts/install-deps.sh` installs) through ab_glyph, so no
//! fontconfig or FreeType is linked; without the font the charts are drawn without text.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use plotters::prelude::*;

use crate::peers_ipc::PeersOutcome;
use crate::Report;

/// Where the font may be, in order.
const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers the font with plotters once; whether text can be drawn.
fn font_ready() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        FONT_PATHS.iter().any(|path| {
            let Ok(bytes) = std::fs::read(path) else {
                return false;
            };
            // plotters keeps the font for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
}

/// The colours of the series, in order.
const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// A named line of (x, y) points.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

/// Draws every chart there is data for into `dir`; the files written.
pub fn draw_all(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    let peers = match &report.peers {
        Some(PeersOutcome::Measured(list)) => list.as_slice(),
        _ => &[],
    };
    let mut pages: Vec<String> = report.tree.iter().map(|p| p.page.clone()).collect();
    for p in peers {
        for l in &p.memory {
            if !pages.contains(&l.page) {
                pages.push(l.page.clone());
            }
        }
    }
    for page in pages {
        let mut series = Vec::new();
        if let Some(w) = report.tree.iter().find(|p| p.page == page) {
            series.push(Series {
                name: "Warren".into(),
                points: w
                    .levels
                    .iter()
                    .map(|l| (l.tabs as f64, l.total_kb as f64 / 1024.0))
                    .collect(),
            });
            if let Some(c) = &w.capped {
                series.push(Series {
                    name: format!("Warren, --max-live-tabs {}", crate::tree::CAP),
                    points: vec![(c.tabs as f64, c.total_kb as f64 / 1024.0)],
                });
            }
        }
        for p in peers {
            let points: Vec<(f64, f64)> = p
                .memory
                .iter()
                .filter(|l| l.page == page)
                .filter_map(|l| Some((l.tabs as f64, *l.pss_kb.as_ref().ok()? as f64 / 1024.0)))
                .collect();
            if !points.is_empty() {
                series.push(Series {
                    name: p.name.clone(),
                    points,
                });
            }
        }
        let path = dir.join(format!("memory-{page}.png"));
        line_chart(
            &path,
            &format!("Whole process tree PSS, {page} page"),
            "tabs",
            "MiB",
            &series,
        )?;
        written.push(path);
    }
    let cdf = |name: &str, samples: &[Duration]| {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let n = ms.len() as f64;
        Series {
            name: name.to_string(),
            points: ms
                .iter()
                .enumerate()
                .map(|(i, v)| (*v, (i + 1) as f64 / n))
                .collect(),
        }
    };
    let mut series = Vec::new();
    if !report.new_tab_runs.is_empty() {
        let loaded: Vec<Duration> = report.new_tab_runs.iter().map(|r| r.loaded).collect();
        let pixels: Vec<Duration> = report.new_tab_runs.iter().map(|r| r.pixels).collect();
        series.push(cdf("Warren: loaded", &loaded));
        series.push(cdf("Warren: pixels", &pixels));
    }
    for p in peers {
        if let Ok(times) = &p.new_tab {
            if !times.is_empty() {
                series.push(cdf(&format!("{}: pixels", p.name), times));
            }
        }
    }
    if !series.is_empty() {
        let path = dir.join("new-tab.png");
        line_chart(
            &path,
            "New tab latency (share of runs within)",
            "ms",
            "share of runs",
            &series,
        )?;
        written.push(path);
    }
    Ok(written)
}

/// A line chart with a marker on every point, axes from zero, and a legend.
fn line_chart(
    path: &Path,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("chart {}: {e}", path.display());
    let text = font_ready();
    let all = series.iter().flat_map(|s| s.points.iter());
    let x_max = all.clone().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let y_max = all.map(|p| p.1).fold(1e-9, f64::max) * 1.1;
    let root = BitMapBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption(caption, ("sans-serif", 24))
            .x_label_area_size(45)
            .y_label_area_size(70);
    }
    let mut chart = builder
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| fail(&e))?;
    let mut mesh = chart.configure_mesh();
    let x_format = |v: &f64| format!("{v:.0}");
    let y_format = |v: &f64| {
        if y_max < 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.0}")
        }
    };
    if text {
        mesh.x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .label_style(("sans-serif", 15));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| fail(&e))?;
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let line = chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                colour.stroke_width(2),
            ))
            .map_err(|e| fail(&e))?;
        if text {
            line.label(s.name.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        }
        chart
            .draw_series(s.points.iter().map(|p| Circle::new(*p, 4, colour.filled())))
            .map_err(|e| fail(&e))?;
    }
    if text && !series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
