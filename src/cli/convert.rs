use crate::error::Error;
use crate::game::{DenseGame, PreferenceOperator};
use crate::io::{array, npy::DType, text};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    /// Input: a whitespace-separated text matrix (one row per line) or a .npy game.
    pub input: PathBuf,
    /// Output .npy (written atomically).
    pub output: PathBuf,
    /// Output element type.
    #[arg(long, value_enum, default_value = "f64")]
    pub dtype: DtypeArg,
    /// Skew tolerance of the validation (default by dtype).
    #[arg(long)]
    pub tol: Option<f64>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum DtypeArg {
    F64,
    F32,
}

impl From<DtypeArg> for DType {
    fn from(d: DtypeArg) -> DType {
        match d {
            DtypeArg::F64 => DType::F64,
            DtypeArg::F32 => DType::F32,
        }
    }
}

pub fn run(a: ConvertArgs) -> anyhow::Result<()> {
    let dtype: DType = a.dtype.into();
    let is_npy = std::fs::read(&a.input)
        .map(|b| b.starts_with(b"\x93NUMPY"))
        .map_err(|e| Error::io(&a.input, e))?;
    if is_npy {
        let g = crate::game::open_dense(&a.input, a.tol)?;
        let n = g.n();
        array::write_matrix(&a.output, n, dtype, |i, row| {
            (0..n).for_each(|j| row[j] = g.entry(i, j));
            Ok(())
        })?;
    } else {
        let txt = std::fs::read_to_string(&a.input).map_err(|e| Error::io(&a.input, e))?;
        let (n, data) = text::parse_text_matrix(&a.input, &txt)?;
        DenseGame::from_vec(&a.input.display().to_string(), n, data.clone()).validate(a.tol)?;
        array::write_matrix(&a.output, n, dtype, |i, row| {
            row.copy_from_slice(&data[i * n..(i + 1) * n]);
            Ok(())
        })?;
    }
    // The converted file must itself be a valid game at its own precision.
    crate::game::open(&a.output, None)?;
    println!("wrote {} ({})", a.output.display(), dtype.name());
    Ok(())
}
