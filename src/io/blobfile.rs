//! The one file format of nashmp's saved state (solve and sweep checkpoints): a fixed prefix, a
//! capped JSON manifest, then raw little-endian blobs.
//!
//! **Layout.** An 8-byte magic naming the kind of file, a `u32` format version, a `u32` 0, a
//! `u64` manifest length `J ≤` [`Format::max_manifest`], `J` bytes of JSON, then the blobs, back
//! to back. The manifest is `{"blobs": [byte length of each blob], "body": …}`.
//!
//! **Records serialise themselves.** [`write`] takes any `Serialize` value and [`parse`] gives
//! back any `DeserializeOwned` one. Inside them, fields marked with this module's helpers are
//! stored as the format needs:
//! - [`bits`] (and [`bits::opt`]): a float as its bit pattern (`u64`), so a resumed run continues
//!   on the same bits, NaN, infinities and `-0.0` included. Outside a blob file (e.g. in a
//!   `summary.json` report) the same fields serialise as plain numbers.
//! - [`f64s`], [`f64s_list`], [`text`], [`words`]: a vector (of `f64`s, as raw little-endian
//!   words; of text, as UTF-8) moved out of the manifest into a blob, the manifest holding its
//!   index. Outside a blob file, [`f64s`] is never serialised (see [`persisting`]).
//!
//! The helpers learn which file they are in from a per-thread context that [`write`] and
//! [`parse`] set for the duration of the call (serde has no other channel for it).
//!
//! **Parsing.** [`parse`] works on bytes, checks the prefix, the cap and every blob length
//! against the file before anything is allocated, demands that the blobs end exactly at the end
//! of the file, and lets each blob be read at most once, so a lying manifest can neither read
//! past the file nor multiply its size. A file of another format version is refused, one of an
//! older version with a message saying so.

use crate::error::{Error, Result};
use crate::io::atomic::AtomicFile;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::io::Write;
use std::path::Path;

/// Bytes before the manifest: magic, version, a zero word, the manifest length.
pub const PREFIX: usize = 24;

/// One kind of blob file.
#[derive(Clone, Copy, Debug)]
pub struct Format {
    pub magic: &'static [u8; 8],
    /// The current version; files of any other are refused.
    pub version: u32,
    /// Largest manifest accepted.
    pub max_manifest: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<T> {
    /// Byte length of each blob, in file order.
    blobs: Vec<u64>,
    body: T,
}

/// What the helpers see while a file is written or parsed.
enum Ctx {
    Write(Vec<Vec<u8>>),
    /// The file and each blob's byte range (`None` once taken).
    Read(std::rc::Rc<Vec<u8>>, Vec<Option<(usize, usize)>>),
}

thread_local! {
    static CTX: RefCell<Option<Ctx>> = const { RefCell::new(None) };
}

/// Sets the context for the lifetime of the guard (and clears it even on a panic).
struct Guard;

impl Guard {
    fn set(c: Ctx) -> Guard {
        CTX.with(|x| *x.borrow_mut() = Some(c));
        Guard
    }
    fn take() -> Option<Ctx> {
        CTX.with(|x| x.borrow_mut().take())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        CTX.with(|x| *x.borrow_mut() = None);
    }
}

/// Whether a blob file is being written or parsed on this thread (for
/// `#[serde(skip_serializing_if = "blobfile::not_persisting")]` on fields that only the saved
/// state carries, such as `π*` itself).
pub fn persisting() -> bool {
    CTX.with(|x| x.borrow().is_some())
}

/// `!persisting()`, with the signature `skip_serializing_if` wants.
pub fn not_persisting<T>(_: &T) -> bool {
    !persisting()
}

/// Serialises `value` into the bytes of a blob file of `format`.
pub fn to_bytes<T: Serialize>(format: &Format, value: &T) -> Vec<u8> {
    let (json, blobs) = {
        let _g = Guard::set(Ctx::Write(Vec::new()));
        // The blob lengths are only known once the body is serialised: serialise it first.
        let body = serde_json::to_value(value).expect("a record serialises");
        let Some(Ctx::Write(blobs)) = Guard::take() else {
            unreachable!("the context is ours")
        };
        let env = Envelope {
            blobs: blobs.iter().map(|b| b.len() as u64).collect(),
            body,
        };
        (
            serde_json::to_vec(&env).expect("a manifest serialises"),
            blobs,
        )
    };
    let total = PREFIX + json.len() + blobs.iter().map(Vec::len).sum::<usize>();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(format.magic);
    out.extend_from_slice(&format.version.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for b in &blobs {
        out.extend_from_slice(b);
    }
    out
}

/// Writes `value` atomically to `path` as a blob file of `format`.
pub fn write<T: Serialize>(path: &Path, format: &Format, value: &T) -> Result<()> {
    let bytes = to_bytes(format, value);
    let mut f = AtomicFile::create(path)?;
    f.write_all(&bytes).map_err(|e| Error::io(path, e))?;
    f.commit()
}

/// Reads the blob file of `format` at `path`; a malformed file is an [`Error::Checkpoint`]
/// naming it.
pub fn read<T: DeserializeOwned>(path: &Path, format: &Format) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_owned(bytes, format).map_err(|reason| Error::Checkpoint {
        path: path.into(),
        reason,
    })
}

/// Parses the bytes of a blob file of `format`.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], format: &Format) -> std::result::Result<T, String> {
    // The prefix is checked before the bytes are copied for the blobs' readers.
    manifest_end(bytes, format)?;
    parse_owned(bytes.to_vec(), format)
}

