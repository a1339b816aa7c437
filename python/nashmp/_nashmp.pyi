"""Type stub of the compiled extension nashmp._nashmp (use the wrappers in nashmp instead)."""

import os
import pathlib
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str
METRIC_COLUMNS: List[str]

class Game:
    """A preference game P (P[i][j] = P(i beats j), P + Pᵀ = 1) seen as the operator x ↦ P x."""

    @staticmethod
    def open(path: Union[str, os.PathLike[str]], skew_tol: Optional[float] = None) -> Game:
        """Maps a game file of any layout the CLI reads (.npy, nashmp container) and validates
        every entry (finite, in [0, 1], skew-consistent within skew_tol: default 1e-6 for
        float32, 1e-9 for float64)."""
        ...
    @staticmethod
    def from_numpy(array: npt.NDArray[Any], skew_tol: Optional[float] = None,
                   name: str = "numpy array") -> Game:
        """Borrows a 2-D C-contiguous float32/float64 square array without a copy (the game keeps
        it alive) and validates it like a file; `name` names it in error messages. Writing into
        the array later is seen by the game (it is not validated again); writing while a
        computation runs on it is a data race."""
        ...
    @property
    def n(self) -> int:
        """Number of actions."""
        ...
    @property
    def path(self) -> Optional[pathlib.Path]:
        """The file the game was opened from (None for an array)."""
        ...
    @property
    def layout(self) -> str:
        """Storage layout and element type, e.g. 'dense f32'."""
        ...
    def describe(self) -> str: ...
    def apply(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """P x for a contiguous float64 vector x of length n."""
        ...

def equilibrium(game: Game, beta: float, reference: Any = None, residual: float = 1e-12,
                max_iters: int = 1_000_000, anderson: int = 16,
                threads: Optional[int] = None) -> Tuple[npt.NDArray[np.float64], str]: ...
def solve(game: Game, beta: float, algos: List[str], iters: int, alpha: Optional[float],
          eta: Optional[float], reference: Any, init: Any, metrics: Optional[str],
          tol: Optional[float], schedule: str, oracle: str, samples: Optional[int],
          inner_steps: Optional[int], batch: Optional[int], inner_lr: Optional[float],
          seed: Optional[int], threads: Optional[int],
          progress: Optional[Callable[[int], None]]
          ) -> Tuple[Dict[str, Any], Dict[str, npt.NDArray[np.float64]],
                     Optional[npt.NDArray[np.float64]], str]: ...
def run_command(args: List[str], threads: Optional[int] = None) -> None: ...
def sweep(args: List[str], threads: Optional[int] = None) -> None: ...
