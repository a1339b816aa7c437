use crate::gen::Family;
use crate::io::{array, npy::DType};
use rayon::prelude::*;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Game family: `cyclic` (i beats the next ⌊(n−1)/2⌋ actions) or `uniform` (P[i][j] ~ U[0,1]).
    #[arg(value_enum)]
    pub family: Family,
    /// Number of actions.
    #[arg(long)]
    pub n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: super::convert::DtypeArg,
    /// Output .npy (written atomically).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(a: GenerateArgs) -> anyhow::Result<()> {
    if a.n == 0 {
        anyhow::bail!("--n must be at least 1");
    }
    let dtype: DType = a.dtype.into();
    let n = a.n;
    let rows_per_batch = (1usize << 24).div_ceil(n).max(1);
    let mut batch: Vec<f64> = Vec::new();
    let mut batch_start = usize::MAX;
    array::write_matrix(&a.out, n, dtype, |i, row| {
        if i < batch_start || i >= batch_start + rows_per_batch {
            batch_start = i;
            let rows = rows_per_batch.min(n - i);
            batch.resize(rows * n, 0.0);
            batch.par_chunks_mut(n).enumerate().for_each(|(r, out)| {
                for (j, o) in out.iter_mut().enumerate() {
                    *o = a.family.entry(n, a.seed, i + r, j);
                }
            });
        }
        let r = i - batch_start;
        row.copy_from_slice(&batch[r * n..(r + 1) * n]);
        Ok(())
    })?;
    println!("wrote {} ({n}x{n} {})", a.out.display(), dtype.name());
    Ok(())
}
