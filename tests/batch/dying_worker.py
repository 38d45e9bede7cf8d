"""An engine spec for tests whose worker processes die (SIGKILL) on a chosen page, as if killed or out of memory.

A module of its own (not a test module) so that spawned batch workers can unpickle the spec by name: the
tests put this folder on ``sys.path``, which spawned processes inherit.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ocrlite.batch.run import EngineSpec


@dataclass(frozen=True)
class DyingEngineSpec(EngineSpec):
    """The real OCR, except that a worker process handed a page ``width`` pixels wide kills itself, the first
    ``deaths`` times, for each (width, deaths) of ``kills``; deaths are counted as bytes of the file
    ``tally``/``width``. The main process never dies."""

    kills: tuple[tuple[int, int], ...] = ()
    tally: str = ""

    def build(self) -> Any:
        engine = super().build()
        deaths = dict(self.kills)

        def read(image: np.ndarray) -> Any:
            width = image.shape[1]
            if width in deaths and multiprocessing.parent_process() is not None:
                tally = Path(self.tally) / str(width)
                if not tally.exists() or tally.stat().st_size < deaths[width]:
                    with tally.open("ab") as marks:
                        marks.write(b"x")
                    os.kill(os.getpid(), signal.SIGKILL)
            return engine(image)

        return read


@dataclass(frozen=True)
class DeadOnArrivalSpec(EngineSpec):
    """Workers that die (SIGKILL) while loading the models, every time."""

    def build(self) -> Any:
        os.kill(os.getpid(), signal.SIGKILL)
