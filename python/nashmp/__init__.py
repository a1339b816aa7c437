"""nashmp: Nash learning from human feedback at scale, from Python.

The engine of the ``nashmp`` command line (Nash Mirror Prox and its baselines, the certified
equilibrium solver, game generators, pairwise rankings), on numpy arrays without copies::

    import numpy as np, nashmp
    P = np.load("game.npy", mmap_mode="r")
    game = nashmp.Game.from_numpy(P)          # borrowed in place, validated like a file
    pi, certificate = nashmp.equilibrium(game, beta=0.1)
    result = nashmp.solve(game, beta=0.1, algos=("nash-mp", "mmd"), iters=200)
    result.metrics                            # pandas DataFrame: metrics.csv's columns

Computation runs without the GIL (other Python threads keep running); Ctrl-C raises
``KeyboardInterrupt`` within an iteration; bad inputs raise ``ValueError`` (matrices,
parameters) or ``FileNotFoundError``/``OSError`` (files) with the CLI's messages. Results are
bit-identical to the CLI's on the same inputs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _nashmp
from ._nashmp import METRIC_COLUMNS, Game, __version__

__all__ = [
    "Game",
    "SolveResult",
    "equilibrium",
    "solve",
    "generate",
    "from_judgements",
    "rank",
    "sweep",
    "METRIC_COLUMNS",
    "__version__",
]

PathLike = Union[str, "os.PathLike[str]"]
GameLike = Union[Game, np.ndarray, PathLike]

#: Columns of ``metrics.csv`` (and of :attr:`SolveResult.metrics`), in order.
COLUMNS: Tuple[str, ...] = ("algo", "iter", "queries", *METRIC_COLUMNS, "seconds")


def _game(game: GameLike) -> Game:
    if isinstance(game, Game):
        return game
    if isinstance(game, np.ndarray):
        return Game.from_numpy(game)
    if isinstance(game, (str, os.PathLike)):
        return Game.open(game)
    raise TypeError(f"expected a nashmp.Game, a numpy array or a path, got {type(game).__name__}")


def _vector(v: Any) -> Any:
    """A reference/initial policy: a path stays a path, anything else becomes float64."""
    if v is None or isinstance(v, (str, os.PathLike)):
        return v
    return np.ascontiguousarray(v, dtype=np.float64)


def _table(columns: Dict[str, Any], order: Sequence[str]) -> Any:
    """A pandas DataFrame if pandas is installed, else the dict of numpy arrays."""
    try:
        import pandas as pd
    except ImportError:
        return {k: np.asarray(columns[k]) for k in order}
    return pd.DataFrame({k: columns[k] for k in order}, columns=list(order))


class _Progress:
    """A tqdm bar fed by the extension's progress callback (nothing if tqdm is missing)."""

    def __init__(self, enabled: bool, total: int, desc: str):
        self.bar = None
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            import warnings

            warnings.warn("progress=True needs tqdm (pip install tqdm); no progress shown")
            return
        self.bar = tqdm(total=total, desc=desc, unit="it")

    @property
    def callback(self):
        if self.bar is None:
            return None
        bar = self.bar

        def update(done: int) -> None:
            bar.update(done - bar.n)

        return update

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class SolveResult:
    """What :func:`solve` returns (the contents of the CLI's output folder, in memory).

    Attributes:
        metrics: one row per algorithm and logged iterate, the columns of ``metrics.csv``
            (empty cells are NaN): a pandas DataFrame, or a dict of numpy arrays without pandas.
        policies: label → final policy (float64 probabilities), as ``<label>.policy.npy``.
        equilibrium: π* (float64 probabilities) when the metrics needed it, else None.
        summary: the fields of ``summary.json`` (parameters, certificate, each run's stop
            reason, iterations, queries, seconds and final metrics).
    """

    def __init__(self, metrics: Any, policies: Dict[str, np.ndarray],
                 equilibrium: Optional[np.ndarray], summary: Dict[str, Any]):
        self.metrics = metrics
        self.policies = policies
        self.equilibrium = equilibrium
        self.summary = summary

    def __repr__(self) -> str:
        runs = ", ".join(f"{r['algo']}: {r['iterations']} iters, {r['stop']}"
                         for r in self.summary.get("runs", []))
        return f"<nashmp.SolveResult {runs}>"


