"""``ocrlite export``: a stage's net to ONNX through the one exporter (``ocrlite.backends.export``), then checked.

The check runs the file with onnxruntime on an input of a *different* size than the export's example
(other batch, and other height/width where those axes are dynamic) and compares its probabilities with
the unfolded PyTorch net's; a difference above ``tolerance`` is an ExportError (a broken export never passes).
The detector's check input is rendered text (random noise gives an all-zero probability map, which would
hide a wrong graph). onnxruntime runs the file with its basic graph optimisations only: the extended
fusions (attention, LayerNorm, GELU) reorder float arithmetic and move SVTR logits by up to ~6e-4 while
the graph itself is exact, and this check is about the graph.
"""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ocrlite.backends.export import export_stage
from ocrlite.backends.fold import fold_net
from ocrlite.backends.onnx_cache import METADATA, OPSET
from ocrlite.backends.onnxruntime import OnnxRunner
from ocrlite.errors import ConfigError, OcrliteError
from ocrlite.extras import require_onnx
from ocrlite.io.atomic import atomic_write_bytes
from ocrlite.preprocess import normalize
from ocrlite.stages import StageSpec

__all__ = ["ExportError", "TOLERANCE", "check_input", "parity", "check_parity", "export_checked", "copy_given"]

TOLERANCE = 1e-4


class ExportError(OcrliteError):
    """The exported ONNX file does not compute what the PyTorch net computes."""


def _text_pages(spec: StageSpec, count: int, height: int, width: int) -> np.ndarray:
    """``count`` normalised white pages with black text at different sizes (the detector's check input)."""
    pages = []
    for i in range(count):
        page = np.full((height, width, 3), 255, np.uint8)
        for row in range(3):
            cv2.putText(page, f"ocr {i}{row} 2026", (4 + 6 * i, 24 + 30 * row), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5 + 0.2 * row, (0, 0, 0), 1 + row % 2)
        pages.append(normalize(page, spec.pre.mean, spec.pre.std))
    return np.stack(pages)


def check_input(spec: StageSpec, seed: int = 0) -> np.ndarray:
    """An input unlike the export example: batch 3; detector 96 x 160 text pages; noise lines of the input
    height, twice the input width for the recognizer, the input width for the classifier."""
    if spec.kind == "det":
        return _text_pages(spec, 3, 96, 160)
    width = int(spec.pre.width) * (2 if spec.kind == "rec" else 1)
    return np.random.default_rng(seed).standard_normal((3, 3, int(spec.pre.height), width)).astype(np.float32)


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    return np.asarray(OnnxRunner(path, threads=1, optimize="basic")(x))


def _probabilities(out: np.ndarray, logits: bool) -> np.ndarray:
    if not logits:
        return out
    shifted = np.exp(out - out.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def parity(spec: StageSpec, path: Path, head: str = "raw", net: nn.Module | None = None) -> float:
    """Largest absolute difference of the probabilities from the ONNX file and from the stage's PyTorch net
    (``net``, else built from ``spec``: pass the net the file was exported from when the stage has no weights,
    as each build of such a stage is another random net).

    Probabilities are what the pipeline consumes (a logits net's runner applies the softmax); logits of
    magnitude ~15 differ by ~1e-4 from float rounding alone, which says nothing about the graph.
    """
    x = check_input(spec)
    logits = spec.kind != "det" and spec.outputs == "logits"
    net = spec.build_net() if net is None else net.eval()
    with torch.no_grad():
        expected = _probabilities(net(torch.from_numpy(x)).numpy(), logits)
    got = _probabilities(_run_onnx(path, x), logits and head == "raw")
    if got.shape != expected.shape:
        raise ExportError(f"{path.name}: output shape {got.shape} != PyTorch's {expected.shape}")
    return float(np.abs(got - expected).max())


def check_parity(spec: StageSpec, path: Path, head: str = "raw", tolerance: float = TOLERANCE,
                 net: nn.Module | None = None) -> float:
    """The max difference of ``parity``; an ExportError when it exceeds ``tolerance``."""
    diff = parity(spec, path, head, net)
    if not diff <= tolerance:
        raise ExportError(f"{path.name}: ONNX differs from PyTorch by {diff:.3g} (> {tolerance:g}, opset {OPSET})")
    return diff


def export_checked(spec: StageSpec, path: Path, head: str = "raw", tolerance: float = TOLERANCE) -> float:
    """Export ``spec``'s net to ``path`` (opset OPSET, dynamic axes) and return the checked max difference;
    the file appears at ``path`` only once it has passed the check (it is made and checked beside it).

    The net is built once: a folded copy is exported and the file is checked against the unfolded net (a
    stage without weights builds a different random net each time)."""
    require_onnx("exporting to ONNX")  # the export needs onnx, its check onnxruntime: say so before either
    net = spec.build_net()
    folded = copy.deepcopy(net)
    fold_net(folded)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        staged = export_stage(spec, Path(tmp) / path.name, head, net=folded)
        diff = check_parity(spec, staged, head, tolerance, net)
        os.replace(staged, path)
    return diff


def copy_given(spec: StageSpec, path: Path, head: str | None = None) -> None:
    """Write the ONNX file the stage runs (its ``onnx:`` key, e.g. ``ocrlite quantize``'s int8 net) to ``path``
    as it is, once it is checked to serve the stage (``build_runner``: kind, classes, input size, probabilities):
    what the config runs, not a float export of its weights. ``head``, when the user asked for one, must be the
    file's own (its ``ocrlite.head`` metadata), else a ConfigError: the file is not exported again."""
    assert spec.onnx is not None
    runner = spec.build_runner()
    own = runner.session.get_modelmeta().custom_metadata_map.get(METADATA["head"])
    if head is not None and head != own:
        raise ConfigError(f"--head {head}: the {spec.kind} stage runs {spec.onnx} (its onnx: key), a "
                          f"{own or 'unrecorded'} graph, which export writes as it is; leave out --head, or add "
                          f"--set {spec.kind}.onnx=null to export the float net from its weights")
    atomic_write_bytes(path, spec.onnx.read_bytes())
