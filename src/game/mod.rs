//! Preference games behind one operator interface: an algorithm only ever asks for `P x`.

mod dense;
pub mod packed;
pub mod sharded;
mod structured;
pub mod validate;

pub use dense::{DenseGame, ElementBytes, Storage};
pub use packed::PackedGame;
pub(crate) use structured::class_values;
pub use structured::{BlockGame, LowRankGame};

use crate::error::{Error, Result};
use crate::io::mmap::Mapped;
use std::path::Path;

/// The scratch types of [`PreferenceOperator::apply`], faer's (`dyn-stack`'s) own.
pub use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
pub use faer::{MatMut, MatRef};

/// A preference matrix `P` (docs/math.md §1) seen as an operator: the maths only.
///
/// Implementations are skew-consistent (`P + Pᵀ = 1`), so `Pᵀ x = (Σx)·1 − P x`: one
/// application gives both products (docs/math.md §1).
///
/// Shaped after faer's `LinOp`: one [`apply`](Self::apply) over a batch of vectors held as
/// the columns of an `n × k` faer matrix (column `v` of `out` is `P` times column `v` of
/// `rhs`; a single vector is the `k = 1` case, see [`apply_vec`]), with the workspace it needs
/// declared by [`apply_scratch`](Self::apply_scratch) and passed in by the caller as a
/// [`MemStack`], so a storage layout's apply allocates nothing and holds no lock (the sampled
/// estimator, which draws from alias tables, is the one documented exception). What the operator is stored
/// as (layout, bytes, description, exploitable structure) is not part of the maths: it is
/// behind one [`info`](Self::info).
///
/// Design decisions:
/// - **Bits.** Column `v` of `out` is, bit for bit, the product of column `v` alone: whatever
///   the batch size, the other columns, the column's position, the thread count or the
///   instruction set. Callers (the sweep's lock step, resumed sweeps) rely on it and never pad a
///   batch.
/// - **No `Par` argument** (faer's `LinOp` takes one): every implementation reduces over fixed
///   chunks, so its bits never depend on the parallelism; it runs on the current rayon pool
///   (`ThreadPool::install` chooses the threads). A `Par` the kernels could not honour bit for
///   bit would only be a second, weaker way to say the same thing.
/// - **Columns are contiguous**: `rhs` and `out` must have unit row stride (faer's `Mat`,
///   `MatRef::from_column_major_slice`, `ColRef::from_slice(..).as_mat()` all do); any column
///   stride is fine. Anything else is a bug in the caller and panics, as faer's own dimension
///   checks do.
/// - **Scratch** is an upper bound for `k` columns, monotone in `k`, and may be larger than an
///   apply uses; a stack that cannot hold it panics (a caller's bug: size it from
///   `apply_scratch`). Applies that pass through to another operator (wrappers, the lock step)
///   declare the inner operator's requirement or manage their own.
pub trait PreferenceOperator: Send + Sync {
    /// Number of actions.
    fn n(&self) -> usize;
    /// `out = P rhs`, column by column (see the trait docs for the contract).
    ///
    /// # Panics
    /// If `rhs` or `out` is not `n × k` (the same `k`), has a non-unit row stride, or `stack`
    /// cannot hold [`apply_scratch(k)`](Self::apply_scratch).
    fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, stack: &mut MemStack);
    /// The workspace [`apply`](Self::apply) needs for `k` columns.
    fn apply_scratch(&self, k: usize) -> StackReq;
    /// The single entry `P[i][j]` (for sampled preference queries).
    ///
    /// # Panics
    /// If `i` or `j` is out of range.
    fn entry(&self, i: usize, j: usize) -> f64;
    /// Relative accuracy of `apply` (about `1e-7` for `f32` storage, `1e-16` for `f64`).
    fn precision(&self) -> f64;
    /// Checks every stored entry (finite, in `[0, 1]`, skew-consistent within `tol` where the
    /// layout stores both `P[i][j]` and `P[j][i]`); the error names the first offending entry.
    fn validate(&self, tol: Option<f64>) -> Result<()>;
    /// How the operator is stored, and the structure a solver may exploit.
    fn info(&self) -> Info<'_>;
}

