//! `nashmp generate`: a synthetic game on disk, in any layout.

use super::convert::{ElemArg, LayoutArg};
use crate::gen::{self, DenseFamily, Family, Params};
use crate::io::container::{Elem, GameHeader, Layout, TypeWidth, TILE};
use crate::io::{npy::DType, write};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Game family (see README: formulas and parameters).
    #[arg(value_enum)]
    pub family: Family,
    /// Number of actions.
    #[arg(long)]
    pub n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Layout of matrix families (structured families are always written as factors).
    #[arg(long, value_enum, default_value = "dense")]
    pub layout: LayoutArg,
    /// Entry type of matrix families.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: ElemArg,
    /// Skill spread σ (bradley-terry, mixture).
    #[arg(long, default_value_t = 1.0)]
    pub sigma: f64,
    /// Noise level ε in [0, 1] (cyclic).
    #[arg(long, default_value_t = 0.0)]
    pub noise: f64,
    /// Rank r (disc, mixture: even; low-rank).
    #[arg(long, default_value_t = 2)]
    pub rank: usize,
    /// Weight w of the transitive part (mixture).
    #[arg(long, default_value_t = 0.5)]
    pub weight: f64,
    /// Number of types K (block).
    #[arg(long, default_value_t = 16)]
    pub types: usize,
    /// Output file: `.npy` for dense f32/f64, a nashmp container (e.g. `.nmp`) otherwise; with
    /// `--shards`, a folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Write a shard set of R files (dense: row ranges; packed: tile-row ranges balanced by tile
    /// count) and a manifest into the folder --out, for `mpirun -np R` (see docs/scale-out.md).
    #[arg(long, value_name = "R")]
    pub shards: Option<usize>,
}

pub fn run(a: GenerateArgs) -> anyhow::Result<()> {
    if a.n == 0 {
        anyhow::bail!("--n must be at least 1");
    }
    let params = Params {
        sigma: a.sigma,
        noise: a.noise,
        rank: a.rank,
        weight: a.weight,
        types: a.types,
    };
    params
        .check(a.family)
        .map_err(|e| anyhow::anyhow!("{:?}: {e}", a.family))?;
    let n = a.n;
    let t = std::time::Instant::now();
    let mut header = GameHeader::new(n as u64, Layout::Dense);
    header.family = Some(
        serde_json::to_value(a.family)?
            .as_str()
            .unwrap_or("")
            .to_string(),
    );
    header.seed = Some(a.seed);
    header.params = serde_json::to_value(params)?;
    if a.shards.is_some() && a.family.is_structured() {
        anyhow::bail!(
            "--shards: {:?} games are stored as factors (O(n) bytes) and need no sharding",
            a.family
        );
    }
    let bytes = match a.family {
        Family::LowRank => {
            header.layout = Layout::LowRank;
            header.rank = Some(a.rank as u64);
            let total = header.expected_data_bytes().map_err(anyhow::Error::msg)?;
            let bar = super::progress::bytes(total);
            let seed = a.seed;
            write::lowrank(
                &a.out,
                &header,
                &gen::lowrank_weights(a.rank),
                &|k, i| gen::lowrank_factor(seed, k, i),
                &|d| bar.set_position(d),
            )?;
            bar.finish_and_clear();
            total
        }
        Family::Block => {
            header.layout = Layout::Block;
            header.types = Some(a.types as u64);
            header.type_width = Some(TypeWidth::for_types(a.types));
            let total = header.expected_data_bytes().map_err(anyhow::Error::msg)?;
            let bar = super::progress::bytes(total);
            let (seed, k) = (a.seed, a.types);
            write::block(
                &a.out,
                &header,
                &gen::block_q(seed, k),
                &|i| gen::block_type(seed, k, i),
                &|d| bar.set_position(d),
            )?;
            bar.finish_and_clear();
            total
        }
        family if a.shards.is_some() => {
            let fam = DenseFamily::new(family, n, a.seed, params);
            let r = a.shards.unwrap_or(1);
            write_matrix_sharded(&a.out, &mut header, a.layout, a.dtype.into(), &fam, r)?
        }
        family => {
            let fam = DenseFamily::new(family, n, a.seed, params);
            write_matrix(&a.out, &mut header, a.layout, a.dtype.into(), &fam)?
        }
    };
    let secs = t.elapsed().as_secs_f64();
    println!(
        "wrote {} ({} bytes of game data in {secs:.2}s, {:.2} GB/s)",
        a.out.display(),
        bytes,
        bytes as f64 / secs / 1e9
    );
    Ok(())
}

/// Writes a matrix game in `layout`/`elem`: `.npy` for dense floats, the container otherwise.
/// Returns the number of data bytes.
pub fn write_matrix(
    out: &std::path::Path,
    header: &mut GameHeader,
    layout: LayoutArg,
    elem: Elem,
    entry: write::EntryFn,
) -> anyhow::Result<u64> {
    let n = header.n as usize;
    header.dtype = Some(elem);
    let npy_dtype = match (layout, elem) {
        (LayoutArg::Dense, Elem::F32) => Some(DType::F32),
        (LayoutArg::Dense, Elem::F64) => Some(DType::F64),
        _ => None,
    };
    if npy_dtype.is_none() && out.extension().is_some_and(|e| e == "npy") {
        anyhow::bail!(
            "{}: a {} {} game is a nashmp container, not a .npy file; name it .nmp",
            out.display(),
            layout.name(),
            elem.name()
        );
    }
    if let (LayoutArg::Packed, Elem::F64) = (layout, elem) {
        anyhow::bail!(
            "the packed layout computes in f32 and stores f32 or u16; for float64 precision use --layout dense --dtype f64"
        );
    }
    if let LayoutArg::Packed = layout {
        header.layout = Layout::Packed;
        header.tile = Some(TILE as u64);
    }
    let total = match npy_dtype {
        Some(d) => (n as u64) * (n as u64) * d.size() as u64,
        None => header.expected_data_bytes().map_err(anyhow::Error::msg)?,
    };
    let bar = super::progress::bytes(total);
    let progress = |d| bar.set_position(d);
    match npy_dtype {
        Some(d) => write::dense_npy(out, n, d, entry, &progress)?,
        None => write::matrix_container(out, header, entry, &progress)?,
    }
    bar.finish_and_clear();
    Ok(total)
}

/// Writes a matrix game as a shard set of `r` files in the folder `dir` (see `io::shards`).
/// Returns the number of data bytes.
pub fn write_matrix_sharded(
    dir: &std::path::Path,
    header: &mut GameHeader,
    layout: LayoutArg,
    elem: Elem,
    entry: write::EntryFn,
    r: usize,
) -> anyhow::Result<u64> {
    header.dtype = Some(elem);
    if let (LayoutArg::Packed, Elem::F64) = (layout, elem) {
        anyhow::bail!(
            "the packed layout computes in f32 and stores f32 or u16; for float64 precision use --layout dense --dtype f64"
        );
    }
    if let LayoutArg::Packed = layout {
        header.layout = Layout::Packed;
        header.tile = Some(TILE as u64);
    }
    if dir.is_file() {
        anyhow::bail!(
            "{}: --shards writes a folder (manifest.json and the shard files), but this is a file",
            dir.display()
        );
    }
    let total = header.expected_data_bytes().map_err(anyhow::Error::msg)?;
    let bar = super::progress::bytes(total);
    let progress = |d| bar.set_position(d);
    let m = crate::io::shards::write_sharded(dir, header, r, entry, &progress)?;
    bar.finish_and_clear();
    Ok(m.shards.iter().map(|s| s.bytes).sum())
}
