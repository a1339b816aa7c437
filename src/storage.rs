//! The numbers of the game storage that both the files ([`crate::io`]) and the kernels
//! ([`crate::kernels`]) need: the packed layout's tile and its storage order, and the `u16`
//! fixed point. A leaf module, so that neither of those two imports the other.

/// The packed layout's tile side.
pub const TILE: usize = 256;
/// Entries of one tile.
pub const TILE_ELEMS: usize = TILE * TILE;
/// A tile is stored in panels of `PANEL_ROWS × PANEL_COLS` values (see [`tile_index`]).
pub const PANEL_ROWS: usize = 8;
pub const PANEL_COLS: usize = 16;

/// Position of entry `(r, c)` of a tile in its storage order: 32 row blocks of 8 rows, each row
/// block as 16 column chunks of 16 columns, each chunk its 8 × 16 values row-major.
#[inline]
pub fn tile_index(r: usize, c: usize) -> usize {
    ((r / PANEL_ROWS) * (TILE / PANEL_COLS) + c / PANEL_COLS) * (PANEL_ROWS * PANEL_COLS)
        + (r % PANEL_ROWS) * PANEL_COLS
        + c % PANEL_COLS
}

/// The `u16` fixed-point value of probability 1 (even, so that ½ = 32767 is exact).
pub const U16_ONE: f64 = 65534.0;
/// Largest error of one `u16` entry: half a unit.
pub const U16_ERROR: f64 = 0.5 / U16_ONE;

/// Probability → `u16` fixed point (rounded to nearest, clamped to `[0, U16_ONE]`).
pub fn quantise_u16(p: f64) -> u16 {
    (p.clamp(0.0, 1.0) * U16_ONE).round() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_index_is_a_permutation_and_quantisation_is_exact_at_half() {
        let mut seen = vec![false; TILE_ELEMS];
        for r in 0..TILE {
            for c in 0..TILE {
                let i = tile_index(r, c);
                assert!(!seen[i], "({r}, {c})");
                seen[i] = true;
            }
        }
        assert_eq!(tile_index(0, 16), PANEL_ROWS * PANEL_COLS);
        assert_eq!(quantise_u16(0.5), 32767);
        assert_eq!(quantise_u16(0.5) as f64 / U16_ONE, 0.5);
        assert_eq!(quantise_u16(1.5), 65534);
    }

    /// The layering this module exists for: `kernels` does not import `io`, nor `io` `kernels`.
    #[test]
    fn kernels_and_io_do_not_import_each_other() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for (dir, forbidden) in [("kernels", "crate::io"), ("io", "crate::kernels")] {
            for e in std::fs::read_dir(src.join(dir)).unwrap() {
                let p = e.unwrap().path();
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(
                    !text.contains(forbidden),
                    "{} uses {forbidden}",
                    p.display()
                );
            }
        }
    }
}
