//! The sweep's figures, drawn with plotters: SVG always, PNG on request.
//!
//! - `kl-<family>-beta<β>`: `kl_star / kl_star_0` against queries, one panel per algorithm, one
//!   line per `n` (geometric mean over seeds), Nash-MP's bound `(1+αβ)^{−q/2}` dashed in every
//!   panel for reference;
//! - `rate-<family>`: fitted per-query rate against `n` (log axis), one panel per β, one line per
//!   algorithm with its min–max over seeds, Nash-MP's theoretical rate dashed;
//! - `exploit-<family>-beta<β>`: exploitability against queries, panels and lines as in `kl`.
//!
//! SVG text needs no font file. PNG (build feature `png`) rasterises text itself, so it needs a
//! TrueType font: nashmp loads one at run time (`--font`, default DejaVu Sans from Debian's
//! `fonts-dejavu-core`) rather than embedding ~700 KB of font in the binary. With the feature
//! on, plotters measures SVG text with that font too, so the font is loaded for every sweep.

use super::config::{Oracle, Policy};
use super::record::RunResult;
use super::summary::SummaryRow;
use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Most points drawn per line (lines are thinned evenly in queries), to keep files small.
const MAX_POINTS: usize = 160;
/// Values below this are not drawn on log axes.
const LOG_MIN: f64 = 1e-16;

/// Which files to draw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Formats {
    pub svg: bool,
    pub png: bool,
}

/// Registers a TrueType font for PNG text (once per process).
#[cfg(feature = "png")]
pub fn load_font(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Param(format!(
            "PNG plots need a TrueType font for their text; cannot read {} ({e}): \
             install fonts-dejavu-core or give --font",
            path.display()
        ))
    })?;
    // plotters keeps registered fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| Error::Param(format!("{} is not a usable TrueType font", path.display())))
}

/// PNG needs the `png` build feature.
#[cfg(not(feature = "png"))]
pub fn load_font(_path: &Path) -> Result<()> {
    Err(Error::Param(
        "this nashmp was built without PNG support: rebuild with `cargo build --release --features png` \
         (SVG plots need nothing)"
            .into(),
    ))
}

fn palette(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

/// A line to draw: label, colour index, points, and optional vertical bars `(x, lo, hi)` (e.g.
/// the spread over seeds).
struct Line {
    label: String,
    color: usize,
    pts: Vec<(f64, f64)>,
    bars: Vec<(f64, f64, f64)>,
}

/// A panel: title, axis labels, lines, and an optional dashed reference line.
struct Panel {
    title: String,
    x_desc: String,
    y_desc: String,
    x_log: bool,
    /// On a log x axis, the values to label (the sizes n); plotters labels only whole decades.
    x_keys: Vec<f64>,
    lines: Vec<Line>,
    dashed: Option<(String, Vec<(f64, f64)>)>,
    /// Said in place of the plot when no line has a point to draw.
    empty_note: Option<String>,
}

fn thin(pts: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if pts.len() <= MAX_POINTS {
        return pts;
    }
    let step = pts.len().div_ceil(MAX_POINTS);
    let last = *pts.last().expect("non-empty");
    let mut out: Vec<_> = pts.into_iter().step_by(step).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

fn bounds(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    vals.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
    })
}

type DrawResult<T> = std::result::Result<T, String>;