def equilibrium(game: GameLike, beta: float, ref: Any = None, residual: float = 1e-12,
                max_iters: int = 1_000_000, anderson: int = 16,
                threads: Optional[int] = None) -> Tuple[np.ndarray, Dict[str, Any]]:
    """The β-regularised equilibrium π* and its certificate (``nashmp equilibrium``).

    Args:
        game: a :class:`Game`, a square float32/float64 array, or a game file.
        beta: regularisation strength β > 0.
        ref: reference policy μ (probabilities, or a ``.npy`` path); default uniform.
        residual: target fixed-point residual.
        max_iters: map evaluations (Nash-MP iterations) at most.
        anderson: Anderson history length (0: plain Nash-MP at α = 2).
        threads: worker threads (default: all cores); results do not depend on it.

    Returns:
        ``(pi, certificate)``: π* as float64 probabilities, and a dict with ``iterations``,
        ``queries``, ``residual``, ``exploit``, ``exploit0``, ``stop``, ``memory``,
        ``rejected``, ``fallback``.
    """
    _count("max_iters", max_iters)
    _count("anderson", anderson)
    pi, cert = _nashmp.equilibrium(_game(game), float(beta), _vector(ref), float(residual),
                                   int(max_iters), int(anderson), threads)
    return pi, json.loads(cert)


def solve(game: GameLike, beta: float, algos: Union[str, Iterable[str]] = ("nash-mp",),
          iters: int = 1000, alpha: Optional[float] = None, eta: Optional[float] = None,
          ref: Any = None, init: Any = "reference", metrics: Optional[str] = None,
          tol: Optional[float] = None, schedule: str = "constant", oracle: str = "exact",
          samples: Optional[int] = None, inner_steps: Optional[int] = None,
          batch: Optional[int] = None, inner_lr: Optional[float] = None,
          seed: Optional[int] = None, threads: Optional[int] = None,
          progress: bool = False) -> SolveResult:
    """Runs Nash-MP and/or the baselines on a game (``nashmp solve``), in memory.

    Args:
        game: a :class:`Game`, a square float32/float64 array, or a game file.
        beta: regularisation strength β ≥ 0.
        algos: algorithm names (``nash-mp``, ``mmd``, ``omwu``, ``egpo``, ``nash-md``, ``mwu``),
            a sequence or a comma-separated string.
        iters: iterations per algorithm.
        alpha: step size α (default: each algorithm's); or ``eta`` = α·β, not both.
        ref: reference policy μ (probabilities or a ``.npy`` path); default uniform.
        init: starting policy: ``"reference"``, ``"uniform"``, probabilities or a path.
        metrics: ``"full"`` (default for β > 0), ``"cheap"`` (default for β = 0) or ``"none"``.
        tol: stop an algorithm once its exploitability is ≤ tol.
        schedule: Nash-MD's step schedule, ``"constant"`` or ``"decaying"``.
        oracle: ``"exact"``, ``"sampled"`` (with ``samples``) or ``"pg"`` (with
            ``inner_steps``, ``batch``, optional ``inner_lr``); ``seed`` seeds the queries.
        threads: worker threads (default: all cores); results do not depend on it.
        progress: show a tqdm progress bar (if tqdm is installed).

    Returns:
        a :class:`SolveResult`.
    """
    _count("iters", iters)
    if isinstance(algos, str):
        algos = [a for a in algos.split(",") if a]
    algos = list(algos)
    g = _game(game)
    bar = _Progress(progress, int(iters) * len(algos), "nashmp solve")
    try:
        cols, policies, eq, summary = _nashmp.solve(
            g, float(beta), algos, int(iters), alpha, eta, _vector(ref),
            init if isinstance(init, str) else _vector(init), metrics, tol, schedule, oracle,
            samples, inner_steps, batch, inner_lr, seed, threads, bar.callback)
    finally:
        bar.close()
    cols["algo"] = np.asarray(cols["algo"], dtype=object)
    cols["iter"] = cols["iter"].astype(np.int64)
    cols["queries"] = cols["queries"].astype(np.int64)
    return SolveResult(_table(cols, COLUMNS), policies, eq, json.loads(summary))


