//! `runs.csv` (tidy, one row per iterate) and `summary.csv` / `summary.md` (one row per family,
//! n, β, algorithm, over seeds), with the contraction-rate fit.
//!
//! **The fit.** For each run, `ln kl_star` is fitted by least squares against the query count over
//! its *linear phase*: the iterates with `FIT_FLOOR ≤ kl_star ≤ kl_star_0 / 10` (past the first
//! decade, whose transient need not be geometric, and above the floor where the accuracy of `π*`
//! and of the storage, not the algorithm, sets the distance). The per-query rate is
//! `exp(slope)`. A run that never enters that window (it does not converge, or barely) is
//! fitted over all its iterates with `kl_star ≥ FIT_FLOOR`, so a stalled or cycling algorithm
//! shows a rate near or above 1. Fewer than 3 points give no rate.
//!
//! **The bound ratio.** `kl_star / bound` is taken over the iterates whose bound is at least
//! [`RATIO_FLOOR`]: below it, the distance is limited by the accuracy of `π*` (residual `1e-12`)
//! and of the operator, not by the algorithm.

use super::config::{Oracle, Policy};
use super::record::{Record, RunResult};
use crate::error::{Error, Result};
use crate::io::atomic::AtomicFile;
use crate::metrics::Metric;
use crate::run::csv_out::{cell, metric_cells};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Lowest `kl_star` used by the rate fit.
pub const FIT_FLOOR: f64 = 1e-11;
/// Lowest bound at which `kl_star / bound` is checked.
pub const RATIO_FLOOR: f64 = 1e-11;
/// The `kl_star` thresholds reported.
pub const THRESHOLDS: [f64; 2] = [1e-3, 1e-6];

/// The columns of `runs.csv` before the metrics ([`Metric::ALL`]).
pub const RUNS_LEAD: [&str; 10] = [
    "family", "n", "seed", "beta", "policy", "oracle", "algo", "alpha", "iter", "queries",
];

/// The header of `runs.csv`:
/// `family,n,seed,beta,policy,oracle,algo,alpha,iter,queries,kl_star,…,bound` (the metrics of
/// [`Metric::ALL`]). `queries` counts payoff vectors under the exact oracle and sampled pairs
/// under `pg`.
pub fn runs_header() -> String {
    Metric::header(&RUNS_LEAD, &[])
}

/// Appends one run's rows to `runs.csv`.
pub fn write_runs(f: &mut AtomicFile, r: &RunResult) -> Result<()> {
    let path = f.path().to_path_buf();
    for rec in &r.records {
        let m = &rec.m;
        writeln!(
            f,
            "{},{},{},{},{},{},{},{},{},{},{}",
            r.game.family_name(),
            r.game.n,
            r.game.seed,
            r.beta,
            r.policy.name(),
            r.oracle.name(),
            r.algo,
            r.alpha,
            rec.iter,
            rec.queries,
            metric_cells(m),
        )
        .map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// Reads a `runs.csv` back into runs (to re-summarise and re-plot without solving again). The
/// file does not record the family parameters: the games are labelled with `params`.
pub fn read_runs(path: &Path, params: crate::gen::Params) -> Result<Vec<RunResult>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_runs(path, &bytes, params)
}

/// Parses the bytes of a `runs.csv`, its columns found by name (see [`runs_header`]); `path`
/// names it in errors, which carry the 1-based line number.
pub fn parse_runs(path: &Path, bytes: &[u8], params: crate::gen::Params) -> Result<Vec<RunResult>> {
    use clap::ValueEnum;
    let bad = |line: u64, reason: String| Error::Text {
        path: path.into(),
        line: line as usize,
        reason,
    };
    let csv_err = |e: csv::Error| bad(e.position().map_or(0, |p| p.line()), e.to_string());
    let mut rdr = csv::ReaderBuilder::new().from_reader(bytes);
    let header = rdr.headers().map_err(csv_err)?.clone();
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            bad(
                1,
                format!(
                    "not a sweep runs.csv: it has no column {name:?} (expected {})",
                    runs_header()
                ),
            )
        })
    };
    let lead: Vec<usize> = RUNS_LEAD.iter().map(|c| col(c)).collect::<Result<_>>()?;
    let metric_cols: Vec<usize> = Metric::ALL
        .iter()
        .map(|m| col(m.name()))
        .collect::<Result<_>>()?;
    let mut runs: Vec<RunResult> = Vec::new();
    let mut row = csv::StringRecord::new();
    while rdr.read_record(&mut row).map_err(csv_err)? {
        let line = row.position().map_or(0, |p| p.line());
        let cell = |i: usize| row.get(i).unwrap_or("");
        let what = |c: usize| {
            bad(
                line,
                format!("bad {} {:?}", header.get(c).unwrap_or(""), cell(c)),
            )
        };
        let num = |c: usize| cell(c).parse::<f64>().map_err(|_| what(c));
        let int = |c: usize| cell(c).parse::<u64>().map_err(|_| what(c));
        let mut m = crate::metrics::Metrics::default();
        for (k, &c) in Metric::ALL.iter().zip(&metric_cols) {
            if !cell(c).is_empty() {
                *k.slot(&mut m) = Some(num(c)?);
            }
        }
        let [family, n, seed, beta, policy, oracle, algo, alpha, iter, queries] = lead[..] else {
            unreachable!("RUNS_LEAD has 10 columns")
        };
        let policy = Policy::from_str(cell(policy), false).map_err(|_| what(policy))?;
        let oracle = Oracle::from_str(cell(oracle), false).map_err(|_| what(oracle))?;
        let family = crate::gen::Family::from_str(cell(family), false).map_err(|_| what(family))?;
        let game = super::cache::GameSpec {
            family,
            n: int(n)? as usize,
            seed: int(seed)?,
            params,
        };
        let (beta, algo, alpha) = (num(beta)?, cell(algo), num(alpha)?);
        let rec = Record {
            iter: int(iter)?,
            queries: int(queries)?,
            m,
        };
        let same = runs.last().is_some_and(|r| {
            r.game == game
                && r.beta == beta
                && (r.policy, r.oracle) == (policy, oracle)
                && r.algo == algo
                && rec.iter > 0
        });
        if !same {
            runs.push(RunResult {
                game,
                beta,
                policy,
                oracle,
                algo: algo.to_string(),
                alpha,
                kl0: m.kl_star.unwrap_or(0.0),
                records: Vec::new(),
            });
        }
        runs.last_mut().expect("pushed").records.push(rec);
    }
    Ok(runs)
}

