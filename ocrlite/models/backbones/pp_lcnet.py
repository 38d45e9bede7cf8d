"""PP-LCNet ("MobileNetV1Enhance") backbone for text-line recognition, written as a block table."""

from __future__ import annotations

from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.models.blocks import ConvBNAct, DepthwiseSeparable, Stride, check_mode
from ocrlite.registry import register

__all__ = ["MobileNetV1Enhance"]

# Rows: input channels, output channels, depthwise kernel, stride, SE (channels before scaling).
# Stride (2, 1) halves only the height, keeping horizontal resolution for the CTC time axis.
_TABLE = [
    (32, 64, 3, 1, False),
    (64, 128, 3, 1, False),
    (128, 128, 3, 1, False),
    (128, 256, 3, (2, 1), False),  # H/4
    (256, 256, 3, 1, False),
    (256, 512, 3, (2, 1), False),  # H/8
    (512, 512, 5, 1, False),
    (512, 512, 5, 1, False),
    (512, 512, 5, 1, False),
    (512, 512, 5, 1, False),
    (512, 512, 5, 1, False),
    (512, 1024, 5, (2, 1), True),  # H/16
    (1024, 1024, 5, 1, True),
]


@register("backbone")
class MobileNetV1Enhance(nn.Module):
    """Stem 3x3/2 ConvBN-hswish, 13 depthwise-separable blocks, 2x2 max pool.

    A 32-high input leaves a feature map of height 1: [N, out_channels, 1, W/4]; ``out_channels`` = 1024 * scale.
    PP-OCRv3 (SVTR-LCNet) sets ``last_conv_stride=(1, 2)`` and ``last_pool="avg"``: a 48-high input
    then gives [N, out_channels, 1, W/8].
    """

    def __init__(
        self, in_channels: int = 3, scale: float = 0.5, last_conv_stride: int | list[int] = 1, last_pool: str = "max",
        mode: str = "rec",
    ) -> None:
        super().__init__()
        check_mode(mode, ("rec",))  # a text-line backbone only; the det/cls/rec switch every backbone takes
        if last_pool not in ("max", "avg"):
            raise ConfigError(f"last_pool must be 'max' or 'avg', got {last_pool!r}")
        strides: list[Stride] = [stride for *_, stride, _ in _TABLE]  # type: ignore[misc]
        last = last_conv_stride
        if isinstance(last, list) and len(last) != 2:
            raise ConfigError(f"last_conv_stride: expected an integer or [h, w], got {last!r}")
        strides[-1] = (last[0], last[1]) if isinstance(last, list) else last
        self.stem = ConvBNAct(in_channels, int(32 * scale), 3, 2, act="hardswish")
        self.blocks = nn.Sequential(
            *(
                DepthwiseSeparable(int(cin * scale), int(cout * scale), k, stride, se)
                for (cin, cout, k, _, se), stride in zip(_TABLE, strides)
            )
        )
        self.pool = nn.MaxPool2d(2, 2) if last_pool == "max" else nn.AvgPool2d(2, 2)
        self.out_channels = int(1024 * scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.blocks(self.stem(x)))
