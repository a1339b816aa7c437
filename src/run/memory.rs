//! Memory use of this process, from `/proc/self/status` (Linux; `None` elsewhere).
//!
//! A memory-mapped game's pages count toward the resident set as *file-backed* pages: they are
//! the kernel's page cache, shared and reclaimable, not a copy. The heap (the vectors) shows as
//! *anonymous* pages. Both are reported so that "the matrix is never copied" can be checked.

/// Resident memory in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// Peak resident set (`VmHWM`), file-backed pages included.
    pub peak_rss: u64,
    /// Current anonymous resident memory (`RssAnon`): heap and stacks.
    pub rss_anon: u64,
    /// Current file-backed resident memory (`RssFile`): mapped game pages, code.
    pub rss_file: u64,
}

/// Reads the current figures.
pub fn snapshot() -> Option<Memory> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some(Memory {
        peak_rss: field("VmHWM:")?,
        rss_anon: field("RssAnon:")?,
        rss_file: field("RssFile:")?,
    })
}

/// `12.3 MiB`.
pub fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64)
}
