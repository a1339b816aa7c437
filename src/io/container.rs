//! The nashmp game container: one versioned, self-describing file for every layout that `.npy`
//! cannot express (packed triangles, quantised entries, low-rank and block factors).
//!
//! ```text
//! bytes 0..8    magic  b"\x93NASHMP" + format version (1)
//! bytes 8..12   header length L, u32 little-endian (≤ 1 MiB)
//! bytes 12..    header: L bytes of UTF-8 JSON (see [`GameHeader`])
//! padding       zeros up to the next multiple of 4096
//! data          the layout's arrays, little-endian, exactly `expected_data_bytes` long
//! ```
//!
//! Plain dense `f32`/`f64` matrices stay `.npy`, so numpy reads them directly.

use serde::{Deserialize, Serialize};

pub const MAGIC: &[u8; 7] = b"\x93NASHMP";
pub const VERSION: u8 = 1;
/// Data starts at a multiple of this (page-aligned, so every element type is aligned).
pub const DATA_ALIGN: usize = 4096;
pub const MAX_HEADER_LEN: usize = 1 << 20;
pub use crate::storage::{quantise_u16, TILE, U16_ERROR, U16_ONE};

/// How the game's numbers are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `n × n` row-major.
    Dense,
    /// Tiles of the upper triangle (see `game::packed`).
    Packed,
    /// `P = 1/2 + Σ_r w_r (a_r b_rᵀ − b_r a_rᵀ)`: `w` (r f64), `a` (r × n f64), `b` (r × n f64).
    LowRank,
    /// `P[i][j] = Q[t(i)][t(j)]`: `Q` (K × K f64) then the types `t` (n entries of `type_dtype`).
    Block,
}

/// Element type of matrix entries (dense and packed layouts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Elem {
    F64,
    F32,
    /// Fixed point: `P = q / U16_ONE` (65534, so that ½ is exact and `q_ij + q_ji = 65534`);
    /// the rounding error of an entry is at most `0.5/65534 ≈ 7.63e-6`.
    U16,
}

impl Elem {
    pub fn size(self) -> usize {
        match self {
            Elem::F64 => 8,
            Elem::F32 => 4,
            Elem::U16 => 2,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Elem::F64 => "f64",
            Elem::F32 => "f32",
            Elem::U16 => "u16",
        }
    }
}

/// Integer width of block types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TypeWidth {
    U8,
    U16,
    U32,
}

impl TypeWidth {
    pub fn size(self) -> usize {
        match self {
            TypeWidth::U8 => 1,
            TypeWidth::U16 => 2,
            TypeWidth::U32 => 4,
        }
    }
    /// The narrowest width that holds `k` types.
    pub fn for_types(k: usize) -> Self {
        if k <= 1 << 8 {
            TypeWidth::U8
        } else if k <= 1 << 16 {
            TypeWidth::U16
        } else {
            TypeWidth::U32
        }
    }
}

/// The JSON header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GameHeader {
    pub format: String,
    pub version: u32,
    pub n: u64,
    pub layout: Layout,
    /// Entry type (dense, packed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<Elem>,
    /// Tile side (packed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile: Option<u64>,
    /// Rank (low-rank).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank: Option<u64>,
    /// Number of types K and their integer width (block).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_width: Option<TypeWidth>,
    /// Provenance: the generating family, seed and parameters, if generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default)]
    pub params: serde_json::Value,
}

impl GameHeader {
    pub fn new(n: u64, layout: Layout) -> Self {
        GameHeader {
            format: "nashmp-game".into(),
            version: VERSION as u32,
            n,
            layout,
            dtype: None,
            tile: None,
            rank: None,
            types: None,
            type_width: None,
            family: None,
            seed: None,
            params: serde_json::Value::Null,
        }
    }

    /// Number of tiles per side of the packed layout.
    pub fn tiles_per_side(&self) -> Option<u64> {
        Some(self.n.div_ceil(self.tile?))
    }

