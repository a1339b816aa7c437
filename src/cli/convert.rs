//! `nashmp convert IN OUT [--layout dense|packed] [--dtype f64|f32|u16]`.

use crate::error::Error;
use crate::game::{self, DenseGame, PreferenceOperator};
use crate::io::container::{Elem, GameHeader, Layout};
use crate::io::text;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// Input: a whitespace-separated text matrix (one row per line), a .npy, or a nashmp game.
    pub input: PathBuf,
    /// Output (written atomically): `.npy` for dense f32/f64, a nashmp container otherwise.
    pub output: PathBuf,
    #[arg(long, value_enum, default_value = "dense")]
    pub layout: LayoutArg,
    /// Output entry type (u16: fixed point P = q/65534, error ≤ 7.63e-6 per entry).
    #[arg(long, value_enum, default_value = "f64")]
    pub dtype: ElemArg,
    /// Skew tolerance of the input's validation (default by dtype).
    #[arg(long)]
    pub tol: Option<f64>,
    /// Split into a shard set of R files: OUTPUT is then a folder (see `generate --shards`).
    #[arg(long, value_name = "R")]
    pub shards: Option<usize>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LayoutArg {
    Dense,
    Packed,
}

impl LayoutArg {
    pub fn name(self) -> &'static str {
        match self {
            LayoutArg::Dense => "dense",
            LayoutArg::Packed => "packed",
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ElemArg {
    F64,
    F32,
    U16,
}

impl From<ElemArg> for Elem {
    fn from(d: ElemArg) -> Elem {
        match d {
            ElemArg::F64 => Elem::F64,
            ElemArg::F32 => Elem::F32,
            ElemArg::U16 => Elem::U16,
        }
    }
}

pub fn run(a: ConvertArgs) -> anyhow::Result<()> {
    let head = {
        use std::io::Read;
        let mut f = std::fs::File::open(&a.input).map_err(|e| Error::io(&a.input, e))?;
        let mut b = [0u8; 7];
        let k = f.read(&mut b).map_err(|e| Error::io(&a.input, e))?;
        b[..k].to_vec()
    };
    let binary = head.starts_with(b"\x93NUMPY") || head.starts_with(crate::io::container::MAGIC);
    let src: Box<dyn PreferenceOperator> = if binary {
        game::open(&a.input, a.tol)?
    } else {
        let txt = std::fs::read(&a.input).map_err(|e| Error::io(&a.input, e))?;
        let (n, data) = text::parse_text_matrix(&a.input, &txt)?;
        let g = DenseGame::from_vec(&a.input.display().to_string(), n, data);
        g.validate(a.tol)?;
        Box::new(g)
    };
    let mut header = GameHeader::new(src.n() as u64, Layout::Dense);
    header.params = serde_json::json!({ "converted_from": a.input });
    let source = crate::io::write::FnSource(|i, j| src.entry(i, j));
    match a.shards {
        Some(r) => super::generate::write_matrix_sharded(
            &a.output,
            &mut header,
            a.layout,
            a.dtype.into(),
            &source,
            r,
        )
        .map(|_| ())?,
        None => {
            super::generate::write_matrix(&a.output, &mut header, a.layout, a.dtype.into(), &source)
                .map(|_| ())?
        }
    }
    // The written file must itself be a valid game at its own precision.
    game::open(&a.output, None)?;
    println!(
        "wrote {} ({} {})",
        a.output.display(),
        a.layout.name(),
        Elem::from(a.dtype).name()
    );
    Ok(())
}
