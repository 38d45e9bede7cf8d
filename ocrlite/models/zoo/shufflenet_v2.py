"""ShuffleNetV2: channel split, two branches (1x1 -> depthwise 3x3 -> 1x1) and a channel shuffle."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.models.blocks import ConvBNAct, StagedBackbone, Stride, rec_stride
from ocrlite.registry import register

__all__ = ["ShuffleNetV2"]

# Stage output channels (stages 2-4) and the final 1x1 conv, per width (Ma et al. 2018, table 5).
_WIDTHS = {0.5: [48, 96, 192, 1024], 1.0: [116, 232, 464, 1024], 1.5: [176, 352, 704, 1024], 2.0: [244, 488, 976, 2048]}
_REPEATS = [4, 8, 4]


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``groups`` equal groups: [g0c0, g1c0, g0c1, g1c1, ...]."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """Stride 1: split channels in half, transform one half, concat, shuffle. Downsampling: both branches
    see the whole input (the left one is depthwise 3x3 -> 1x1) and the outputs are concatenated."""

    def __init__(self, in_channels: int, out_channels: int, stride: Stride) -> None:
        super().__init__()
        self.downsample = stride not in (1, (1, 1))
        half = out_channels // 2
        if self.downsample:
            self.left: nn.Module = nn.Sequential(
                ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels, act=None),
                ConvBNAct(in_channels, half, 1),
            )
        else:
            self.left = nn.Identity()
        right_in = in_channels if self.downsample else half
        self.right = nn.Sequential(
            ConvBNAct(right_in, half, 1),
            ConvBNAct(half, half, 3, stride, groups=half, act=None),
            ConvBNAct(half, half, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.downsample:
            out = torch.cat([self.left(x), self.right(x)], dim=1)
        else:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.right(b)], dim=1)
        return channel_shuffle(out, 2)


@register("backbone")
class ShuffleNetV2(StagedBackbone):
    """ShuffleNetV2 at ``scale`` 0.5, 1.0, 1.5 or 2.0. Det taps: the max-pooled stem (24 channels, 1/4),
    stages 2 and 3, and the final 1x1 conv (1/32). ImageNet head at 1.0x: 2,278,604; at 0.5x: 1,366,792."""

    def __init__(self, in_channels: int = 3, scale: float = 1.0, mode: str = "det") -> None:
        super().__init__()
        if scale not in _WIDTHS:
            raise ConfigError(f"ShuffleNetV2 scale must be one of {sorted(_WIDTHS)}, got {scale}")
        *widths, last = _WIDTHS[scale]
        stem = ConvBNAct(in_channels, 24, 3, rec_stride(mode, 0))
        pool_stride = rec_stride(mode, 1)
        stages: list[nn.Module] = [nn.MaxPool2d(3, pool_stride, 1)]
        channels = 24
        for point, (out, repeats) in enumerate(zip(widths, _REPEATS), start=2):
            units: list[nn.Module] = [ShuffleUnit(channels, out, rec_stride(mode, point))]
            units += [ShuffleUnit(out, out, 1) for _ in range(repeats - 1)]
            channels = out
            stages.append(nn.Sequential(*units))
        units.append(ConvBNAct(channels, last, 1))  # the last 1x1 conv closes the last stage
        stages[-1] = nn.Sequential(*units)
        self._assemble(mode, stem, stages, [24, widths[0], widths[1], last])