/// Queries at the first iterate with `kl_star ≤ t`.
pub fn queries_to(records: &[Record], t: f64) -> Option<u64> {
    records
        .iter()
        .find(|r| r.m.kl_star.is_some_and(|k| k <= t))
        .map(|r| r.queries)
}

/// Queries at the first iterate with `exploit ≤ eps`.
pub fn queries_to_exploit(records: &[Record], eps: f64) -> Option<u64> {
    records
        .iter()
        .find(|r| r.m.exploit.is_some_and(|e| e <= eps))
        .map(|r| r.queries)
}

/// The per-query contraction rate of one run (see the module docs) and the points it used.
pub fn fit_rate(records: &[Record], kl0: f64) -> Option<(f64, usize)> {
    let pts = |lo: f64, hi: f64| -> Vec<(f64, f64)> {
        records
            .iter()
            .filter(|r| r.queries > 0)
            .filter_map(|r| r.m.kl_star.map(|k| (r.queries as f64, k)))
            .filter(|&(_, k)| k >= lo && k <= hi)
            .map(|(q, k)| (q, k.ln()))
            .collect()
    };
    let mut p = pts(FIT_FLOOR, kl0 / 10.0);
    if p.len() < 3 {
        p = pts(FIT_FLOOR, f64::INFINITY);
    }
    if p.len() < 3 {
        return None;
    }
    let m = p.len() as f64;
    let (mx, my) = (
        p.iter().map(|v| v.0).sum::<f64>() / m,
        p.iter().map(|v| v.1).sum::<f64>() / m,
    );
    let sxy: f64 = p.iter().map(|v| (v.0 - mx) * (v.1 - my)).sum();
    let sxx: f64 = p.iter().map(|v| (v.0 - mx).powi(2)).sum();
    (sxx > 0.0).then(|| ((sxy / sxx).exp(), p.len()))
}

/// The worst `kl_star / bound` over a run's iterates with `bound ≥ RATIO_FLOOR`.
pub fn worst_ratio(records: &[Record]) -> Option<f64> {
    records
        .iter()
        .filter_map(|r| match (r.m.kl_star, r.m.bound) {
            (Some(k), Some(b)) if b >= RATIO_FLOOR => Some(k / b),
            _ => None,
        })
        .reduce(f64::max)
}

