"""Lanes: a stage's independent batches run side by side, one thread each, instead of one after another.

A page's recognition batches (a few crops each) keep one core busy far better than they split across
several: with T threads, ``LaneRunner.map_batches`` runs T batches at once on single-threaded copies of
the net (torch: the same net, its threads pinned to 1 in each lane; onnxruntime: one extra session with
one intra-op thread, which concurrent calls share). A single batch, and every plain call, still runs on
all T threads. Each batch is computed exactly as before, so results do not change.

Measured (``scripts/bench_speed.py``) before this became the default; a process that runs two lane maps
at once from different threads would fight over torch's thread setting, which is process-wide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import torch

from ocrlite.backends.torch import Runner

__all__ = ["LaneRunner"]

T = TypeVar("T")
R = TypeVar("R")


def _one_torch_thread() -> None:
    torch.set_num_threads(1)


class LaneRunner:
    """A runner (``wide``, on all threads) that also runs independent batches on ``lanes`` lanes of ``narrow``.

    ``narrow`` must be safe to call from several threads at once and use one thread per call;
    ``pin_torch`` pins each lane's torch threads to one (the torch backend, whose thread count is global).
    """

    def __init__(self, wide: Runner, narrow: Runner, lanes: int, pin_torch: bool) -> None:
        self.wide, self.narrow, self.lanes, self.pin_torch = wide, narrow, lanes, pin_torch
        self._pool: ThreadPoolExecutor | None = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.wide(batch)

    @property
    def top1(self) -> Callable[[np.ndarray], Any]:
        return self.wide.top1  # type: ignore[attr-defined]  # AttributeError when the runner has none

    def map_batches(self, read: Callable[[Any, T], R], items: Sequence[T]) -> list[R]:
        """``read(runner, item)`` for every item, in order: lanes when there are two items or more."""
        if len(items) < 2 or self.lanes < 2:
            return [read(self.wide, item) for item in items]
        if self._pool is None:
            pin = _one_torch_thread if self.pin_torch else None
            self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="ocrlite-lane", initializer=pin)
        threads = torch.get_num_threads()
        try:
            return list(self._pool.map(lambda item: read(self.narrow, item), items))
        finally:
            torch.set_num_threads(threads)  # a lane's pin also sets the process-wide count: put it back