fn parse_owned<T: DeserializeOwned>(
    bytes: Vec<u8>,
    format: &Format,
) -> std::result::Result<T, String> {
    let end = manifest_end(&bytes, format)?;
    #[derive(Deserialize)]
    struct Lengths {
        blobs: Vec<u64>,
    }
    let env: Lengths =
        serde_json::from_slice(&bytes[PREFIX..end]).map_err(|e| format!("manifest: {e}"))?;
    let mut ranges = Vec::with_capacity(env.blobs.len().min(1 << 16));
    let mut at = end as u64;
    for (i, &len) in env.blobs.iter().enumerate() {
        let stop = at
            .checked_add(len)
            .filter(|&e| e <= bytes.len() as u64)
            .ok_or_else(|| format!("blob {i} ({len} bytes) runs past the end of the file"))?;
        ranges.push(Some((at as usize, stop as usize)));
        at = stop;
    }
    if at != bytes.len() as u64 {
        return Err(format!(
            "{} bytes after the last blob",
            bytes.len() as u64 - at
        ));
    }
    let bytes = std::rc::Rc::new(bytes);
    let _g = Guard::set(Ctx::Read(bytes.clone(), ranges));
    let env: Envelope<T> =
        serde_json::from_slice(&bytes[PREFIX..end]).map_err(|e| format!("manifest: {e}"))?;
    Ok(env.body)
}

/// Checks the prefix (magic, version, the zero word, a manifest length within the cap and the
/// file) and returns where the manifest ends.
pub fn manifest_end(bytes: &[u8], format: &Format) -> std::result::Result<usize, String> {
    let magic = format.magic;
    if bytes.len() < PREFIX || &bytes[..8] != magic {
        return Err(format!(
            "missing the {} magic",
            String::from_utf8_lossy(magic)
        ));
    }
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let version = u32_at(8);
    if version < format.version {
        return Err(format!(
            "written by an older version of nashmp (format {version}; this one reads format {}): \
             run without --resume to start over",
            format.version
        ));
    }
    if version != format.version || u32_at(12) != 0 {
        return Err(format!("unsupported version {version}"));
    }
    let jlen = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
    let rest = (bytes.len() - PREFIX) as u64;
    if jlen > format.max_manifest || jlen > rest {
        return Err(format!(
            "manifest length {jlen} exceeds the file ({rest} bytes after the prefix) or the cap {}",
            format.max_manifest
        ));
    }
    Ok(PREFIX + jlen as usize)
}

