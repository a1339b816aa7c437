//! Parsing a CSV log of pairwise judgements, one judgement per row.
//!
//! The header names the columns; three of them matter (configurable, default `left`, `right`,
//! `winner`), any others are ignored. The winner cell is read in this order:
//! 1. equal to the row's left or right item name: that item won;
//! 2. `left` / `model_a` (left won), `right` / `model_b` (right won), ASCII case-insensitive;
//! 3. anything starting with `tie` (`tie`, `tie (bothbad)`, …): a tie, worth ½ to each side.
//!
//! Cells are trimmed. Items are indexed by their names sorted in byte order, so the same set of
//! names always gives the same indices whatever the row order.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// The names of the three columns that carry a judgement.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Columns {
    pub left: String,
    pub right: String,
    pub winner: String,
}

impl Default for Columns {
    fn default() -> Self {
        Columns {
            left: "left".into(),
            right: "right".into(),
            winner: "winner".into(),
        }
    }
}

impl Columns {
    /// The columns of public arena logs: `model_a,model_b,winner`.
    pub fn arena() -> Self {
        Columns {
            left: "model_a".into(),
            right: "model_b".into(),
            winner: "winner".into(),
        }
    }
}

/// Who won one comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Left,
    Right,
    Tie,
}

/// One judgement between two distinct items (indices into [`JudgementLog::items`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub left: usize,
    pub right: usize,
    pub outcome: Outcome,
}

/// A parsed log: the item names in index order (sorted, byte order) and the judgements in row
/// order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JudgementLog {
    pub items: Vec<String>,
    pub judgements: Vec<Judgement>,
    /// The columns read: those asked for, or the arena's (`model_a,model_b,winner`) when the
    /// default `left,right,winner` are absent and the header has those.
    pub columns: Columns,
}

/// Reads and parses a log file.
pub fn read(path: &Path, cols: &Columns) -> Result<JudgementLog> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse(path, &bytes, cols)
}

/// Parses the bytes of a log; `path` names it in errors, which carry the 1-based line number.
pub fn parse(path: &Path, bytes: &[u8], cols: &Columns) -> Result<JudgementLog> {
    let err = |line: u64, reason: String| Error::Judgements {
        path: path.into(),
        line,
        reason,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let header = rdr.headers().map_err(|e| csv_error(path, e))?.clone();
    if header.iter().all(str::is_empty) {
        return Err(err(
            1,
            format!(
                "empty file: expected a header row naming the columns {}, {}, {}",
                cols.left, cols.right, cols.winner
            ),
        ));
    }
    let find = |name: &str| header.iter().position(|h| h == name);
    let arena = Columns::arena();
    let cols = if *cols == Columns::default()
        && (find(&cols.left).is_none() || find(&cols.right).is_none())
        && [&arena.left, &arena.right, &arena.winner]
            .iter()
            .all(|c| find(c).is_some())
    {
        &arena
    } else {
        cols
    };
    let (l, r, w) = match (find(&cols.left), find(&cols.right), find(&cols.winner)) {
        (Some(l), Some(r), Some(w)) => (l, r, w),
        (l, r, w) => {
            let missing: Vec<&str> = [(l, &cols.left), (r, &cols.right), (w, &cols.winner)]
                .iter()
                .filter(|(i, _)| i.is_none())
                .map(|(_, name)| name.as_str())
                .collect();
            let have: Vec<&str> = header.iter().collect();
            return Err(err(
                1,
                format!(
                    "missing column(s) {}; the header has {} (choose columns with --left, --right, --winner)",
                    missing.join(", "),
                    have.join(", ")
                ),
            ));
        }
    };
    let mut names = Interner::default();
    let mut raw = Vec::new();
    // The first row whose winner is neither of its items nor a label. It is reported once the
    // whole file is read, so that the message can say whether it names some other item.
    let mut pending: Option<(u64, String, String, String)> = None;
    // Each distinct winner cell read as a label, with its first line: checked at the end
    // against the item names, since a label that is also an item's name is ambiguous.
    let mut labels: HashMap<String, u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    while rdr
        .read_record(&mut record)
        .map_err(|e| csv_error(path, e))?
    {
        let line = record.position().map_or(0, |p| p.line());
        let cell = |i: usize| record.get(i).unwrap_or("");
        let (left, right, winner) = (cell(l), cell(r), cell(w));
        if pending.is_some() {
            names.id(left);
            names.id(right);
            continue;
        }
        for (side, name) in [("left", left), ("right", right)] {
            if name.is_empty() {
                return Err(err(line, format!("the {side} item name is empty")));
            }
            if name.contains(['\n', '\r']) {
                return Err(err(
                    line,
                    format!("the {side} item name {name:?} contains a line break"),
                ));
            }
        }
        if left == right {
            return Err(err(
                line,
                format!("self-comparison: {left:?} is compared with itself"),
            ));
        }
        let (li, ri) = (names.id(left), names.id(right));
        match outcome(left, right, winner) {
            Some(o) => {
                if winner != left && winner != right && !labels.contains_key(winner) {
                    labels.insert(winner.to_string(), line);
                }
                raw.push(Judgement {
                    left: li,
                    right: ri,
                    outcome: o,
                })
            }
            None => pending = Some((line, winner.into(), left.into(), right.into())),
        }
    }
    // Every such label was first read before any pending winner, so it is the earlier error.
    if let Some((label, &line)) = labels
        .iter()
        .filter(|(l, _)| names.contains(l))
        .min_by_key(|(_, &line)| line)
    {
        return Err(err(
            line,
            format!("the winner {label:?} is both a label and the name of an item not in this row"),
        ));
    }
    if let Some((line, winner, left, right)) = pending {
        let reason = if winner.is_empty() {
            format!("the winner is empty ({left:?} vs {right:?})")
        } else if names.contains(&winner) {
            format!("the winner {winner:?} is an item not in this row ({left:?} vs {right:?})")
        } else {
            format!(
                "unknown winner label {winner:?} ({left:?} vs {right:?}): expected one of the two item names, left/right, model_a/model_b, or a label starting with \"tie\""
            )
        };
        return Err(err(line, reason));
    }
    if raw.is_empty() {
        return Err(err(
            1,
            "no judgements: the file has a header but no rows".into(),
        ));
    }
    let (items, remap) = names.sorted();
    let judgements = raw
        .into_iter()
        .map(|j| Judgement {
            left: remap[j.left],
            right: remap[j.right],
            outcome: j.outcome,
        })
        .collect();
    Ok(JudgementLog {
        items,
        judgements,
        columns: cols.clone(),
    })
}

/// Reads a winner cell (see the module docs); `None` if it is none of the accepted forms.
fn outcome(left: &str, right: &str, winner: &str) -> Option<Outcome> {
    if winner == left {
        return Some(Outcome::Left);
    }
    if winner == right {
        return Some(Outcome::Right);
    }
    let lower = winner.to_ascii_lowercase();
    match lower.as_str() {
        "left" | "model_a" => Some(Outcome::Left),
        "right" | "model_b" => Some(Outcome::Right),
        s if s.starts_with("tie") => Some(Outcome::Tie),
        _ => None,
    }
}

/// A csv error (malformed quoting, ragged rows, invalid UTF-8) with its line number.
fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::Judgements {
        path: path.into(),
        line,
        reason: e.to_string(),
    }
}

