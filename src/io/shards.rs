//! Shard sets: a dense or packed game split into `R` files by rows (dense) or tile rows
//! (packed), described by a small JSON manifest, so that MPI rank `r` maps only shard `r`.
//!
//! ```text
//! DIR/manifest.json          {"format": "nashmp-shards", "version": 1, "n", "layout", "dtype",
//!                              "tile" (packed), "source" (the generator's header), "shards": [
//!                              {"file", "start", "end", "bytes", "sha256"}, …]}
//! DIR/shard-0000-of-0004.bin the matrix data of rows (tile rows) start..end, nothing else
//! ```
//!
//! A shard's bytes are exactly the matching slice of the unsharded file's matrix data (the bytes
//! after the `.npy` or container header): dense shards hold whole rows, packed shards whole tile
//! rows (tile row `I` holds the tiles `J = I..nt`, see `game::packed`). Concatenated in order,
//! the shards are the unsharded data, byte for byte. Each shard's SHA-256 is in the manifest;
//! a shard is verified (length and checksum) before it is used.
//!
//! Split: dense rows `⌊n·r/R⌋..⌊n·(r+1)/R⌋`; packed tile rows cut so that each shard holds about
//! `1/R` of the stored tiles (tile row `I` holds `nt − I` tiles, so the first shards have fewer
//! tile rows), which balances both the bytes and the work of a packed apply.

use super::atomic;
use super::container::{Elem, GameHeader, Layout, TILE};
use crate::error::{Error, Result};
use crate::storage::TILE_ELEMS;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "nashmp-shards";
pub const VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
/// Largest manifest read (a manifest of a million shards is ~150 MB; refuse anything bigger).
const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// One shard: its file (relative to the manifest's folder), its range of rows (dense) or tile
/// rows (packed), its length and SHA-256.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardEntry {
    pub file: String,
    pub start: u64,
    pub end: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// The manifest of a shard set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub n: u64,
    pub layout: Layout,
    pub dtype: Elem,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile: Option<u64>,
    /// The header the unsharded game would have had (family, seed, parameters).
    #[serde(default)]
    pub source: serde_json::Value,
    pub shards: Vec<ShardEntry>,
}

/// The row (dense) or tile-row (packed) ranges of an `R`-way split.
pub fn split(n: usize, layout: Layout, r: usize) -> Result<Vec<Range<usize>>> {
    if r == 0 {
        return Err(Error::Param("--shards must be at least 1".into()));
    }
    match layout {
        Layout::Dense => {
            if r > n {
                return Err(Error::Param(format!(
                    "--shards {r}: a game of {n} actions has only {n} rows to split"
                )));
            }
            Ok((0..r).map(|k| n * k / r..n * (k + 1) / r).collect())
        }
        Layout::Packed => {
            let nt = n.div_ceil(TILE);
            if r > nt {
                return Err(Error::Param(format!(
                    "--shards {r}: a packed game of {n} actions has only {nt} tile rows of {TILE} to split"
                )));
            }
            Ok(balanced_tile_rows(nt, r))
        }
        l => Err(Error::Param(format!(
            "the {l:?} layout cannot be sharded (only dense and packed games)"
        ))),
    }
}