// Over 80 lines: plotters' chart builder, one configuration call after another (axes, labels,
// series, error bars, legend); there is no logic to split out.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    p: &Panel,
    y_log: bool,
) -> DrawResult<()> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let all = p
        .lines
        .iter()
        .flat_map(|l| l.pts.iter())
        .chain(p.dashed.iter().flat_map(|d| d.1.iter()));
    let keep = |v: f64| v.is_finite() && (!y_log || v >= LOG_MIN);
    let Some((x0, x1)) = bounds(all.clone().filter(|q| keep(q.1)).map(|q| q.0)) else {
        let inner = area
            .titled(&format!("{} (no data)", p.title), ("sans-serif", 18))
            .map_err(e)?;
        if let Some(note) = &p.empty_note {
            for (k, line) in note.lines().enumerate() {
                inner
                    .draw_text(line, &("sans-serif", 14).into(), (20, 40 + 20 * k as i32))
                    .map_err(e)?;
            }
        }
        return Ok(());
    };
    let (mut y0, mut y1) = bounds(all.filter(|q| keep(q.1)).map(|q| q.1)).expect("some point");
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    if y_log {
        y0 = y0.max(LOG_MIN) / 2.0;
        y1 *= 2.0;
    } else {
        // Room below the data for the legend, but not below zero for data that cannot be
        // negative (rates).
        let nonnegative = y0 >= 0.0;
        let span = (y1 - y0).max(2e-3);
        y0 -= 0.75 * span;
        y1 += 0.1 * span;
        if nonnegative {
            y0 = y0.max(0.0);
        }
    }
    let mut b = ChartBuilder::on(area);
    b.caption(&p.title, ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(40)
        .y_label_area_size(70);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(p.x_desc.as_str())
                .y_desc(p.y_desc.as_str())
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 15))
                .x_labels(6)
                .y_labels(8)
                .x_label_formatter(&|v| tick(*v, p.x_log))
                .y_label_formatter(&|v| tick(*v, y_log))
                .draw()
                .map_err(e)?;
            for l in &p.lines {
                let c = palette(l.color);
                let pts: Vec<(f64, f64)> = l.pts.iter().copied().filter(|q| keep(q.1)).collect();
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                    .map_err(e)?
                    .label(l.label.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                if pts.len() <= 12 {
                    chart
                        .draw_series(pts.iter().map(|&q| Circle::new(q, 3, c.filled())))
                        .map_err(e)?;
                }
                let bars = l.bars.iter().filter(|b| keep(b.1) && keep(b.2));
                chart
                    .draw_series(bars.map(|&(x, lo, hi)| {
                        ErrorBar::new_vertical(x, lo, (lo + hi) / 2.0, hi, c.stroke_width(2), 8)
                    }))
                    .map_err(e)?;
            }
            if let Some((label, pts)) = &p.dashed {
                let pts: Vec<(f64, f64)> = pts.iter().copied().filter(|q| keep(q.1)).collect();
                chart
                    .draw_series(DashedLineSeries::new(pts, 6, 4, BLACK.stroke_width(2)))
                    .map_err(e)?
                    .label(label.as_str())
                    .legend(|(x, y)| {
                        // Dashed in the legend as in the plot.
                        DashedPathElement::new(
                            vec![(x, y), (x + 18, y)],
                            5,
                            3,
                            BLACK.stroke_width(2),
                        )
                    });
            }
            chart
                .configure_series_labels()
                .position(if y_log {
                    SeriesLabelPosition::LowerLeft
                } else {
                    SeriesLabelPosition::LowerRight
                })
                .label_font(("sans-serif", 13))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()
                .map_err(e)?;
        }};
    }
    match (p.x_log, y_log) {
        (false, true) => body!(b
            .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
            .map_err(e)?),
        (true, false) => body!(b
            .build_cartesian_2d(
                (x0 / 1.5..x1 * 1.5)
                    .log_scale()
                    .with_key_points(p.x_keys.clone()),
                y0..y1
            )
            .map_err(e)?),
        (true, true) => body!(b
            .build_cartesian_2d(
                (x0 / 1.5..x1 * 1.5)
                    .log_scale()
                    .with_key_points(p.x_keys.clone()),
                (y0..y1).log_scale()
            )
            .map_err(e)?),
        (false, false) => body!(b.build_cartesian_2d(x0..x1, y0..y1).map_err(e)?),
    }
    Ok(())
}

fn draw_figure<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    panels: &[Panel],
    cols: usize,
    y_log: bool,
) -> DrawResult<()> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(e)?;
    let rows = panels.len().div_ceil(cols);
    let areas = root.split_evenly((rows, cols));
    for (a, p) in areas.iter().zip(panels) {
        draw_panel(a, p, y_log)?;
    }
    root.present().map_err(e)
}