/// Moves `bytes` into a new blob (writing) and serialises its index.
fn put<S: Serializer>(s: S, bytes: Vec<u8>) -> std::result::Result<S::Ok, S::Error> {
    let i = CTX.with(|x| match x.borrow_mut().as_mut() {
        Some(Ctx::Write(blobs)) => {
            blobs.push(bytes);
            Ok(blobs.len() - 1)
        }
        _ => Err(<S::Error as serde::ser::Error>::custom(
            "a blob field serialised outside a blob file",
        )),
    })?;
    s.serialize_u64(i as u64)
}

/// Reads a blob index and gives the blob's bytes to `f` (each blob at most once).
fn take<'de, D: Deserializer<'de>, T>(
    d: D,
    f: impl FnOnce(&[u8]) -> std::result::Result<T, String>,
) -> std::result::Result<T, D::Error> {
    let i = u64::deserialize(d)?;
    CTX.with(|x| match x.borrow_mut().as_mut() {
        Some(Ctx::Read(bytes, ranges)) => {
            let slot = usize::try_from(i)
                .ok()
                .and_then(|i| ranges.get_mut(i))
                .ok_or_else(|| D::Error::custom(format!("blob {i} does not exist")))?;
            let (a, b) = slot
                .take()
                .ok_or_else(|| D::Error::custom(format!("blob {i} is referenced twice")))?;
            f(&bytes[a..b]).map_err(|e| D::Error::custom(format!("blob {i}: {e}")))
        }
        _ => Err(D::Error::custom("a blob field read outside a blob file")),
    })
}

