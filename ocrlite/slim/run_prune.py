"""``ocrlite prune``: sensitivity -> per-group ratios under a MACs target -> channel removal -> saved stage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ocrlite.errors import ConfigError
from ocrlite.io.images import IMAGE_EXTENSIONS, expand_inputs, read_image
from ocrlite.profile import count_macs
from ocrlite.slim.groups import prunable_roots, widths_config
from ocrlite.slim.prune import allocate, require_torch_pruning
from ocrlite.slim.save import check_outputs, raw_stage, save_stage, staged, write_pipeline
from ocrlite.slim.sensitivity import (
    load_curves,
    measure,
    measured_here,
    plot_curves,
    save_curves,
    stage_fingerprint,
)
from ocrlite.stages import StageSpec, command_stage
from ocrlite.train.data import file_entries

__all__ = ["PruneResult", "sample_images", "prune_stage"]

_EXAMPLE = (1, 3, 64, 64)  # traced once to build the dependency graph (any size the net accepts)
_MAC_INPUT = (1, 3, 640, 640)  # MACs are counted at the profile command's detector size
_WRITTEN = ("det.safetensors", "det.yaml", "ocr.yaml", "det.json")  # moved into OUT in this order, the manifest last


@dataclass
class PruneResult:
    """What ``prune_stage`` did: ratios, MACs/params/file before and after, and the written files."""

    ratios: dict[str, float]
    macs: tuple[int, int]
    params: tuple[int, int]
    file_bytes: tuple[int, int]
    stage_config: Path
    pipeline_config: Path
    net: nn.Module
    spec: StageSpec
    curves: str  # the sensitivity file and whether it was read, reused or measured

    def summary(self) -> str:
        """Before -> after lines, printed by the CLI."""
        def row(label: str, pair: tuple[int, int]) -> str:
            return f"  {label:<7}{pair[0]:>12,} -> {pair[1]:>12,}  ({pair[1] / pair[0] - 1:+.1%})"
        return "\n".join([row("MACs", self.macs), row("params", self.params), row("file", self.file_bytes),
                          f"  curves       {self.curves}", f"  stage config {self.stage_config}",
                          f"  pipeline     {self.pipeline_config}"])


def sample_images(folder: Path, count: int) -> tuple[list[Path], list[np.ndarray]]:
    """The first ``count`` images of ``folder`` in natural order: their paths and pixels (BGR)."""
    files, errors = expand_inputs([str(folder)], extensions=IMAGE_EXTENSIONS)
    if errors or not files:
        raise ConfigError(errors[0][1] if errors else f"no images in {folder}")
    return files[:count], [read_image(path) for path in files[:count]]


def _params(net: nn.Module) -> int:
    """Parameters as ``ocrlite profile`` counts them (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in net.parameters())


def prune_stage(
    config: str, out_dir: Path, target: float, criterion: str = "l1", overrides: tuple[str, ...] = (),
    sensitivity: Path | None = None, images: Path | None = None, n_images: int = 4,
) -> PruneResult:
    """Prune the detector of ``config``; measure (or read) sensitivity curves; write the slimmed stage.

    A detector without weights (``weights: null``) is a ConfigError before anything is built or written:
    pruning a random net would save a random detector that reads nothing."""
    require_torch_pruning()
    spec = command_stage("det", config, overrides)
    assert spec is not None  # every pipeline has a detector
    if spec.weights is None:
        raise ConfigError("det.weights: none given; pruning needs a trained detector (a random net would be "
                          "saved as a model that reads nothing)")
    check_outputs(out_dir, _WRITTEN, config,
                  raw_stage("det", config, overrides), spec)
    net = spec.build_net()
    spec = _without_threshold_branch(spec, net)
    example = torch.zeros(_EXAMPLE)
    path = sensitivity or out_dir / "sensitivity.json"
    given = sensitivity is not None and sensitivity.is_file()
    curves, source = _curves(spec, net, path, given, images, n_images, criterion, str(config), example)
    ratios, pruned, _ = allocate(net, curves, target, criterion, example)
    return _save(config, out_dir, spec, net, pruned, ratios, target, criterion, overrides, f"{path} {source}")


def _curves(spec: StageSpec, net: nn.Module, path: Path, given: bool, images: Path | None, n_images: int,
            criterion: str, config: str, example: torch.Tensor) -> tuple[dict[str, dict[float, float]], str]:
    """The sensitivity curves and how they were had: read from the ``--sensitivity`` file ``given``; reused from
    ``path`` when it holds curves of the same detector and criterion on the same images (a rerun into OUT would
    measure the same curves again, for minutes); else measured on ``images`` and written to ``path``."""
    stage = stage_fingerprint(spec)
    if given:
        return load_curves(path, prunable_roots(net), criterion, stage), "read"
    if images is None:
        raise ConfigError("give --images DIR (sensitivity is measured on real images) or an existing --sensitivity")
    files, pixels = sample_images(images, n_images)
    measured_on = file_entries(files)
    if measured_here(path, criterion, stage, measured_on):
        return load_curves(path, prunable_roots(net), criterion, stage), "reused: same detector, criterion, images"
    curves = measure(spec, net, pixels, criterion, example)
    save_curves(path, curves, {"config": config, "criterion": criterion, "images": measured_on, "stage_sha256": stage})
    plot_curves(path.with_suffix(".png"), curves)
    return curves, "measured"


def _without_threshold_branch(spec: StageSpec, net: nn.Module) -> StageSpec:
    """Drop a trained detector's DB threshold branch (``ocrlite train`` exports keep it) from ``net`` and
    the spec's net config: pruning traces the inference forward, which does not run the branch, so its
    inputs would keep their old width. Fine-tuning the pruned net initialises the branch again."""
    head: Any = getattr(net, "head", None)
    if getattr(head, "thresh", None) is None:
        return spec
    head.thresh = None
    config = {k: v for k, v in spec.model["head"].items() if k != "with_threshold"}
    return dataclasses.replace(spec, model={**spec.model, "head": config})


def _save(config: str, out_dir: Path, spec: StageSpec, net: nn.Module, pruned: nn.Module,
          ratios: dict[str, float], target: float, criterion: str, overrides: Sequence[str],
          curves: str) -> PruneResult:
    with torch.no_grad():
        macs = (count_macs(net, torch.zeros(_MAC_INPUT))[0], count_macs(pruned, torch.zeros(_MAC_INPUT))[0])
    assert spec.weights is not None  # prune_stage refuses a detector without weights
    parent_bytes = spec.weights.stat().st_size
    model = widths_config(pruned, spec.model)
    summary = f"pruned by ocrlite prune ({criterion}, MACs {macs[1] / macs[0]:.1%} of the parent, target {target})"
    slim: dict[str, Any] = {"summary": summary, "method": "prune", "criterion": criterion, "flops_target": target,
                            "ratios": ratios, "macs": list(macs)}
    with staged(out_dir, _WRITTEN) as folder:  # the set replaces OUT's whole or not at all
        stage = save_stage(folder, "det", pruned, model, raw_stage("det", config, overrides), spec.manifest, slim)
        write_pipeline(out_dir, config, {"det": stage}, overrides, folder)
    stage_config, pipeline = out_dir / stage.name, out_dir / "ocr.yaml"
    files = (parent_bytes, (out_dir / "det.safetensors").stat().st_size)
    return PruneResult(ratios, macs, (_params(net), _params(pruned)), files, stage_config, pipeline, pruned, spec,
                       curves)
