"""MobileNetV3 backbone written as block tables (PaddleOCR det/cls variants).

One class serves both uses because they share the tables and the block; only two things differ:
``mode="det"`` keeps square strides and returns four stage taps (1/4 .. 1/32) for an FPN, while
``mode="cls"`` (text lines) turns every stride-2 block into stride (2, 1), adds a 2x2 max pool and
returns one tensor. ``mode="rec"`` (PaddleOCR's rec MobileNetV3 strides) keeps the first stride-2 block at
stride 1 and the others at (2, 1), so a 32-high line leaves [N, C, 1, W/4] after the pool.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.models.blocks import ConvBNAct, ResidualUnit, make_divisible, positive_int
from ocrlite.registry import register

__all__ = ["MobileNetV3"]

# Rows: kernel, expansion channels, output channels, SE, activation, stride (before scaling).
_LARGE = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),  # 1/4
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),  # 1/8
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hardswish", 2),  # 1/16
    (3, 200, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1),
    (3, 480, 112, True, "hardswish", 1),
    (3, 672, 112, True, "hardswish", 1),
    (5, 672, 160, True, "hardswish", 2),  # 1/32
    (5, 960, 160, True, "hardswish", 1),
    (5, 960, 160, True, "hardswish", 1),
]
_SMALL = [
    (3, 16, 16, True, "relu", 2),  # 1/4
    (3, 72, 24, False, "relu", 2),  # 1/8
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hardswish", 2),  # 1/16
    (5, 240, 40, True, "hardswish", 1),
    (5, 240, 40, True, "hardswish", 1),
    (5, 120, 48, True, "hardswish", 1),
    (5, 144, 48, True, "hardswish", 1),
    (5, 288, 96, True, "hardswish", 2),  # 1/32
    (5, 576, 96, True, "hardswish", 1),
    (5, 576, 96, True, "hardswish", 1),
]
_TABLES = {"large": (_LARGE, 960), "small": (_SMALL, 576)}


@register("backbone")
class MobileNetV3(nn.Module):
    """MobileNetV3 large/small at a width ``scale``.

    det: ``forward`` returns [C2, C3, C4, C5]; a new stage starts at each stride-2 block after the third;
    ``out_channels`` is a list (large x0.5: [16, 24, 56, 480]).
    cls: ``forward`` returns one [N, C, H/64, W/4] map after a 2x2 max pool (a 48x192 line: [N, C, 1, 48]);
    ``out_channels`` is an int. rec: as cls but [N, C, H/32, W/4] (see the module docstring).

    ``widths`` (written by ``ocrlite prune``) gives explicit channel counts instead of the scaled table:
    ``{"mid": [expansion channels of each block], "last": channels of the last 1x1 conv}``; SE layers keep
    the reduction width of the unpruned net.
    """

    def __init__(
        self,
        in_channels: int = 3,
        model_name: str = "large",
        scale: float = 0.5,
        disable_se: bool = False,
        mode: str = "det",
        widths: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if model_name not in _TABLES:
            raise ConfigError(f"model_name must be one of {sorted(_TABLES)}, got {model_name!r}")
        if mode not in ("det", "cls", "rec"):
            raise ConfigError(f"mode must be one of det, cls, rec; got {mode!r}")
        self.mode = mode
        table, last_channels = _TABLES[model_name]
        mids, last = _widths(widths, [make_divisible(scale * row[1]) for row in table],
                             make_divisible(scale * last_channels))
        channels = make_divisible(16 * scale)
        self.stem = ConvBNAct(in_channels, channels, 3, 2, act="hardswish")
        blocks: list[nn.Module] = []
        self.taps: list[int] = []
        tap_channels: list[int] = []
        for i, (k, exp, out, se, act, stride) in enumerate(table):
            if mode == "det" and stride == 2 and i > 2:
                self.taps.append(len(blocks) - 1)
                tap_channels.append(channels)
            block_stride = (2, 1) if mode in ("cls", "rec") and stride == 2 else stride
            if mode == "rec" and stride == 2 and not any(row[5] == 2 for row in table[:i]):
                block_stride = 1
            out_channels = make_divisible(scale * out)
            se_channels = make_divisible(scale * exp) // 4
            blocks.append(
                ResidualUnit(
                    channels, mids[i], out_channels, k, block_stride, se and not disable_se, act,
                    se_channels=se_channels,
                )
            )
            channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.last_conv = ConvBNAct(channels, last, 1, act="hardswish")
        if mode == "det":
            self.out_channels: list[int] | int = [*tap_channels, last]
        else:
            self.pool = nn.MaxPool2d(2, 2)
            self.out_channels = last

    def forward(self, x: Tensor) -> list[Tensor] | Tensor:
        x = self.stem(x)
        features: list[Tensor] = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                features.append(x)
        x = self.last_conv(x)
        if self.mode != "det":
            return self.pool(x)
        return [*features, x]


def _widths(widths: dict[str, Any] | None, mids: list[int], last: int) -> tuple[list[int], int]:
    """Explicit (pruned) expansion widths per block and the last conv's width, checked; else the table's."""
    if widths is None:
        return mids, last
    unknown = sorted(set(widths) - {"mid", "last"})
    if unknown:
        raise ConfigError(f"widths: unknown key {unknown[0]!r}; allowed: mid, last")
    given = list(widths.get("mid", mids))
    if len(given) != len(mids) or not all(positive_int(c) for c in given):
        raise ConfigError(f"widths.mid: expected {len(mids)} positive integers, got {given!r}")
    last = widths.get("last", last)
    if not positive_int(last):
        raise ConfigError(f"widths.last: expected a positive integer, got {last!r}")
    return given, last
