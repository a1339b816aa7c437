//! How a matrix game is stored, as `generate` and `convert` spell it (`--layout`, `--dtype`).

use crate::io::container::{Elem, Layout};
use crate::io::write::MatrixFormat;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Layout {
        match l {
            LayoutArg::Dense => Layout::Dense,
            LayoutArg::Packed => Layout::Packed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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

/// The validated storage of `--layout`/`--dtype`.
pub fn matrix_format(layout: LayoutArg, elem: Elem) -> anyhow::Result<MatrixFormat> {
    Ok(MatrixFormat::new(layout.into(), elem)?)
}
