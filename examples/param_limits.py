"""The honest limits of the linear policy class (docs/parametric.md): conditioning of the
features and non-realizable games, measured through the binary.

    python examples/param_limits.py OUT [NASHMP]

Writes into OUT a dense float64 game `P = 1/2 + Φ M Φᵀ` (n = 2000, d = 6, entries of Φ
uniform in [-1, 1], M = w·[[0, I], [-I, 0]] with w = 1/12 so that P stays in [0, 1]) and
feature files for it:

    true.npy       Φ itself (realizable: the in-class prox is the exact prox)
    skew3.npy      Φ·A with cond(A) = 1e3 (the same class in ill-conditioned coordinates)
    skew6.npy      Φ·A with cond(A) = 1e6
    partial.npy    Φ's first two factor pairs only (d = 4: not realizable)

then runs `nashmp solve --policy linear` on each (β = 0.1, Nash-MP, 60 iterations): exactly,
with the natural estimator at B = 1000 and 16000, and with the plain gradient at the same
queries (S = 1, B = 16000; S = 16, B = 1000), query seeds 0-2, and prints one Markdown table
of the final exploitability against the full game and KL(π*‖π) (median and range over seeds).
"""

import csv
import os
import subprocess
import sys

import numpy as np

N, PAIRS, BETA, ITERS = 2000, 3, 0.1, 60


def game(out):
    rng = np.random.default_rng(7)
    phi = rng.uniform(-1.0, 1.0, size=(N, 2 * PAIRS))
    w = 1.0 / 12.0
    a, b = phi[:, :PAIRS], phi[:, PAIRS:]
    p = 0.5 + w * (a @ b.T - b @ a.T)
    assert p.min() >= 0.0 and p.max() <= 1.0
    np.save(os.path.join(out, "game.npy"), p)
    feats = {"true": phi, "partial": np.hstack([a[:, :2], b[:, :2]])}
    for tag, cond in (("skew3", 1e3), ("skew6", 1e6)):
        q, _ = np.linalg.qr(rng.standard_normal((2 * PAIRS, 2 * PAIRS)))
        s = np.geomspace(1.0, 1.0 / cond, 2 * PAIRS)
        feats[tag] = phi @ (q * s) @ q.T
    for tag, f in feats.items():
        np.save(os.path.join(out, f"{tag}.npy"), f)
    return list(feats)


def last_row(dir_):
    with open(os.path.join(dir_, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    r = rows[-1]
    return int(r["queries"]), float(r["exploit"]), float(r["kl_star"])


def main():
    out = sys.argv[1]
    exe = sys.argv[2] if len(sys.argv) > 2 else "nashmp"
    os.makedirs(out, exist_ok=True)
    tags = game(out)
    g = os.path.join(out, "game.npy")
    setups = [
        ("exact", []),
        ("natural B=1000", ["--oracle", "pg", "--batch", "1000"]),
        ("natural B=16000", ["--oracle", "pg", "--batch", "16000"]),
        ("gradient S=1 B=16000", ["--oracle", "pg", "--batch", "16000", "--estimator",
                                  "gradient", "--inner-steps", "1"]),
        ("gradient S=16 B=1000", ["--oracle", "pg", "--batch", "1000", "--estimator",
                                  "gradient", "--inner-steps", "16"]),
    ]
    print("| features | estimator | queries | exploit (median [min, max]) | kl_star (median) |")
    print("|---|---|---:|---|---:|")
    for tag in tags:
        for name, extra in setups:
            seeds = [0] if name == "exact" else [0, 1, 2]
            res = []
            for seed in seeds:
                d = os.path.join(out, f"run-{tag}-{name.replace(' ', '_')}-{seed}")
                seed_args = [] if name == "exact" else ["--seed", str(seed)]
                subprocess.run([exe, "solve", g, "--beta", str(BETA), "--algo", "nash-mp",
                                "--iters", str(ITERS), "--policy", "linear", "--features",
                                os.path.join(out, f"{tag}.npy"), *seed_args,
                                "--out", d, "--quiet", *extra], check=True)
                res.append(last_row(d))
            ex = sorted(r[1] for r in res)
            kl = sorted(r[2] for r in res)
            print(f"| {tag} | {name} | {res[0][0]} | {ex[len(ex) // 2]:.2e} "
                  f"[{ex[0]:.2e}, {ex[-1]:.2e}] | {kl[len(kl) // 2]:.2e} |")


if __name__ == "__main__":
    main()