    /// The exact data length the header implies, checking every field the layout needs.
    pub fn expected_data_bytes(&self) -> Result<u64, String> {
        let over = || format!("sizes overflow for n = {}", self.n);
        let need = |what: &str| format!("layout {:?} needs the header field '{what}'", self.layout);
        if self.n == 0 {
            return Err("n must be at least 1".into());
        }
        match self.layout {
            Layout::Dense => {
                let e = self.dtype.ok_or_else(|| need("dtype"))?;
                self.n
                    .checked_mul(self.n)
                    .and_then(|v| v.checked_mul(e.size() as u64))
                    .ok_or_else(over)
            }
            Layout::Packed => {
                let e = self.dtype.ok_or_else(|| need("dtype"))?;
                if e == Elem::F64 {
                    return Err("the packed layout stores f32 or u16 entries, not f64".into());
                }
                let t = self.tile.ok_or_else(|| need("tile"))?;
                if t != TILE as u64 {
                    return Err(format!("tile {t} is not supported (only {TILE})"));
                }
                let nt = self.n.div_ceil(t);
                let tiles = nt.checked_mul(nt + 1).ok_or_else(over)? / 2;
                tiles
                    .checked_mul(t * t)
                    .and_then(|v| v.checked_mul(e.size() as u64))
                    .ok_or_else(over)
            }
            Layout::LowRank => {
                let r = self.rank.ok_or_else(|| need("rank"))?;
                if r == 0 {
                    return Err("rank must be at least 1".into());
                }
                let ab = r
                    .checked_mul(self.n)
                    .and_then(|v| v.checked_mul(2))
                    .ok_or_else(over)?;
                ab.checked_add(r)
                    .and_then(|v| v.checked_mul(8))
                    .ok_or_else(over)
            }
            Layout::Block => {
                let k = self.types.ok_or_else(|| need("types"))?;
                let w = self.type_width.ok_or_else(|| need("type_width"))?;
                if k == 0 {
                    return Err("types must be at least 1".into());
                }
                let q = k
                    .checked_mul(k)
                    .and_then(|v| v.checked_mul(8))
                    .ok_or_else(over)?;
                let t = self.n.checked_mul(w.size() as u64).ok_or_else(over)?;
                // Q is followed by the types, padded to 8 bytes.
                q.checked_add(t.div_ceil(8) * 8).ok_or_else(over)
            }
        }
    }
}

/// Parses the container header at the start of `bytes`; returns it with the data offset.
pub fn parse(bytes: &[u8]) -> Result<(GameHeader, usize), String> {
    if bytes.len() < 12 {
        return Err(format!(
            "{} bytes is too short for a nashmp game header",
            bytes.len()
        ));
    }
    if &bytes[..7] != MAGIC {
        return Err("missing the \\x93NASHMP magic string".into());
    }
    if bytes[7] != VERSION {
        return Err(format!(
            "container version {} is not supported (this build reads version {VERSION})",
            bytes[7]
        ));
    }
    let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    if len > MAX_HEADER_LEN {
        return Err(format!(
            "declared header length {len} exceeds the cap of {MAX_HEADER_LEN}"
        ));
    }
    let end = 12 + len;
    if bytes.len() < end {
        return Err(format!(
            "header truncated: declares {len} bytes, {} present",
            bytes.len() - 12
        ));
    }
    let h: GameHeader =
        serde_json::from_slice(&bytes[12..end]).map_err(|e| format!("header is not valid: {e}"))?;
    if h.format != "nashmp-game" || h.version != VERSION as u32 {
        return Err(format!(
            "header names format {:?} version {}",
            h.format, h.version
        ));
    }
    let offset = end.div_ceil(DATA_ALIGN) * DATA_ALIGN;
    Ok((h, offset))
}

/// The header bytes, padded so the data starts at a multiple of [`DATA_ALIGN`].
pub fn header_bytes(h: &GameHeader) -> Vec<u8> {
    let json = serde_json::to_vec(h).expect("header serialises");
    let mut out = Vec::with_capacity(DATA_ALIGN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.resize(out.len().div_ceil(DATA_ALIGN) * DATA_ALIGN, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn packed(n: u64) -> GameHeader {
        let mut h = GameHeader::new(n, Layout::Packed);
        h.dtype = Some(Elem::F32);
        h.tile = Some(TILE as u64);
        h
    }

    #[test]
    fn round_trip_and_sizes() {
        let h = packed(300);
        let b = header_bytes(&h);
        assert_eq!(b.len() % DATA_ALIGN, 0);
        let (p, off) = parse(&b).unwrap();
        assert_eq!(p, h);
        assert_eq!(off, b.len());
        // 300 actions: 2 tiles per side, 3 stored tiles of 256² f32.
        assert_eq!(p.expected_data_bytes().unwrap(), 3 * 256 * 256 * 4);
        let mut lr = GameHeader::new(10, Layout::LowRank);
        assert!(lr.expected_data_bytes().unwrap_err().contains("rank"));
        lr.rank = Some(2);
        assert_eq!(lr.expected_data_bytes().unwrap(), (2 * 2 * 10 + 2) * 8);
        let mut huge = packed(u64::MAX / 2);
        assert!(huge.expected_data_bytes().is_err());
        huge.layout = Layout::Dense;
        assert!(huge.expected_data_bytes().is_err());
    }

    proptest! {
        #[test]
        fn mutated_headers_never_panic(pos in 0usize..200, byte in any::<u8>(), cut in 0usize..300) {
            let mut b = header_bytes(&packed(1000));
            let p = pos % b.len();
            b[p] = byte;
            b.truncate(cut.min(b.len()));
            if let Ok((h, _)) = parse(&b) {
                let _ = h.expected_data_bytes();
            }
        }
    }
}
