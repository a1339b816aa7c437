//! The parametric experiment (`nashmp param-sweep`): queries to reach `exploit ≤ ε` against
//! `n` at fixed `d`, on low-rank and disc games stored as factors (never dense).

use crate::error::Result;
use crate::gen;
use crate::io::container::{GameHeader, Layout};
use crate::io::write;
use std::path::Path;

/// The realizable families of the experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ParamFamily {
    /// `gen`'s low-rank family with `rank` factor pairs (`d = 2·rank`).
    LowRank,
    /// Balduzzi et al.'s disc game with `rank/2` points per action (`d = rank`), written as
    /// factors: `P = 1/2 + (1/r) Σ_k (u_ik v_jk − v_ik u_jk)`.
    Disc,
}

impl ParamFamily {
    pub fn name(self) -> &'static str {
        match self {
            ParamFamily::LowRank => "low-rank",
            ParamFamily::Disc => "disc",
        }
    }
    /// The number of factor pairs stored for a feature dimension `d` (even).
    pub fn pairs(self, d: usize) -> usize {
        d / 2
    }
}

/// Writes a game of the family with `d` features (`d` even) as a low-rank container.
pub fn write_game(path: &Path, family: ParamFamily, n: usize, d: usize, seed: u64) -> Result<()> {
    assert!(d >= 2 && d % 2 == 0, "an even number of features");
    let r = d / 2;
    let mut header = GameHeader::new(n as u64, Layout::LowRank);
    header.family = Some(family.name().into());
    header.seed = Some(seed);
    header.rank = Some(r as u64);
    let none = |_| {};
    match family {
        ParamFamily::LowRank => {
            let p = gen::Params {
                rank: r,
                ..gen::Params::default()
            };
            header.params = serde_json::to_value(p).expect("params serialise");
            write::lowrank(
                path,
                &header,
                &gen::lowrank_weights(r),
                &|k, i| gen::lowrank_factor(seed, k, i),
                &none,
            )
        }
        ParamFamily::Disc => {
            let p = gen::Params {
                rank: d,
                ..gen::Params::default()
            };
            header.params = serde_json::to_value(p).expect("params serialise");
            let w = vec![1.0 / d as f64; r];
            write::lowrank(
                path,
                &header,
                &w,
                &|k, i| gen::disc_point(seed, i as u64, k as u64),
                &none,
            )
        }
    }
}