/// One row of `summary.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    pub family: String,
    pub n: usize,
    pub beta: f64,
    pub policy: Policy,
    pub oracle: Oracle,
    pub algo: String,
    pub alpha: f64,
    pub seeds: usize,
    /// Queries for every seed to reach each threshold (`None`: some seed did not).
    pub reach: [Option<u64>; 2],
    /// The exploitability target and the queries for every seed to reach `exploit ≤ ε`.
    pub eps: f64,
    pub reach_exploit: Option<u64>,
    /// Median, min and max over seeds of the fitted per-query rate.
    pub rate: Option<(f64, f64, f64)>,
    /// `(1+αβ)^{−1/2}` for Nash-MP.
    pub rate_theory: Option<f64>,
    pub worst_ratio: Option<f64>,
    /// Median over seeds of the last `kl_star` and `exploit`.
    pub final_kl_star: Option<f64>,
    pub final_exploit: Option<f64>,
}

/// The header of `summary.csv` for the exploitability target `eps`.
pub fn summary_header(eps: f64) -> String {
    format!(
        "family,n,beta,policy,oracle,algo,alpha,seeds,queries_to_1e-3,queries_to_1e-6,\
         queries_to_exploit_{eps:e},rate_fit,rate_min,rate_max,rate_theory,worst_ratio_to_bound,\
         final_kl_star,final_exploit"
    )
}

impl SummaryRow {
    /// The row's name in tables and plots (see [`super::record::label`]).
    pub fn label(&self) -> String {
        super::record::label(&self.algo, self.policy, self.oracle)
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len();
    Some(if m % 2 == 1 {
        v[m / 2]
    } else {
        0.5 * (v[m / 2 - 1] + v[m / 2])
    })
}

/// A summary group: family, n, β (bits), class, oracle, algorithm.
type GroupKey = (String, usize, u64, Policy, Oracle, String);

/// Groups runs by (family, n, β, class, oracle, algo) in a fixed order and summarises each
/// group; `eps` is the exploitability target of the queries-to-ε column. The contraction rate
/// against the theory and the bound are the exact oracle's (a sampled run has no bound).
pub fn summarise(runs: &[RunResult], eps: f64) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<GroupKey, Vec<&RunResult>> = BTreeMap::new();
    for r in runs {
        groups
            .entry((
                r.game.family_name(),
                r.game.n,
                r.beta.to_bits(),
                r.policy,
                r.oracle,
                r.algo.clone(),
            ))
            .or_default()
            .push(r);
    }
    groups
        .into_iter()
        .map(|((family, n, beta, policy, oracle, algo), rs)| {
            let beta = f64::from_bits(beta);
            let exact = oracle == Oracle::Exact;
            let reach_exploit = rs
                .iter()
                .map(|r| queries_to_exploit(&r.records, eps))
                .collect::<Option<Vec<_>>>()
                .and_then(|v| v.into_iter().max());
            let alpha = rs[0].alpha;
            let reach = THRESHOLDS.map(|t| {
                rs.iter()
                    .map(|r| queries_to(&r.records, t))
                    .collect::<Option<Vec<_>>>()
                    .and_then(|v| v.into_iter().max())
            });
            let rates: Vec<f64> = rs
                .iter()
                .filter_map(|r| fit_rate(&r.records, r.kl0).map(|f| f.0))
                .collect();
            let rate = (rates.len() == rs.len())
                .then(|| {
                    median(rates.clone()).map(|m| {
                        (
                            m,
                            rates.iter().copied().fold(f64::INFINITY, f64::min),
                            rates.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                        )
                    })
                })
                .flatten();
            let last = |f: fn(&Record) -> Option<f64>| {
                median(
                    rs.iter()
                        .filter_map(|r| r.records.last().and_then(f))
                        .collect(),
                )
            };
            SummaryRow {
                rate_theory: algo
                    .parse::<crate::algo::AlgoKind>()
                    .is_ok_and(|k| exact && k.info().has_bound)
                    .then(|| (1.0 + alpha * beta).powf(-0.5)),
                worst_ratio: rs
                    .iter()
                    .filter(|_| exact)
                    .filter_map(|r| worst_ratio(&r.records))
                    .reduce(f64::max),
                policy,
                oracle,
                eps,
                reach_exploit,
                final_kl_star: last(|r| r.m.kl_star),
                final_exploit: last(|r| r.m.exploit),
                family,
                n,
                beta,
                algo,
                alpha,
                seeds: rs.len(),
                reach,
                rate,
            }
        })
        .collect()
}

