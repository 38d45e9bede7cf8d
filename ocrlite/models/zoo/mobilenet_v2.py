"""MobileNetV2: inverted residuals with linear bottlenecks, written as the paper's (t, c, n, s) table."""

from __future__ import annotations

from torch import nn

from ocrlite.models.blocks import ConvBNAct, ResidualUnit, StagedBackbone, Stride, make_divisible, rec_stride
from ocrlite.registry import register

__all__ = ["MobileNetV2"]

# Rows: expansion t, output channels c, repeats n, stride s (Sandler et al. 2018, table 2).
_TABLE = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),  # 1/4
    (6, 32, 3, 2),  # 1/8
    (6, 64, 4, 2),  # 1/16
    (6, 96, 3, 1),
    (6, 160, 3, 2),  # 1/32
    (6, 320, 1, 1),
]


@register("backbone")
class MobileNetV2(StagedBackbone):
    """MobileNetV2 at width ``scale``: ReLU6, no activation after the projection, 1x1 conv to 1280 at the end.

    Det taps: after the 24, 32, 96 and final 1280 (``last_channels``) layers. ImageNet head at 1.0: 3,504,872.
    """

    def __init__(
        self, in_channels: int = 3, scale: float = 1.0, last_channels: int = 1280, mode: str = "det"
    ) -> None:
        super().__init__()
        channels = make_divisible(32 * scale)
        stem = ConvBNAct(in_channels, channels, 3, rec_stride(mode, 0), act="relu6")
        stages: list[list[nn.Module]] = [[]]
        taps: list[int] = []
        point = 0
        for t, c, n, s in _TABLE:
            out = make_divisible(c * scale)
            for i in range(n):
                stride: Stride = 1
                if s == 2 and i == 0:
                    point += 1
                    stride = rec_stride(mode, point)
                    if stages[-1]:
                        taps.append(channels)
                        stages.append([])
                mid = channels * t
                stages[-1].append(ResidualUnit(channels, mid, out, 3, stride, False, "relu6", expand=t != 1))
                channels = out
        last = make_divisible(last_channels * max(1.0, scale))
        stages[-1].append(ConvBNAct(channels, last, 1, act="relu6"))
        taps.append(last)
        first = nn.Sequential(stem, *stages[0])
        self._assemble(mode, first, [nn.Sequential(*blocks) for blocks in stages[1:]], taps[1:])
