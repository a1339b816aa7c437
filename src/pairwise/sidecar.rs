//! Files written next to an imported game: `GAME.items.txt` (the item names, one per line, in
//! index order) and `GAME.coverage.json` (the log's coverage and the estimator's settings).
//! For `g.npy` they are `g.items.txt` and `g.coverage.json`.

use super::estimate::Coverage;
use crate::error::{Error, Result};
use crate::io::atomic;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// `GAME.items.txt` for `GAME.npy`.
pub fn items_path(game: &Path) -> PathBuf {
    game.with_extension("items.txt")
}

/// `GAME.coverage.json` for `GAME.npy`.
pub fn coverage_path(game: &Path) -> PathBuf {
    game.with_extension("coverage.json")
}

/// The names used when a game has no items file: `item0`, `item1`, … zero-padded to a common
/// width (`item00` … `item19` for 20 items), so that their byte order is the index order and
/// a log of them imports back to the same indices.
pub fn default_names(n: usize) -> Vec<String> {
    let width = n.saturating_sub(1).to_string().len();
    (0..n).map(|i| format!("item{i:0width$}")).collect()
}

/// Writes the item names next to the game, atomically.
pub fn write_items(game: &Path, items: &[String]) -> Result<()> {
    let mut text = items.join("\n");
    text.push('\n');
    atomic::write_all(&items_path(game), text.as_bytes())
}

/// The game's item names: from its items file if there is one (which must list `n` distinct,
/// non-empty names), else [`default_names`].
pub fn read_items(game: &Path, n: usize) -> Result<Vec<String>> {
    let path = items_path(game);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(default_names(n)),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let items: Vec<String> = text.lines().map(str::to_string).collect();
    let bad = |reason: String| Error::Items {
        path: path.clone(),
        reason,
    };
    if items.len() != n {
        return Err(bad(format!(
            "lists {} items but the game has {n} actions",
            items.len()
        )));
    }
    let mut seen = HashSet::new();
    for (i, name) in items.iter().enumerate() {
        if name.is_empty() {
            return Err(bad(format!("line {} is empty", i + 1)));
        }
        if !seen.insert(name.as_str()) {
            return Err(bad(format!("line {}: {name:?} is listed twice", i + 1)));
        }
    }
    Ok(items)
}

/// Writes the coverage record next to the game, atomically.
pub fn write_coverage(game: &Path, c: &Coverage) -> Result<()> {
    let path = coverage_path(game);
    let mut json = serde_json::to_string_pretty(c).map_err(|e| Error::Items {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    json.push('\n');
    atomic::write_all(&path, json.as_bytes())
}

/// The game's coverage record, if it has one.
pub fn read_coverage(game: &Path) -> Result<Option<Coverage>> {
    let path = coverage_path(game);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Items {
            path,
            reason: format!("not a valid coverage record: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_default_names() {
        assert_eq!(items_path(Path::new("d/g.npy")), Path::new("d/g.items.txt"));
        assert_eq!(coverage_path(Path::new("g")), Path::new("g.coverage.json"));
        assert_eq!(default_names(3), ["item0", "item1", "item2"]);
        let names = default_names(12);
        assert_eq!(names[0], "item00");
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, names);
    }
}
