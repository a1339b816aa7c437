//! `nashmp convert IN OUT [--layout dense|packed] [--dtype f64|f32|u16]`.

use super::storage_args::{matrix_format, ElemArg, LayoutArg};
use crate::error::Error;
use crate::game::{self, DenseGame, PreferenceOperator};
use crate::io::container::{Elem, GameHeader, Layout};
use crate::io::text;
use crate::io::write::{self, MatrixSource};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// Input: a whitespace-separated text matrix (one row per line), a .npy, or a nashmp
    /// container (.nmp) of any layout.
    pub input: PathBuf,
    /// Output (written atomically): `.npy` for dense f32/f64, `.nmp` (a nashmp container) for
    /// packed or u16; a name whose extension does not match is refused.
    pub output: PathBuf,
    /// Output layout: `dense` (n × n) or `packed` (the upper triangle in 256 × 256 tiles; f32 or
    /// u16 only).
    #[arg(long, value_enum, default_value = "dense")]
    pub layout: LayoutArg,
    /// Output entry type (default: the input's; f64 for a text matrix, a low-rank or block game,
    /// or a u16 game written to .npy). u16 is fixed point P = q/65534, error ≤ 7.63e-6 per entry.
    #[arg(long, value_enum)]
    pub dtype: Option<ElemArg>,
    /// Skew tolerance of the input's validation (default 1e-9 for float64/u16, 1e-6 for float32).
    #[arg(long = "skew-tol", allow_negative_numbers = true)]
    pub skew_tol: Option<f64>,
    /// Deprecated spelling of --skew-tol.
    #[arg(
        long,
        hide = true,
        conflicts_with = "skew_tol",
        allow_negative_numbers = true
    )]
    pub tol: Option<f64>,
    /// Split into a shard set of R files: OUTPUT is then a folder (see `generate --shards`).
    #[arg(long, value_name = "R")]
    pub shards: Option<usize>,
}

/// The input's matrix entry type, if it is a matrix (`dense f32`, `packed u16` …).
fn matrix_elem(g: &dyn PreferenceOperator) -> Option<Elem> {
    match g.info().layout.rsplit(' ').next()? {
        "f64" => Some(Elem::F64),
        "f32" => Some(Elem::F32),
        "u16" => Some(Elem::U16),
        _ => None,
    }
}

/// The source with its lower triangle replaced by `1 − P[j][i]` and ½ on the diagonal: exactly
/// skew-consistent at any output precision.
struct Reskewed<'a>(&'a dyn PreferenceOperator);

impl MatrixSource for Reskewed<'_> {
    fn row(&self, i: usize, j0: usize, out: &mut [f64]) {
        for (k, o) in out.iter_mut().enumerate() {
            *o = self.entry(i, j0 + k);
        }
    }
    fn entry(&self, i: usize, j: usize) -> f64 {
        match j.cmp(&i) {
            std::cmp::Ordering::Greater => self.0.entry(i, j),
            std::cmp::Ordering::Less => 1.0 - self.0.entry(j, i),
            std::cmp::Ordering::Equal => 0.5,
        }
    }
}

pub fn run(a: ConvertArgs) -> anyhow::Result<()> {
    if a.tol.is_some() {
        super::deprecated("convert --tol", "--skew-tol");
    }
    let skew_tol = a.skew_tol.or(a.tol);
    super::check_tol("--skew-tol", skew_tol)?;
    let head = {
        use std::io::Read;
        let mut f = std::fs::File::open(&a.input).map_err(|e| Error::io(&a.input, e))?;
        let mut b = [0u8; 7];
        let k = f.read(&mut b).map_err(|e| Error::io(&a.input, e))?;
        b[..k].to_vec()
    };
    let binary = head.starts_with(b"\x93NUMPY") || head.starts_with(crate::io::container::MAGIC);
    // Opening a binary game reads only its header: the output's name is checked before any work.
    let opened = if binary {
        Some(game::open_unchecked(&a.input)?)
    } else {
        None
    };
    let in_elem = opened.as_deref().and_then(matrix_elem);
    let npy_out = a.output.extension().is_some_and(|e| e == "npy");
    let elem = match (a.dtype, in_elem) {
        (Some(d), _) => Elem::from(d),
        (None, Some(Elem::U16)) if npy_out => Elem::F64,
        (None, Some(Elem::F64)) if a.layout == LayoutArg::Packed => Elem::F32,
        (None, Some(e)) => e,
        (None, None) => Elem::F64,
    };
    let format = matrix_format(a.layout, elem)?;
    if a.shards.is_none() {
        format.check_target(&a.output)?;
    }
    let src: Box<dyn PreferenceOperator> = match opened {
        Some(g) => {
            g.validate(skew_tol)?;
            g
        }
        None => {
            let txt = std::fs::read(&a.input).map_err(|e| Error::io(&a.input, e))?;
            let (n, data) = text::parse_text_matrix(&a.input, &txt)?;
            let g = DenseGame::from_vec(&a.input.display().to_string(), n, data);
            g.validate(skew_tol)?;
            Box::new(g)
        }
    };
    // The tolerance the input was accepted at (text is parsed as float64).
    let in_tol = skew_tol.unwrap_or(DenseGame::default_tol(in_elem.unwrap_or(Elem::F64)));
    let mut header = GameHeader::new(src.n() as u64, Layout::Dense);
    header.params = serde_json::json!({ "converted_from": a.input });
    // Widening (an f32 game, or one accepted at a looser --skew-tol, written as f64) would keep
    // a skew error the output's precision does not allow: such a conversion writes the upper
    // triangle and its complement. Otherwise every entry is kept (rounded to the output type).
    let reskew = in_tol > DenseGame::default_tol(elem);
    let plain = write::FnSource(|i, j| src.entry(i, j));
    let skewed = Reskewed(src.as_ref());
    let source: &dyn MatrixSource = if reskew { &skewed } else { &plain };
    // The written file must itself be a valid game at its own precision; if it is not, nothing
    // is left at the output path.
    let verify = |p: &Path| game::open(p, None).map(|_| ());
    if let Some(r) = a.shards {
        super::generate::write_shards(&a.output, &header, format, source, r)?;
        verify(&a.output)?;
        say!(
            "wrote {} ({r} shards, {} {})",
            a.output.display(),
            a.layout.name(),
            elem.name()
        );
        return Ok(());
    }
    let bar = super::progress::bytes(format.data_bytes(src.n() as u64)?);
    write::matrix(
        &a.output,
        &header,
        format,
        source,
        &|d| bar.set_position(d),
        Some(&verify),
    )?;
    bar.finish_and_clear();
    say!(
        "wrote {} ({} {}{})",
        a.output.display(),
        a.layout.name(),
        elem.name(),
        if reskew {
            "; lower triangle set to 1 − upper"
        } else {
            ""
        }
    );
    Ok(())
}
