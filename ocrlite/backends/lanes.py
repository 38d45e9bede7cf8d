"""Lanes: a recognizer's independent batches run side by side, one torch thread each, not one after another.

With T torch threads, ``LaneRunner.map_batches`` runs T batches at once, each pinned to one thread, on the
same net (inference is thread-safe); a single batch, and every plain call, still runs on all T threads.
Each batch is computed exactly as before, so results do not change. Why: two threads splitting every op of
a small batch wait for each other at each op, and when another process takes a core that wait grows
(measured on the 2-core dev machine, 8 recognition batches of 6 lines: idle, lanes
took 1.00x (v6 small), 0.83x (v6 tiny), 1.03x (v3) the time of 2 shared threads; at load average ~3,
0.23x). The onnxruntime backend keeps one session on all threads: there, lanes were 1.01-1.21x slower idle.

torch's thread count is process-wide: two lane maps running at once from different threads of one process
would fight over it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import torch

from ocrlite.backends.torch import TorchRunner

__all__ = ["LaneRunner"]

T = TypeVar("T")
R = TypeVar("R")


def _one_torch_thread() -> None:
    torch.set_num_threads(1)


class LaneRunner:
    """A torch runner that also runs independent batches on ``lanes`` single-threaded lanes (``map_batches``)."""

    def __init__(self, runner: TorchRunner, lanes: int) -> None:
        self.runner, self.lanes = runner, lanes
        self._pool: ThreadPoolExecutor | None = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.runner(batch)

    def top1(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.runner.top1(batch)

    def map_batches(self, read: Callable[[Any, T], R], items: Sequence[T]) -> list[R]:
        """``read(runner, item)`` for every item, in order: on the lanes when there are two items or more."""
        if len(items) < 2 or self.lanes < 2:
            return [read(self.runner, item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.lanes, "ocrlite-lane", initializer=_one_torch_thread)
        try:
            return list(self._pool.map(lambda item: read(self.runner, item), items))
        finally:
            # A lane's pin also set the process-wide count that new threads start with: put back the count this
            # runner was built for (lanes = torch's threads then), not the caller's, which a pin may have reached.
            torch.set_num_threads(self.lanes)
