"""What a Python user expects: no copies, the GIL released, Ctrl-C, exceptions, progress."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import nashmp


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cyclic(n: int, dtype=np.float64) -> np.ndarray:
    d = (np.arange(n)[None, :] - np.arange(n)[:, None]) % n
    p = np.where(d == 0, 0.5, np.where(d <= (n - 1) // 2, 1.0, 0.0))
    if n % 2 == 0:
        p[d == n // 2] = 0.5
    return np.ascontiguousarray(p, dtype=dtype)


def test_from_numpy_sees_mutations_so_it_does_not_copy():
    p = cyclic(5)
    game = nashmp.Game.from_numpy(p)
    e1 = np.eye(5)[1]
    assert game.apply(e1).tolist() == p[:, 1].tolist()
    p[3, 1] = 0.25  # written after validation: seen through the game, so the game is p itself
    assert game.apply(e1)[3] == 0.25
    del p  # the game keeps the array alive
    assert game.apply(e1)[3] == 0.25


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_from_numpy_of_a_large_array_does_not_grow_rss():
    n = 8192  # 256 MiB of float32
    p = np.full((n, n), 0.5, dtype=np.float32)
    before = rss_bytes()
    game = nashmp.Game.from_numpy(p)  # validates every entry: reads all 256 MiB in place
    y = game.apply(np.full(n, 1.0 / n))
    grown = rss_bytes() - before
    assert np.allclose(y, 0.5, atol=1e-6)
    assert grown < p.nbytes // 16, f"RSS grew by {grown} bytes for a {p.nbytes}-byte array"


def test_gil_is_released_during_a_solve():
    p = cyclic(1024, np.float32)
    game = nashmp.Game.from_numpy(p)
    count = [0]
    stop = threading.Event()
    started = threading.Event()

    def spin():
        started.set()
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    started.wait()
    c0 = count[0]
    t0 = time.perf_counter()
    res = nashmp.solve(game, 0.1, iters=400, metrics="none")
    elapsed = time.perf_counter() - t0
    c1 = count[0]
    stop.set()
    t.join()
    assert res.summary["runs"][0]["iterations"] == 400
    # A held GIL would let the spinning thread run only at the 5 ms switch interval at best,
    # i.e. never while Rust computes; released, it counts continuously.
    assert c1 - c0 > 1000, f"the other thread advanced {c1 - c0} times in {elapsed:.2f}s"


@pytest.fixture
def sigint_raises():
    """SIGINT raising KeyboardInterrupt for the test's duration. Python leaves SIGINT ignored
    when its parent ignored it (a job started with `&` by a shell without job control, as
    `nohup ... &` in a script): the Ctrl-C tests would then wait forever for a signal that
    never arrives, so they install Python's default handler themselves."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_ctrl_c_raises_keyboard_interrupt_within_an_iteration(sigint_raises):
    game = nashmp.Game.from_numpy(cyclic(512, np.float32))
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        nashmp.solve(game, 0.1, iters=10**9, metrics="cheap")
    waited = time.perf_counter() - t0
    timer.join()
    assert waited < 5.0, f"KeyboardInterrupt took {waited:.2f}s"
    # The engine is usable afterwards.
    assert nashmp.solve(game, 0.1, iters=2).summary["runs"][0]["stop"] == "max-iters"


def test_ctrl_c_stops_an_equilibrium_solve(sigint_raises):
    game = nashmp.Game.from_numpy(cyclic(2048, np.float64))
    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        # Plain Nash-MP at a tiny β to a residual it never reaches: runs for minutes.
        nashmp.equilibrium(game, 1e-6, residual=0.0, anderson=0, max_iters=10**9)
    timer.join()


def test_progress_bar_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    nashmp.solve(cyclic(64), 0.1, algos="nash-mp,mmd", iters=50, progress=True)
    err = capsys.readouterr().err
    assert "100/100" in err, err


def test_threads_do_not_change_the_bits():
    game = nashmp.Game.from_numpy(cyclic(700, np.float32))
    a = nashmp.solve(game, 0.1, algos="nash-mp,omwu", iters=20, threads=1)
    b = nashmp.solve(game, 0.1, algos="nash-mp,omwu", iters=20, threads=2)
    assert a.summary["threads"] == 1 and b.summary["threads"] == 2
    for k in a.policies:
        assert a.policies[k].tobytes() == b.policies[k].tobytes()
    cols = [c for c in nashmp.COLUMNS if c not in ("algo", "seconds")]
    assert a.metrics[cols].equals(b.metrics[cols])