/// What an operator is stored as: [`PreferenceOperator::info`].
#[derive(Clone, Debug)]
pub struct Info<'a> {
    /// The layout and element type, e.g. `packed u16`.
    pub layout: String,
    /// Bytes of game data read by one apply.
    pub stored_bytes: u64,
    /// One line for logs: storage, dtype, size, source.
    pub description: String,
    /// Structure the layout stores explicitly.
    pub structure: Structure<'a>,
}

impl Info<'static> {
    /// A matrix layout read from `path`, with no structure beyond its entries: `layout` (e.g.
    /// `dense f32`), described as `"{layout} {n}x{n} ({stored_bytes} bytes) from {path}"`.
    pub fn matrix_file(layout: String, n: usize, stored_bytes: u64, path: &Path) -> Self {
        let description = format!(
            "{layout} {n}x{n} ({stored_bytes} bytes) from {}",
            path.display()
        );
        Info {
            layout,
            stored_bytes,
            description,
            structure: Structure::None,
        }
    }
}

/// Calls `pass(xs, outs)` on the columns of `rhs` and `out` in groups of at most
/// [`MAX_BATCH`](crate::kernels::batch::MAX_BATCH), in order: one pass of a batched kernel per
/// group, with the column slices in fixed arrays (no allocation).
pub(crate) fn for_column_groups(
    out: MatMut<'_, f64>,
    rhs: MatRef<'_, f64>,
    mut pass: impl FnMut(&[&[f64]], &mut [&mut [f64]]),
) {
    use crate::kernels::batch::MAX_BATCH;
    let k = rhs.ncols();
    let mut outs = columns_mut(out);
    for c0 in (0..k).step_by(MAX_BATCH) {
        let m = (k - c0).min(MAX_BATCH);
        let xs: [&[f64]; MAX_BATCH] =
            std::array::from_fn(|v| if v < m { column(rhs, c0 + v) } else { &[] });
        let mut os: [&mut [f64]; MAX_BATCH] = std::array::from_fn(|v| {
            if v < m {
                outs.next().expect("k columns")
            } else {
                &mut []
            }
        });
        pass(&xs[..m], &mut os[..m]);
    }
}

/// Structure of `P` a layout stores explicitly (and solvers exploit).
#[derive(Clone, Debug, Default)]
pub enum Structure<'a> {
    /// Nothing beyond the entries.
    #[default]
    None,
    /// A partition of the actions into classes (block games).
    Classes(Classes<'a>),
    /// Features and a skew interaction matrix (low-rank games).
    Factors(Factors<'a>),
}

impl<'a> Structure<'a> {
    pub fn classes(self) -> Option<Classes<'a>> {
        match self {
            Structure::Classes(c) => Some(c),
            _ => None,
        }
    }
    pub fn factors(self) -> Option<Factors<'a>> {
        match self {
            Structure::Factors(f) => Some(f),
            _ => None,
        }
    }
}

/// `P[i][j] = Q[class(i)][class(j)]` for `k` classes (docs/math.md §5a, §7): the equilibrium
/// solver solves the `k`-action game exactly and certifies the result on the full operator.
/// The classes are borrowed from the game, so asking for them costs nothing until
/// [`Classes::to_vec`].
#[derive(Clone, Debug)]
pub struct Classes<'a> {
    /// `Q`, row-major `k × k`.
    pub q: Vec<f64>,
    ids: ClassIds<'a>,
}

#[derive(Clone, Copy, Debug)]
enum ClassIds<'a> {
    /// `width` little-endian bytes per action (a block game's stored types).
    Stored {
        bytes: &'a [u8],
        width: crate::io::container::TypeWidth,
    },
    Slice(&'a [u32]),
}

