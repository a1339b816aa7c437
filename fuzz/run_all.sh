#!/bin/sh
# Runs every fuzz target for SECONDS (default 60) each, from the seeds in corpus/<target>/.
# Usage: fuzz/run_all.sh [SECONDS]   (needs a nightly toolchain and `cargo install cargo-fuzz`)
set -e
cd "$(dirname "$0")"
secs=${1:-60}
for t in npy_header container text_matrix reference pairwise_csv checkpoint; do
    mkdir -p "corpus/$t"
    cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65536 \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 2>&1 | tail -n 3
done
