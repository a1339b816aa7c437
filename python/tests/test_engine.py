"""Known answers through the Python API: the soccer goldens, and bit equality with the CLI."""

import json

import numpy as np
import pandas as pd
import pytest

import nashmp
from conftest import DATA


def bits(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


def test_soccer_goldens_through_equilibrium(soccer):
    game = nashmp.Game.from_numpy(soccer, name="soccer.txt")
    assert game.n == 10 and game.layout == "dense f64"
    cases = json.loads((DATA / "soccer.golden.json").read_text())["cases"]
    assert any(isinstance(c["reference"], list) for c in cases)
    for case in cases:
        ref = case["reference"]
        ref = None if ref == "uniform" else np.array(ref)
        pi, cert = nashmp.equilibrium(game, case["beta"], ref=ref)
        want = np.array(case["equilibrium"])
        assert np.max(np.abs(pi - want)) <= 1e-9, (case["beta"], pi, want)
        assert cert["residual"] <= 1e-11 and cert["stop"] in ("converged", "stalled")
        assert cert["exploit"] >= 0 and cert["iterations"] > 0


def test_equilibrium_bits_equal_the_cli(tmp_path, soccer, cli):
    path = tmp_path / "soccer.npy"
    np.save(path, soccer)
    cli("equilibrium", path, "--beta", "0.1", "--out", tmp_path / "pi.npy")
    pi, _ = nashmp.equilibrium(nashmp.Game.open(path), 0.1)
    assert np.array_equal(bits(pi), bits(np.load(tmp_path / "pi.npy")))


def read_metrics(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def same_table(got: pd.DataFrame, want: pd.DataFrame):
    assert list(got.columns) == list(want.columns) == list(nashmp.COLUMNS)
    assert len(got) == len(want)
    assert list(got["algo"]) == list(want["algo"])
    for c in ("iter", "queries"):
        assert np.array_equal(got[c].to_numpy(), want[c].to_numpy()), c
    for c in nashmp.METRIC_COLUMNS:
        g, w = got[c].to_numpy(dtype=np.float64), want[c].to_numpy(dtype=np.float64)
        assert np.array_equal(np.isnan(g), np.isnan(w)), c
        # metrics.csv holds the shortest round-trip form, so parsing gives the same bits.
        assert np.array_equal(bits(g[~np.isnan(g)]), bits(w[~np.isnan(w)])), c


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"oracle": "sampled", "samples": 4, "seed": 7},
        {"metrics": "cheap", "tol": 1e-3},
    ],
    ids=["exact", "sampled", "cheap-tol"],
)
def test_solve_equals_cli_metrics_and_policy_bits(tmp_path, cli, extra):
    path = nashmp.generate("mixture", 96, seed=5, path=tmp_path / "g.npy", dtype="f32")
    algos = ["nash-mp", "mmd", "mwu"] if not extra.get("oracle") else ["nash-mp", "mmd"]
    flags = []
    for k, v in extra.items():
        flags += ["--" + k.replace("_", "-"), v]
    out = tmp_path / "out"
    cli("solve", path, "--beta", "0.05", "--algo", ",".join(algos), "--iters", "40",
        "--out", out, *flags)
    want = read_metrics(out / "metrics.csv")
    summary = json.loads((out / "summary.json").read_text())
    for game in (nashmp.Game.open(path), nashmp.Game.from_numpy(np.load(path))):
        res = nashmp.solve(game, 0.05, algos=algos, iters=40, **extra)
        same_table(res.metrics, want)
        labels = set(res.policies)
        assert labels == {f.name[: -len(".policy.npy")] for f in out.glob("*.policy.npy")}
        for label, pi in res.policies.items():
            assert np.array_equal(bits(pi), bits(np.load(out / f"{label}.policy.npy"))), label
        if (out / "equilibrium.npy").exists():
            assert np.array_equal(bits(res.equilibrium), bits(np.load(out / "equilibrium.npy")))
        else:
            assert res.equilibrium is None
        for mine, theirs in zip(res.summary["runs"], summary["runs"]):
            for k in ("algo", "alpha", "eta", "stop", "iterations", "queries", "final"):
                assert mine[k] == theirs[k], k
        if summary["equilibrium"] is not None:
            assert res.summary["equilibrium"]["certificate"] == \
                summary["equilibrium"]["certificate"]


def test_metrics_without_pandas_are_numpy_columns(monkeypatch, soccer):
    import builtins

    real = builtins.__import__

    def no_pandas(name, *a, **k):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("no pandas here")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    res = nashmp.solve(soccer, 0.1, iters=5)
    assert isinstance(res.metrics, dict) and tuple(res.metrics) == nashmp.COLUMNS
    assert res.metrics["iter"].tolist() == list(range(6))
    assert res.metrics["kl_star"].dtype == np.float64


