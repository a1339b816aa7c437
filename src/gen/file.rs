//! A family's game on disk: the one family → header → writer dispatch, shared by `generate` and
//! the sweep's game cache. Matrix families are written in any [`MatrixFormat`] through
//! [`write::matrix`]; `low-rank` and `block` as their factors (a container).

use super::{DenseFamily, Family, Params};
use crate::error::{Error, Result};
use crate::io::container::{GameHeader, Layout, TypeWidth};
use crate::io::output::{self, Format};
use crate::io::write::{self, MatrixFormat, Progress};
use std::path::Path;

/// The header of a family's game (family, seed, params; the factor layout of structured
/// families). A matrix family's layout and dtype are set by its [`MatrixFormat`].
pub fn header(family: Family, n: usize, seed: u64, params: Params) -> GameHeader {
    let mut h = GameHeader::new(n as u64, Layout::Dense);
    h.family = Some(super::family_name(family));
    h.seed = Some(seed);
    h.params = serde_json::to_value(params).expect("params serialise");
    match family {
        Family::LowRank => {
            h.layout = Layout::LowRank;
            h.rank = Some(params.rank as u64);
        }
        Family::Block => {
            h.layout = Layout::Block;
            h.types = Some(params.types as u64);
            h.type_width = Some(TypeWidth::for_types(params.types));
        }
        _ => {}
    }
    h
}

/// Checks `path` for this family's game (extension ↔ format, parent folder) before any work.
pub fn check_target(path: &Path, family: Family, format: MatrixFormat) -> Result<()> {
    if family.is_structured() {
        let what = format!("a {} game", super::family_name(family));
        output::check(path, Format::Container, &what)
    } else {
        format.check_target(path)
    }
}

/// The game's data bytes (without the header).
pub fn data_bytes(family: Family, n: usize, params: Params, format: MatrixFormat) -> Result<u64> {
    if family.is_structured() {
        header(family, n, 0, params)
            .expected_data_bytes()
            .map_err(Error::Param)
    } else {
        format.data_bytes(n as u64)
    }
}

/// Writes the game of `family` at `n` actions and `seed` to `path` (`format` applies to matrix
/// families; structured ones are always their factors). Returns the number of data bytes.
pub fn write_game(
    path: &Path,
    family: Family,
    n: usize,
    seed: u64,
    params: Params,
    format: MatrixFormat,
    progress: Progress,
) -> Result<u64> {
    check_target(path, family, format)?;
    let h = header(family, n, seed, params);
    match family {
        Family::LowRank => {
            write::lowrank(
                path,
                &h,
                &super::lowrank_weights(params.rank),
                &|k, i| super::lowrank_factor(seed, k, i),
                progress,
            )?;
            data_bytes(family, n, params, format)
        }
        Family::Block => {
            write::block(
                path,
                &h,
                &super::block_q(seed, params.types),
                &|i| super::block_type(seed, params.types, i),
                progress,
            )?;
            data_bytes(family, n, params, format)
        }
        family => {
            let fam = DenseFamily::new(family, n, seed, params);
            write::matrix(path, &h, format, &fam, progress, None)
        }
    }
}
