//! Atomic file output: write a temporary file in the target's folder, fsync, rename.
//! An interrupted command leaves either the previous file or the complete new one.
//!
//! The temporary is `.NAME.PID.tmp` beside the target. A process killed outright (SIGKILL,
//! power loss) cannot remove its own; the next writer of the same target removes those whose
//! process is gone (Linux: no `/proc/PID`), so stale temporaries never pile up.

use crate::error::{Error, Result};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file being written; it appears at its path only on [`AtomicFile::commit`].
/// Dropped without a commit, the temporary is removed.
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    w: Option<BufWriter<std::fs::File>>,
}

impl AtomicFile {
    pub fn create(target: &Path) -> Result<Self> {
        if target.is_dir() {
            return Err(Error::Output {
                path: target.into(),
                reason: "is a folder; give a file name".into(),
            });
        }
        super::output::ensure_parent(target)?;
        let dir = super::output::parent_of(target);
        let name = target
            .file_name()
            .ok_or_else(|| Error::io(target, std::io::Error::other("not a file path")))?;
        remove_stale(&dir, name);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        // The error names the target the user asked for, not the hidden temporary.
        let f = std::fs::File::create(&tmp).map_err(|e| Error::io(target, e))?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            tmp,
            w: Some(BufWriter::with_capacity(1 << 20, f)),
        })
    }

    /// Flushes, syncs and renames into place; on failure (e.g. a full disk while flushing)
    /// the temporary is removed and the target left as it was.
    pub fn commit(self) -> Result<()> {
        self.commit_checked(&|_| Ok(()))
    }

    /// Like [`AtomicFile::commit`], but `check` first reads the complete temporary (its path is
    /// passed); if it fails, the temporary is removed, the target is left as it was, and the
    /// error ([`Error::Rejected`]) names the target.
    pub fn commit_checked(mut self, check: &dyn Fn(&Path) -> Result<()>) -> Result<()> {
        let w = self.w.take().expect("committed twice");
        let tmp = &self.tmp;
        let done = w
            .into_inner()
            .map_err(|e| Error::io(tmp, e.into_error()))
            .and_then(|f| f.sync_all().map_err(|e| Error::io(tmp, e)))
            .and_then(|()| {
                check(tmp).map_err(|e| Error::Rejected {
                    path: self.target.clone(),
                    reason: e.to_string().replace(
                        &tmp.display().to_string(),
                        &self.target.display().to_string(),
                    ),
                })
            })
            .and_then(|()| {
                std::fs::rename(tmp, &self.target).map_err(|e| Error::io(&self.target, e))
            });
        if done.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        done
    }

    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.as_mut().expect("write after commit").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.as_mut().expect("flush after commit").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.w.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Removes `dir/.NAME.PID.tmp` files left by processes that no longer run (best effort: a
/// failure only leaves them in place).
fn remove_stale(dir: &Path, name: &std::ffi::OsStr) {
    let (Some(name), Ok(entries)) = (name.to_str(), std::fs::read_dir(dir)) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{name}.");
    for e in entries.flatten() {
        let file = e.file_name();
        let pid = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !alive(p)) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether process `pid` runs: it has a `/proc` entry and is not a zombie (a process just
/// killed stays a zombie until its parent reaps it).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) STATE …`; comm may itself contain parentheses.
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].trim_start().chars().next());
    state != Some('Z')
}

/// Writes `bytes` to `path` atomically.
pub fn write_all(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_write_leaves_the_previous_file_and_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("sub/g.npy");
        write_all(&target, b"old").unwrap();
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"new").unwrap();
        let e = f
            .commit_checked(&|p| {
                assert_eq!(
                    std::fs::read(p).unwrap(),
                    b"new",
                    "the check sees the new bytes"
                );
                Err(Error::Param(format!("{} is bad", p.display())))
            })
            .unwrap_err()
            .to_string();
        let shown = e.replace(&d.path().display().to_string(), "");
        assert!(
            shown.contains("g.npy") && shown.contains("removed") && !shown.contains(".tmp"),
            "{e}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(d.path().join("sub"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(names.len(), 1, "no temporary left");
    }

    #[test]
    fn stale_temporaries_of_dead_processes_go() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("g.npy");
        // No process has PID 4294967295 (above pid_max); our own PID is alive.
        let dead = d.path().join(".g.npy.4294967295.tmp");
        let other = d.path().join(".h.npy.4294967295.tmp");
        std::fs::write(&dead, b"partial").unwrap();
        std::fs::write(&other, b"partial").unwrap();
        write_all(&target, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert!(!dead.exists(), "stale temporary of the same target removed");
        assert!(other.exists(), "another target's temporary is left alone");
    }
}