/// Writes one figure as `<stem>.svg` and/or `<stem>.png`; returns the files written.
fn save(
    dir: &Path,
    stem: &str,
    formats: Formats,
    title: &str,
    panels: &[Panel],
    y_log: bool,
) -> Result<Vec<PathBuf>> {
    let cols = panels.len().clamp(1, 3);
    let rows = panels.len().div_ceil(cols).max(1);
    // Wide enough for the title (about 11 px a character at 22 px), so it is never clipped.
    let title_px = 40 + 11 * title.chars().count() as u32;
    let size = ((520 * cols as u32).max(title_px), 60 + 400 * rows as u32);
    let mut out = Vec::new();
    let fail = |p: &Path, m: String| Error::Param(format!("drawing {}: {m}", p.display()));
    // Figures are drawn in memory (SVG) or to a temporary (PNG) and renamed into place, so an
    // interrupted sweep never leaves a half-drawn figure.
    if formats.svg {
        let p = dir.join(format!("{stem}.svg"));
        let mut svg = String::new();
        draw_figure(
            SVGBackend::with_string(&mut svg, size).into_drawing_area(),
            title,
            panels,
            cols,
            y_log,
        )
        .map_err(|m| fail(&p, m))?;
        crate::io::atomic::write_all(&p, svg.as_bytes())?;
        out.push(p);
    }
    #[cfg(feature = "png")]
    if formats.png {
        let p = dir.join(format!("{stem}.png"));
        let tmp = dir.join(format!(".{stem}.{}.png", std::process::id()));
        draw_figure(
            BitMapBackend::new(&tmp, size).into_drawing_area(),
            title,
            panels,
            cols,
            y_log,
        )
        .map_err(|m| fail(&p, m))?;
        std::fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))?;
        out.push(p);
    }
    Ok(out)
}