/// `r` contiguous non-empty ranges of the `nt` tile rows, each with about `1/r` of the
/// `nt(nt+1)/2` stored tiles (tile row `I` holds `nt − I`).
pub fn balanced_tile_rows(nt: usize, r: usize) -> Vec<Range<usize>> {
    assert!(1 <= r && r <= nt);
    let total = (nt * (nt + 1) / 2) as u128;
    let mut out = Vec::with_capacity(r);
    let (mut start, mut done) = (0usize, 0u128);
    for k in 1..=r {
        // Leave at least one tile row for each later shard.
        let max_end = nt - (r - k);
        let target = total * k as u128 / r as u128;
        let mut end = start + 1;
        done += (nt - start) as u128;
        while end < max_end && done + ((nt - end) as u128) / 2 < target {
            done += (nt - end) as u128;
            end += 1;
        }
        if k == r {
            while end < nt {
                done += (nt - end) as u128;
                end += 1;
            }
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// Bytes of matrix data for a range of rows (dense) or tile rows (packed).
pub fn range_bytes(n: usize, layout: Layout, elem: Elem, range: &Range<usize>) -> u64 {
    let es = elem.size() as u64;
    match layout {
        Layout::Packed => {
            let nt = n.div_ceil(TILE) as u64;
            let tiles: u64 = (range.start as u64..range.end as u64).map(|t| nt - t).sum();
            tiles * (TILE_ELEMS as u64) * es
        }
        _ => (range.end - range.start) as u64 * n as u64 * es,
    }
}

/// The name of shard `k` of `r`.
pub fn shard_file_name(k: usize, r: usize) -> String {
    format!("shard-{k:04}-of-{r:04}.bin")
}

impl Manifest {
    /// Parses and checks a manifest (`bytes` of `path`): known format and version, a matrix
    /// layout, shards that cover the rows (tile rows) in order without gaps, and byte lengths
    /// that match the layout.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::Container {
            path: path.into(),
            reason,
        };
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not a shard manifest: {e}")))?;
        if m.format != FORMAT {
            return Err(bad(format!(
                "format is {:?}, expected {FORMAT:?}",
                m.format
            )));
        }
        if m.version != VERSION {
            return Err(bad(format!(
                "manifest version {} is not supported (this build reads {VERSION})",
                m.version
            )));
        }
        let n = usize::try_from(m.n)
            .ok()
            .filter(|&n| n > 0 && (n as u64).checked_mul(n as u64).is_some())
            .ok_or_else(|| bad(format!("n = {} is not a usable size", m.n)))?;
        let units = match m.layout {
            Layout::Dense => n,
            Layout::Packed => {
                if m.tile != Some(TILE as u64) {
                    return Err(bad(format!(
                        "packed tile side {:?}, this build uses {TILE}",
                        m.tile
                    )));
                }
                if m.dtype == Elem::F64 {
                    return Err(bad("packed f64 is not a stored layout".into()));
                }
                n.div_ceil(TILE)
            }
            l => return Err(bad(format!("layout {l:?} cannot be sharded"))),
        };
        if m.shards.is_empty() {
            return Err(bad("no shards listed".into()));
        }
        let mut next = 0u64;
        for (k, s) in m.shards.iter().enumerate() {
            if s.start != next || s.end <= s.start || s.end > units as u64 {
                return Err(bad(format!(
                    "shard {k} covers {}..{}, expected a non-empty range starting at {next} within 0..{units}",
                    s.start, s.end
                )));
            }
            let want = range_bytes(n, m.layout, m.dtype, &(s.start as usize..s.end as usize));
            if s.bytes != want {
                return Err(bad(format!(
                    "shard {k} ({}) declares {} bytes, its range needs {want}",
                    s.file, s.bytes
                )));
            }
            if s.file.is_empty() || s.file.contains('/') || s.file.starts_with('.') {
                return Err(bad(format!(
                    "shard {k}: file name {:?} must be a plain name inside the manifest's folder",
                    s.file
                )));
            }
            if s.sha256.len() != 64 || !s.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!(
                    "shard {k}: sha256 {:?} is not 64 hex digits",
                    s.sha256
                )));
            }
            next = s.end;
        }
        if next != units as u64 {
            return Err(bad(format!(
                "the shards cover 0..{next} of {units} {}",
                if m.layout == Layout::Packed {
                    "tile rows"
                } else {
                    "rows"
                }
            )));
        }
        Ok(m)
    }

    pub fn n(&self) -> usize {
        self.n as usize
    }

    /// The ranges of rows (dense) or tile rows (packed), in shard order.
    pub fn ranges(&self) -> Vec<Range<usize>> {
        self.shards
            .iter()
            .map(|s| s.start as usize..s.end as usize)
            .collect()
    }
}

