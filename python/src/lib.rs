//! `nashmp._nashmp`: the Python extension over the `nashmp` library, the engine the CLI runs.
//!
//! The pure-Python package `nashmp` (python/nashmp/) wraps these functions with keyword
//! defaults, pandas tables and progress bars. Everything here:
//! - runs the computation without the GIL, on a worker thread, while the calling thread waits
//!   with the GIL released and wakes every [`POLL`] to run Python's signal handlers (Ctrl-C
//!   raises `KeyboardInterrupt` and stops the worker through the library's interrupt flag, at
//!   the next iteration) and to report progress;
//! - turns every library error into a Python exception with the CLI's message
//!   (`FileNotFoundError`/`OSError` for files, `ValueError` for bad data and parameters), and a
//!   panic (a bug) into `RuntimeError`: no panic reaches Python.

use nashmp::algo::{AlgoKind, Schedule, StepSpec};
use nashmp::equilibrium::{self, EquilibriumParams};
use nashmp::game::{self, DenseGame, ElementBytes, PreferenceOperator};
use nashmp::io::container::Elem;
use nashmp::oracle::{pg::PgParams, OracleSpec};
use nashmp::policy;
use nashmp::run::{session, MetricsMode, Row, StopReason};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How often the waiting thread checks for signals and reports progress.
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------------
// Errors

/// The CLI's message: the error and its causes, joined as anyhow's `{:#}` does.
fn message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A library error as the Python exception a user expects.
fn py_err(e: nashmp::Error) -> PyErr {
    let msg = message(&e);
    match &e {
        nashmp::Error::Io { source, .. } => io_err(source, msg),
        nashmp::Error::Interrupted(_) | nashmp::Error::InterruptedEarly(_) => {
            PyKeyboardInterrupt::new_err(msg)
        }
        _ => PyValueError::new_err(msg),
    }
}

