//! Whitespace-separated text matrices (one row per line), as researchers export them.

use crate::error::{Error, Result};
use std::path::Path;

/// Parses a square text matrix (UTF-8 bytes) into row-major `f64`. Blank lines and `#`
/// comments are skipped. Memory is proportional to the input, never to a declared size.
pub fn parse_text_matrix(path: &Path, bytes: &[u8]) -> Result<(usize, Vec<f64>)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Error::Text {
            path: path.into(),
            line,
            reason: format!("not UTF-8 text (byte {})", e.valid_up_to()),
        }
    })?;
    let mut data = Vec::new();
    let mut cols: Option<usize> = None;
    let mut rows = 0usize;
    for (ln, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let before = data.len();
        for (c, tok) in line
            .split(|ch: char| ch.is_whitespace() || ch == ',')
            .filter(|t| !t.is_empty())
            .enumerate()
        {
            let v: f64 = tok.parse().map_err(|_| Error::Text {
                path: path.into(),
                line: ln + 1,
                reason: format!("column {}: {tok:?} is not a number", c + 1),
            })?;
            data.push(v);
        }
        let k = data.len() - before;
        match cols {
            None => cols = Some(k),
            Some(c) if c != k => {
                return Err(Error::Text {
                    path: path.into(),
                    line: ln + 1,
                    reason: format!("row has {k} entries, the first row has {c}"),
                })
            }
            _ => {}
        }
        rows += 1;
    }
    let n = cols.ok_or_else(|| Error::Text {
        path: path.into(),
        line: 0,
        reason: "no numbers in the file".into(),
    })?;
    if rows != n {
        return Err(Error::NotSquare {
            path: path.into(),
            shape: vec![rows as u64, n as u64],
        });
    }
    Ok((n, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok((n, d)) = parse_text_matrix(Path::new("a.txt"), &b) {
                prop_assert_eq!(d.len(), n * n);
            }
        }

        #[test]
        fn mutated_matrices_never_panic(pos in 0usize..64, byte in any::<u8>()) {
            let mut b = b"0.5 1 0\n0 0.5 1 # rps\n1,0,0.5\n".to_vec();
            let i = pos % b.len();
            b[i] = byte;
            let _ = parse_text_matrix(Path::new("m.txt"), &b);
        }
    }

    #[test]
    fn parses_and_rejects() {
        let p = Path::new("t.txt");
        let (n, d) = parse_text_matrix(p, b"0.5 1\n0 0.5\n").unwrap();
        assert_eq!((n, d), (2, vec![0.5, 1.0, 0.0, 0.5]));
        let e = parse_text_matrix(p, b"0.5 1\n0 x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.txt:2") && e.contains("\"x\""), "{e}");
        assert!(parse_text_matrix(p, b"0.5 1\n0\n").is_err());
        assert!(parse_text_matrix(p, b"0.5 1 0\n0 0.5 1\n").is_err());
        assert!(parse_text_matrix(p, b"").is_err());
        let e = parse_text_matrix(p, b"0.5 1\n0 \xff\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.txt:2: not UTF-8"), "{e}");
    }
}
