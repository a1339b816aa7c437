//! The crate's only `unsafe`: mapping a file read-only.

use crate::error::{Error, Result};
use std::path::Path;

/// A read-only memory map of a whole file.
pub struct Mapped {
    map: Option<memmap2::Mmap>,
}

impl Mapped {
    /// Maps `path` read-only. An empty file maps to an empty slice.
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::io(
                path,
                std::io::Error::other("is a directory, not a file"),
            ));
        }
        if meta.len() == 0 {
            return Ok(Mapped { map: None });
        }
        // SAFETY: memmap2's contract is that the file is not modified or truncated while it is
        // mapped. nashmp never writes to a file it reads: every output goes to a temporary file
        // that is renamed into place (see `io::atomic`), which replaces the directory entry and
        // leaves the mapped inode untouched. A third party truncating the file under us is
        // outside what any reader can defend against (it would raise SIGBUS, not corrupt memory).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Ok(Mapped { map: Some(map) })
    }

    /// Tells the kernel the map will be streamed front to back, repeatedly.
    pub fn advise_sequential(&self) {
        #[cfg(unix)]
        if let Some(m) = &self.map {
            let _ = m.advise(memmap2::Advice::Sequential);
        }
    }

    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}