/// `OSError(errno, message)`, which Python turns into the subclass of the errno
/// (`FileNotFoundError`, `IsADirectoryError`, `PermissionError` …).
fn io_err(e: &std::io::Error, msg: String) -> PyErr {
    match (e.raw_os_error(), e.kind()) {
        (Some(code), _) => PyOSError::new_err((code, msg)),
        (None, std::io::ErrorKind::NotFound) => PyFileNotFoundError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

/// An error of the CLI layer (anyhow), mapped by the library error at its root if there is one.
fn py_err_any(e: anyhow::Error) -> PyErr {
    let msg = format!("{e:#}");
    let io = e.chain().find_map(|c| c.downcast_ref::<std::io::Error>());
    match (e.downcast_ref::<nashmp::Error>(), io) {
        (Some(nashmp::Error::Interrupted(_) | nashmp::Error::InterruptedEarly(_)), _) => {
            PyKeyboardInterrupt::new_err(msg)
        }
        (_, Some(io)) => io_err(io, msg),
        _ => PyValueError::new_err(msg),
    }
}

fn param(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

fn panic_err(p: Box<dyn std::any::Any + Send>) -> PyErr {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    PyRuntimeError::new_err(format!(
        "internal error in nashmp (a bug, please report it): {what}"
    ))
}

// ---------------------------------------------------------------------------------------------
// Running work without the GIL

/// What a running computation shares with the waiting Python thread.
struct Control {
    /// Set when Python raised (Ctrl-C): the library stops at the next iteration.
    interrupt: Arc<AtomicBool>,
    /// Iterations done, for the progress callback.
    done: AtomicU64,
}

impl Control {
    fn new() -> Self {
        Control {
            interrupt: Arc::new(AtomicBool::new(false)),
            done: AtomicU64::new(0),
        }
    }
    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed)
    }
}

/// Set once by the worker when it is done.
#[derive(Default)]
struct Finished {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Finished {
    fn set(&self) {
        *self.flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }
    /// Waits up to `t`; whether the worker is done.
    fn wait(&self, t: Duration) -> bool {
        let g = self.flag.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self
            .cv
            .wait_timeout_while(g, t, |done| !*done)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }
}

/// Runs `f`, turning a panic (a bug) into `RuntimeError` and a library error into its exception.
fn guarded<T>(f: impl FnOnce() -> nashmp::Result<T>) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .map_err(panic_err)?
        .map_err(py_err)
}

/// Runs `work` on a worker thread (inside a pool of `threads` threads if given, else rayon's
/// global pool, as the CLI does) while this thread waits without the GIL. Every [`POLL`] it
/// runs Python's signal handlers and calls `progress(done)`; if either raises, it sets the
/// interrupt flag, waits for `work` to stop and returns that exception.
fn run_blocking<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    ctl: &Control,
    progress: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce(&Control) -> T + Send,
) -> PyResult<T> {
    let pool = match threads {
        None => None,
        Some(0) => return Err(param("threads must be at least 1")),
        Some(t) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .map_err(|e| PyOSError::new_err(format!("cannot start {t} threads: {e}")))?,
        ),
    };
    let finished = Finished::default();
    std::thread::scope(|s| {
        let pool = pool.as_ref();
        let fin = &finished;
        let handle = s.spawn(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match pool {
                Some(p) => p.install(|| work(ctl)),
                None => work(ctl),
            }));
            fin.set();
            out
        });
        let mut raised: Option<PyErr> = None;
        let mut reported = u64::MAX;
        loop {
            let done_now = py.detach(|| finished.wait(POLL));
            if raised.is_none() {
                let done = ctl.done.load(Ordering::Relaxed);
                let checked = py.check_signals().and_then(|()| match progress {
                    Some(cb) if done != reported => {
                        reported = done;
                        cb.call1((done,)).map(|_| ())
                    }
                    _ => Ok(()),
                });
                if let Err(e) = checked {
                    ctl.interrupt.store(true, Ordering::Relaxed);
                    raised = Some(e);
                }
            }
            if done_now {
                break;
            }
        }
        let out = py
            .detach(move || handle.join())
            .and_then(|r| r)
            .map_err(panic_err)?;
        match raised {
            Some(e) => Err(e),
            None => Ok(out),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Games

/// The bytes of a C-contiguous, aligned numpy array, used in place. The array is kept alive
/// (and cannot be resized: numpy refuses while another reference exists) by the reference held
/// here.
struct NumpyBytes {
    _array: Py<PyAny>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: the pointer is into the data buffer of `_array`, which lives as long as this value
// (we hold a strong reference), is never freed or moved while referenced, and is only read.
// Reading needs no GIL. Python code that writes into the array while a computation runs races
// with it, as it would with any other thread reading a shared numpy buffer; the documentation
// of `Game.from_numpy` says so.
unsafe impl Send for NumpyBytes {}
// SAFETY: as above; `bytes` only reads.
unsafe impl Sync for NumpyBytes {}

impl ElementBytes for NumpyBytes {
    fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` points to `len` initialised bytes of the live array buffer (see above),
        // checked C-contiguous, so the `n × n` elements are exactly these bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A preference game: `P[i][j] = P(i ≻ j)` with `P + Pᵀ = 1`, seen as the operator `x ↦ P x`.
#[pyclass(frozen, module = "nashmp._nashmp")]
struct Game {
    op: Arc<dyn PreferenceOperator>,
    path: Option<PathBuf>,
}

#[pymethods]
impl Game {
    /// Maps a game file of any layout the CLI reads and validates every entry.
    #[staticmethod]
    #[pyo3(signature = (path, skew_tol = None))]
    fn open(py: Python<'_>, path: PathBuf, skew_tol: Option<f64>) -> PyResult<Game> {
        let op = py.detach(|| guarded(|| game::open(&path, skew_tol)))?;
        Ok(Game {
            op: Arc::from(op),
            path: Some(path),
        })
    }

    /// Borrows a 2-D C-contiguous float32/float64 array without copying and validates it.
    #[staticmethod]
    #[pyo3(signature = (array, skew_tol = None, name = "numpy array"))]
    fn from_numpy(
        py: Python<'_>,
        array: &Bound<'_, PyAny>,
        skew_tol: Option<f64>,
        name: &str,
    ) -> PyResult<Game> {
        let a = array.cast::<PyUntypedArray>().map_err(|_| {
            param(format!(
                "{name}: expected a numpy.ndarray, got {}",
                array
                    .get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let shape = a.shape().to_vec();
        let elem = if a.cast::<PyArray2<f32>>().is_ok() {
            Elem::F32
        } else if a.cast::<PyArray2<f64>>().is_ok() {
            Elem::F64
        } else if shape.len() != 2 {
            return Err(param(format!(
                "{name}: the game must be a square matrix, but its shape is {shape:?}"
            )));
        } else {
            return Err(param(format!(
                "{name}: unsupported dtype {}: the game must be float32 or float64",
                a.dtype()
            )));
        };
        if shape[0] != shape[1] || shape[0] == 0 {
            return Err(param(format!(
                "{name}: the game must be a square matrix, but its shape is {shape:?}"
            )));
        }
        if !a.is_c_contiguous() {
            return Err(param(format!(
                "{name}: the array is not C-contiguous (Fortran order, or a strided view), so it \
                 cannot be used in place; pass np.ascontiguousarray(P)"
            )));
        }
        let n = shape[0];
        let len = n * n * elem.size();
        let ptr = match elem {
            Elem::F32 => a.cast::<PyArray2<f32>>()?.data() as *const u8,
            _ => a.cast::<PyArray2<f64>>()?.data() as *const u8,
        };
        let owner = NumpyBytes {
            _array: array.clone().unbind(),
            ptr,
            len,
        };
        let g = DenseGame::borrowed(name, n, elem, Box::new(owner)).map_err(py_err)?;
        py.detach(|| guarded(|| g.validate(skew_tol)))?;
        Ok(Game {
            op: Arc::new(g),
            path: None,
        })
    }

    /// Number of actions.
    #[getter]
    fn n(&self) -> usize {
        self.op.n()
    }

    /// The file the game was opened from (None for an array).
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.path.clone()
    }

    /// Storage layout and element type, e.g. `dense f32`.
    #[getter]
    fn layout(&self) -> String {
        self.op.info().layout
    }

    /// One line: storage, dtype, size, source.
    fn describe(&self) -> String {
        self.op.info().description
    }

    /// `P x` for a vector `x` of length `n` (converted to contiguous float64 if it is not), as
    /// a new float64 array.
    fn apply<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let n = self.op.n();
        let x = match x.cast::<PyArray1<f64>>() {
            Ok(a) if a.is_c_contiguous() => a.clone(),
            _ => py
                .import("numpy")?
                .call_method1("ascontiguousarray", (x, "float64"))?
                .cast_into::<PyArray1<f64>>()
                .map_err(|_| param("x must be a 1-D vector of numbers"))?,
        };
        let x: PyReadonlyArray1<'py, f64> =
            x.try_readonly().map_err(|e| param(format!("x: {e}")))?;
        let xs = x
            .as_slice()
            .map_err(|_| param("x must be a contiguous float64 vector"))?;
        if xs.len() != n {
            return Err(param(format!(
                "x has {} entries but the game has {n} actions",
                xs.len()
            )));
        }
        let mut out = vec![0.0; n];
        let op = &self.op;
        py.detach(|| {
            guarded(|| {
                game::apply_vec(&**op, xs, &mut out);
                Ok(())
            })
        })?;
        Ok(out.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!("<nashmp.Game {}>", self.op.info().description)
    }
}

/// `θ_μ` from a reference given as probabilities, a `.npy` path, or None (uniform).
fn theta_of(what: &str, v: Option<&Bound<'_, PyAny>>, n: usize) -> PyResult<Option<Vec<f64>>> {
    let Some(v) = v else { return Ok(None) };
    if v.is_none() {
        return Ok(None);
    }
    if let Ok(p) = v.extract::<PathBuf>() {
        return policy::load_theta(&p, n).map(Some).map_err(py_err);
    }
    let probs: Vec<f64> = match v.cast::<PyArray1<f64>>() {
        Ok(a) => a.readonly().as_array().to_vec(),
        Err(_) => v.extract::<Vec<f64>>().map_err(|_| {
            param(format!(
                "{what}: expected a 1-D float64 array of probabilities or a .npy path"
            ))
        })?,
    };
    policy::theta_from_probs(what, &probs, n)
        .map(Some)
        .map_err(py_err)
}

// ---------------------------------------------------------------------------------------------
// Equilibrium

/// `π*` (probabilities) and its certificate as a JSON object.
#[pyfunction(name = "equilibrium")]
#[pyo3(signature = (game, beta, reference = None, residual = 1e-12, max_iters = 1_000_000, anderson = equilibrium::MAX_MEMORY, threads = None))]
#[allow(clippy::too_many_arguments)]
fn equilibrium_py<'py>(
    py: Python<'py>,
    game: &Game,
    beta: f64,
    reference: Option<&Bound<'py, PyAny>>,
    residual: f64,
    max_iters: u64,
    anderson: usize,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray1<f64>>, String)> {
    nashmp::algo::params::check_beta(beta).map_err(py_err)?;
    let n = game.op.n();
    let theta_ref = theta_of("ref", reference, n)?.unwrap_or_else(|| policy::uniform_theta(n));
    let mut p = EquilibriumParams::new(beta);
    p.target_residual = residual;
    p.max_iters = max_iters;
    p.memory = anderson;
    let op = &game.op;
    let ctl = Control::new();
    let eq = run_blocking(py, threads, &ctl, None, |ctl| {
        equilibrium::solve_interruptible(op.as_ref(), &theta_ref, p, &|| ctl.interrupted())
    })?
    .map_err(py_err)?;
    let Some(eq) = eq else {
        // Only reached if the flag was set without a Python exception (never, in practice).
        return Err(PyKeyboardInterrupt::new_err(
            "interrupted during the π* solve",
        ));
    };
    let cert = serde_json::to_string(&eq).expect("certificate serialises");
    Ok((policy::probs(&eq.theta).into_pyarray(py), cert))
}

// ---------------------------------------------------------------------------------------------
// Solve

fn algo_kind(name: &str) -> PyResult<AlgoKind> {
    AlgoKind::ALL
        .iter()
        .copied()
        .find(|k| k.name() == name)
        .ok_or_else(|| {
            let all: Vec<&str> = AlgoKind::ALL.iter().map(|k| k.name()).collect();
            param(format!(
                "unknown algorithm {name:?}; expected one of {}",
                all.join(", ")
            ))
        })
}

/// The oracle arguments checked as `nashmp solve` checks its flags.
#[allow(clippy::too_many_arguments)]
fn oracle_spec(
    oracle: &str,
    samples: Option<u64>,
    inner_steps: Option<u64>,
    batch: Option<u64>,
    inner_lr: Option<f64>,
    seed: Option<u64>,
) -> PyResult<OracleSpec> {
    let given = |name: &str, set: bool, mode: &str| -> PyResult<()> {
        if set {
            return Err(param(format!(
                "{name} applies only to oracle={mode}, not oracle={oracle:?}"
            )));
        }
        Ok(())
    };
    let s = seed.unwrap_or(0);
    match oracle {
        "exact" => {
            given("samples", samples.is_some(), "'sampled'")?;
            given("inner_steps", inner_steps.is_some(), "'pg'")?;
            given("batch", batch.is_some(), "'pg'")?;
            given("inner_lr", inner_lr.is_some(), "'pg'")?;
            given("seed", seed.is_some(), "'sampled' or 'pg'")?;
            Ok(OracleSpec::exact())
        }
        "sampled" => {
            given("inner_steps", inner_steps.is_some(), "'pg'")?;
            given("batch", batch.is_some(), "'pg'")?;
            given("inner_lr", inner_lr.is_some(), "'pg'")?;
            let m = samples.ok_or_else(|| param("oracle='sampled' needs samples=M"))?;
            OracleSpec::sampled(m, s).map_err(py_err)
        }
        "pg" => {
            given("samples", samples.is_some(), "'sampled'")?;
            let (Some(inner_steps), Some(batch)) = (inner_steps, batch) else {
                return Err(param("oracle='pg' needs inner_steps=S and batch=B"));
            };
            OracleSpec::pg(
                PgParams {
                    inner_steps,
                    batch,
                    inner_lr,
                },
                s,
            )
            .map_err(py_err)
        }
        other => Err(param(format!(
            "unknown oracle {other:?}; expected 'exact', 'sampled' or 'pg'"
        ))),
    }
}

/// The logged rows of a solve, column by column (metrics.csv's columns; NaN for empty cells).
#[derive(Default)]
struct Columns {
    algo: Vec<String>,
    iter: Vec<u64>,
    queries: Vec<u64>,
    metrics: [Vec<f64>; 8],
    seconds: Vec<f64>,
}

impl Columns {
    fn push(&mut self, r: &Row) {
        self.algo.push(r.algo.to_string());
        self.iter.push(r.iter);
        self.queries.push(r.queries);
        for (col, v) in self.metrics.iter_mut().zip(r.metrics.values()) {
            col.push(v.unwrap_or(f64::NAN));
        }
        self.seconds.push(r.seconds);
    }
}

/// The metric columns of metrics.csv, in order.
const METRIC_COLUMNS: [&str; 8] = [
    "kl_star",
    "kl_star_rev",
    "span_star",
    "exploit",
    "gap",
    "exploit0",
    "residual",
    "bound",
];

/// Runs `nashmp solve` on `game` in memory. Returns `(columns, policies, equilibrium, summary)`:
/// a dict of metrics.csv's columns, a dict label → π, π* or None, and summary.json's fields as
/// JSON text.
#[pyfunction]
#[pyo3(signature = (game, beta, algos, iters, alpha, eta, reference, init, metrics, tol, schedule, oracle, samples, inner_steps, batch, inner_lr, seed, threads, progress))]
#[allow(clippy::too_many_arguments)]
fn solve<'py>(
    py: Python<'py>,
    game: &Game,
    beta: f64,
    algos: Vec<String>,
    iters: u64,
    alpha: Option<f64>,
    eta: Option<f64>,
    reference: Option<&Bound<'py, PyAny>>,
    init: &Bound<'py, PyAny>,
    metrics: Option<&str>,
    tol: Option<f64>,
    schedule: &str,
    oracle: &str,
    samples: Option<u64>,
    inner_steps: Option<u64>,
    batch: Option<u64>,
    inner_lr: Option<f64>,
    seed: Option<u64>,
    threads: Option<usize>,
    progress: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
    use pyo3::types::{PyDict, PyTuple};
    nashmp::algo::params::check_beta(beta).map_err(py_err)?;
    let n = game.op.n();
    let theta_ref = theta_of("ref", reference, n)?.unwrap_or_else(|| policy::uniform_theta(n));
    let theta0 = match init.extract::<String>() {
        Ok(s) if s == "reference" => theta_ref.clone(),
        Ok(s) if s == "uniform" => policy::uniform_theta(n),
        _ => theta_of("init", Some(init), n)?.unwrap_or_else(|| theta_ref.clone()),
    };
    let kinds = algos
        .iter()
        .map(|a| algo_kind(a))
        .collect::<PyResult<Vec<_>>>()?;
    let step = match (alpha, eta) {
        (Some(_), Some(_)) => return Err(param("give alpha or eta, not both")),
        (Some(x), _) => StepSpec::Alpha(x),
        (_, Some(e)) => StepSpec::Eta(e),
        _ => StepSpec::Default,
    };
    let metrics = match metrics {
        None if beta > 0.0 => MetricsMode::Full,
        None => MetricsMode::Cheap,
        Some("full") => MetricsMode::Full,
        Some("cheap") => MetricsMode::Cheap,
        Some("none") => MetricsMode::None,
        Some(m) => {
            return Err(param(format!(
                "unknown metrics {m:?}; expected 'full', 'cheap' or 'none'"
            )))
        }
    };
    let schedule = match schedule {
        "constant" => Schedule::Constant,
        "decaying" => Schedule::Decaying,
        s => {
            return Err(param(format!(
                "unknown schedule {s:?}; expected 'constant' or 'decaying'"
            )))
        }
    };
    let oracle = oracle_spec(oracle, samples, inner_steps, batch, inner_lr, seed)?;
    let ctl = Control::new();
    let cfg = session::SolveConfig::new(
        &kinds, beta, step, schedule, iters, tol, metrics, theta_ref, theta0,
    )
    .and_then(|c| c.with_oracle(oracle))
    .and_then(|c| {
        c.with_persist(session::PersistSpec {
            interrupt: Some(ctl.interrupt.clone()),
            ..Default::default()
        })
    })
    .map_err(py_err)?;
    for w in cfg.warnings() {
        let warnings = py.import("warnings")?;
        warnings.call_method1("warn", (w.as_str(),))?;
    }
    let op = &game.op;
    let (report, cols, threads_used) = run_blocking(py, threads, &ctl, progress, |ctl| {
        let mut cols = Columns::default();
        let r = session::solve(
            op.as_ref(),
            &cfg,
            None,
            &mut |row| cols.push(row),
            &mut || {
                ctl.done.fetch_add(1, Ordering::Relaxed);
            },
        );
        (r, cols, rayon::current_num_threads())
    })?;
    let report = report.map_err(py_err)?;
    if report
        .runs
        .last()
        .is_some_and(|r| r.stop == StopReason::Interrupted)
    {
        // The flag is only set after Python raised, which `run_blocking` returned above.
        return Err(PyKeyboardInterrupt::new_err("interrupted"));
    }

    let columns = PyDict::new(py);
    columns.set_item("algo", cols.algo)?;
    columns.set_item("iter", cols.iter.into_pyarray(py))?;
    columns.set_item("queries", cols.queries.into_pyarray(py))?;
    for (name, col) in METRIC_COLUMNS.iter().zip(cols.metrics) {
        columns.set_item(*name, col.into_pyarray(py))?;
    }
    columns.set_item("seconds", cols.seconds.into_pyarray(py))?;

    let policies = PyDict::new(py);
    for r in &report.runs {
        policies.set_item(r.kind.name(), policy::probs(&r.theta).into_pyarray(py))?;
        for (label, theta, _) in &r.extras {
            policies.set_item(label, policy::probs(theta).into_pyarray(py))?;
        }
    }
    let eq = match &report.equilibrium {
        Some((e, _)) => policy::probs(&e.theta).into_pyarray(py).into_any(),
        None => py.None().into_bound(py),
    };
    let summary = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "beta": cfg.beta(),
        "metrics": cfg.metrics(),
        "schedule": cfg.schedule(),
        "iters": cfg.iters(),
        "tol": cfg.tol(),
        "oracle": cfg.oracle(),
        "threads": threads_used,
        "game": { "n": n, "storage": op.info().description },
        "equilibrium": report.equilibrium.as_ref().map(|(e, s)| serde_json::json!({
            "certificate": e, "seconds": s
        })),
        "runs": report.runs.iter().map(|r| serde_json::json!({
            "algo": r.kind.name(),
            "alpha": r.step.alpha,
            "eta": r.step.eta,
            "stop": r.stop,
            "iterations": r.iterations,
            "queries": r.queries,
            "seconds": r.seconds,
            "final": r.last,
            "extras": r.extras.iter().map(|(l, _, m)| serde_json::json!({"label": l, "final": m})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "warnings": cfg.warnings(),
        "wall_seconds": report.wall_seconds,
    });
    PyTuple::new(
        py,
        [
            columns.into_any(),
            policies.into_any(),
            eq,
            pyo3::types::PyString::new(py, &summary.to_string()).into_any(),
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// Commands of the CLI (generate, import-pairwise, rank): the same code and messages

/// Runs `nashmp ARGS…` (a command that installs no signal handler) in this process, without
/// the GIL; its stdout lines go to this process's stdout.
#[pyfunction]
#[pyo3(signature = (args, threads = None))]
fn run_command(py: Python<'_>, args: Vec<String>, threads: Option<usize>) -> PyResult<()> {
    use clap::Parser;
    let allowed = ["generate", "import-pairwise", "rank", "info", "convert"];
    if !args.first().is_some_and(|c| allowed.contains(&c.as_str())) {
        return Err(param(format!(
            "run_command runs only {}",
            allowed.join(", ")
        )));
    }
    let argv = std::iter::once("nashmp".to_string()).chain(args);
    let cli = nashmp::cli::Cli::try_parse_from(argv)
        .map_err(|e| param(e.render().to_string().trim_end().to_string()))?;
    let ctl = Control::new();
    run_blocking(py, threads, &ctl, None, |_| nashmp::cli::run(cli))?.map_err(py_err_any)
}

/// Runs `nashmp sweep ARGS…` as the CLI does, except that Ctrl-C reaches Python (the CLI
/// installs its own SIGINT handler, which would replace Python's): the sweep saves its
/// checkpoint and stops, and `KeyboardInterrupt` is raised.
#[pyfunction]
#[pyo3(signature = (args, threads = None))]
fn sweep(py: Python<'_>, args: Vec<String>, threads: Option<usize>) -> PyResult<()> {
    use clap::Parser;
    use nashmp::cli::{Cli, Command};
    use nashmp::sweep::{self as sw, plots::Formats, Mode, SweepOptions, SweepPersist};
    let argv = std::iter::once("nashmp".to_string()).chain(args);
    let cli = Cli::try_parse_from(argv)
        .map_err(|e| param(e.render().to_string().trim_end().to_string()))?;
    let Command::Sweep(a) = cli.command else {
        return Err(param("sweep: expected the arguments of `nashmp sweep`"));
    };
    let cfg = a.config().map_err(py_err)?;
    sw::check_out_dir(&a.out).map_err(py_err)?;
    if a.png || a.replot {
        return Err(param(
            "png and replot are not available from Python; use the nashmp command",
        ));
    }
    let ctl = Control::new();
    let opt = SweepOptions {
        out: a.out.clone(),
        cache: a.cache.clone(),
        mode: if a.one_by_one {
            Mode::OneByOne
        } else {
            Mode::Batched
        },
        formats: Formats {
            svg: true,
            png: false,
        },
        compare: a.compare,
        persist: SweepPersist {
            every: a.checkpoint_every,
            resume: a.resume,
            interrupt: Some(ctl.interrupt.clone()),
        },
    };
    run_blocking(py, threads, &ctl, None, |_| {
        sw::run(&cfg, &opt, &mut |_line| {}).map(|_| ())
    })?
    .map_err(py_err)
}

// ---------------------------------------------------------------------------------------------

#[pymodule]
fn _nashmp(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Game>()?;
    m.add_function(wrap_pyfunction!(equilibrium_py, m)?)?;
    m.add_function(wrap_pyfunction!(solve, m)?)?;
    m.add_function(wrap_pyfunction!(run_command, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("METRIC_COLUMNS", METRIC_COLUMNS.to_vec())?;
    Ok(())
}
