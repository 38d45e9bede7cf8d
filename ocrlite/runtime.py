"""Runners: the one interface through which the pipeline calls a net.

A runner maps a float32 NCHW batch to a numpy array of probabilities. The torch runner
wraps our nets; other runners (e.g. ONNX Runtime, see ``onnx_runner``) plug in the same way.
"""

from __future__ import annotations

from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .errors import WeightsError
from .models import build_model
from .weights import load_weights, read_manifest

__all__ = ["Runner", "TorchRunner", "weights_paths", "find_extra", "stage_manifest", "load_stage_model"]

Runner = Callable[[np.ndarray], np.ndarray]


class TorchRunner:
    """Run an ``nn.Module`` in inference mode; optionally softmax its logits on the last axis.

    CPU speed: the net and its NCHW inputs use the channels-last memory layout (oneDNN convs then skip a
    layout reorder per call; 2-3x faster on the depthwise-heavy PP-OCRv6 nets, same numbers up to float
    rounding), and denormal floats are flushed to zero while the net runs (converted Paddle weights and
    attention/GELU tails produce denormals, which are very slow on x86). Flushing is switched back off
    after each call.
    """

    def __init__(self, model: nn.Module, softmax: bool = False, channels_last: bool = True) -> None:
        self.model = model.eval()
        self.softmax = softmax
        self.channels_last = channels_last
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        flushing = torch.set_flush_denormal(True)
        try:
            with torch.inference_mode():
                out = self.model(x)
                if self.softmax:
                    out = out.softmax(dim=-1)
        finally:
            if flushing:
                torch.set_flush_denormal(False)
        return out.contiguous().numpy()


def find_extra() -> bool:
    """Whether the optional ``ocrlite-models`` weights package is installed."""
    return find_spec("ocrlite_models") is not None


def _weight_roots(name: str, config_dir: str | None) -> list[Path]:
    """Folders searched for weights: an absolute path's, the config's, the shipped and extra packages."""
    relative = Path(name).parent
    roots = [relative] if relative.is_absolute() else []
    if config_dir:
        roots.append(Path(config_dir) / relative)
    roots.append(Path(str(resources.files("ocrlite.weights"))))
    if find_extra():
        roots.append(Path(str(resources.files("ocrlite_models"))))
    return roots


def weights_paths(name: str, config_dir: str | None) -> tuple[Path, Path]:
    """Locate ``<name>.safetensors`` and its JSON manifest."""
    stem = Path(name).name.removesuffix(".safetensors")
    roots = _weight_roots(name, config_dir)
    for root in roots:
        tensors = root / f"{stem}.safetensors"
        if tensors.is_file():
            return tensors, root / f"{stem}.json"
    hint = " (optional preset weights: pip install ./ocrlite-models)" if not find_extra() else ""
    raise WeightsError(f"weights {name!r} not found in {', '.join(map(str, roots))}{hint}")


def stage_manifest(stage: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a stage's weights ({} when the stage has none)."""
    if not stage.get("weights"):
        return {}
    _, manifest_path = weights_paths(stage["weights"], stage.get("_dir"))
    return read_manifest(manifest_path) if manifest_path.is_file() else {}


def load_stage_model(stage: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """Build a stage's net from its config and load its weights strictly; return net and manifest."""
    model = build_model(stage["model"])
    manifest = stage_manifest(stage)
    if stage.get("weights"):
        tensors, _ = weights_paths(stage["weights"], stage.get("_dir"))
        load_weights(model, tensors, manifest.get("sha256"))
    return model.eval(), manifest