fn opt_u(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// Writes `summary.csv`.
pub fn write_summary_csv(path: &Path, rows: &[SummaryRow]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    let io = |e| Error::io(path, e);
    let eps = rows
        .first()
        .map_or(super::config::AXES_DEFAULT.3, |r| r.eps);
    writeln!(f, "{}", summary_header(eps)).map_err(io)?;
    for r in rows {
        writeln!(
            f,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.family,
            r.n,
            r.beta,
            r.policy.name(),
            r.oracle.name(),
            r.algo,
            r.alpha,
            r.seeds,
            opt_u(r.reach[0]),
            opt_u(r.reach[1]),
            opt_u(r.reach_exploit),
            cell(r.rate.map(|v| v.0)),
            cell(r.rate.map(|v| v.1)),
            cell(r.rate.map(|v| v.2)),
            cell(r.rate_theory),
            cell(r.worst_ratio),
            cell(r.final_kl_star),
            cell(r.final_exploit),
        )
        .map_err(io)?;
    }
    f.commit()
}

fn sig(v: Option<f64>, digits: usize) -> String {
    match v {
        None => "—".into(),
        Some(0.0) => "0".into(),
        Some(x) if x.abs() < 1e-3 || x.abs() >= 1e5 => format!("{x:.1e}"),
        Some(x) => format!("{x:.digits$}"),
    }
}

/// The summary as a Markdown table (one table per family), with the definitions.
pub fn summary_markdown(rows: &[SummaryRow]) -> String {
    let mut s = String::from(
        "Per (family, n, β, algorithm), over seeds. `q(1e-3)`, `q(1e-6)`: queries for every seed \
         to reach `kl_star ≤` the threshold (— if some seed did not). `rate`: median fitted \
         per-query contraction of `kl_star` (least squares of `ln kl_star` on queries over \
         `1e-11 ≤ kl_star ≤ kl_star_0/10`), with its min–max over seeds. `theory`: \
         `(1+αβ)^{-1/2}` (Nash-MP). `worst/bound`: largest `kl_star / bound` over the run \
         (bound ≥ 1e-11).\n",
    );
    let mut family = "";
    for r in rows {
        if r.family != family {
            family = &r.family;
            let at_star = rows
                .iter()
                .filter(|x| x.family == r.family)
                .all(|x| x.final_kl_star == Some(0.0));
            s.push_str(&format!("\n### {family}\n"));
            if at_star {
                s.push_str(
                    "\nEvery run starts at π* (`KL(π*‖π_0) = 0`): there is nothing to contract, so \
                     no rate is fitted. A noise-free cyclic game's π* is the uniform reference; \
                     give the sweep `--noise`.\n",
                );
            }
            s.push_str(
                "\n| n | β | algo | α | q(1e-3) | q(1e-6) | rate [min, max] | theory | worst/bound | final kl_star |\n|---:|---:|---|---:|---:|---:|---|---:|---:|---:|\n",
            );
        }
        let rate = match r.rate {
            Some((m, lo, hi)) => format!("{m:.5} [{lo:.5}, {hi:.5}]"),
            None => "—".into(),
        };
        let q = |v: Option<u64>| v.map_or("—".into(), |x| x.to_string());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.n,
            r.beta,
            r.label(),
            sig(Some(r.alpha), 3),
            q(r.reach[0]),
            q(r.reach[1]),
            rate,
            sig(r.rate_theory, 5),
            sig(r.worst_ratio, 3),
            sig(r.final_kl_star, 3),
        ));
    }
    s.push_str(&reach_markdown(rows));
    s
}

