"""Shared fixtures: the repository's test data and the `nashmp` binary to compare against."""

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def soccer() -> np.ndarray:
    return np.loadtxt(DATA / "soccer.txt", dtype=np.float64)


@pytest.fixture(scope="session")
def nashmp_bin() -> str:
    """The CLI binary: $NASHMP_BIN (set by .ci/run), else `nashmp` on PATH."""
    b = os.environ.get("NASHMP_BIN") or shutil.which("nashmp")
    if not b or not os.path.exists(b):
        if os.environ.get("NASHMP_REQUIRE_BIN"):
            pytest.fail(f"NASHMP_BIN={b!r} is not a file")
        pytest.skip("no nashmp binary to compare with: set NASHMP_BIN=target/release/nashmp")
    return b


@pytest.fixture
def cli(nashmp_bin):
    def run(*args):
        r = subprocess.run([nashmp_bin, *map(str, args)], capture_output=True, text=True)
        assert r.returncode == 0, f"nashmp {' '.join(map(str, args))}: {r.stderr}"
        return r.stdout

    return run