impl<'a> Classes<'a> {
    /// Classes stored as `width` little-endian bytes per action.
    pub(crate) fn stored(
        q: Vec<f64>,
        bytes: &'a [u8],
        width: crate::io::container::TypeWidth,
    ) -> Self {
        Classes {
            q,
            ids: ClassIds::Stored { bytes, width },
        }
    }
    /// Classes given one per action.
    pub fn from_slice(q: Vec<f64>, ids: &'a [u32]) -> Self {
        Classes {
            q,
            ids: ClassIds::Slice(ids),
        }
    }
    /// Number of actions.
    pub fn n(&self) -> usize {
        match self.ids {
            ClassIds::Stored { bytes, width } => bytes.len() / width.size(),
            ClassIds::Slice(s) => s.len(),
        }
    }
    /// The class of action `i`.
    ///
    /// # Panics
    /// If `i ≥ n()`.
    pub fn class_of(&self, i: usize) -> u32 {
        use crate::io::container::TypeWidth;
        match self.ids {
            ClassIds::Stored { bytes: b, width } => match width {
                TypeWidth::U8 => b[i] as u32,
                TypeWidth::U16 => u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as u32,
                TypeWidth::U32 => {
                    u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
                }
            },
            ClassIds::Slice(s) => s[i],
        }
    }
    /// Number of classes `k` (`Q` is `k × k`).
    pub fn k(&self) -> usize {
        (self.q.len() as f64).sqrt().round() as usize
    }
    /// The classes as one byte per action, if they are stored so.
    pub(crate) fn u8_ids(&self) -> Option<&'a [u8]> {
        match self.ids {
            ClassIds::Stored {
                bytes,
                width: crate::io::container::TypeWidth::U8,
            } => Some(bytes),
            _ => None,
        }
    }
    /// Whether the payoff `P x` is [`class_values`] of the class masses of `x`,
    /// spread by class: true of a stored block game's classes (its apply computes exactly
    /// that), not promised of classes given as a slice.
    pub(crate) fn is_stored(&self) -> bool {
        matches!(self.ids, ClassIds::Stored { .. })
    }
    /// The class of every action.
    pub fn to_vec(&self) -> Vec<u32> {
        use rayon::prelude::*;
        let mut t = vec![0u32; self.n()];
        t.par_iter_mut()
            .enumerate()
            .for_each(|(i, v)| *v = self.class_of(i));
        t
    }
}

/// `P[i][j] = 1/2 + φ(i)ᵀ M φ(j)` (docs/math.md §8): the game's own features for a
/// log-linear policy.
#[derive(Clone, Debug)]
pub struct Factors<'a> {
    /// The features `φ`, columns of length `n`.
    pub cols: Vec<&'a [f64]>,
    /// The skew `d × d` matrix `M`, row-major.
    pub m: Vec<f64>,
}

/// Column `j` of a batch as a slice.
///
/// # Panics
/// If the column's row stride is not 1 (see the [`PreferenceOperator`] docs).
pub fn column<'a>(m: MatRef<'a, f64>, j: usize) -> &'a [f64] {
    m.col(j)
        .try_as_col_major()
        .expect("operator batch columns must be contiguous (row stride 1)")
        .as_slice()
}

/// The columns of a batch as mutable slices, in order.
///
/// # Panics
/// If the row stride is not 1 (see the [`PreferenceOperator`] docs).
pub fn columns_mut<'a>(m: MatMut<'a, f64>) -> impl ExactSizeIterator<Item = &'a mut [f64]> {
    m.col_iter_mut().map(|c| {
        c.try_as_col_major_mut()
            .expect("operator batch columns must be contiguous (row stride 1)")
            .as_slice_mut()
    })
}

/// Checks the shapes of an apply (`n × k` in, `n × k` out).
///
/// # Panics
/// If they disagree.
#[track_caller]
pub fn check_shapes(n: usize, out: &MatMut<'_, f64>, rhs: &MatRef<'_, f64>) {
    assert!(
        rhs.nrows() == n && out.nrows() == n && out.ncols() == rhs.ncols(),
        "operator apply: P is {n} x {n}, rhs is {} x {}, out is {} x {}",
        rhs.nrows(),
        rhs.ncols(),
        out.nrows(),
        out.ncols()
    );
}

/// A vector as an `n × 1` batch.
pub fn as_batch(x: &[f64]) -> MatRef<'_, f64> {
    faer::ColRef::from_slice(x).as_mat()
}

/// A mutable vector as an `n × 1` batch.
pub fn as_batch_mut(x: &mut [f64]) -> MatMut<'_, f64> {
    faer::ColMut::from_slice_mut(x).as_mat_mut()
}

thread_local! {
    /// Per-thread scratch of [`apply_vec`] and [`apply_cols`], grown on demand.
    static SCRATCH: std::cell::RefCell<MemBuffer> =
        std::cell::RefCell::new(MemBuffer::new(StackReq::EMPTY));
}

