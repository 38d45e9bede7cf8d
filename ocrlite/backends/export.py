"""Export a stage's net to ONNX (``torch.onnx.export``) and cache the file by the weights' SHA-256.

The one exporter: the ``onnxruntime`` backend (``backend: onnxruntime``) runs these files, and
``ocrlite export`` writes them. Batch, height and width stay dynamic where the net allows it (the
detector: all three; the classifier: batch; the recognizer: batch and width). The legacy
TorchScript exporter is used: it handles the BiLSTM and the SVTR reshapes with dynamic shapes.

What the graph returns (``head``):

- ``"raw"``: the net's own output (logits or probabilities, as its manifest's ``outputs`` says);
- ``"probs"``: probabilities (a softmax on the last axis is added to a logits net);
- ``"top1"``: two outputs for CTC decoding, the best class per step (int64 N x T) and its probability
  (float32 N x T, at the steps CTC keeps; see ``top1``) -- no N x T x C tensor ever leaves the graph.

Every export records in its ``metadata_props`` what it serves (``METADATA``: the stage kind, the class
count per position and the head), so a file given to a stage (``onnx:``) can be checked at load even
when its outputs (``top1``: class indices) do not show the class count.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ocrlite.errors import BackendError, OcrliteError
from ocrlite.extras import extra, require
from ocrlite.io.atomic import atomic_write_bytes, ensure_folder

__all__ = ["OPSET", "CACHE_ENV", "HEADS", "METADATA", "cache_dir", "export_net", "export_stage", "cached_export",
           "top1"]

OPSET = 17
CACHE_ENV = "OCRLITE_ONNX_CACHE"
HEADS = ("raw", "probs", "top1")
_FORMAT = 5  # part of the cache key: bump when what an export contains changes
_WRITABLE = f"set {CACHE_ENV} to a writable folder"
METADATA = {"kind": "ocrlite.kind", "classes": "ocrlite.classes", "head": "ocrlite.head"}  # metadata_props keys
# Per stage kind: which input axes stay dynamic, and a small example input (N, C, H, W; H and W of
# the classifier and the recognizer come from its preprocess settings).
_DYNAMIC = {
    "det": {0: "batch", 2: "height", 3: "width"},
    "cls": {0: "batch"},
    "page": {0: "batch"},
    "rec": {0: "batch", 3: "width"},
}


def _row_max(out: Tensor, block: int = 128) -> tuple[Tensor, Tensor]:
    """``out.max(dim=-1)``: the maximum of each row and the first index holding it, in passes that vectorise.

    First the maximum of each block of ``block`` classes (``amax``), then the first index equal to the row's
    maximum inside the first block that holds it. Neither torch's max with indices nor onnxruntime's ArgMax
    vectorises over a long row: over 18,710 classes, for 480 steps, torch's took 4.3 ms and this 1.3 ms;
    onnxruntime's ArgMax with its ReduceMax 6.8 ms and the exported blocks 2.7 ms (one thread). In torch the
    blocks are a strided view of the whole ones and the short last block apart; an ONNX export cannot
    trace that view, so there the rows are padded with -inf to whole blocks and reshaped. (A row with a NaN
    gets NaN and an index in its block, where torch names the NaN's own index.)
    """
    classes = out.shape[-1]
    rows = out.reshape(-1, classes)
    if torch.onnx.is_in_onnx_export():
        count = (classes + block - 1) // block
        blocks = F.pad(rows, (0, count * block - classes), value=float("-inf")).reshape(-1, count, block)
        best, which = blocks.amax(dim=-1).max(dim=-1)
        picked = torch.gather(blocks, 1, which.reshape(-1, 1, 1).expand(-1, 1, block)).squeeze(1)
        index = which * block + picked.argmax(dim=-1)
        return best.reshape(out.shape[:-1]), index.reshape(out.shape[:-1])
    rows = rows.contiguous()
    full = classes - classes % block
    maxima = rows.as_strided((rows.shape[0], full // block, block), (classes, block, 1)).amax(dim=-1)
    if full < classes:
        maxima = torch.cat([maxima, rows[:, full:].amax(dim=-1, keepdim=True)], dim=1)
    best, which = maxima.max(dim=-1)
    start = which * block
    columns = (start.unsqueeze(1) + torch.arange(block)).clamp_(max=classes - 1)  # the last block may be short
    offset = (rows.gather(1, columns) == best.unsqueeze(1)).to(torch.uint8).argmax(dim=1)
    return best.reshape(out.shape[:-1]), (start + offset).reshape(out.shape[:-1])


def top1(out: Tensor, logits: bool) -> tuple[Tensor, Tensor]:
    """Best class per step and its probability, from N x T x C logits (softmax implied) or probabilities.

    From logits the probability is ``1 / sum(exp(x - max))`` -- exactly the softmax's maximum, without the
    softmax -- and only at the steps greedy CTC decoding keeps (a non-blank class that differs from the
    previous step's); the other steps get 0, as the decoder never reads them.
    """
    best, index = _row_max(out)
    if not logits:
        return index, best
    changed = torch.cat([torch.ones_like(index[:, :1], dtype=torch.bool), index[:, 1:] != index[:, :-1]], dim=1)
    keep = (index != 0) & changed
    rows = keep.reshape(-1).nonzero().squeeze(1)
    picked = out.reshape(-1, out.shape[-1]).index_select(0, rows)
    peak = best.reshape(-1).index_select(0, rows)
    probs = 1.0 / torch.exp(picked - peak.unsqueeze(-1)).sum(dim=-1)
    return index, torch.zeros_like(best.reshape(-1)).scatter(0, rows, probs).reshape(best.shape)


class _Head(nn.Module):
    """The net followed by what ``head`` asks for (see the module docstring)."""

    def __init__(self, net: nn.Module, head: str, logits: bool) -> None:
        super().__init__()
        self.net, self.head, self.logits = net, head, logits

    def forward(self, x: Tensor) -> Any:
        out = self.net(x)
        if self.head == "top1":
            return top1(out, self.logits)
        if self.head == "probs" and self.logits:
            return out.softmax(dim=-1)
        return out


def cache_dir() -> Path:
    """Where exports are cached: ``$OCRLITE_ONNX_CACHE``, else ``$XDG_CACHE_HOME/ocrlite/onnx`` (~/.cache); a
    BackendError when none is set and there is no home folder (no ``HOME``, a user without a passwd entry)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "ocrlite" / "onnx"
    home = os.path.expanduser("~")
    if home.startswith("~"):  # no home folder: never a folder named "~" in the working folder
        raise BackendError(f"no folder for the ONNX export cache: HOME is not set; {_WRITABLE}")
    return Path(home) / ".cache" / "ocrlite" / "onnx"


def example_shape(kind: str, pre: Any) -> tuple[int, int, int, int]:
    """The traced input's shape: 2 images, 64 x 96 for the detector, the line or crop size otherwise (an
    export keeps the sizes that ``_DYNAMIC`` leaves fixed)."""
    if kind == "det":
        return (2, 3, 64, 96)
    if kind == "page":  # the page classifier's centre crop
        return (2, 3, int(pre.crop), int(pre.crop))
    return (2, 3, int(pre.height), int(pre.width))


def example_input(kind: str, pre: Any) -> Tensor:
    """A random input of ``example_shape``."""
    return torch.rand(*example_shape(kind, pre))


def export_net(net: nn.Module, path: str | Path, kind: str, example: Tensor, head: str = "raw",
               logits: bool = False, opset: int = OPSET) -> Path:
    """Write ``net`` (eval mode) as an ONNX file at ``path`` (atomically) and return the path; its
    ``metadata_props`` name ``kind``, the net's class count per position (det: maps) and ``head``."""
    require("exporting to ONNX", ("onnx",), extra("onnx"), BackendError)
    import onnx

    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    names = ["index", "prob"] if head == "top1" else ["out"]
    axes: dict[str, dict[int, str]] = {"x": _DYNAMIC[kind]}
    if kind != "det":
        axes.update({name: {0: "batch", 1: "steps"} if kind == "rec" else {0: "batch"} for name in names})
    net = net.eval()
    wrapped = _Head(net, head, logits).eval()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic, which stays dynamic
        staged = Path(tmp) / "net.onnx"
        with torch.no_grad():
            out = net(example)
            torch.onnx.export(wrapped, (example,), str(staged), input_names=["x"], output_names=names,
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
        model = onnx.load(str(staged))
        classes = out.shape[1] if kind == "det" else out.shape[-1]
        onnx.helper.set_model_props(model, {METADATA["kind"]: kind, METADATA["classes"]: str(int(classes)),
                                            METADATA["head"]: head})
        atomic_write_bytes(path, model.SerializeToString())
    return Path(path)


def _key(spec: Any, head: str) -> str:
    """Cache key: the weights' SHA-256, the net config, the head, the input size the export fixes, and the
    exporter versions."""
    from ocrlite.weights import check_sha256

    # the file's own hash, never only its manifest's: weights replaced beside an old manifest must not hit the
    # old export (the torch backend refuses them, and so does this)
    weights = check_sha256(spec.weights, spec.manifest.get("sha256")) if spec.weights else "random"
    shape = example_shape(spec.kind, spec.pre)
    text = json.dumps([weights, spec.model, head, spec.outputs, shape, OPSET, _FORMAT, torch.__version__],
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def export_stage(spec: Any, path: str | Path, head: str = "raw", net: nn.Module | None = None) -> Path:
    """Export a resolved ``StageSpec``'s net (built and loaded here unless ``net`` is given) to ``path``."""
    if net is None:
        from ocrlite.backends.fold import fold_net

        net = spec.build_net()
        fold_net(net)
    logits = spec.kind != "det" and spec.outputs == "logits"
    return export_net(net, path, spec.kind, example_input(spec.kind, spec.pre), head, logits)


def cached_export(spec: Any, head: str = "raw", again: bool = False) -> Path:
    """The stage's ONNX file from the cache, exported first if absent or ``again`` (a cached file that cannot be
    loaded), keyed by weights, config and head. A cache that cannot be written is a BackendError saying so; the
    export's own errors (weights that do not match their manifest) are raised as they are."""
    path = cache_dir() / f"{spec.kind}-{_key(spec, head)}.onnx"
    if again or not path.is_file():
        try:
            ensure_folder(path.parent)
        except OcrliteError as exc:
            raise BackendError(f"{exc} (the ONNX export cache; {_WRITABLE})") from None
        try:
            export_stage(spec, path, head)
        except OSError as exc:
            raise BackendError(f"cannot write {path}: {exc.strerror or exc} (the ONNX export cache; "
                               f"{_WRITABLE})") from None
    return path
