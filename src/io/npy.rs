//! The `.npy` format: a byte-level header parser (fuzzable, no I/O) and a header writer whose
//! output numpy reads with `np.load(path, mmap_mode='r')`.
//!
//! Only what nashmp needs is accepted: little-endian `float32`/`float64`, C order, 1-D or 2-D.
//! Everything else is a clear error, never a panic; no allocation depends on a declared size.

/// Longest header we accept (numpy itself caps it far lower in practice).
pub const MAX_HEADER_LEN: usize = 1 << 20;
/// Data offset of the files nashmp writes: a multiple of 64, so every dtype is aligned.
pub const ALIGN: usize = 64;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Element type of an array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F64,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }
    pub fn descr(self) -> &'static str {
        match self {
            DType::F32 => "<f4",
            DType::F64 => "<f8",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
}

/// A parsed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub dtype: DType,
    pub fortran_order: bool,
    pub shape: Vec<u64>,
    /// Byte offset of the first element.
    pub data_offset: usize,
}

impl Header {
    /// Number of elements, `None` on overflow.
    pub fn element_count(&self) -> Option<u64> {
        self.shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d))
    }
    /// Number of data bytes, `None` on overflow.
    pub fn data_bytes(&self) -> Option<u64> {
        self.element_count()?.checked_mul(self.dtype.size() as u64)
    }
}

/// Why a header was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Malformed: the reason says what.
    Invalid(String),
    /// Well-formed but of a dtype we do not support.
    DType { descr: String, hint: &'static str },
}

fn bad(reason: impl Into<String>) -> HeaderError {
    HeaderError::Invalid(reason.into())
}

/// Parses the header at the start of `bytes` (the data need not follow).
pub fn parse_header(bytes: &[u8]) -> Result<Header, HeaderError> {
    if bytes.len() < 10 {
        return Err(bad(format!(
            "{} bytes is too short for a .npy header",
            bytes.len()
        )));
    }
    if &bytes[..6] != MAGIC {
        return Err(bad("missing the \\x93NUMPY magic string"));
    }
    let major = bytes[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("header truncated"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12usize,
            )
        }
        v => return Err(bad(format!("unsupported format version {v}"))),
    };
    if hlen > MAX_HEADER_LEN {
        return Err(bad(format!(
            "declared header length {hlen} exceeds the cap of {MAX_HEADER_LEN} bytes"
        )));
    }
    let end = start
        .checked_add(hlen)
        .ok_or_else(|| bad("header length overflows"))?;
    if bytes.len() < end {
        return Err(bad(format!(
            "header truncated: declares {hlen} bytes, {} present",
            bytes.len() - start
        )));
    }
    let text = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| bad("header dictionary is not valid text"))?;
    let dict = parse_dict(text)?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (k, v) in dict {
        match (k.as_str(), v) {
            ("descr", Value::Str(s)) => descr = Some(s),
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("shape", Value::Tuple(t)) => shape = Some(t),
            (k @ ("descr" | "fortran_order" | "shape"), _) => {
                return Err(bad(format!("header key '{k}' has the wrong type")))
            }
            (k, _) => return Err(bad(format!("unexpected header key '{k}'"))),
        }
    }
    let descr = descr.ok_or_else(|| bad("header has no 'descr'"))?;
    let fortran_order = fortran.ok_or_else(|| bad("header has no 'fortran_order'"))?;
    let shape = shape.ok_or_else(|| bad("header has no 'shape'"))?;
    let dtype = match descr.as_str() {
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        ">f4" | ">f8" => {
            return Err(HeaderError::DType {
                descr,
                hint: "big-endian data is not supported; save with P.astype('<f8')",
            })
        }
        _ => {
            return Err(HeaderError::DType {
                descr,
                hint: "only little-endian float32 ('<f4') and float64 ('<f8') are supported; convert with P.astype(np.float64)",
            })
        }
    };
    Ok(Header {
        dtype,
        fortran_order,
        shape,
        data_offset: end,
    })
}

enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

