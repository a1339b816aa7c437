#!/usr/bin/env python3
"""Seconds per Nash-MP iteration on one game, side by side in one run: the `nashmp` binary, this
package (a mapped file and a borrowed numpy array), and the plain numpy Nash-MP a researcher
would write (benches/peer/numpy_nashmp.py).

    python python/bench/iteration_time.py --bin target/release/nashmp --game /tmp/g16k.npy \
        --n 16384 --iters 30 --rounds 3 --numpy-script benches/peer/numpy_nashmp.py

The game is generated (uniform, float32, seed 0) if the file does not exist. The rounds are
interleaved so that drifts of the machine's memory bandwidth hit every contender alike. The
engine's figure is its own in-loop timer (summary `seconds / iterations`, which excludes opening
and validating the game); the Python row also gives the wall time of the `solve` call.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import nashmp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--game", required=True)
    ap.add_argument("--n", type=int, default=16384)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--numpy-script")
    a = ap.parse_args()

    if not os.path.exists(a.game):
        nashmp.generate("uniform", a.n, seed=0, path=a.game, dtype="f32")
    game_file = nashmp.Game.open(a.game)
    game_array = nashmp.Game.from_numpy(np.load(a.game, mmap_mode="r"))
    rows = {k: [] for k in ("cli", "python-open", "python-numpy", "python-wall", "numpy")}
    out = tempfile.mkdtemp(prefix="nashmp-bench-")
    for r in range(a.rounds):
        subprocess.run([a.bin, "solve", a.game, "--beta", str(a.beta), "--algo", "nash-mp",
                        "--alpha", "2", "--iters", str(a.iters), "--metrics", "none",
                        "--out", out], check=True, capture_output=True)
        run = json.load(open(os.path.join(out, "summary.json")))["runs"][0]
        rows["cli"].append(run["seconds"] / run["iterations"])
        for key, g in (("python-open", game_file), ("python-numpy", game_array)):
            t = time.perf_counter()
            res = nashmp.solve(g, a.beta, iters=a.iters, alpha=2.0, metrics="none")
            wall = time.perf_counter() - t
            run = res.summary["runs"][0]
            rows[key].append(run["seconds"] / run["iterations"])
            if key == "python-open":
                rows["python-wall"].append(wall / run["iterations"])
        if a.numpy_script:
            p = subprocess.run([sys.executable, a.numpy_script, a.game, "--beta", str(a.beta),
                                "--alpha", "2", "--iters", str(a.iters)],
                               check=True, capture_output=True, text=True)
            rows["numpy"].append(float(re.search(r"median_s_per_iter=([0-9.e-]+)",
                                                 p.stdout).group(1)))
    cli = statistics.median(rows["cli"])
    print(f"n={game_file.n} {game_file.layout}, {a.iters} Nash-MP iterations x {a.rounds} "
          f"interleaved rounds; median seconds per iteration:")
    for k, v in rows.items():
        if v:
            m = statistics.median(v)
            print(f"  {k:<13} {m * 1e3:8.2f} ms   {m / cli:6.3f} x cli   "
                  f"(rounds: {', '.join(f'{x * 1e3:.2f}' for x in v)})")


if __name__ == "__main__":
    main()
