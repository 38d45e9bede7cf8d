"""Post-training int8 quantization of a stage's ONNX export with ONNX Runtime (``ocrlite quantize``).

Why ONNX Runtime and not PyTorch: torch 2.13 ships no PT2E quantizers any more (they moved to torchao)
and marks the eager/FX flow deprecated, while onnxruntime is already the project's second backend, runs
int8 convolutions and MatMuls on any x86 CPU, and reads the exporter's files as they are. So:

1. the stage is exported once with the one exporter (``ocrlite.backends.export``, the head the
   onnxruntime backend expects: det ``raw``, cls ``probs``, rec ``top1``);
2. MatMul/Gemm (the CTC head's Linear, SVTR's projections) and LSTMs get *dynamic* int8 (weights s8,
   activations quantized per call);
3. convolutions get int8 *weights* (symmetric, per output channel, a DequantizeLinear before the Conv).
   Static QDQ (activations too, MinMax or percentile ranges from the calibration crops) was tried first and
   dropped: on the card recognizer (MobileNetV1Enhance) only 44-49 % of the non-blank CTC steps kept fp32's
   class;
4. mixed precision: int8 weights of the first convolutions alone break the card recognizer (BN folded
   into them gives a few channels weights of 20-70 whose products cancel, so rounding errors are
   amplified: blocks.0's depthwise conv alone changed 41 % of the words on IIIT5K + ICDAR words, each
   conv of blocks 5-12 about 1 %). So each convolution is quantized alone and scored on the calibration
   images (``conv_sensitivity``: relative error of the float output), and the ones with the most error
   per byte stay fp32 while the file stays within ``max_size`` of the fp32 weights (``keep_in_fp32``).

The calibration images also measure how close the result stays to fp32 (``agreement``, printed: for a detector
the IoU of its text pixels, binarised as its post-processing does).

The result is ``OUT/<kind>.int8.onnx`` plus a stage config (``backend: onnxruntime``, ``onnx:`` the file)
that ``ocrlite ocr`` / ``ocrlite eval`` load like any other stage.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Sequence

import numpy as np

from ocrlite.backends.export import export_stage
from ocrlite.errors import ConfigError
from ocrlite.extras import require_onnx
from ocrlite.io.images import IMAGE_EXTENSIONS, expand_inputs, read_image
from ocrlite.preprocess import det_resize, line_batch, normalize, rec_batch_width
from ocrlite.stages import StageSpec

__all__ = [
    "RUNNER_HEADS", "Quantized", "agreement", "calibration_batches", "conv_sensitivity", "dynamic_int8",
    "int8_conv_weights", "int8_dequantized", "int8_per_channel", "keep_in_fp32", "quantize_onnx", "quantize_stage",
    "run_model",
]

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


def int8_per_channel(weight: np.ndarray, levels: int = 127) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 of ``weight`` per output channel (axis 0), ``-levels .. levels``: the int8 values and one
    scale per channel."""
    weight = weight.astype(np.float32)
    scale = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1) / float(levels)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.round(weight / scale.reshape(-1, *[1] * (weight.ndim - 1))), -levels, levels).astype(np.int8)
    return q, scale


def conv_weights(model: Any) -> dict[str, str]:
    """Conv node name -> its weight initializer's name (each weight once)."""
    initializers = {init.name for init in model.graph.initializer}
    found: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type == "Conv" and len(node.input) > 1 and node.input[1] in initializers:
            if node.input[1] not in found.values():
                found[node.name] = node.input[1]
    return found


def int8_dequantized(graph: Any, initializer: Any, axis: int = 0, levels: int = 127) -> Any:
    """Replace float ``initializer`` of ``graph`` by its int8 per-channel form (``int8_per_channel`` along
    ``axis``: 0 for Conv weights and Gemm's transposed B, 1 for MatMul's [in, out] B) and return the
    DequantizeLinear node (not yet in the graph) that gives the float tensor back under its name."""
    from onnx import helper, numpy_helper

    name = initializer.name
    weight = numpy_helper.to_array(initializer)
    q, scale = int8_per_channel(np.moveaxis(weight, axis, 0), levels)
    graph.initializer.remove(initializer)
    graph.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(np.moveaxis(q, 0, axis)), f"{name}_int8"),
                              numpy_helper.from_array(scale, f"{name}_scale"),
                              numpy_helper.from_array(np.zeros(len(scale), np.int8), f"{name}_zero")])
    return helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero"], [name],
                            name=f"{name}_dequantize", axis=axis)