/// A tick label: `1e-5` on log axes, `1000` or `0.25` on linear ones.
fn tick(v: f64, log: bool) -> String {
    if log && (v.abs() < 1e-2 || v.abs() >= 1e5) {
        format!("{v:.0e}")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

/// `x` to a short label: `0.01`, `1`, `1e7`.
fn short(x: f64) -> String {
    if x >= 1e5 {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// The exact oracle's runs (whose queries are payoff vectors) grouped by family, β, run label,
/// then n: each group's seeds. Sampled runs count pairs, so they appear in the queries-to-ε
/// figure instead.
type Grouped<'r> = BTreeMap<(String, u64), BTreeMap<String, BTreeMap<usize, Vec<&'r RunResult>>>>;

fn group(runs: &[RunResult]) -> Grouped<'_> {
    let mut g: Grouped = BTreeMap::new();
    for r in runs.iter().filter(|r| r.oracle == Oracle::Exact) {
        g.entry((r.game.family_name(), r.beta.to_bits()))
            .or_default()
            .entry(r.label())
            .or_default()
            .entry(r.game.n)
            .or_default()
            .push(r);
    }
    g
}

/// The geometric mean over seeds of `f(record)` at each iterate (seeds share the query grid).
fn geo_mean(seeds: &[&RunResult], f: impl Fn(&RunResult, usize) -> Option<f64>) -> Vec<(f64, f64)> {
    let len = seeds.iter().map(|r| r.records.len()).min().unwrap_or(0);
    let pts = (0..len)
        .filter_map(|i| {
            let vals: Option<Vec<f64>> = seeds.iter().map(|r| f(r, i)).collect();
            // Exact zeros (an exploitability that underflowed) are drawn at the log axis'
            // floor, so every panel runs to the end of its budget.
            let vals = vals?;
            if vals.iter().any(|v| !v.is_finite()) {
                return None;
            }
            let vals: Vec<f64> = vals.into_iter().map(|v| v.max(LOG_MIN)).collect();
            let lm = vals.iter().map(|v| v.ln()).sum::<f64>() / vals.len() as f64;
            // exp(ln x) may round just below the floor.
            Some((seeds[0].records[i].queries as f64, lm.exp().max(LOG_MIN)))
        })
        .collect();
    thin(pts)
}

/// What a KL panel says when every run started at π*.
pub const START_AT_STAR: &str = "every run starts at π* (KL(π*‖π_0) = 0): nothing to contract.\n\
     A noise-free cyclic game's π* is the uniform reference; give the sweep --noise.";

/// Draws every figure into `dir`; returns the files written.
// Over 80 lines: one block per figure, each building its panels from the runs and drawing them.
pub fn draw_all(
    dir: &Path,
    runs: &[RunResult],
    summary: &[SummaryRow],
    formats: Formats,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut files = Vec::new();
    for ((family, beta_bits), algos) in group(runs) {
        let beta = f64::from_bits(beta_bits);
        let max_q = algos
            .values()
            .flat_map(|by_n| by_n.values().flatten())
            .filter_map(|r| r.records.last())
            .map(|r| r.queries)
            .max()
            .unwrap_or(0);
        let rate = (1.0 + 2.0 * beta).powf(-0.5);
        let bound: Vec<(f64, f64)> = thin(
            (0..=max_q)
                .map(|q| (q as f64, rate.powf(q as f64)))
                .collect(),
        );
        let sizes: Vec<usize> = algos
            .values()
            .flat_map(|m| m.keys().copied())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let color_of = |n: usize| sizes.iter().position(|&m| m == n).unwrap_or(0);
        // A start at π* (e.g. a noise-free cyclic game, whose π* is the uniform μ) leaves no
        // KL to contract: the KL panels say so instead of staying blank.
        let starts_at_star = algos
            .values()
            .flat_map(|by_n| by_n.values().flatten())
            .all(|r| r.kl0 <= 0.0);
        let panels = |y_desc: &str,
                      f: &dyn Fn(&RunResult, usize) -> Option<f64>,
                      dashed: bool|
         -> Vec<Panel> {
            algos
                .iter()
                .map(|(algo, by_n)| Panel {
                    title: format!(
                        "{algo} (α = {})",
                        by_n.values().next().map_or(0.0, |r| r[0].alpha)
                    ),
                    x_desc: "queries".into(),
                    y_desc: y_desc.into(),
                    x_log: false,
                    x_keys: Vec::new(),
                    empty_note: (dashed && starts_at_star).then(|| START_AT_STAR.to_string()),
                    lines: by_n
                        .iter()
                        .map(|(&n, seeds)| Line {
                            label: format!("n = {}", short(n as f64)),
                            color: color_of(n),
                            pts: geo_mean(seeds, f),
                            bars: Vec::new(),
                        })
                        .collect(),
                    dashed: (dashed && !starts_at_star)
                        .then(|| ("Nash-MP bound (α = 2)".to_string(), bound.clone())),
                })
                .collect()
        };
        let b = short(beta);
        let kl = panels(
            "kl_star / kl_star_0",
            &|r, i| r.records[i].m.kl_star.map(|k| k / r.kl0),
            true,
        );
        files.extend(save(
            dir,
            &format!("kl-{family}-beta{b}"),
            formats,
            &format!("{family}, β = {b}: KL(π*‖π_k) / KL(π*‖π_0) (geometric mean over seeds)"),
            &kl,
            true,
        )?);
        let ex = panels("exploitability", &|r, i| r.records[i].m.exploit, false);
        files.extend(save(
            dir,
            &format!("exploit-{family}-beta{b}"),
            formats,
            &format!(
                "{family}, β = {b}: exploitability (geometric mean over seeds; 0 drawn at {LOG_MIN:e})"
            ),
            &ex,
            true,
        )?);
    }
    files.extend(draw_reach(dir, summary, formats)?);
    let mut by_family: BTreeMap<&str, BTreeMap<u64, Vec<&SummaryRow>>> = BTreeMap::new();
    for r in summary.iter().filter(|r| r.oracle == Oracle::Exact) {
        by_family
            .entry(&r.family)
            .or_default()
            .entry(r.beta.to_bits())
            .or_default()
            .push(r);
    }
    for (family, betas) in by_family {
        let panels: Vec<Panel> = betas
            .iter()
            .map(|(&bb, rows)| {
                let beta = f64::from_bits(bb);
                type Pts = (Vec<(f64, f64)>, Vec<(f64, f64, f64)>);
                let mut algos: BTreeMap<String, Pts> = BTreeMap::new();
                for r in rows {
                    if let Some((m, lo, hi)) = r.rate {
                        let e = algos.entry(r.label()).or_default();
                        e.0.push((r.n as f64, m));
                        e.1.push((r.n as f64, lo, hi));
                    }
                }
                let ns = bounds(rows.iter().map(|r| r.n as f64)).unwrap_or((1.0, 10.0));
                let theory = (1.0 + 2.0 * beta).powf(-0.5);
                Panel {
                    title: format!("β = {}", short(beta)),
                    x_desc: "n (actions)".into(),
                    y_desc: "fitted rate per query".into(),
                    x_log: true,
                    x_keys: {
                        let mut ns: Vec<f64> = rows.iter().map(|r| r.n as f64).collect();
                        ns.sort_by(f64::total_cmp);
                        ns.dedup();
                        ns
                    },
                    empty_note: None,
                    lines: algos
                        .into_iter()
                        .enumerate()
                        .map(|(i, (a, (pts, bars)))| Line {
                            label: a,
                            color: i,
                            pts,
                            bars,
                        })
                        .collect(),
                    dashed: Some((
                        "Nash-MP theory (1+2β)^(-1/2)".into(),
                        vec![(ns.0, theory), (ns.1, theory)],
                    )),
                }
            })
            .collect();
        files.extend(save(dir, &format!("rate-{family}"), formats,
            &format!("{family}: fitted per-query contraction of KL(π*‖π_k) (median over seeds, bars: min to max; lower is faster)"), &panels, false)?);
    }
    Ok(files)
}

/// `queries-<family>.svg`: per β, the queries every seed needs to reach `exploit ≤ ε` against
/// n (log–log), one line per run label; drawn when some run is sampled or parametric (the
/// comparison the policy and oracle axes are for).
fn draw_reach(dir: &Path, summary: &[SummaryRow], formats: Formats) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if summary
        .iter()
        .all(|r| (r.policy, r.oracle) == (Policy::Tabular, Oracle::Exact))
    {
        return Ok(files);
    }
    // family → β (bits) → run label → (n, queries) points.
    type Lines = BTreeMap<String, Vec<(f64, f64)>>;
    let mut by_family: BTreeMap<&str, BTreeMap<u64, Lines>> = BTreeMap::new();
    for r in summary {
        let line = by_family
            .entry(&r.family)
            .or_default()
            .entry(r.beta.to_bits())
            .or_default()
            .entry(r.label())
            .or_default();
        if let Some(q) = r.reach_exploit {
            line.push((r.n as f64, q.max(1) as f64));
        }
    }
    let eps = summary.first().map_or(0.0, |r| r.eps);
    for (family, betas) in by_family {
        let panels: Vec<Panel> = betas
            .into_iter()
            .map(|(bb, lines)| {
                let mut ns: Vec<f64> = lines.values().flatten().map(|p| p.0).collect();
                ns.sort_by(f64::total_cmp);
                ns.dedup();
                Panel {
                    title: format!("β = {}", short(f64::from_bits(bb))),
                    x_desc: "n (actions)".into(),
                    y_desc: format!("queries to exploit ≤ {eps:e}"),
                    x_log: true,
                    x_keys: ns,
                    lines: lines
                        .into_iter()
                        .enumerate()
                        .map(|(i, (label, pts))| Line {
                            label,
                            color: i,
                            pts,
                            bars: Vec::new(),
                        })
                        .collect(),
                    dashed: None,
                    empty_note: Some(format!("no run reached exploit ≤ {eps:e}")),
                }
            })
            .collect();
        files.extend(save(
            dir,
            &format!("queries-{family}"),
            formats,
            &format!(
                "{family}: queries for every seed to reach exploitability ≤ {eps:e} \
                 (exact: payoff vectors; pg: sampled pairs)"
            ),
            &panels,
            true,
        )?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_zeros_are_drawn_at_the_floor_to_the_end_of_the_run() {
        let spec = crate::sweep::cache::GameSpec {
            family: crate::gen::Family::Uniform,
            n: 4,
            seed: 0,
            params: crate::gen::Params::default(),
        };
        let run = |vals: &[f64]| RunResult {
            game: spec,
            beta: 0.1,
            policy: crate::sweep::config::Policy::Tabular,
            oracle: crate::sweep::config::Oracle::Exact,
            algo: "nash-mp".into(),
            alpha: 2.0,
            kl0: 1.0,
            records: vals
                .iter()
                .enumerate()
                .map(|(k, &v)| super::super::runner::Record {
                    iter: k as u64,
                    queries: 2 * k as u64,
                    m: crate::metrics::Metrics {
                        exploit: Some(v),
                        ..Default::default()
                    },
                })
                .collect(),
        };
        let (a, b) = (run(&[1e-3, 1e-9, 0.0, 0.0]), run(&[1e-3, 0.0, 1e-12, 0.0]));
        let pts = geo_mean(&[&a, &b], |r, i| r.records[i].m.exploit);
        assert_eq!(pts.len(), 4, "every iterate drawn: {pts:?}");
        assert_eq!(pts[3], (6.0, LOG_MIN));
        assert!(pts.iter().all(|p| p.1 >= LOG_MIN));
        // NaN (0/0: a run that starts at π*) is not drawn.
        let c = run(&[f64::NAN, f64::NAN]);
        assert!(geo_mean(&[&c], |r, i| r.records[i].m.exploit).is_empty());
    }

    #[test]
    fn ticks_and_floors() {
        assert_eq!(tick(1e-5, true), "1e-5");
        assert_eq!(tick(256.0, true), "256");
        assert_eq!(tick(0.25, false), "0.25");
    }
}