def _count(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"{name} must be a whole number ≥ 0, got {v!r}")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _run(args: List[str], threads: Optional[int] = None) -> None:
    _nashmp.run_command([str(a) for a in args], threads)


def generate(family: str, n: int, seed: int = 0, path: Optional[PathLike] = None,
             layout: Optional[str] = None, dtype: Optional[str] = None,
             threads: Optional[int] = None,
             **family_options: Any) -> Path:
    """Writes a synthetic game to ``path`` (``nashmp generate``), reproducibly.

    Args:
        family: ``uniform``, ``bradley-terry``, ``cyclic``, ``disc``, ``mixture``, ``low-rank``
            or ``block``.
        n: number of actions.
        seed: the game's seed: same seed, same bytes (whatever ``threads``).
        path: output file, ``.npy`` for dense f32/f64, a nashmp container (``.nmp``) otherwise.
        layout: ``dense`` or ``packed``; dtype: ``f32``, ``f64`` or ``u16`` (default: the
            CLI's, dense f32; the factored families ``low-rank`` and ``block`` take neither).
        **family_options: ``sigma``, ``noise``, ``rank``, ``weight``, ``types`` (as the CLI's
            flags).

    Returns:
        the path written (open it with :meth:`Game.open`).
    """
    if path is None:
        raise ValueError("generate needs path=…, the file to write")
    args = ["generate", family, "--n", int(n), "--seed", int(seed), "--out", os.fspath(path)]
    if layout is not None:
        args += ["--layout", layout]
    if dtype is not None:
        args += ["--dtype", dtype]
    for k, v in family_options.items():
        args += [_flag(k), v]
    _run(args, threads)
    return Path(path)