def int8_conv_weights(path: Path, out: Path, keep: Collection[str] = ()) -> Path:
    """Store every Conv weight (but those of the nodes named in ``keep``) as int8 (symmetric, per output
    channel) + a DequantizeLinear node.

    Weight-only: the convolutions compute in float and the file holds 1 byte per weight.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    nodes = [int8_dequantized(graph, initializers[name]) for node, name in conv_weights(model).items()
             if node not in keep]
    for position, node in enumerate(nodes):
        graph.node.insert(position, node)
    onnx.save(model, str(out))
    return out


def conv_sensitivity(path: Path, batches: Sequence[np.ndarray]) -> dict[str, tuple[float, int]]:
    """Each convolution's int8 weights alone (the rest of ``path`` as it is): the relative error of the
    model's first output on ``batches``, ||int8 - fp32|| / ||fp32||, and the weight's element count, by Conv
    node name. ``path`` should return a float output (logits, probabilities, maps: the ``raw`` head), which
    moves with every weight where class indices mostly do not."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    initializers = {init.name: init for init in model.graph.initializer}
    reference = run_model(model.SerializeToString(), batches)
    found = {}
    for node, name in conv_weights(model).items():
        original = numpy_helper.to_array(initializers[name])
        q, scale = int8_per_channel(original)
        rounded = (q.astype(np.float32) * scale.reshape(-1, *[1] * (q.ndim - 1))).astype(np.float32)
        initializers[name].CopyFrom(numpy_helper.from_array(rounded, name))
        outputs = run_model(model.SerializeToString(), batches)
        error = sum(float(np.sum((got - ref) ** 2)) for ref, got in zip(reference, outputs))
        found[node] = (float(np.sqrt(error / max(sum(float(np.sum(ref**2)) for ref in reference), 1e-30))),
                       original.size)
        initializers[name].CopyFrom(numpy_helper.from_array(original, name))
    return found


def keep_in_fp32(sensitivity: dict[str, tuple[float, int]], spare_bytes: int) -> list[str]:
    """The convolutions to leave in fp32 (each costs 3 more bytes per weight) within ``spare_bytes``: a
    knapsack taken greedily, most error removed per byte first; those that change nothing stay int8."""
    keep, used = [], 0
    for node, (error, size) in sorted(sensitivity.items(), key=lambda item: -item[1][0] / item[1][1]):
        if error > 0 and used + 3 * size <= spare_bytes:
            keep.append(node)
            used += 3 * size
    return keep


def dynamic_int8(fp32: Path, out: Path, ops: Sequence[str] = _DYNAMIC_OPS) -> Path:
    """Dynamic int8 ``ops`` (default MatMul/Gemm/LSTM: weights s8, activations quantized per call) of ``fp32``
    into ``out``."""
    require_onnx("int8 quantization", load=True)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = _node_names(fp32, ops)
    if not nodes:
        out.write_bytes(fp32.read_bytes())
        return out
    root = logging.getLogger()
    root.addFilter(_no_preprocess_hint)
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=list(ops),
                         nodes_to_quantize=nodes)
    finally:
        root.removeFilter(_no_preprocess_hint)
    return out


def _no_preprocess_hint(record: logging.LogRecord) -> bool:
    """Drops onnxruntime's hint to run its optional pre-processing first (a root-logger line with a link on every
    call): the exporter folds BN already, and the int8 result is checked against fp32 on the --calib images."""
    return "run pre-processing before quantization" not in record.getMessage()


