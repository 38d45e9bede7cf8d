"""SqueezeNet 1.0 / 1.1: Fire modules (1x1 squeeze, then 1x1 and 3x3 expand, concatenated), no BN."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.models.blocks import StagedBackbone, Stride
from ocrlite.registry import register

__all__ = ["SqueezeNet"]

# Fire rows: squeeze channels, expand channels per branch; each stage opens with a 3x3 max pool.
_FIRES = {
    "1_0": (96, 7, [[(16, 64), (16, 64), (32, 128)], [(32, 128), (48, 192), (48, 192), (64, 256)], [(64, 256)]]),
    "1_1": (64, 3, [[(16, 64), (16, 64)], [(32, 128), (32, 128)], [(48, 192), (48, 192), (64, 256), (64, 256)]]),
}
# Rec strides: stem, then the three pools; the final 2x2 pool gives H/32, W/4 (no stride-1 point here).
_REC_STRIDES: list[Stride] = [(2, 2), (2, 1), (2, 1), (2, 1)]


class Fire(nn.Module):
    """squeeze 1x1 -> ReLU -> [expand 1x1 -> ReLU, expand 3x3 -> ReLU] concatenated on channels."""

    def __init__(self, in_channels: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(in_channels, squeeze, 1), nn.ReLU())
        self.expand1x1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.expand3x3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())
        self.out_channels = 2 * expand

    def forward(self, x: Tensor) -> Tensor:
        s = self.squeeze(x)
        return torch.cat([self.expand1x1(s), self.expand3x3(s)], dim=1)


@register("backbone")
class SqueezeNet(StagedBackbone):
    """SqueezeNet ``version`` "1_0" (7x7/96 stem) or "1_1" (3x3/64 stem, earlier pooling).

    The stem and pools are padded ("same" geometry) so maps sit exactly at strides 4, 8 and 16; the
    original unpadded layers give 55/27/13 instead of 56/28/14 at 224, with the same parameters. Det
    returns three levels (1/4, 1/8, 1/16). ImageNet head: 1,248,424 (1.0) and 1,235,496 (1.1).
    """

    def __init__(self, in_channels: int = 3, version: str = "1_1", mode: str = "det") -> None:
        super().__init__()
        if version not in _FIRES:
            raise ConfigError(f"SqueezeNet version must be one of {', '.join(_FIRES)}, got {version!r}")
        width, kernel, table = _FIRES[version]
        strides: list[Stride] = _REC_STRIDES if mode == "rec" else [2, 2, 2, 2]
        stem = nn.Sequential(nn.Conv2d(in_channels, width, kernel, strides[0], kernel // 2), nn.ReLU())
        channels, stages, taps = width, [], []
        for stride, rows in zip(strides[1:], table):
            layers: list[nn.Module] = [nn.MaxPool2d(3, stride, 1)]
            for squeeze, expand in rows:
                layers.append(Fire(channels, squeeze, expand))
                channels = 2 * expand
            stages.append(nn.Sequential(*layers))
            taps.append(channels)
        self._assemble(mode, stem, stages, taps)
