"""Export a stage's net to ONNX (``torch.onnx.export``); ``ocrlite.backends.onnx_cache`` keeps the exports.

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

import io
import warnings
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ocrlite.backends.onnx_cache import METADATA, OPSET, example_shape
from ocrlite.extras import import_extra
from ocrlite.io.atomic import atomic_write_bytes

__all__ = ["HEADS", "export_net", "export_stage", "top1"]

HEADS = ("raw", "probs", "top1")
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


def example_input(kind: str, pre: Any) -> Tensor:
    """A random input of ``example_shape``."""
    return torch.rand(*example_shape(kind, pre))


def export_net(net: nn.Module, path: str | Path, kind: str, example: Tensor, head: str = "raw",
               logits: bool = False, opset: int = OPSET) -> Path:
    """Write ``net`` (eval mode) as an ONNX file at ``path`` (atomically) and return the path; its
    ``metadata_props`` name ``kind``, the net's class count per position (det: maps) and ``head``."""
    onnx = import_extra("onnx", "exporting to ONNX")
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    names = ["index", "prob"] if head == "top1" else ["out"]
    axes: dict[str, dict[int, str]] = {"x": _DYNAMIC[kind]}
    if kind != "det":
        axes.update({name: {0: "batch", 1: "steps"} if kind == "rec" else {0: "batch"} for name in names})
    net = net.eval()
    wrapped = _Head(net, head, logits).eval()
    staged = io.BytesIO()  # in memory: a process killed while exporting leaves no file behind
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic, which stays dynamic
        with torch.no_grad():
            out = net(example)
            # the TorchScript exporter writes to a file object too (its own comment), though typed for paths
            torch.onnx.export(wrapped, (example,), cast(Any, staged), input_names=["x"], output_names=names,
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
    model = onnx.load_from_string(staged.getvalue())
    classes = out.shape[1] if kind == "det" else out.shape[-1]
    onnx.helper.set_model_props(model, {METADATA["kind"]: kind, METADATA["classes"]: str(int(classes)),
                                        METADATA["head"]: head})
    atomic_write_bytes(path, model.SerializeToString())
    return Path(path)


def export_stage(spec: Any, path: str | Path, head: str = "raw", net: nn.Module | None = None) -> Path:
    """Export a resolved ``StageSpec``'s net (built and loaded here unless ``net`` is given) to ``path``."""
    if net is None:
        from ocrlite.backends.fold import fold_net

        net = spec.build_net()
        fold_net(net)
    logits = spec.kind != "det" and spec.outputs == "logits"
    return export_net(net, path, spec.kind, example_input(spec.kind, spec.pre), head, logits)