/// A tiny parser for the Python literal dictionary numpy writes.
fn parse_dict(s: &str) -> Result<Vec<(String, Value)>, HeaderError> {
    let mut p = Parser {
        b: s.as_bytes(),
        i: 0,
    };
    p.ws();
    p.expect(b'{')?;
    let mut out = Vec::new();
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        if out.len() >= 8 {
            return Err(bad("too many header keys"));
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        let val = match p.peek() {
            Some(b'\'') | Some(b'"') => Value::Str(p.string()?),
            Some(b'(') => Value::Tuple(p.tuple()?),
            Some(b'T') | Some(b'F') => Value::Bool(p.boolean()?),
            _ => return Err(bad(format!("cannot parse the value of '{key}'"))),
        };
        out.push((key, val));
        p.ws();
        if p.eat(b',') {
            continue;
        }
        p.ws();
        p.expect(b'}')?;
        break;
    }
    p.ws();
    if p.i != p.b.len() {
        return Err(bad("trailing bytes after the header dictionary"));
    }
    Ok(out)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\t' | b'\r')) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), HeaderError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(bad(format!(
                "expected '{}' at byte {} of the header dictionary",
                c as char, self.i
            )))
        }
    }
    fn string(&mut self) -> Result<String, HeaderError> {
        let q = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => return Err(bad("expected a quoted string in the header")),
        };
        self.i += 1;
        let start = self.i;
        while let Some(c) = self.peek() {
            if c == q {
                let s = std::str::from_utf8(&self.b[start..self.i])
                    .map_err(|_| bad("bad string"))?
                    .to_string();
                self.i += 1;
                if s.len() > 64 {
                    return Err(bad("header string too long"));
                }
                return Ok(s);
            }
            self.i += 1;
        }
        Err(bad("unterminated string in the header"))
    }
    fn boolean(&mut self) -> Result<bool, HeaderError> {
        let rest = &self.b[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            Ok(true)
        } else if rest.starts_with(b"False") {
            self.i += 5;
            Ok(false)
        } else {
            Err(bad("expected True or False"))
        }
    }
    fn tuple(&mut self) -> Result<Vec<u64>, HeaderError> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                break;
            }
            if dims.len() >= 32 {
                return Err(bad("too many dimensions in 'shape'"));
            }
            let start = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            if start == self.i {
                return Err(bad("'shape' must hold non-negative integers"));
            }
            let txt = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("");
            let d: u64 = txt
                .parse()
                .map_err(|_| bad(format!("shape dimension {txt} is too large")))?;
            dims.push(d);
            self.ws();
            if self.eat(b',') {
                continue;
            }
            self.ws();
            self.expect(b')')?;
            break;
        }
        Ok(dims)
    }
}

/// A version-1 header for a C-order little-endian array, padded so the data starts at a
/// multiple of [`ALIGN`].
pub fn header_bytes(dtype: DType, shape: &[u64]) -> Vec<u8> {
    let shape_txt = match shape {
        [d] => format!("({d},)"),
        _ => {
            let parts: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        shape_txt
    );
    let unpadded = 10 + dict.len() + 1;
    let total = unpadded.div_ceil(ALIGN) * ALIGN;
    dict.push_str(&" ".repeat(total - unpadded));
    dict.push('\n');
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    debug_assert_eq!(out.len() % ALIGN, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let h = header_bytes(DType::F32, &[3, 3]);
        assert_eq!(h.len() % 64, 0);
        let p = parse_header(&h).unwrap();
        assert_eq!(p.dtype, DType::F32);
        assert_eq!(p.shape, vec![3, 3]);
        assert!(!p.fortran_order);
        assert_eq!(p.data_offset, h.len());
        let h1 = header_bytes(DType::F64, &[7]);
        assert_eq!(parse_header(&h1).unwrap().shape, vec![7]);
    }

    #[test]
    fn numpy_style_header() {
        // Exactly what numpy 1.x writes for np.save(f, np.zeros((2, 2))).
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        let pad = 128 - 10 - dict.len() - 1;
        let text = format!("{dict}{}\n", " ".repeat(pad));
        b.extend_from_slice(&(text.len() as u16).to_le_bytes());
        b.extend_from_slice(text.as_bytes());
        let p = parse_header(&b).unwrap();
        assert_eq!(p.data_offset, 128);
        assert_eq!(p.dtype, DType::F64);
    }

    #[test]
    fn rejects() {
        assert!(parse_header(b"").is_err());
        assert!(parse_header(b"\x93NUMPX\x01\x00\x00\x00").is_err());
        let mut h = header_bytes(DType::F32, &[3, 3]);
        h[8] = 0xff;
        h[9] = 0xff;
        assert!(
            parse_header(&h).is_err(),
            "declared length beyond the bytes"
        );
        let dict = b"{'descr': '<i4', 'fortran_order': False, 'shape': (3, 3), }";
        let mut int = b"\x93NUMPY\x01\x00".to_vec();
        int.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        int.extend_from_slice(dict);
        assert!(matches!(parse_header(&int), Err(HeaderError::DType { .. })));
    }

    proptest! {
        #[test]
        fn mutated_headers_never_panic(pos in 0usize..128, byte in any::<u8>(), cut in 0usize..140) {
            let mut h = header_bytes(DType::F64, &[5, 5]);
            let p = pos % h.len();
            h[p] = byte;
            h.truncate(cut.min(h.len()));
            let _ = parse_header(&h);
        }

        #[test]
        fn mutated_files_never_panic(
            muts in prop::collection::vec((0usize..256, any::<u8>()), 1..8),
            data in 0usize..200,
        ) {
            let mut f = header_bytes(DType::F32, &[3, 3]);
            f.resize(f.len() + data, 0);
            for (p, b) in muts {
                let i = p % f.len();
                f[i] = b;
            }
            let _ = crate::io::array::checked_header(std::path::Path::new("m.npy"), &f);
        }

        #[test]
        fn lying_shapes_are_errors(a in any::<u64>(), b in any::<u64>()) {
            let mut f = header_bytes(DType::F32, &[a, b]);
            f.resize(f.len() + 64, 0);
            let r = crate::io::array::checked_header(std::path::Path::new("l.npy"), &f);
            let honest = a.checked_mul(b).and_then(|e| e.checked_mul(4)) == Some(64);
            prop_assert_eq!(r.is_ok(), honest);
        }

        #[test]
        fn shapes_round_trip(a in 0u64..1_000_000, b in 0u64..1_000_000) {
            let h = header_bytes(DType::F32, &[a, b]);
            prop_assert_eq!(parse_header(&h).unwrap().shape, vec![a, b]);
        }
    }
}
