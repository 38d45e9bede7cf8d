"""PP-LCNetV3 backbone (PP-OCRv4 detector and recognizer), in its deployed (re-parameterised) form.

PaddleOCR trains PP-LCNetV3 with re-parameterisable layers: each conv is a sum of several kxk conv+BN
branches, a 1x1 branch and an identity BN, and every layer and activation is followed by a learnable
affine ``scale * x + bias`` (two scalars). For inference the branches are folded into one conv with a
bias; that folded form is what the exported ONNX graphs contain and what this module implements:

    RepLayer = Conv(k, stride, bias) -> affine -> [hard-swish -> affine]   (no activation at stride 2)

So these nets load converted inference weights; they cannot be trained with PaddleOCR's multi-branch
recipe (the separate branches are gone). The activation rule follows the graph: a layer whose stride is
the integer 2 (detector) has no activation; (2, 1) and (1, 2) strides (recognizer) keep it.

Block = depthwise RepLayer (stride here) -> [SE, 1/6-slope gate] -> pointwise 1x1 RepLayer; no residual.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ocrlite.models.blocks import SEModule, Stride, check_mode, make_divisible
from ocrlite.registry import register

__all__ = ["PPLCNetV3", "LearnableAffine", "RepLayer"]

# Rows: kernel, input channels, output channels, stride, SE (channels before scaling).
_DET = [
    [(3, 16, 32, 1, False)],
    [(3, 32, 64, 2, False), (3, 64, 64, 1, False)],  # 1/4: tap 0
    [(3, 64, 128, 2, False), (3, 128, 128, 1, False)],  # 1/8: tap 1
    [(3, 128, 256, 2, False)] + [(5, 256, 256, 1, False)] * 4,  # 1/16: tap 2
    [(5, 256, 512, 2, True), (5, 512, 512, 1, True), (5, 512, 512, 1, False), (5, 512, 512, 1, False)],  # 1/32
]
# Recognizer: text-line strides; a 48-high input leaves height 3, pooled to 1 by a (3, 2) average pool.
_REC = [
    [(3, 16, 32, 1, False)],
    [(3, 32, 64, 1, False), (3, 64, 64, 1, False)],
    [(3, 64, 128, (2, 1), False), (3, 128, 128, 1, False)],
    [(3, 128, 256, (1, 2), False)] + [(5, 256, 256, 1, False)] * 4,
    [(5, 256, 512, (2, 1), True), (5, 512, 512, 1, True), (5, 512, 512, (2, 1), False), (5, 512, 512, 1, False)],
]
# Detector taps are re-projected by 1x1 convs (with bias) to these widths before scaling (the
# channel counts of the PP-OCRv3 MobileNetV3 taps, so the same FPN sizes apply).
_DET_TAP_CHANNELS = (16, 24, 56, 480)
_DIVISOR = 16


class LearnableAffine(nn.Module):
    """``scale * x + bias`` with two learnt scalars (PaddleOCR's LearnableAffineBlock)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * x + self.bias


class _AffineHardswish(nn.Module):
    """Hard-swish followed by a learnable affine (PaddleOCR's ``Act`` with ``lab``)."""

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Hardswish()
        self.lab = LearnableAffine()

    def forward(self, x: Tensor) -> Tensor:
        return self.lab(self.act(x))


class RepLayer(nn.Module):
    """A folded re-parameterisable layer: conv with bias, affine, then hard-swish + affine unless stride is 2."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: Stride, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups)
        self.lab = LearnableAffine()
        self.act: nn.Module = nn.Identity() if stride == 2 else _AffineHardswish()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.lab(self.conv(x)))


class LCNetV3Block(nn.Module):
    """Depthwise RepLayer (stride) -> [SE] -> pointwise RepLayer."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: Stride, use_se: bool) -> None:
        super().__init__()
        self.dw = RepLayer(in_channels, in_channels, kernel_size, stride, groups=in_channels)
        self.se = SEModule(in_channels, gate="hardsigmoid") if use_se else nn.Identity()
        self.pw = RepLayer(in_channels, out_channels, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw(self.se(self.dw(x)))


@register("backbone")
class PPLCNetV3(nn.Module):
    """PP-LCNetV3 at a width ``scale`` (det 0.75, rec 0.95 in PP-OCRv4 mobile).

    ``mode="det"``: square strides; ``forward`` returns four maps at 1/4, 1/8, 1/16, 1/32, each passed
    through a 1x1 conv, ``out_channels`` a list (x0.75: [12, 18, 42, 360]).
    ``mode="rec"``: text-line strides and a (3, 2) average pool; a 48-high input gives
    [N, out_channels, 1, W/8] with ``out_channels`` = 480 at x0.95.
    Stem: 3x3 stride-2 conv + BN, no activation (it is not re-parameterised in the export).
    """

    def __init__(self, in_channels: int = 3, scale: float = 0.95, mode: str = "rec") -> None:
        super().__init__()
        self.det = check_mode(mode) == "det"

        def width(c: int) -> int:
            return make_divisible(c * scale, _DIVISOR)

        stem = width(16)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem))
        stages = []
        table: list[Any] = _DET if self.det else _REC
        for rows in table:
            stages.append(nn.Sequential(*(LCNetV3Block(width(ci), width(co), k, s, se) for k, ci, co, s, se in rows)))
        self.stages = nn.ModuleList(stages)
        if self.det:
            taps = [width(rows[-1][2]) for rows in _DET[1:]]
            outs = [int(c * scale) for c in _DET_TAP_CHANNELS]
            self.tap_convs = nn.ModuleList(nn.Conv2d(ci, co, 1) for ci, co in zip(taps, outs))
            self.out_channels: list[int] | int = outs
        else:
            self.pool = nn.AvgPool2d((3, 2), (3, 2))
            self.out_channels = width(512)

    def forward(self, x: Tensor) -> list[Tensor] | Tensor:
        x = self.stages[0](self.stem(x))
        taps = []
        for stage in self.stages[1:]:
            x = stage(x)
            taps.append(x)
        if not self.det:
            return self.pool(x)
        return [conv(t) for conv, t in zip(self.tap_convs, taps)]