/// Where a game path points to a shard set: the manifest file itself, or a folder holding one.
pub fn manifest_path(path: &Path) -> Option<PathBuf> {
    if path.is_dir() {
        let m = path.join(MANIFEST);
        return m.is_file().then_some(m);
    }
    let mut head = [0u8; 64];
    let k = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let text = std::str::from_utf8(&head[..k]).ok()?;
    (text.trim_start().starts_with('{') && text.contains(FORMAT)).then(|| path.to_path_buf())
}

/// A shard set on disk: the manifest and its folder.
#[derive(Clone, Debug)]
pub struct ShardSet {
    pub manifest_path: PathBuf,
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl ShardSet {
    /// Reads and checks the manifest at `path` (a manifest file or a folder holding one).
    pub fn open(path: &Path) -> Result<Self> {
        let mp = if path.is_dir() {
            path.join(MANIFEST)
        } else {
            path.to_path_buf()
        };
        let f = std::fs::File::open(&mp).map_err(|e| Error::io(&mp, e))?;
        let mut bytes = Vec::new();
        f.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&mp, e))?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(Error::Container {
                path: mp,
                reason: format!("manifest larger than {MAX_MANIFEST_BYTES} bytes"),
            });
        }
        let manifest = Manifest::parse(&mp, &bytes)?;
        let dir = match mp.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(ShardSet {
            manifest_path: mp,
            dir,
            manifest,
        })
    }

    pub fn len(&self) -> usize {
        self.manifest.shards.len()
    }

    pub fn is_empty(&self) -> bool {
        self.manifest.shards.is_empty()
    }

    pub fn shard_path(&self, k: usize) -> PathBuf {
        self.dir.join(&self.manifest.shards[k].file)
    }

    /// Maps shard `k` after checking its length and SHA-256 against the manifest.
    pub fn map_verified(&self, k: usize) -> Result<super::mmap::Mapped> {
        let s = &self.manifest.shards[k];
        let path = self.shard_path(k);
        let map = super::mmap::Mapped::open(&path)?;
        let found = map.bytes().len() as u64;
        if found < s.bytes {
            return Err(Error::Truncated {
                path,
                expected: s.bytes,
                found,
            });
        }
        if found > s.bytes {
            return Err(Error::TrailingData {
                path,
                expected: s.bytes,
                found,
            });
        }
        let sum = sha256_hex(map.bytes());
        if sum != s.sha256.to_ascii_lowercase() {
            return Err(Error::Container {
                path,
                reason: format!(
                    "shard {k} is corrupt: its SHA-256 is {sum}, the manifest {} says {}",
                    self.manifest_path.display(),
                    s.sha256
                ),
            });
        }
        Ok(map)
    }
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes what passes through it.
pub struct Hashing<W> {
    pub inner: W,
    hasher: Sha256,
    pub written: u64,
}

impl<W> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }
    /// The inner writer and the hex SHA-256 of everything written.
    pub fn finish(self) -> (W, String) {
        (self.inner, hex(&self.hasher.finalize()))
    }
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.hasher.update(&buf[..k]);
        self.written += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a shard set of a matrix game: `R` shard files then the manifest, each atomically.
