//! Where outputs go: the one rule every file nashmp writes obeys, checked before any work.
//!
//! - **Extension ↔ format.** A file's extension says what it holds: `.npy` is numpy's format
//!   (dense f32/f64 games, policies, π*), `.nmp` the nashmp container (packed, u16, low-rank and
//!   block games), `.csv` a CSV table, `.json` JSON, `.txt` text. A mismatch is refused, naming
//!   the extension to use; nothing is written under a name that lies about its content.
//! - **Parent folder.** A missing parent folder is created (as `solve --out DIR` and `sweep`
//!   create theirs); a parent that exists but is not a folder, or cannot be created, is an
//!   error naming it.
//! - **Not a folder.** An output path that names an existing folder is refused.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// What a written file holds, and so the extension its name must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// numpy's `.npy`.
    Npy,
    /// The nashmp game container, `.nmp`.
    Container,
    /// A CSV table, `.csv`.
    Csv,
    /// JSON, `.json`.
    Json,
    /// Plain text, `.txt`.
    Text,
}

impl Format {
    /// The extension (without the dot) a file of this format must carry.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Npy => "npy",
            Format::Container => "nmp",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Text => "txt",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Format::Npy => "a numpy .npy file",
            Format::Container => "a nashmp container",
            Format::Csv => "a CSV table",
            Format::Json => "JSON",
            Format::Text => "text",
        }
    }
}

/// Checks that `path` may receive `what` (e.g. "a low-rank game") stored as `format`: its
/// extension matches and its parent folder exists (created if missing). Call it before any
/// work, so that a bad output name fails at once.
pub fn check(path: &Path, format: Format, what: &str) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str());
    if ext.map(|e| e.to_ascii_lowercase()) != Some(format.ext().to_string()) {
        let suggested = path.with_extension(format.ext());
        return Err(Error::Output {
            path: path.into(),
            reason: format!(
                "{what} is written as {}, whose name ends in .{}; name it {}",
                format.describe(),
                format.ext(),
                suggested.display()
            ),
        });
    }
    if path.is_dir() {
        return Err(Error::Output {
            path: path.into(),
            reason: "is a folder; give a file name".into(),
        });
    }
    ensure_parent(path)
}

/// The folder `path` is written in (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates `path`'s parent folder if it is missing; an error names the folder.
pub fn ensure_parent(path: &Path) -> Result<()> {
    let dir = parent_of(path);
    if dir.is_dir() {
        return Ok(());
    }
    let shown = format!("{}/", dir.display());
    if dir.exists() {
        return Err(Error::Output {
            path: shown.into(),
            reason: "exists but is not a folder".into(),
        });
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::Output {
        path: shown.into(),
        reason: format!("cannot create the output folder: {e}"),
    })
}

/// Checks that the output folder `dir` (named by `flag`) is a folder or does not exist yet (the
/// command creates it when it starts writing); an existing file there is an error.
pub fn check_dir(dir: &Path, flag: &str) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::Output {
            path: dir.into(),
            reason: format!("{flag} names a folder to write into, but this is an existing file"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_and_parent_rules() {
        let t = tempfile::tempdir().unwrap();
        let ok = t.path().join("new/deeper/g.npy");
        check(&ok, Format::Npy, "a game").unwrap();
        assert!(t.path().join("new/deeper").is_dir(), "parent created");
        let e = check(
            &t.path().join("g.npy"),
            Format::Container,
            "a low-rank game",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("g.npy") && e.contains("name it") && e.contains("g.nmp"),
            "{e}"
        );
        let e = check(&t.path().join("g.txt"), Format::Npy, "a game")
            .unwrap_err()
            .to_string();
        assert!(e.contains("g.npy"), "{e}");
        std::fs::write(t.path().join("file"), b"x").unwrap();
        let e = check(&t.path().join("file/g.npy"), Format::Npy, "a game")
            .unwrap_err()
            .to_string();
        assert!(e.contains("file/") && e.contains("not a folder"), "{e}");
        assert!(check(&t.path().join("G.NPY"), Format::Npy, "a game").is_ok());
    }
}