/// Runs `f` on a stack that holds `req`: this thread's cached buffer (grown when too small),
/// or a fresh one when the cached buffer is already in use (an operator applying another
/// through these helpers).
pub fn with_scratch<R>(req: StackReq, f: impl FnOnce(&mut MemStack) -> R) -> R {
    let mut f = Some(f);
    let cached = SCRATCH.with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        if !MemStack::new(&mut buf).can_hold(req) {
            *buf = MemBuffer::new(req);
        }
        Some((f.take().expect("once"))(MemStack::new(&mut buf)))
    });
    match cached {
        Some(r) => r,
        None => {
            let mut buf = MemBuffer::new(req);
            (f.take().expect("once"))(MemStack::new(&mut buf))
        }
    }
}

/// `out = P x` for one vector (the `k = 1` apply), its scratch taken from a per-thread buffer
/// reused across calls (allocated once per thread and size, not per apply).
///
/// # Panics
/// If `x` or `out` does not have length `n()`.
pub fn apply_vec(op: &(impl PreferenceOperator + ?Sized), x: &[f64], out: &mut [f64]) {
    with_scratch(op.apply_scratch(1), |stack| {
        op.apply(as_batch_mut(out), as_batch(x), stack)
    });
}

/// `outs[v] = P xs[v]` for vectors held apart: copies them into one `n × k` matrix, applies
/// once, copies the products out (the bits of [`apply_vec`] on each).
///
/// # Panics
/// If the counts or lengths disagree.
pub fn apply_cols(op: &(impl PreferenceOperator + ?Sized), xs: &[&[f64]], outs: &mut [&mut [f64]]) {
    let (n, k) = (op.n(), xs.len());
    assert_eq!(
        outs.len(),
        k,
        "apply_cols: {k} vectors but {} outputs",
        outs.len()
    );
    let mut x = faer::Mat::<f64>::zeros(n, k);
    for (v, xv) in xs.iter().enumerate() {
        assert_eq!(
            xv.len(),
            n,
            "apply_cols: vector {v} has length {}",
            xv.len()
        );
        x.col_mut(v)
            .try_as_col_major_mut()
            .expect("faer::Mat columns are contiguous")
            .as_slice_mut()
            .copy_from_slice(xv);
    }
    let mut y = faer::Mat::<f64>::zeros(n, k);
    with_scratch(op.apply_scratch(k), |stack| {
        op.apply(y.as_mut(), x.as_ref(), stack)
    });
    for (v, o) in outs.iter_mut().enumerate() {
        o.copy_from_slice(column(y.as_ref(), v));
    }
}

/// The payoff vector `g(π) = P π` for `π = exp(θ)`; `scratch` holds `π`.
pub fn payoff(op: &dyn PreferenceOperator, theta: &[f64], scratch: &mut [f64], out: &mut [f64]) {
    crate::kernels::vector::exp_into(theta, scratch);
    apply_vec(op, scratch, out);
}

/// Opens a game file (a `.npy` matrix or a nashmp container of any layout), checks its header
/// and validates every entry.
pub fn open(path: &Path, tol: Option<f64>) -> Result<Box<dyn PreferenceOperator>> {
    // Under `mpirun -np R` (R > 1): this rank's shard of a shard set, opened collectively.
    #[cfg(feature = "mpi")]
    if let Some(g) = crate::dist::open(path, tol)? {
        return Ok(g);
    }
    let g = open_unchecked(path)?;
    g.validate(tol)?;
    Ok(g)
}

/// Whether a game file is a whitespace-separated text matrix (its first bytes are numbers and
/// blanks), which `convert` imports.
fn looks_like_text(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(256)];
    !head.is_empty()
        && head[0].is_ascii_digit()
        && head.iter().all(|&b| {
            b.is_ascii_digit()
                || b.is_ascii_whitespace()
                || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')
        })
}