/// The `u64` words of a blob.
fn words_of(b: &[u8]) -> std::result::Result<Vec<u64>, String> {
    if !b.len().is_multiple_of(8) {
        return Err(format!(
            "{} bytes, not a whole number of 8-byte words",
            b.len()
        ));
    }
    Ok(b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

/// A float as its bit pattern inside a blob file, as a plain number elsewhere:
/// `#[serde(with = "crate::io::blobfile::bits")]`.
pub mod bits {
    use super::*;

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
        if persisting() {
            s.serialize_u64(v.to_bits())
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
        if persisting() {
            u64::deserialize(d).map(f64::from_bits)
        } else {
            f64::deserialize(d)
        }
    }

    /// The same for `Option<f64>`.
    pub mod opt {
        use super::*;

        pub fn serialize<S: Serializer>(
            v: &Option<f64>,
            s: S,
        ) -> std::result::Result<S::Ok, S::Error> {
            match v {
                None => s.serialize_none(),
                Some(x) if persisting() => s.serialize_some(&x.to_bits()),
                Some(x) => s.serialize_some(x),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> std::result::Result<Option<f64>, D::Error> {
            if persisting() {
                Ok(Option::<u64>::deserialize(d)?.map(f64::from_bits))
            } else {
                Option::<f64>::deserialize(d)
            }
        }
    }
}

/// A `Vec<f64>` as a blob of little-endian words: `#[serde(with = "crate::io::blobfile::f64s")]`.
pub mod f64s {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> std::result::Result<S::Ok, S::Error> {
        put(s, v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<f64>, D::Error> {
        take(d, |b| {
            Ok(words_of(b)?.into_iter().map(f64::from_bits).collect())
        })
    }
}

/// A vector as a blob, for use inside other records (`Vec<F64s>`, tuples).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct F64s(pub Vec<f64>);

impl Serialize for F64s {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        f64s::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for F64s {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        f64s::deserialize(d).map(F64s)
    }
}

/// A `Vec<Vec<f64>>`, each vector a blob.
pub mod f64s_list {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[Vec<f64>], s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| F64sRef(x)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Vec<Vec<f64>>, D::Error> {
        Ok(Vec::<F64s>::deserialize(d)?
            .into_iter()
            .map(|v| v.0)
            .collect())
    }
}

/// A borrowed vector as a blob.
pub struct F64sRef<'a>(pub &'a [f64]);

impl Serialize for F64sRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        f64s::serialize(self.0, s)
    }
}

/// A `String` as a UTF-8 blob.
pub mod text {
    use super::*;

    pub fn serialize<S: Serializer>(v: &str, s: S) -> std::result::Result<S::Ok, S::Error> {
        put(s, v.as_bytes().to_vec())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
        take(d, |b| {
            std::str::from_utf8(b)
                .map(str::to_string)
                .map_err(|e| format!("text: {e}"))
        })
    }
}

/// `u64` words as a blob, for records of fixed width (see [`words::serialize`]).
pub mod words {
    use super::*;

    /// Serialises `w` as a blob of little-endian words.
    pub fn serialize<S: Serializer>(w: &[u64], s: S) -> std::result::Result<S::Ok, S::Error> {
        put(s, w.iter().flat_map(|x| x.to_le_bytes()).collect())
    }

    /// Reads a blob of words and hands them to `f` (which checks their shape).
    pub fn deserialize_with<'de, D: Deserializer<'de>, T>(
        d: D,
        f: impl FnOnce(Vec<u64>) -> std::result::Result<T, String>,
    ) -> std::result::Result<T, D::Error> {
        take(d, |b| f(words_of(b)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Format = Format {
        magic: b"NASHMPTS",
        version: 2,
        max_manifest: 1 << 12,
    };

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Rec {
        #[serde(with = "bits")]
        x: f64,
        #[serde(with = "bits::opt")]
        y: Option<f64>,
        #[serde(with = "f64s")]
        v: Vec<f64>,
        #[serde(with = "text")]
        t: String,
        #[serde(with = "f64s_list")]
        l: Vec<Vec<f64>>,
    }

    fn sample() -> Rec {
        Rec {
            x: -0.0,
            y: Some(f64::INFINITY),
            v: vec![1.5, f64::MIN_POSITIVE, -2.0],
            t: "algo,iter\n".into(),
            l: vec![vec![], vec![3.0]],
        }
    }

    #[test]
    fn round_trip_is_bit_exact_and_floats_are_bits_only_inside() {
        let b = to_bytes(&F, &sample());
        let r: Rec = parse(&b, &F).unwrap();
        assert_eq!(r, sample());
        assert_eq!(r.x.to_bits(), (-0.0f64).to_bits());
        let nan = Rec {
            x: f64::from_bits(0x7ff8_0000_0000_0001),
            ..sample()
        };
        let r: Rec = parse(&to_bytes(&F, &nan), &F).unwrap();
        assert_eq!(r.x.to_bits(), 0x7ff8_0000_0000_0001);
        // Outside a blob file the float fields are plain numbers.
        #[derive(Serialize)]
        struct Plain {
            #[serde(with = "bits")]
            x: f64,
            #[serde(with = "bits::opt")]
            y: Option<f64>,
        }
        let p = serde_json::to_string(&Plain { x: 0.5, y: None }).unwrap();
        assert_eq!(p, r#"{"x":0.5,"y":null}"#);
        assert!(!persisting());
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        let b = to_bytes(&F, &sample());
        for cut in 0..b.len() {
            assert!(parse::<Rec>(&b[..cut], &F).is_err(), "cut {cut}");
        }
        for i in 0..b.len() {
            let mut c = b.clone();
            c[i] ^= 0x55;
            let _ = parse::<Rec>(&c, &F);
        }
        let mut old = b.clone();
        old[8] = 1;
        let e = parse::<Rec>(&old, &F).unwrap_err();
        assert!(e.contains("written by an older version"), "{e}");
        let mut long = b.clone();
        long.push(0);
        assert!(parse::<Rec>(&long, &F)
            .unwrap_err()
            .contains("after the last blob"));
        // A manifest pointing twice at the same blob is refused.
        let twice = br#"{"blobs":[8],"body":{"x":0,"y":null,"v":0,"t":0,"l":[]}}"#;
        let mut f = Vec::new();
        f.extend_from_slice(F.magic);
        f.extend_from_slice(&2u32.to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(twice.len() as u64).to_le_bytes());
        f.extend_from_slice(twice);
        f.extend_from_slice(&[0; 8]);
        let e = parse::<Rec>(&f, &F).unwrap_err();
        assert!(e.contains("referenced twice"), "{e}");
        assert!(!persisting());
    }
}