/// Item names in order of first appearance, with provisional ids.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, usize>,
    names: Vec<String>,
}

impl Interner {
    fn id(&mut self, name: &str) -> usize {
        if let Some(&i) = self.ids.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    fn contains(&self, name: &str) -> bool {
        self.ids.contains_key(name)
    }

    /// The names sorted in byte order, and the map from provisional id to sorted index.
    fn sorted(self) -> (Vec<String>, Vec<usize>) {
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_by(|&a, &b| self.names[a].as_bytes().cmp(self.names[b].as_bytes()));
        let mut remap = vec![0; order.len()];
        for (sorted, &id) in order.iter().enumerate() {
            remap[id] = sorted;
        }
        let mut names: Vec<Option<String>> = self.names.into_iter().map(Some).collect();
        let items = order.iter().filter_map(|&id| names[id].take()).collect();
        (items, remap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<JudgementLog> {
        parse(Path::new("log.csv"), s.as_bytes(), &Columns::default())
    }

    fn err(s: &str) -> String {
        parse_str(s).unwrap_err().to_string()
    }

    #[test]
    fn reads_every_winner_form_and_sorts_items() {
        let log = parse_str(
            "id,left,right,winner\n1,b,a,b\n2,c,a,right\n3,a,c,model_a\n4,b,c,Tie (bothbad)\n5,a,b,a\n",
        )
        .unwrap();
        assert_eq!(log.items, ["a", "b", "c"]);
        let got: Vec<(usize, usize, Outcome)> = log
            .judgements
            .iter()
            .map(|j| (j.left, j.right, j.outcome))
            .collect();
        use Outcome::*;
        assert_eq!(
            got,
            [
                (1, 0, Left),
                (2, 0, Right),
                (0, 2, Left),
                (1, 2, Tie),
                (0, 1, Left)
            ]
        );
    }

    #[test]
    fn custom_columns() {
        let cols = Columns {
            left: "model_a".into(),
            right: "model_b".into(),
            winner: "winner".into(),
        };
        let log = parse(
            Path::new("x"),
            b"model_a,model_b,winner\nx,y,model_b\n",
            &cols,
        )
        .unwrap();
        assert_eq!(log.judgements[0].outcome, Outcome::Right);
    }

    #[test]
    fn errors_carry_line_numbers() {
        let e = err("left,winner\na,a\n");
        assert!(
            e.starts_with("log.csv:1:") && e.contains("missing column(s) right"),
            "{e}"
        );
        let e = err("left,right,winner\na,b,a\nb,c,draw\n");
        assert!(
            e.starts_with("log.csv:3:") && e.contains("unknown winner label \"draw\""),
            "{e}"
        );
        let e = err("left,right,winner\na,b,a\nb,b,b\n");
        assert!(
            e.starts_with("log.csv:3:") && e.contains("self-comparison"),
            "{e}"
        );
        let e = err("left,right,winner\na,b,c\nc,d,c\n");
        assert!(
            e.starts_with("log.csv:2:") && e.contains("item not in this row"),
            "{e}"
        );
        let e = err("");
        assert!(
            e.starts_with("log.csv:1:") && e.contains("empty file"),
            "{e}"
        );
        let e = err("left,right,winner\n");
        assert!(e.contains("no judgements"), "{e}");
        let e = err("left,right,winner\na,b,a\na,b\n");
        assert!(e.starts_with("log.csv:3:"), "{e}");
        let e = err("left,right,winner\na,b,tie\ntie,c,c\n");
        assert!(
            e.starts_with("log.csv:2:") && e.contains("both a label"),
            "{e}"
        );
        let e = err("left,right,winner\n,b,b\n");
        assert!(
            e.starts_with("log.csv:2:") && e.contains("left item name is empty"),
            "{e}"
        );
    }

    #[test]
    fn earliest_error_wins() {
        // The unknown label on line 2 comes before the self-comparison on line 3.
        let e = err("left,right,winner\na,b,zzz\nc,c,c\n");
        assert!(e.starts_with("log.csv:2:"), "{e}");
    }
}
