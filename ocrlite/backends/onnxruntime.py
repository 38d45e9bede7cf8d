"""ONNX Runtime runner: plugs an ``.onnx`` net into the pipeline in place of a torch net.

onnxruntime is an optional dependency (``pip install "ocrlite[onnx]"``); it is imported only when
a runner is built. ``OnnxRunner`` also runs ocrlite's own exports (``ocrlite.backends.export``); for a
recognizer exported with the ``top1`` head it returns best classes and their probabilities (``top1``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from ocrlite.errors import BackendError

__all__ = ["OnnxRunner", "INSTALL_HINT", "import_onnxruntime"]

INSTALL_HINT = 'the onnxruntime backend needs onnxruntime: pip install "ocrlite[onnx]"'


def import_onnxruntime() -> Any:
    """The onnxruntime module, or a BackendError saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise BackendError(INSTALL_HINT) from None
    return onnxruntime


class OnnxRunner:
    """Run an ONNX model on the CPU: float32 NCHW batch in, its first output out.

    ``model_path`` is a file or a serialized model; ``threads`` sets onnxruntime's intra-op thread count
    (None = onnxruntime's default, all cores); inter-op parallelism is off (one thread). ``optimize``: all graph
    optimisations (ORT_ENABLE_ALL, the pipeline's choice), or only the basic ones that keep the float
    arithmetic of the graph as written ("basic": parity checks of an export).
    """

    def __init__(self, model_path: str | Path | bytes, threads: int | None = None,
                 optimize: Literal["all", "basic"] = "all") -> None:
        ort = import_onnxruntime()
        model = model_path if isinstance(model_path, bytes) else str(model_path)
        model_path = Path("<in memory>" if isinstance(model_path, bytes) else model_path)
        if not isinstance(model, bytes) and not model_path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {model_path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize == "all"
                                            else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the PP-OCR exports declare a fixed T and warn per call
        if threads is not None:
            options.intra_op_num_threads = threads
        self.model_path = model_path
        self.threads = threads
        try:
            self.session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own error types: a truncated or damaged file, not a model
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BackendError(f"{model_path}: cannot load the ONNX model: {reason}") from None
        self.input_name: str = self.session.get_inputs()[0].name
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        inputs = {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}
        return self.session.run(None, inputs)[0]

    def top1(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best class and its probability per step (N x T each), from an export with the ``top1`` head."""
        if self.output_names[:2] != ["index", "prob"]:
            raise TypeError(f"{self.model_path.name} has no top1 outputs (index, prob)")
        index, prob = self.session.run(
            self.output_names[:2], {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return index, prob

    def __repr__(self) -> str:
        return f"OnnxRunner({str(self.model_path)!r}, threads={self.threads})"
