//! The crate's one error type: every variant names the broken rule and carries what a user
//! needs to find it (path, index, value).

use std::path::PathBuf;

/// Everything that can go wrong with a user's input or the file system.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid .npy file: {reason}")]
    NpyHeader { path: PathBuf, reason: String },
    #[error("{path}: not a valid nashmp game: {reason}")]
    Container { path: PathBuf, reason: String },
    #[error("{path}: unsupported .npy dtype {descr:?}: {hint}")]
    NpyDtype {
        path: PathBuf,
        descr: String,
        hint: &'static str,
    },
    #[error("{path}: file is truncated: the header declares {expected} data bytes but {found} follow it")]
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{path}: {found} bytes follow the header, more than the {expected} data bytes it declares (trailing data, or a lying shape)")]
    TrailingData {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{path}: the game must be a square matrix, but its shape is {shape:?}")]
    NotSquare { path: PathBuf, shape: Vec<u64> },
    #[error("{path}: Fortran-order (column-major) arrays are not supported; save with np.ascontiguousarray(P)")]
    FortranOrder { path: PathBuf },
    #[error("{path}: data offset {offset} is not aligned to {align} bytes, so the matrix cannot be mapped in place")]
    Misaligned {
        path: PathBuf,
        offset: u64,
        align: usize,
    },
    #[error("{path}: entry P[{i}][{j}] = {value} is not finite")]
    NotFinite {
        path: PathBuf,
        i: usize,
        j: usize,
        value: f64,
    },
    #[error("{path}: entry P[{i}][{j}] = {value} is outside [0, 1]")]
    OutOfRange {
        path: PathBuf,
        i: usize,
        j: usize,
        value: f64,
    },
    #[error("{path}: not skew-consistent: P[{i}][{j}] + P[{j}][{i}] = {pij} + {pji} = {sum}, off from 1 by more than tol = {tol:e}")]
    NotSkewSymmetric {
        path: PathBuf,
        i: usize,
        j: usize,
        pij: f64,
        pji: f64,
        sum: f64,
        tol: f64,
    },
    #[error("{path}:{line}: {reason}")]
    Text {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}:{line}: {reason}")]
    Judgements {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Items { path: PathBuf, reason: String },
    #[error("{log} does not match {game}: {reason}")]
    LogMismatch {
        log: PathBuf,
        game: PathBuf,
        reason: String,
    },
    #[error("{what}: {reason}")]
    BadVector { what: String, reason: String },
    #[error("{path}: {reason}")]
    Output { path: PathBuf, reason: String },
    #[error("{}: this looks like a text matrix, not a .npy file or a nashmp container; import it first: nashmp convert {} {}", path.display(), path.display(), npy.display())]
    TextGame { path: PathBuf, npy: PathBuf },
    #[error("{path}: the written file failed its check and was removed: {reason}")]
    Rejected { path: PathBuf, reason: String },
    /// A parameter (a command-line value or its equivalent in the library) breaks its rule.
    #[error("invalid parameter: {0}")]
    Param(String),
    /// `source` happened while doing `what` (e.g. one run of a sweep); the cause is kept, and
    /// printed after `what` by `{:#}` (anyhow) or by walking [`std::error::Error::source`].
    #[error("{what}")]
    Context {
        what: String,
        #[source]
        source: Box<Error>,
    },
    #[error("{path}: not a valid nashmp checkpoint: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error("cannot resume from {path}: the {what} changed since the checkpoint was written (then: {saved}; now: {now}); run without --resume to start over")]
    ResumeMismatch {
        path: PathBuf,
        what: &'static str,
        saved: String,
        now: String,
    },
    #[error("interrupted: the results so far and a checkpoint are in {0}; rerun with --resume to continue")]
    Interrupted(PathBuf),
    #[error("interrupted during {0}, before anything could be saved; rerun to start again")]
    InterruptedEarly(String),
}

impl Error {
    /// Wraps `self` as the cause of a failure while doing `what`.
    pub fn context(self, what: impl Into<String>) -> Self {
        Error::Context {
            what: what.into(),
            source: Box::new(self),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod context_tests {
    use super::Error;

    #[test]
    fn context_keeps_its_cause() {
        let e = Error::io("g.npy", std::io::Error::other("gone")).context("mmd at β = 0.1");
        assert_eq!(e.to_string(), "mmd at β = 0.1");
        let cause = std::error::Error::source(&e).expect("a cause");
        let cause = cause.downcast_ref::<Box<Error>>().expect("the boxed cause");
        assert!(matches!(**cause, Error::Io { .. }));
        assert_eq!(
            format!("{:#}", anyhow::Error::from(e)),
            "mmd at β = 0.1: g.npy: gone"
        );
    }
}
