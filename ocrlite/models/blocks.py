"""Building blocks shared by the backbones and necks: conv-BN-act, SE, inverted residual, depthwise separable."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from ocrlite.errors import ConfigError

__all__ = [
    "make_divisible",
    "make_activation",
    "HardSigmoid",
    "ConvBNAct",
    "SEModule",
    "ResidualUnit",
    "DepthwiseSeparable",
    "check_mode",
    "positive_int",
    "rec_stride",
    "REC_STRIDES",
    "StagedBackbone",
]

Stride = int | tuple[int, int]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never going below 90 % of it."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def make_activation(name: str | None) -> nn.Module:
    """Activation module by name: "relu", "relu6", "hardswish", "swish" or None (identity)."""
    if name is None:
        return nn.Identity()
    if name == "relu":
        return nn.ReLU()
    if name == "relu6":
        return nn.ReLU6()
    if name == "hardswish":
        return nn.Hardswish()
    if name == "swish":
        return nn.SiLU()
    raise ConfigError(f"unknown activation {name!r}; choose relu, relu6, hardswish, swish or None")


# Backbone modes shared by the zoo: "det" returns stage maps at strides 4, 8, 16, 32 for an FPN;
# "rec" keeps horizontal resolution for text lines. A backbone has five downsampling points
# (stem, then one per stage); in "rec" they take these strides and a final 2x2 max pool follows,
# so a 32-high line leaves a [N, C, 1, W/4] map, the layout MobileNetV1Enhance produces.
REC_STRIDES: tuple[Stride, ...] = ((2, 2), 1, (2, 1), (2, 1), (2, 1))


def check_mode(mode: str, allowed: tuple[str, ...] = ("det", "rec")) -> str:
    """Return ``mode`` if allowed, else raise a one-line ConfigError listing the choices."""
    if mode not in allowed:
        raise ConfigError(f"mode must be one of {', '.join(allowed)}; got {mode!r}")
    return mode


def positive_int(value: object) -> bool:
    """Whether a config value is an integer above 0 (``true`` is YAML's boolean, not a channel count)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def rec_stride(mode: str, point: int) -> Stride:
    """Stride of downsampling point ``point`` (0 = stem): 2 in "det" mode, REC_STRIDES[point] in "rec"."""
    return REC_STRIDES[point] if mode == "rec" else 2


class HardSigmoid(nn.Module):
    """``clamp(slope * x + offset, 0, 1)``; slope 0.2 is Paddle's default, 1/6 equals ``nn.Hardsigmoid``."""

    def __init__(self, slope: float = 0.2, offset: float = 0.5) -> None:
        super().__init__()
        self.slope = slope
        self.offset = offset

    def forward(self, x: Tensor) -> Tensor:
        return (x * self.slope + self.offset).clamp(0.0, 1.0)

    def extra_repr(self) -> str:
        return f"slope={self.slope}, offset={self.offset}"


_GATES: dict[str, Callable[[], nn.Module]] = {
    "hard_sigmoid_0.2": lambda: HardSigmoid(0.2, 0.5),
    "hardsigmoid": nn.Hardsigmoid,
}


class ConvBNAct(nn.Sequential):
    """The one conv block of every net: Conv2d, BatchNorm2d (eps 1e-5) and an optional activation.

    Padding is ``kernel // 2`` per axis (``kernel_size`` an int or ``(kh, kw)``). With ``bn=False`` the
    conv carries a bias instead of the BatchNorm (BN already folded, as in PP-OCRv6's exports).
    Sub-module names ``conv``/``bn``/``act`` are part of the weights' key names.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 1,
        stride: Stride = 1,
        groups: int = 1,
        act: str | None = "relu",
        bn: bool = True,
    ) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.conv = nn.Conv2d(
            in_channels, out_channels, (kh, kw), stride, (kh // 2, kw // 2), groups=groups, bias=not bn
        )
        if bn:
            self.bn = nn.BatchNorm2d(out_channels, eps=1e-5, momentum=0.1)
        self.act = make_activation(act)


class SEModule(nn.Module):
    """Squeeze-and-excitation: ``x * gate(conv2(relu(conv1(avgpool(x)))))``.

    ``gate`` is "hard_sigmoid_0.2" (PaddleOCR det/cls: clamp(0.2x + 0.5)) or "hardsigmoid" (rec: relu6(x+3)/6).
    """

    def __init__(
        self, channels: int, reduction: int = 4, gate: str = "hard_sigmoid_0.2", mid_channels: int | None = None
    ) -> None:
        super().__init__()
        if gate not in _GATES:
            raise ConfigError(f"unknown SE gate {gate!r}; choose one of {sorted(_GATES)}")
        mid = channels // reduction if mid_channels is None else mid_channels  # explicit after channel pruning
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv1 = nn.Conv2d(channels, mid, 1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(mid, channels, 1)
        self.gate = _GATES[gate]()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.conv2(self.relu(self.conv1(self.pool(x)))))


class ResidualUnit(nn.Module):
    """MobileNetV3 inverted residual: expand 1x1 -> depthwise kxk (stride) -> [SE] -> project 1x1 (no act).

    The input is added back when the stride is 1 and the channel count is unchanged. ``expand=False``
    drops the 1x1 expansion (MobileNetV2 blocks with t=1); PaddleOCR's MobileNetV3 always keeps it.
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: Stride,
        use_se: bool,
        act: str,
        se_gate: str = "hard_sigmoid_0.2",
        expand: bool = True,
        se_channels: int | None = None,
    ) -> None:
        super().__init__()
        if not expand and mid_channels != in_channels:
            raise ConfigError(f"ResidualUnit without expansion needs mid == in ({mid_channels} != {in_channels})")
        self.expand = ConvBNAct(in_channels, mid_channels, 1, act=act) if expand else nn.Identity()
        self.dw = ConvBNAct(mid_channels, mid_channels, kernel_size, stride, groups=mid_channels, act=act)
        self.se = SEModule(mid_channels, gate=se_gate, mid_channels=se_channels) if use_se else nn.Identity()
        self.linear = ConvBNAct(mid_channels, out_channels, 1, act=None)
        self.use_shortcut = stride in (1, (1, 1)) and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        y = self.linear(self.se(self.dw(self.expand(x))))
        return x + y if self.use_shortcut else y