def quantize_onnx(fp32: Path, out: Path, sensitivity: dict[str, tuple[float, int]],
                  max_bytes: int) -> tuple[Path, list[str]]:
    """Dynamic int8 MatMul/Gemm/LSTM and int8 weight-only convolutions of ``fp32`` into ``out``; the most
    sensitive convolutions (``conv_sensitivity``) stay fp32 while ``out`` stays within ``max_bytes``.
    Returns ``out`` and the Conv nodes kept in fp32."""
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        dynamic = dynamic_int8(fp32, Path(tmp) / "dynamic.onnx")
        staged = int8_conv_weights(dynamic, Path(tmp) / out.name)
        keep = keep_in_fp32(sensitivity, max_bytes - staged.stat().st_size)
        if keep:
            int8_conv_weights(dynamic, staged, keep)
        os.replace(staged, out)  # ``out`` is whole or absent, whenever the run stops
    return out, keep


@dataclass
class Quantized:
    """What ``quantize_stage`` made: the fp32 and int8 ONNX files, the sizes (bytes), the convolutions kept in
    fp32, the int8/fp32 agreement on the calibration images and how many there were."""

    fp32: Path
    int8: Path
    fp32_bytes: int
    int8_bytes: int
    weights_bytes: int
    kept_fp32: list[str]
    calib_images: int
    agreement: float


def quantize_stage(spec: StageSpec, calib: Path, out_dir: Path, count: int = 64,
                   max_size: float = 0.3) -> Quantized:
    """Export and quantize ``spec``'s net into ``out_dir`` (file at most ``max_size`` of the fp32 weights)."""
    require_onnx("int8 quantization", load=True)
    if spec.weights is None:
        raise ConfigError(f"the {spec.kind} stage has no weights to quantize")
    batches = calibration_batches(spec, calib, count)  # a bad --calib is refused before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_bytes = spec.weights.stat().st_size
    fp32 = export_stage(spec, out_dir / f"{spec.kind}.fp32.onnx", RUNNER_HEADS[spec.kind])
    with tempfile.TemporaryDirectory() as tmp:
        sensitivity = conv_sensitivity(export_stage(spec, Path(tmp) / "raw.onnx", "raw"), batches)
    int8, keep = quantize_onnx(fp32, out_dir / f"{spec.kind}.int8.onnx", sensitivity, int(max_size * weights_bytes))
    reference = run_model(fp32, batches)
    text_mask = spec.post.text_mask if spec.kind == "det" else None
    return Quantized(fp32, int8, fp32.stat().st_size, int8.stat().st_size, weights_bytes, keep,
                     sum(len(b) for b in batches), agreement(reference, run_model(int8, batches), text_mask))


def run_model(model: Path | bytes, batches: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The first output of ONNX ``model`` (a file or serialized) for each batch, at torch's thread count."""
    import torch

    from ocrlite.backends.onnxruntime import OnnxRunner

    runner = OnnxRunner(model, torch.get_num_threads())
    return [runner(batch) for batch in batches]


def agreement(reference: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
              text_mask: Callable[[np.ndarray], np.ndarray] | None = None) -> float:
    """How close ``outputs`` stay to ``reference``. Detector maps (``text_mask``: the detector's binarisation,
    ``DBPostProcess.text_mask``): the IoU of the text pixels over all maps, 1.0 when neither has any (a per-pixel
    measure reads ~100 % whatever happens, the background being most of a page). Class indices: the share of equal
    ones (CTC top-1: at the reference's non-blank steps); other float outputs (probabilities): 1 - mean absolute
    difference."""
    if text_mask is not None:
        masks = [(text_mask(ref_map), text_mask(got_map)) for ref, got in zip(reference, outputs, strict=True)
                 for ref_map, got_map in zip(ref[:, 0], got[:, 0], strict=True)]  # N x 1 x H x W -> H x W maps
        union = sum(int(np.count_nonzero(a | b)) for a, b in masks)
        return sum(int(np.count_nonzero(a & b)) for a, b in masks) / union if union else 1.0
    scores = []
    for ref, got in zip(reference, outputs):
        if np.issubdtype(ref.dtype, np.integer):
            mask = ref != 0
            scores.append(float(np.mean(ref[mask] == got[mask])) if mask.any() else 1.0)
        else:
            scores.append(1.0 - float(np.mean(np.abs(ref - got))))
    return float(np.mean(scores))
