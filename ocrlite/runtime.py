"""Runners: the one interface through which the pipeline calls a net.

A runner maps a float32 NCHW batch to a numpy array of probabilities. The torch runner
wraps our nets; other runners (e.g. ONNX Runtime, see ``onnx_runner``) plug in the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .errors import WeightsError
from .models import build_model
from .weights import load_weights, read_manifest

__all__ = ["Runner", "TorchRunner", "weights_paths", "load_stage_model"]

Runner = Callable[[np.ndarray], np.ndarray]


class TorchRunner:
    """Run an ``nn.Module`` in inference mode; optionally softmax its logits on the last axis."""

    def __init__(self, model: nn.Module, softmax: bool = False) -> None:
        self.model = model.eval()
        self.softmax = softmax

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
            if self.softmax:
                out = out.softmax(dim=-1)
        return out.numpy()


def weights_paths(name: str, config_dir: str | None) -> tuple[Path, Path]:
    """Locate ``<name>.safetensors`` and its manifest: a path, next to the config, or shipped."""
    from importlib import resources

    shipped = Path(str(resources.files("ocrlite.weights")))
    roots = [Path(name).parent] if Path(name).is_absolute() else []
    if config_dir:
        roots.append(Path(config_dir) / Path(name).parent)
    roots.append(shipped)
    stem = Path(name).name.removesuffix(".safetensors")
    for root in roots:
        tensors = root / f"{stem}.safetensors"
        if tensors.is_file():
            return tensors, root / f"{stem}.json"
    raise WeightsError(f"weights {name!r} not found (looked in {', '.join(map(str, roots))})")


def load_stage_model(stage: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
    """Build a stage's net from its config and load its weights strictly; return net and manifest."""
    model = build_model(stage["model"])
    manifest: dict[str, Any] = {}
    if stage.get("weights"):
        tensors, manifest_path = weights_paths(stage["weights"], stage.get("_dir"))
        manifest = read_manifest(manifest_path) if manifest_path.is_file() else {}
        load_weights(model, tensors, manifest.get("sha256"))
    return model.eval(), manifest