class DepthwiseSeparable(nn.Module):
    """Depthwise kxk ConvBN-act (stride) -> [SE] -> pointwise ConvBN-act.

    The defaults are the PP-LCNet block (h-swish, SE gate with slope 1/6); MobileNetV1 uses ``act="relu"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: Stride,
        use_se: bool,
        se_gate: str = "hardsigmoid",
        act: str = "hardswish",
    ) -> None:
        super().__init__()
        self.dw = ConvBNAct(in_channels, in_channels, kernel_size, stride, groups=in_channels, act=act)
        self.se = SEModule(in_channels, gate=se_gate) if use_se else nn.Identity()
        self.pw = ConvBNAct(in_channels, out_channels, 1, act=act)

    def forward(self, x: Tensor) -> Tensor:
        return self.pw(self.se(self.dw(x)))


class StagedBackbone(nn.Module):
    """Base for the zoo backbones: a stride-2 stem and stages that each open with a downsampling point.

    Subclasses build the modules and call ``_assemble``. "det": ``forward`` returns every stage's map
    (strides 4, 8, 16[, 32]) and ``out_channels`` is their channel list. "rec": ``forward`` returns the last
    stage's map after a 2x2 max pool and ``out_channels`` is an int.
    """

    mode: str

    def _assemble(self, mode: str, stem: nn.Module, stages: Sequence[nn.Module], channels: list[int]) -> None:
        self.mode = check_mode(mode)
        self.stem = stem
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2, 2) if mode == "rec" else nn.Identity()
        self.out_channels: list[int] | int = list(channels) if mode == "det" else channels[-1]

    def forward(self, x: Tensor) -> list[Tensor] | Tensor:
        x = self.stem(x)
        features: list[Tensor] = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features if self.mode == "det" else self.pool(x)
