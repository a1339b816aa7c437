//! `metrics.csv`: one row per algorithm and iteration, empty cells where a metric does not apply.

use super::Row;
use crate::error::{Error, Result};
use crate::io::atomic::AtomicFile;
use crate::metrics::Metric;
use std::io::Write;
use std::path::Path;

/// The columns of `metrics.csv` before and after the metrics ([`Metric::ALL`]).
pub const LEAD: [&str; 3] = ["algo", "iter", "queries"];
pub const TAIL: [&str; 1] = ["seconds"];

/// The header of `metrics.csv`:
/// `algo,iter,queries,kl_star,kl_star_rev,span_star,exploit,gap,exploit0,residual,bound,seconds`.
pub fn header() -> String {
    Metric::header(&LEAD, &TAIL)
}

/// Formats an optional float: shortest round-trip exponent form, empty when absent.
pub fn cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x:e}")).unwrap_or_default()
}

/// Streams rows into a temporary file that appears at its path on [`MetricsCsv::commit`].
pub struct MetricsCsv {
    f: AtomicFile,
    /// A copy of everything written, kept for checkpoints.
    text: Option<String>,
}

impl MetricsCsv {
    pub fn create(path: &Path) -> Result<Self> {
        let mut f = AtomicFile::create(path)?;
        writeln!(f, "{}", header()).map_err(|e| Error::io(path, e))?;
        Ok(MetricsCsv { f, text: None })
    }

    /// Continues a file whose first lines (header included) were `text` (a resumed solve).
    pub fn resume(path: &Path, text: &str) -> Result<Self> {
        let mut f = AtomicFile::create(path)?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(path, e))?;
        Ok(MetricsCsv {
            f,
            text: Some(text.to_string()),
        })
    }

    /// Keeps a copy of the text written from now on (see [`MetricsCsv::text`]).
    pub fn retain_text(mut self) -> Self {
        self.text.get_or_insert_with(|| format!("{}\n", header()));
        self
    }

    /// Everything written so far, if [`MetricsCsv::retain_text`] or [`MetricsCsv::resume`]
    /// made it keep a copy.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    pub fn write(&mut self, r: &Row) -> Result<()> {
        let line = line(r);
        self.f
            .write_all(line.as_bytes())
            .map_err(|e| Error::io(self.f.path(), e))?;
        if let Some(t) = self.text.as_mut() {
            t.push_str(&line);
        }
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        self.f.commit()
    }
}

/// The metric cells, in the order of [`Metric::ALL`].
pub fn metric_cells(m: &crate::metrics::Metrics) -> String {
    m.values().map(cell).join(",")
}

/// One row of `metrics.csv`, newline included.
pub fn line(r: &Row) -> String {
    format!(
        "{},{},{},{},{:e}\n",
        r.algo,
        r.iter,
        r.queries,
        metric_cells(&r.metrics),
        r.seconds
    )
}
