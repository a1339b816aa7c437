//! Progress bars on stderr when it is a terminal; nothing otherwise.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A bar counting bytes, with rate and ETA.
pub fn bytes(total: u64) -> ProgressBar {
    bar(
        total,
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
    )
}

/// A bar counting items (iterations).
pub fn items(total: u64, unit: &str) -> ProgressBar {
    bar(
        total,
        &format!("{{bar:40}} {{pos}}/{{len}} {unit}, {{elapsed}} (ETA {{eta}})"),
    )
}

fn bar(total: u64, template: &str) -> ProgressBar {
    if super::silent() || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        b.set_style(style);
    }
    b
}