/// Opens a game file and checks its header and length, not its entries.
pub fn open_unchecked(path: &Path) -> Result<Box<dyn PreferenceOperator>> {
    use crate::io::container::{self, Layout};
    if let Some(manifest) = crate::io::shards::manifest_path(path) {
        let set = crate::io::shards::ShardSet::open(&manifest)?;
        return Ok(Box::new(sharded::ShardedGame::open(set)?));
    }
    let map = Mapped::open(path)?;
    if looks_like_text(map.bytes()) {
        return Err(Error::TextGame {
            path: path.into(),
            npy: path.with_extension("npy"),
        });
    }
    if !map.bytes().starts_with(container::MAGIC) {
        return Ok(Box::new(DenseGame::open(path)?));
    }
    let bad = |reason: String| Error::Container {
        path: path.into(),
        reason,
    };
    let (h, offset) = container::parse(map.bytes()).map_err(bad)?;
    let expected = h.expected_data_bytes().map_err(bad)?;
    let found = map.bytes().len().saturating_sub(offset) as u64;
    if found > expected {
        return Err(Error::TrailingData {
            path: path.into(),
            expected,
            found,
        });
    }
    if found != expected || map.bytes().len() < offset {
        return Err(Error::Truncated {
            path: path.into(),
            expected,
            found,
        });
    }
    let n = usize::try_from(h.n).map_err(|_| bad(format!("n = {} is too large", h.n)))?;
    let as_usize = |v: Option<u64>| v.and_then(|v| usize::try_from(v).ok()).unwrap_or(0);
    Ok(match h.layout {
        Layout::Dense => Box::new(DenseGame::mapped(
            path,
            map,
            offset,
            n,
            h.dtype.expect("checked"),
        )),
        Layout::Packed => Box::new(PackedGame::mapped(
            path,
            map,
            offset,
            n,
            h.dtype.expect("checked"),
        )),
        Layout::LowRank => Box::new(LowRankGame::mapped(path, map, offset, n, as_usize(h.rank))),
        Layout::Block => Box::new(BlockGame::mapped(
            path,
            map,
            offset,
            n,
            as_usize(h.types),
            h.type_width.expect("checked"),
        )),
    })
}

/// Opens a packed game with the portable scalar kernel (to test the SIMD one against).
pub fn packed_scalar(path: &Path) -> Result<PackedGame> {
    use crate::io::container::{self, Layout};
    let map = Mapped::open(path)?;
    let (h, offset) = container::parse(map.bytes()).map_err(|reason| Error::NpyHeader {
        path: path.into(),
        reason,
    })?;
    if h.layout != Layout::Packed {
        return Err(Error::Param(format!(
            "{} is not a packed game",
            path.display()
        )));
    }
    let elem = h
        .dtype
        .ok_or_else(|| Error::Param("dtype missing".into()))?;
    Ok(PackedGame::mapped(path, map, offset, h.n as usize, elem).with_simd(false))
}

/// Opens a dense `.npy` game and validates every entry.
pub fn open_dense(path: &Path, tol: Option<f64>) -> Result<DenseGame> {
    let g = DenseGame::open(path)?;
    PreferenceOperator::validate(&g, tol)?;
    Ok(g)
}

/// Test operators.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// `op` with its structure replaced: the classes `(Q, ids)` if given, else none (an
    /// operator whose algorithms must apply it).
    pub(crate) struct Restructured<'a> {
        pub op: &'a dyn PreferenceOperator,
        pub classes: Option<(Vec<f64>, Vec<u32>)>,
    }

    impl PreferenceOperator for Restructured<'_> {
        fn n(&self) -> usize {
            self.op.n()
        }
        fn apply(&self, out: MatMut<'_, f64>, rhs: MatRef<'_, f64>, stack: &mut MemStack) {
            self.op.apply(out, rhs, stack)
        }
        fn apply_scratch(&self, k: usize) -> StackReq {
            self.op.apply_scratch(k)
        }
        fn entry(&self, i: usize, j: usize) -> f64 {
            self.op.entry(i, j)
        }
        fn precision(&self) -> f64 {
            self.op.precision()
        }
        fn validate(&self, tol: Option<f64>) -> Result<()> {
            self.op.validate(tol)
        }
        fn info(&self) -> Info<'_> {
            let structure = match &self.classes {
                Some((q, ids)) => Structure::Classes(Classes::from_slice(q.clone(), ids)),
                None => Structure::None,
            };
            Info {
                structure,
                ..self.op.info()
            }
        }
    }
}