def test_generate_writes_the_cli_bytes(tmp_path, cli):
    for family, layout, dtype, opts in [
        ("bradley-terry", "dense", "f64", {"sigma": 2.0}),
        ("cyclic", "packed", "u16", {"noise": 0.25}),
        ("block", None, None, {"types": 4}),
    ]:
        mine = tmp_path / f"{family}.py.nmp"
        theirs = tmp_path / f"{family}.cli.nmp"
        if layout == "dense" and dtype != "u16":
            mine, theirs = mine.with_suffix(".npy"), theirs.with_suffix(".npy")
        nashmp.generate(family, 300, seed=9, path=mine, layout=layout, dtype=dtype, **opts)
        flags = [] if layout is None else ["--layout", layout, "--dtype", dtype]
        for k, v in opts.items():
            flags += ["--" + k, v]
        cli("generate", family, "--n", 300, "--seed", 9, "--out", theirs, *flags)
        assert mine.read_bytes() == theirs.read_bytes(), family
        g = nashmp.Game.open(mine)
        assert g.n == 300 and g.path == mine


def test_apply_is_p_times_x(soccer):
    game = nashmp.Game.from_numpy(soccer)
    x = np.linspace(0.0, 1.0, 10)
    assert np.allclose(game.apply(x), soccer @ x, rtol=0, atol=1e-14)
    # Lists, float32 and strided vectors are converted to contiguous float64 first.
    assert np.array_equal(game.apply(list(x)), game.apply(x))
    assert np.array_equal(game.apply(x.astype(np.float32)), game.apply(x.astype(np.float32)
                                                                        .astype(np.float64)))
    assert np.array_equal(game.apply(np.repeat(x, 2)[::2]), game.apply(x))
    with pytest.raises(ValueError, match="9 entries but the game has 10"):
        game.apply(x[:9])
    p32 = soccer.astype(np.float32)
    p32 = 0.5 * (p32 + (1 - p32.T))  # skew-consistent in float32 arithmetic
    g32 = nashmp.Game.from_numpy(p32)
    assert g32.layout == "dense f32"
    assert np.allclose(g32.apply(x), p32.astype(np.float64) @ x, rtol=0, atol=1e-6)


def test_judgements_and_rank_equal_the_cli(tmp_path, soccer, cli):
    path = tmp_path / "soccer.npy"
    np.save(path, soccer)
    log = tmp_path / "log.csv"
    cli("generate-judgements", path, "--count", 2000, "--seed", 3, "--out", log)
    game, items = nashmp.from_judgements(pd.read_csv(log), smoothing=0.5)
    cli("import-pairwise", log, "--out", tmp_path / "cli.npy", "--smoothing", "0.5")
    want = np.load(tmp_path / "cli.npy")
    assert items == (tmp_path / "cli.items.txt").read_text().splitlines()
    assert game.n == len(items) == want.shape[0]
    e = np.eye(game.n)
    cols = np.stack([game.apply(e[k]) for k in range(game.n)], axis=1)
    assert np.array_equal(bits(cols), bits(want))

    g2, _ = nashmp.from_judgements(log, smoothing=0.5, out=tmp_path / "py.npy")
    table = nashmp.rank(g2, 0.1, bootstrap=20, log=log, seed=4)
    cli("rank", tmp_path / "cli.npy", "--beta", 0.1, "--bootstrap", 20, "--log", log,
        "--seed", 4, "--out", tmp_path / "rank.csv")
    theirs = pd.read_csv(tmp_path / "rank.csv", keep_default_na=False, na_values=[""])
    assert list(table.columns) == ["rank", "item", "probability", "ci_low", "ci_high",
                                   "rank_low", "rank_high", "von_neumann"]
    pd.testing.assert_frame_equal(table, theirs, check_exact=True)


def test_sweep_summary_equals_the_cli(tmp_path, cli):
    opts = dict(families=["uniform", "cyclic"], sizes=[24, 48], betas=[0.1],
                algos=["nash-mp", "mmd"], seeds=[0, 1], iters=30)
    table = nashmp.sweep(tmp_path / "py", **opts)
    flags = []
    for k, v in opts.items():
        flags += ["--" + k, ",".join(map(str, v)) if isinstance(v, list) else v]
    cli("sweep", "--out", tmp_path / "cli", "--cache", tmp_path / "cli" / "games", *flags)
    for f in ("summary.csv", "runs.csv"):
        assert (tmp_path / "py" / f).read_bytes() == (tmp_path / "cli" / f).read_bytes(), f
    assert len(table) == 2 * 2 * 2  # families × sizes × algorithms
    assert set(table["algo"]) == {"nash-mp", "mmd"}


def test_sweep_policy_and_oracle_axes(tmp_path):
    """The linear class next to the tabular one: on a low-rank game (realizable) its exact
    runs reach the same final distance; its sampled runs count 2·B queries per iteration."""
    table = nashmp.sweep(tmp_path / "ax", families=["low-rank"], structured_sizes=[150],
                         betas=[1], algos=["nash-mp"], seeds=[0], iters=10,
                         policy=["tabular", "linear"], oracle=["exact", "pg"], batch=500,
                         tabular_batch_per_n=4, eps=1e-3)
    assert set(zip(table["policy"], table["oracle"])) == {
        ("tabular", "exact"), ("tabular", "pg"), ("linear", "exact"), ("linear", "pg")}
    exact = table[table["oracle"] == "exact"].set_index("policy")
    assert abs(exact.loc["linear", "final_kl_star"] - exact.loc["tabular", "final_kl_star"]) < 1e-12
    runs = pd.read_csv(tmp_path / "ax" / "runs.csv")
    lin = runs[(runs["policy"] == "linear") & (runs["oracle"] == "pg")]
    assert (lin["queries"] == 2 * 500 * lin["iter"]).all()
