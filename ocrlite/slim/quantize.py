"""Post-training int8 quantization of a stage's ONNX export with ONNX Runtime (``ocrlite quantize``).

Why ONNX Runtime and not PyTorch: torch 2.13 ships no PT2E quantizers any more (they moved to torchao)
and marks the eager/FX flow deprecated, while onnxruntime is already the project's second backend, runs
int8 convolutions and MatMuls on any x86 CPU, and reads the exporter's files as they are. So:

1. the stage is exported once with the one exporter (``ocrlite.backends.export``, the head the
   onnxruntime backend expects: det ``raw``, cls ``probs``, rec ``top1``);
2. convolutions (and the other static-quantizable ops) get static QDQ int8 -- weights per channel
   (s8), activations per tensor (u8) with ranges from calibration images run through the stage's own
   preprocessing;
3. MatMul/Gemm (the CTC head's Linear, SVTR's projections) and LSTMs are excluded from step 2 and get
   *dynamic* int8 instead: weights s8, activations quantized per call, so no calibration range can clip
   the sequence features.

The result is ``OUT/<kind>.int8.onnx`` plus a stage config (``backend: onnxruntime``, ``onnx:`` the file)
that ``ocrlite ocr`` / ``ocrlite eval`` load like any other stage.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ocrlite.backends.export import export_stage
from ocrlite.backends.onnxruntime import import_onnxruntime
from ocrlite.errors import ConfigError
from ocrlite.io.images import IMAGE_EXTENSIONS, expand_inputs, read_image
from ocrlite.preprocess import det_resize, line_batch, normalize, rec_batch_width
from ocrlite.stages import StageSpec

__all__ = ["RUNNER_HEADS", "calibration_batches", "quantize_onnx", "quantize_stage"]

RUNNER_HEADS = {"det": "raw", "cls": "probs", "rec": "top1"}  # what the onnxruntime backend's runner reads
_DYNAMIC_OPS = ("MatMul", "Gemm", "LSTM")


def calibration_batches(spec: StageSpec, folder: Path, count: int, batch: int = 8) -> list[np.ndarray]:
    """Up to ``count`` images of ``folder`` preprocessed exactly as the stage's predictor does, in batches."""
    files, errors = expand_inputs([str(folder)], extensions=IMAGE_EXTENSIONS)
    if errors or not files:
        raise ConfigError(errors[0][1] if errors else f"no calibration images in {folder}")
    images = [read_image(path) for path in files[:count]]
    pre = spec.pre
    if spec.kind == "det":
        return [normalize(det_resize(image, pre.limit_side_len, pre.limit_type)[0], pre.mean, pre.std)[None]
                for image in images]
    out = []
    for start in range(0, len(images), batch):
        group = images[start : start + batch]
        width = rec_batch_width(group, pre.height, pre.width) if spec.kind == "rec" else pre.width
        out.append(line_batch(group, pre.height, width, pre.mean, pre.std))
    return out


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over prepared batches."""

    def __init__(self, name: str, batches: Sequence[np.ndarray]) -> None:
        self.name = name
        self.items: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self.items, None)
        return None if item is None else {self.name: item}

    def rewind(self) -> None:  # pragma: no cover - called by some onnxruntime versions only
        pass


def _node_names(path: Path, ops: Sequence[str]) -> list[str]:
    import onnx

    return [node.name for node in onnx.load(str(path)).graph.node if node.op_type in ops]


def quantize_onnx(fp32: Path, out: Path, batches: Sequence[np.ndarray]) -> Path:
    """Static QDQ int8 (convolutions) + dynamic int8 (MatMul, Gemm, LSTM) of ``fp32`` into ``out``."""
    import_onnxruntime()
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        prepared, static = Path(tmp) / "prepared.onnx", Path(tmp) / "static.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        dynamic_nodes = _node_names(prepared, _DYNAMIC_OPS)
        quantize_static(
            str(prepared), str(static), _Reader("x", batches), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=dynamic_nodes, extra_options={"ActivationSymmetric": False},
        )
        if dynamic_nodes:
            quantize_dynamic(str(static), str(out), weight_type=QuantType.QInt8,
                             op_types_to_quantize=list(_DYNAMIC_OPS), nodes_to_quantize=dynamic_nodes)
        else:
            out.write_bytes(static.read_bytes())
    return out


def quantize_stage(spec: StageSpec, calib: Path, out_dir: Path, count: int = 64) -> dict[str, Any]:
    """Export and quantize ``spec``'s net into ``out_dir``; return the files and their sizes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = export_stage(spec, out_dir / f"{spec.kind}.fp32.onnx", RUNNER_HEADS[spec.kind])
    int8 = quantize_onnx(fp32, out_dir / f"{spec.kind}.int8.onnx", calibration_batches(spec, calib, count))
    return {"fp32": fp32, "int8": int8, "fp32_bytes": fp32.stat().st_size, "int8_bytes": int8.stat().st_size}