def from_judgements(judgements: Any, left: str = "left", right: str = "right",
                    winner: str = "winner", smoothing: float = 1.0, fill: str = "half",
                    out: Optional[PathLike] = None) -> Tuple[Game, List[str]]:
    """Estimates a game from pairwise judgements (``nashmp import-pairwise``).

    Args:
        judgements: a CSV path or a pandas DataFrame with one judgement per row.
        left, right, winner: the columns (the winner is an item name, left/right,
            model_a/model_b, or a tie).
        smoothing: pseudo-count k of the Beta(k, k) prior.
        fill: how pairs never compared are filled: ``half`` or ``bradley-terry``.
        out: where to write the game (float64 ``.npy``, with ``.items.txt`` and
            ``.coverage.json`` beside it); default: held in memory only.

    Returns:
        ``(game, items)``: the game and the item names, in the game's order.
    """
    tmp = tempfile.mkdtemp(prefix="nashmp-")
    try:
        if isinstance(judgements, (str, os.PathLike)):
            log = os.fspath(judgements)
        else:
            log = os.path.join(tmp, "judgements.csv")
            judgements.to_csv(log, index=False)
        dest = os.fspath(out) if out is not None else os.path.join(tmp, "game.npy")
        _run(["import-pairwise", log, "--out", dest, "--left", left, "--right", right,
              "--winner", winner, "--smoothing", repr(float(smoothing)), "--fill", fill])
        items = Path(dest).with_suffix(".items.txt").read_text(encoding="utf-8").splitlines()
        game = Game.open(dest) if out is not None else Game.from_numpy(np.load(dest),
                                                                       name=log)
        return game, items
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def rank(game: Union[Game, PathLike], beta: float, bootstrap: Optional[int] = None,
         log: Optional[PathLike] = None, left: str = "left", right: str = "right",
         winner: str = "winner", seed: int = 0, level: float = 0.95,
         smoothing: Optional[float] = None, fill: Optional[str] = None,
         vn_floor: float = 1e-3) -> Any:
    """Ranks items by equilibrium probability (``nashmp rank``).

    Args:
        game: a game file (or a :class:`Game` opened from one); item names come from
            ``GAME.items.txt`` beside it if present.
        beta: regularisation strength β > 0 of the ranking equilibrium (uniform reference).
        bootstrap: replicates of percentile intervals (needs ``log``, the judgements the game
            was imported from); ``seed``, ``level``, ``smoothing``, ``fill`` as the CLI's.
        vn_floor: smallest β of the von Neumann path.

    Returns:
        a DataFrame (dict of arrays without pandas) with the CLI's columns: ``rank``, ``item``,
        ``probability``, ``ci_low``, ``ci_high``, ``rank_low``, ``rank_high``, ``von_neumann``.
    """
    if isinstance(game, Game):
        if game.path is None:
            raise ValueError("rank needs a game file; write the array with np.save or use "
                             "from_judgements(..., out=PATH)")
        game = game.path
    tmp = tempfile.mkdtemp(prefix="nashmp-")
    try:
        out = os.path.join(tmp, "rank.csv")
        args = ["rank", os.fspath(game), "--beta", repr(float(beta)), "--seed", int(seed),
                "--level", repr(float(level)), "--vn-floor", repr(float(vn_floor)),
                "--left", left, "--right", right, "--winner", winner, "--out", out,
                "--quiet"]
        if bootstrap is not None:
            args += ["--bootstrap", int(bootstrap)]
        if log is not None:
            args += ["--log", os.fspath(log)]
        if smoothing is not None:
            args += ["--smoothing", repr(float(smoothing))]
        if fill is not None:
            args += ["--fill", fill]
        _run(args)
        return _read_csv(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_csv(path: str) -> Any:
    try:
        import pandas as pd
    except ImportError:
        data = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")
        return {k: data[k] for k in data.dtype.names}
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def sweep(out: PathLike, preset: str = "quick", threads: Optional[int] = None,
          **options: Any) -> Any:
    """The size-independence experiment (``nashmp sweep``): runs the grid into ``out`` and
    returns ``summary.csv`` as a DataFrame.

    Args:
        out: output folder (runs.csv, summary.csv/.md, plots).
        preset: ``quick`` or ``full``; ``options`` override its lists as the CLI's flags do:
            ``families``, ``sizes``, ``structured_sizes``, ``betas``, ``algos``,
            ``large_algos``, ``seeds`` (sequences), ``iters``, ``large_max_iters``, ``cache``
            (folder of generated games, default ``out/games``), ``one_by_one``, ``compare``;
            the policy and oracle axes ``policy`` (``["tabular", "linear"]``), ``oracle``
            (``["exact", "pg"]``), ``batch``, ``tabular_batch_per_n``, ``tabular_pg_max_n``
            and ``eps`` (the target of the ``queries_to_exploit_<eps>`` column).
    """
    out = os.fspath(out)
    cache = options.pop("cache", os.path.join(out, "games"))
    args = ["sweep", "--preset", preset, "--out", out, "--cache", os.fspath(cache)]
    for k, v in options.items():
        if isinstance(v, bool):
            if v:
                args.append(_flag(k))
        elif isinstance(v, (list, tuple)):
            args += [_flag(k), ",".join(str(x) for x in v)]
        else:
            args += [_flag(k), str(v)]
    _nashmp.sweep(args, threads)
    return _read_csv(os.path.join(out, "summary.csv"))
