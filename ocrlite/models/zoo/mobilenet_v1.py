"""MobileNetV1: a 3x3 stem and 13 depthwise-separable blocks (ReLU), with width multiplier alpha."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.models.blocks import ConvBNAct, DepthwiseSeparable, StagedBackbone, make_divisible, rec_stride
from ocrlite.registry import register

__all__ = ["MobileNetV1"]

# Stages after the stem block: (output channels, blocks); the first block of each stage downsamples.
_STAGES = [(128, 2), (256, 2), (512, 6), (1024, 2)]


@register("backbone")
class MobileNetV1(StagedBackbone):
    """MobileNetV1 (Howard et al. 2017): ``scale`` is the width multiplier alpha.

    ``resolution`` is the resolution multiplier beta: the input is resized by it before the stem, so the
    cost shrinks by about beta^2 (for classification; det maps then come out beta times smaller).
    With an ImageNet head at scale 1.0: 4,231,976 parameters.
    """

    def __init__(
        self, in_channels: int = 3, scale: float = 1.0, resolution: float = 1.0, mode: str = "det"
    ) -> None:
        super().__init__()
        if not 0 < resolution <= 1:
            raise ConfigError(f"MobileNetV1 resolution must be in (0, 1], got {resolution}")
        self.resolution = resolution
        width = lambda c: make_divisible(c * scale)  # noqa: E731
        stem = nn.Sequential(
            ConvBNAct(in_channels, width(32), 3, rec_stride(mode, 0)),
            DepthwiseSeparable(width(32), width(64), 3, 1, False, act="relu"),
        )
        channels, stages, taps = width(64), [], []
        for point, (out, repeats) in enumerate(_STAGES, start=1):
            blocks = []
            for i in range(repeats):
                stride = rec_stride(mode, point) if i == 0 else 1
                blocks.append(DepthwiseSeparable(channels, width(out), 3, stride, False, act="relu"))
                channels = width(out)
            stages.append(nn.Sequential(*blocks))
            taps.append(channels)
        self._assemble(mode, stem, stages, taps)

    def forward(self, x: Tensor) -> list[Tensor] | Tensor:
        if self.resolution != 1:
            x = F.interpolate(x, scale_factor=self.resolution, mode="bilinear", align_corners=False)
        return super().forward(x)
