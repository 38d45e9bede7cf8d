"""Post-training int8 quantization of a stage's ONNX export with ONNX Runtime (``ocrlite quantize``).

Why ONNX Runtime and not PyTorch: torch 2.13 ships no PT2E quantizers any more (they moved to torchao)
and marks the eager/FX flow deprecated, while onnxruntime is already the project's second backend, runs
int8 convolutions and MatMuls on any x86 CPU, and reads the exporter's files as they are. So:

1. the stage is exported once with the one exporter (``ocrlite.backends.export``, the head the
   onnxruntime backend expects: det ``raw``, cls ``probs``, rec ``top1``);
2. MatMul/Gemm (the CTC head's Linear, SVTR's projections) and LSTMs get *dynamic* int8 (weights s8,
   activations quantized per call);
3. convolutions get int8 *weights* (symmetric, per output channel) dequantized at load. Static QDQ
   (activations too, MinMax or percentile ranges from the calibration crops) was tried first and dropped:
   on the card recognizer (MobileNetV1Enhance) only 44-49 % of the non-blank CTC steps kept fp32's class.
   The calibration images now measure how close int8 stays to fp32 (``agreement``, printed).

The result is ``OUT/<kind>.int8.onnx`` plus a stage config (``backend: onnxruntime``, ``onnx:`` the file)
that ``ocrlite ocr`` / ``ocrlite eval`` load like any other stage.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ocrlite.backends.export import export_stage
from ocrlite.backends.onnxruntime import import_onnxruntime
from ocrlite.errors import ConfigError
from ocrlite.io.images import IMAGE_EXTENSIONS, expand_inputs, read_image
from ocrlite.preprocess import det_resize, line_batch, normalize, rec_batch_width
from ocrlite.stages import StageSpec

__all__ = ["RUNNER_HEADS", "calibration_batches", "int8_conv_weights", "quantize_onnx", "quantize_stage", "compare"]

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


def _node_names(path: Path, ops: Sequence[str]) -> list[str]:
    import onnx

    return [node.name for node in onnx.load(str(path)).graph.node if node.op_type in ops]


def int8_conv_weights(path: Path, out: Path) -> Path:
    """Store every Conv weight as int8 (symmetric, per output channel) + a DequantizeLinear node.

    Weight-only: onnxruntime folds the dequantization at load, so convolutions compute in float and the
    file holds 1 byte per weight.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    done: set[str] = set()
    nodes = []
    for node in graph.node:
        name = node.input[1] if node.op_type == "Conv" and len(node.input) > 1 else None
        if name is None or name in done or name not in initializers:
            continue
        done.add(name)
        weight = numpy_helper.to_array(initializers[name]).astype(np.float32)
        scale = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1) / 127.0
        scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        q = np.clip(np.round(weight / scale.reshape(-1, *[1] * (weight.ndim - 1))), -127, 127).astype(np.int8)
        graph.initializer.remove(initializers[name])
        graph.initializer.extend([numpy_helper.from_array(q, f"{name}_int8"),
                                  numpy_helper.from_array(scale, f"{name}_scale"),
                                  numpy_helper.from_array(np.zeros(len(scale), np.int8), f"{name}_zero")])
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero"], [name],
                                      name=f"{name}_dequantize", axis=0))
    for position, node in enumerate(nodes):
        graph.node.insert(position, node)
    onnx.save(model, str(out))
    return out


def quantize_onnx(fp32: Path, out: Path) -> Path:
    """Dynamic int8 MatMul/Gemm/LSTM, then int8 weight-only convolutions, of ``fp32`` into ``out``."""
    import_onnxruntime()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        dynamic = Path(tmp) / "dynamic.onnx"
        nodes = _node_names(fp32, _DYNAMIC_OPS)
        if nodes:
            quantize_dynamic(str(fp32), str(dynamic), weight_type=QuantType.QInt8,
                             op_types_to_quantize=list(_DYNAMIC_OPS), nodes_to_quantize=nodes)
        else:
            dynamic.write_bytes(fp32.read_bytes())
        return int8_conv_weights(dynamic, out)


def quantize_stage(spec: StageSpec, calib: Path, out_dir: Path, count: int = 64) -> dict[str, Any]:
    """Export and quantize ``spec``'s net into ``out_dir``; return the files and their sizes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = export_stage(spec, out_dir / f"{spec.kind}.fp32.onnx", RUNNER_HEADS[spec.kind])
    int8 = quantize_onnx(fp32, out_dir / f"{spec.kind}.int8.onnx")
    agreement = compare(fp32, int8, calibration_batches(spec, calib, count))
    return {"fp32": fp32, "int8": int8, "fp32_bytes": fp32.stat().st_size, "int8_bytes": int8.stat().st_size,
            "agreement": agreement}


def compare(fp32: Path, int8: Path, batches: Sequence[np.ndarray]) -> float:
    """How close int8 stays to fp32 on ``batches``: the share of equal class indices (CTC top-1: non-blank
    steps), or 1 - mean absolute difference of float outputs (probability maps)."""
    ort = import_onnxruntime()
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32, int8)]
    scores = []
    for batch in batches:
        ref, got = (s.run(None, {s.get_inputs()[0].name: batch})[0] for s in sessions)
        if np.issubdtype(ref.dtype, np.integer):
            mask = ref != 0
            scores.append(float(np.mean(ref[mask] == got[mask])) if mask.any() else 1.0)
        else:
            scores.append(1.0 - float(np.mean(np.abs(ref - got))))
    return float(np.mean(scores))