/// `header` gives `n`, the layout (dense or packed) and the dtype. Returns the manifest.
pub fn write_sharded(
    dir: &Path,
    header: &GameHeader,
    r: usize,
    entry: super::write::EntryFn,
    progress: super::write::Progress,
) -> Result<Manifest> {
    let n = usize::try_from(header.n).map_err(|_| Error::Param("n too large".into()))?;
    let elem = header
        .dtype
        .ok_or_else(|| Error::Param("dtype missing".into()))?;
    let ranges = split(n, header.layout, r)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut shards = Vec::with_capacity(r);
    let mut done = 0u64;
    for (k, range) in ranges.iter().enumerate() {
        let file = shard_file_name(k, r);
        let path = dir.join(&file);
        let f = atomic::AtomicFile::create(&path)?;
        let mut w = Hashing::new(f);
        let base = done;
        let prog = |d: u64| progress(base + d);
        super::write::matrix_rows(
            &mut w,
            &path,
            n,
            header.layout,
            elem,
            range.clone(),
            entry,
            &prog,
        )?;
        let bytes = w.written;
        let (f, sha256) = w.finish();
        f.commit()?;
        done += bytes;
        shards.push(ShardEntry {
            file,
            start: range.start as u64,
            end: range.end as u64,
            bytes,
            sha256,
        });
    }
    let mut source = serde_json::to_value(header).expect("header serialises");
    if let Some(o) = source.as_object_mut() {
        o.remove("format");
        o.remove("version");
    }
    let m = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        n: header.n,
        layout: header.layout,
        dtype: elem,
        tile: (header.layout == Layout::Packed).then_some(TILE as u64),
        source,
        shards,
    };
    let text = serde_json::to_string_pretty(&m).expect("manifest serialises");
    atomic::write_all(&dir.join(MANIFEST), text.as_bytes())?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_split_is_contiguous_and_uneven_when_needed() {
        let s = split(1000, Layout::Dense, 3).unwrap();
        assert_eq!(s, vec![0..333, 333..666, 666..1000]);
        assert!(split(3, Layout::Dense, 4).is_err());
    }

    #[test]
    fn packed_split_balances_tiles() {
        for nt in [1usize, 2, 3, 7, 64, 128, 1000] {
            for r in 1..=nt.min(9) {
                let s = balanced_tile_rows(nt, r);
                assert_eq!(s.len(), r);
                assert_eq!(s[0].start, 0);
                assert_eq!(s[r - 1].end, nt);
                for w in s.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let tiles: Vec<usize> = s.iter().map(|g| g.clone().map(|t| nt - t).sum()).collect();
                assert!(tiles.iter().all(|&t| t > 0));
                // Within one tile row (at most nt tiles) of the even share.
                let even = nt * (nt + 1) / 2 / r;
                if nt >= 8 * r {
                    for &t in &tiles {
                        assert!(t.abs_diff(even) <= nt, "nt={nt} r={r} {tiles:?}");
                    }
                }
            }
        }
        // n = 32768: 128 tile rows, 2 shards: the first holds fewer, longer tile rows.
        let s = balanced_tile_rows(128, 2);
        assert_eq!(s, vec![0..38, 38..128]);
    }

    #[test]
    fn manifest_errors_name_the_rule() {
        let p = Path::new("m.json");
        let good = Manifest {
            format: FORMAT.into(),
            version: VERSION,
            n: 10,
            layout: Layout::Dense,
            dtype: Elem::F32,
            tile: None,
            source: serde_json::Value::Null,
            shards: vec![
                ShardEntry {
                    file: "a.bin".into(),
                    start: 0,
                    end: 4,
                    bytes: 160,
                    sha256: "0".repeat(64),
                },
                ShardEntry {
                    file: "b.bin".into(),
                    start: 4,
                    end: 10,
                    bytes: 240,
                    sha256: "0".repeat(64),
                },
            ],
        };
        let text = serde_json::to_vec(&good).unwrap();
        assert_eq!(Manifest::parse(p, &text).unwrap(), good);
        let mut gap = good.clone();
        gap.shards[1].start = 5;
        let e = Manifest::parse(p, &serde_json::to_vec(&gap).unwrap()).unwrap_err();
        assert!(e.to_string().contains("shard 1 covers 5..10"), "{e}");
        let mut short = good.clone();
        short.shards[1].bytes = 239;
        let e = Manifest::parse(p, &serde_json::to_vec(&short).unwrap()).unwrap_err();
        assert!(e.to_string().contains("declares 239 bytes"), "{e}");
        let mut esc = good.clone();
        esc.shards[0].file = "../x".into();
        assert!(Manifest::parse(p, &serde_json::to_vec(&esc).unwrap()).is_err());
        assert!(Manifest::parse(p, b"{\"format\": 3}").is_err());
    }
}
