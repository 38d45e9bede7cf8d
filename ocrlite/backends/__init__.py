"""Runners: the interface through which a predictor calls a net (PyTorch, ONNX Runtime).

A runner maps a float32 NCHW batch to a numpy array of probabilities (``Runner``); ``torch`` wraps our nets,
``onnxruntime`` runs ``.onnx`` files, and both plug into the predictors the same way.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["Runner"]

Runner = Callable[[np.ndarray], np.ndarray]