/// The queries-to-ε table: per (family, β, run), the queries for every seed to reach
/// `exploit ≤ ε` at each n, and the least-squares slope of `log queries` on `log n` over the
/// sizes every seed reached (`0`: independent of n; `1`: linear in n).
fn reach_markdown(rows: &[SummaryRow]) -> String {
    let Some(eps) = rows.first().map(|r| r.eps) else {
        return String::new();
    };
    let mut s = format!(
        "\n### Queries to `exploit ≤ {eps:e}`\n\nFor every seed (— if some seed did not reach it \
         within the budget). Queries are payoff vectors under the exact oracle and sampled pairs \
         under `pg`. `slope`: least squares of log queries on log n over the sizes reached.\n"
    );
    let mut groups: BTreeMap<(String, u64, String), BTreeMap<usize, Option<u64>>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.family.clone(), r.beta.to_bits(), r.label()))
            .or_default()
            .insert(r.n, r.reach_exploit);
    }
    let sizes = |f: &str| -> Vec<usize> {
        let ns: std::collections::BTreeSet<usize> = groups
            .iter()
            .filter(|(k, _)| k.0 == f)
            .flat_map(|(_, m)| m.keys().copied())
            .collect();
        ns.into_iter().collect()
    };
    let mut family = String::new();
    let mut ns = Vec::new();
    for ((f, beta, label), by_n) in &groups {
        if *f != family {
            family = f.clone();
            ns = sizes(f);
            s.push_str(&format!("\n| {f}: β | run |"));
            for n in &ns {
                s.push_str(&format!(" n = {n} |"));
            }
            s.push_str(" slope |\n|---:|---|");
            s.push_str(&"---:|".repeat(ns.len() + 1));
            s.push('\n');
        }
        s.push_str(&format!("| {} | {label} |", f64::from_bits(*beta)));
        for n in &ns {
            let v = by_n.get(n).copied().flatten();
            s.push_str(&format!(" {} |", v.map_or("—".into(), |q| q.to_string())));
        }
        let pts: Vec<(f64, f64)> = by_n
            .iter()
            .filter_map(|(&n, q)| q.map(|q| (n as f64, q.max(1) as f64)))
            .collect();
        let slope = crate::param::sweep::loglog_slope(&pts);
        s.push_str(&format!(
            " {} |\n",
            slope.map_or("—".into(), |v| format!("{v:.2}"))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn recs(rate: f64, k: u64) -> Vec<Record> {
        (0..k)
            .map(|i| Record {
                iter: i,
                queries: 2 * i,
                m: Metrics {
                    kl_star: Some(rate.powi(2 * i as i32)),
                    bound: Some(1.0),
                    ..Metrics::default()
                },
            })
            .collect()
    }

    #[test]
    fn fit_recovers_a_geometric_rate() {
        let r = recs(0.9, 100);
        let (rate, pts) = fit_rate(&r, 1.0).unwrap();
        assert!((rate - 0.9).abs() < 1e-12, "{rate}");
        assert!(pts > 10);
        assert_eq!(queries_to(&r, 1e-3), Some(66));
        assert_eq!(worst_ratio(&r), Some(1.0));
        assert_eq!(median(vec![3.0, 1.0, 2.0, 10.0]), Some(2.5));
    }

    /// The metric table drives the headers: each metric written under its name is read back
    /// under its name, from `runs.csv` as written and with its columns in reverse order; and
    /// `metrics.csv` carries the same names in the same order.
    #[test]
    fn runs_csv_round_trips_by_header_name() {
        let game = super::super::cache::GameSpec {
            family: crate::gen::Family::Uniform,
            n: 4,
            seed: 3,
            params: crate::gen::Params::default(),
        };
        // Record 0 has every metric absent; record 1 + i has only metric i, of value i + 0.5.
        let mut records = vec![Record {
            iter: 0,
            queries: 0,
            m: Metrics::default(),
        }];
        for k in Metric::ALL {
            let mut m = Metrics::default();
            *k.slot(&mut m) = Some(k.index() as f64 + 0.5);
            let i = 1 + k.index() as u64;
            records.push(Record {
                iter: i,
                queries: 2 * i,
                m,
            });
        }
        let run = RunResult {
            game,
            beta: 0.25,
            policy: crate::sweep::config::Policy::Tabular,
            oracle: crate::sweep::config::Oracle::Exact,
            algo: "nash-mp".into(),
            alpha: 2.0,
            kl0: 0.0,
            records,
        };
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("runs.csv");
        let mut f = AtomicFile::create(&path).unwrap();
        writeln!(f, "{}", runs_header()).unwrap();
        write_runs(&mut f, &run).unwrap();
        f.commit().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let back = read_runs(&path, crate::gen::Params::default()).unwrap();
        assert_eq!(
            format!("{back:?}"),
            format!("{:?}", std::slice::from_ref(&run))
        );

        // Reverse every row's cells: the columns are found by name, not position.
        let reversed: String = text
            .lines()
            .map(|l| l.split(',').rev().collect::<Vec<_>>().join(",") + "\n")
            .collect();
        let back = parse_runs(&path, reversed.as_bytes(), crate::gen::Params::default()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{:?}", [run]));

        // Both headers list the metrics by the table, after their own leading columns.
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let runs_cols: Vec<String> = runs_header().split(',').map(String::from).collect();
        assert_eq!(runs_cols[RUNS_LEAD.len()..], names[..]);
        let solve = crate::run::csv_out::header();
        let solve_cols: Vec<&str> = solve.split(',').collect();
        let lead = crate::run::csv_out::LEAD.len();
        assert_eq!(solve_cols[lead..lead + Metric::COUNT], names[..]);

        // A missing column is named.
        let no_gap = text.replacen(",gap,", ",gapp,", 1);
        let e = parse_runs(&path, no_gap.as_bytes(), crate::gen::Params::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no column \"gap\""), "{e}");
    }
}
