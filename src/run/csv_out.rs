//! `metrics.csv`: one row per algorithm and iteration, empty cells where a metric does not apply.

use super::Row;
use crate::error::{Error, Result};
use crate::io::atomic::AtomicFile;
use std::io::Write;
use std::path::Path;

pub const HEADER: &str =
    "algo,iter,queries,kl_star,kl_star_rev,span_star,exploit,gap,exploit0,residual,bound,seconds";

/// Formats an optional float: shortest round-trip exponent form, empty when absent.
pub fn cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x:e}")).unwrap_or_default()
}

/// Streams rows into a temporary file that appears at its path on [`MetricsCsv::commit`].
pub struct MetricsCsv {
    f: AtomicFile,
}

impl MetricsCsv {
    pub fn create(path: &Path) -> Result<Self> {
        let mut f = AtomicFile::create(path)?;
        writeln!(f, "{HEADER}").map_err(|e| Error::io(path, e))?;
        Ok(MetricsCsv { f })
    }

    pub fn write(&mut self, r: &Row) -> Result<()> {
        let m = &r.metrics;
        writeln!(
            self.f,
            "{},{},{},{},{},{},{},{},{},{},{},{:e}",
            r.algo,
            r.iter,
            r.queries,
            cell(m.kl_star),
            cell(m.kl_star_rev),
            cell(m.span_star),
            cell(m.exploit),
            cell(m.gap),
            cell(m.exploit0),
            cell(m.residual),
            cell(m.bound),
            r.seconds
        )
        .map_err(|e| Error::io(self.f.path(), e))
    }

    pub fn commit(self) -> Result<()> {
        self.f.commit()
    }
}
