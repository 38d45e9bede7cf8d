"""The prunable channel groups of a DB detector (MobileNetV3 backbone, RSEFPN neck, DB head).

A group is named by its root convolution, whose output channels are removed together with every
channel that depends on them (Torch-Pruning's dependency graph finds those). Only groups whose new
width the configs can record are offered: each block's expansion width, the backbone's last 1x1
conv, the neck's lateral width (coupled across levels by the top-down sums) and the neck's
per-level output widths. Block output widths (coupled by residual sums) and SE reductions stay.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from ocrlite.errors import ConfigError
from ocrlite.models.backbones.mobilenet_v3 import MobileNetV3
from ocrlite.models.heads.db import DBHead
from ocrlite.models.necks.fpn import RSEFPN

__all__ = ["prunable_roots", "check_prunable", "widths_config"]


def check_prunable(net: nn.Module) -> None:
    """Raise ConfigError unless ``net`` is a MobileNetV3 + RSEFPN + DBHead detector (the supported layout)."""
    parts = (getattr(net, "backbone", None), getattr(net, "neck", None), getattr(net, "head", None))
    if not (isinstance(parts[0], MobileNetV3) and isinstance(parts[1], RSEFPN) and isinstance(parts[2], DBHead)):
        names = ", ".join(type(p).__name__ for p in parts)
        raise ConfigError(f"pruning supports MobileNetV3 + RSEFPN + DBHead detectors; this net is {names}")


def prunable_roots(net: nn.Module) -> dict[str, nn.Conv2d]:
    """Group name -> root conv whose output channels the group removes."""
    check_prunable(net)
    backbone: Any = net.backbone
    neck: Any = net.neck
    roots: dict[str, nn.Conv2d] = {
        f"backbone.mid.{i}": block.expand.conv for i, block in enumerate(backbone.blocks)
    }
    roots["backbone.last"] = backbone.last_conv.conv
    roots["neck.lateral"] = neck.ins_conv[0].in_conv
    for i, layer in enumerate(neck.inp_conv):
        roots[f"neck.output.{i}"] = layer.in_conv
    return roots


def widths_config(net: nn.Module, model: dict[str, Any]) -> dict[str, Any]:
    """``model`` (the stage's net config) with the explicit widths read back from a pruned ``net``."""
    check_prunable(net)
    backbone: Any = net.backbone
    neck: Any = net.neck
    head: Any = net.head
    out = copy.deepcopy(model)
    out["backbone"]["widths"] = {
        "mid": [int(block.expand.conv.out_channels) for block in backbone.blocks],
        "last": int(backbone.last_conv.conv.out_channels),
    }
    out["neck"]["widths"] = {
        "lateral": int(neck.ins_conv[0].in_conv.out_channels),
        "outputs": [int(layer.in_conv.out_channels) for layer in neck.inp_conv],
    }
    out["head"]["mid_channels"] = int(head.binarize.conv1.out_channels)
    return out
