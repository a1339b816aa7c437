#!/usr/bin/env python3
"""The numpy Nash-MP a researcher would write: the peer baseline to measure nashmp against.

    python3 numpy_nashmp.py GAME.npy --beta 0.1 --alpha 2 --iters 20

Memory-maps the .npy (as np.load(mmap_mode='r')), runs Nash-MP (docs/math.md §3) with the payoff
products in the matrix dtype and the policy in float64 log space, and prints the median seconds per
iteration (two matrix-vector products each) and the final exploitability. Needs numpy only.
"""
import argparse
import time

import numpy as np


def logsumexp(z):
    m = z.max()
    return m + np.log(np.exp(z - m).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("game")
    ap.add_argument("--beta", type=float, default=0.1)
    ap.add_argument("--alpha", type=float, default=2.0)
    ap.add_argument("--iters", type=int, default=20)
    a = ap.parse_args()

    P = np.load(a.game, mmap_mode="r")
    n = P.shape[0]
    logref = np.full(n, -np.log(n))
    c = 1.0 / (1.0 + a.alpha * a.beta)

    def payoff(logpi):
        return (P @ np.exp(logpi).astype(P.dtype)).astype(np.float64)

    def prox(center, g):
        z = c * (center + a.alpha * a.beta * logref + a.alpha * g)
        return z - logsumexp(z)

    lp = logref.copy()
    times = []
    for _ in range(a.iters):
        t = time.perf_counter()
        half = prox(lp, payoff(lp))
        lp = prox(lp, payoff(half))
        times.append(time.perf_counter() - t)
    g = payoff(lp)
    pi = np.exp(lp)
    exploit = a.beta * logsumexp(logref + g / a.beta) + a.beta * float(pi @ (lp - logref)) - 0.5
    print(f"n={n} dtype={P.dtype} iters={a.iters} median_s_per_iter={np.median(times):.6f} "
          f"min_s_per_iter={min(times):.6f} exploit={exploit:.3e}")


if __name__ == "__main__":
    main()
