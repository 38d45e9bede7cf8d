"""DB feature pyramids: RSEFPN (PP-OCRv3), DBFPN, and DWRSEFPN (PP-OCRv6, depthwise output convs)."""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.models.blocks import SEModule, positive_int
from ocrlite.registry import register

__all__ = ["RSEFPN", "DBFPN", "DWRSEFPN", "RSELayer"]


class RSELayer(nn.Module):
    """Conv (no bias) followed by SE (slope 0.2); with ``shortcut`` the output is ``y + se(y)``."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, shortcut: bool, se_channels: int | None = None
    ) -> None:
        super().__init__()
        self.in_conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.se = SEModule(out_channels, mid_channels=se_channels)
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        y = self.in_conv(x)
        return y + self.se(y) if self.shortcut else self.se(y)


def _plain_conv(in_channels: int, out_channels: int, kernel_size: int, shortcut: bool) -> nn.Module:
    """Bias-free conv used by DBFPN (``shortcut`` is accepted only to share the builder signature)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)


class _FPN(nn.Module):
    """Shared DB pyramid: 1x1 lateral convs, top-down sum, 3x3 convs to C/4, upsample, concat [p5, p4, p3, p2].

    Layers are evaluated deepest level first (lateral 3..0, then output 3..0); the converter relies on
    this execution order to match the ONNX graph.
    """

    def __init__(
        self, in_channels: list[int], out_channels: int, layer: Callable[..., nn.Module], shortcut: bool
    ) -> None:
        super().__init__()
        self.ins_conv = nn.ModuleList(layer(c, out_channels, 1, shortcut) for c in in_channels)
        self.inp_conv = nn.ModuleList(layer(out_channels, out_channels // 4, 3, shortcut) for _ in in_channels)
        self.out_channels = out_channels // 4 * len(in_channels)

    def forward(self, features: list[Tensor]) -> Tensor:
        laterals = [conv(f) for conv, f in reversed(list(zip(self.ins_conv, features)))]  # deepest first
        merged = [laterals[0]]
        for lateral in laterals[1:]:
            merged.append(lateral + F.interpolate(merged[-1], scale_factor=2.0, mode="nearest"))
        outs = [conv(m) for conv, m in zip(reversed(self.inp_conv), merged)]  # p5, p4, p3, p2
        n = len(outs)
        ups = [F.interpolate(p, scale_factor=float(2 ** (n - 1 - i)), mode="nearest") for i, p in enumerate(outs[:-1])]
        return torch.cat([*ups, outs[-1]], dim=1)


@register("neck")
class RSEFPN(_FPN):
    """PP-OCRv3 DB neck: every conv is followed by an SE layer (residual when ``shortcut``).

    ``widths`` (written by ``ocrlite prune``): ``{"lateral": C, "outputs": [c0, c1, c2, c3]}`` replaces
    ``out_channels`` and ``out_channels // 4`` per level; SE layers keep the unpruned reduction widths.
    """

    def __init__(
        self, in_channels: list[int], out_channels: int = 96, shortcut: bool = True,
        widths: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(in_channels, out_channels, RSELayer, shortcut)
        if widths is None:
            return
        lateral, outputs = _fpn_widths(widths, out_channels, len(in_channels))
        self.ins_conv = nn.ModuleList(
            RSELayer(c, lateral, 1, shortcut, se_channels=out_channels // 4) for c in in_channels
        )
        self.inp_conv = nn.ModuleList(
            RSELayer(lateral, c, 3, shortcut, se_channels=out_channels // 16) for c in outputs
        )
        self.out_channels = sum(outputs)


def _fpn_widths(widths: dict[str, Any], out_channels: int, levels: int) -> tuple[int, list[int]]:
    """Checked explicit (pruned) lateral width and per-level output widths."""
    unknown = sorted(set(widths) - {"lateral", "outputs"})
    if unknown:
        raise ConfigError(f"widths: unknown key {unknown[0]!r}; allowed: lateral, outputs")
    lateral = widths.get("lateral", out_channels)
    outputs = list(widths.get("outputs", [out_channels // 4] * levels))
    if not positive_int(lateral):
        raise ConfigError(f"widths.lateral: expected a positive integer, got {lateral!r}")
    if len(outputs) != levels or not all(positive_int(c) for c in outputs):
        raise ConfigError(f"widths.outputs: expected {levels} positive integers, got {outputs!r}")
    return lateral, outputs


@register("neck")
class DBFPN(_FPN):
    """Plain DB neck (PaddleOCR DBFPN): bias-free convs, no SE."""

    def __init__(self, in_channels: list[int], out_channels: int = 256) -> None:
        super().__init__(in_channels, out_channels, _plain_conv, False)


class _DWRSELayer(nn.Module):
    """Depthwise kxk conv (bias) -> 1x1 conv (no bias) -> residual SE (slope 0.2)."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, kernel, padding=kernel // 2, groups=cin)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.se = SEModule(cout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.pw(self.dw(x))
        return y + self.se(y)


@register("neck")
class DWRSEFPN(_FPN):
    """RSEFPN with depthwise-separable output convs of kernel ``kernel_size`` (7 small, 5 tiny)."""

    def __init__(self, in_channels: list[int], out_channels: int = 96, kernel_size: int = 7) -> None:
        super().__init__(in_channels, out_channels, RSELayer, True)
        self.inp_conv = nn.ModuleList(
            _DWRSELayer(out_channels, out_channels // 4, kernel_size) for _ in in_channels
        )
