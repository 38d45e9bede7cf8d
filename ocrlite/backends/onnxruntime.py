"""ONNX Runtime runner: plugs an ``.onnx`` net into the pipeline in place of a torch net.

onnxruntime is an optional dependency (``pip install ocrlite[convert]``); it is imported only when
a runner is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OnnxRunner"]


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "OnnxRunner needs onnxruntime: pip install onnxruntime (or ocrlite[convert])"
        ) from exc
    return onnxruntime


class OnnxRunner:
    """Run an ONNX model on the CPU: float32 NCHW batch in, its first output out.

    ``threads`` sets onnxruntime's intra-op thread count (None = onnxruntime's default, all cores);
    inter-op parallelism is off (one thread), graph optimisations are on (ORT_ENABLE_ALL).
    """

    def __init__(self, model_path: str | Path, threads: int | None = None) -> None:
        ort = _import_onnxruntime()
        model_path = Path(model_path)
        if not model_path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {model_path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the PP-OCR exports declare a fixed T and warn per call
        if threads is not None:
            options.intra_op_num_threads = threads
        self.model_path = model_path
        self.threads = threads
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name: str = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        inputs = {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}
        return self.session.run(None, inputs)[0]

    def __repr__(self) -> str:
        return f"OnnxRunner({str(self.model_path)!r}, threads={self.threads})"
