"""Necks: DB feature pyramids (RSEFPN, DBFPN) and the recogniser's sequence encoder."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import register
from .blocks import SEModule

__all__ = ["RSEFPN", "DBFPN", "SequenceEncoder", "im2seq"]


class RSELayer(nn.Module):
    """Conv (no bias) followed by SE (slope 0.2); with ``shortcut`` the output is ``y + se(y)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, shortcut: bool) -> None:
        super().__init__()
        self.in_conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.se = SEModule(out_channels)
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        y = self.in_conv(x)
        return y + self.se(y) if self.shortcut else self.se(y)


def _plain_conv(in_channels: int, out_channels: int, kernel_size: int, shortcut: bool) -> nn.Module:
    """Bias-free conv used by DBFPN (``shortcut`` is accepted only to share the builder signature)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)


class _FPN(nn.Module):
    """Shared DB pyramid: 1x1 lateral convs, top-down sum, 3x3 convs to C/4, upsample, concat [p5, p4, p3, p2].

    Layers are evaluated deepest level first (lateral 3..0, then output 3..0); the converter relies on
    this execution order to match the ONNX graph.
    """

    def __init__(
        self, in_channels: list[int], out_channels: int, layer: Callable[..., nn.Module], shortcut: bool
    ) -> None:
        super().__init__()
        self.ins_conv = nn.ModuleList(layer(c, out_channels, 1, shortcut) for c in in_channels)
        self.inp_conv = nn.ModuleList(layer(out_channels, out_channels // 4, 3, shortcut) for _ in in_channels)
        self.out_channels = out_channels // 4 * len(in_channels)

    def forward(self, features: list[Tensor]) -> Tensor:
        laterals = [conv(f) for conv, f in reversed(list(zip(self.ins_conv, features)))]  # deepest first
        merged = [laterals[0]]
        for lateral in laterals[1:]:
            merged.append(lateral + F.interpolate(merged[-1], scale_factor=2.0, mode="nearest"))
        outs = [conv(m) for conv, m in zip(reversed(self.inp_conv), merged)]  # p5, p4, p3, p2
        n = len(outs)
        ups = [F.interpolate(p, scale_factor=float(2 ** (n - 1 - i)), mode="nearest") for i, p in enumerate(outs[:-1])]
        return torch.cat([*ups, outs[-1]], dim=1)


@register("neck")
class RSEFPN(_FPN):
    """PP-OCRv3 DB neck: every conv is followed by an SE layer (residual when ``shortcut``)."""

    def __init__(self, in_channels: list[int], out_channels: int = 96, shortcut: bool = True) -> None:
        super().__init__(in_channels, out_channels, RSELayer, shortcut)


@register("neck")
class DBFPN(_FPN):
    """Plain DB neck (PaddleOCR DBFPN): bias-free convs, no SE."""

    def __init__(self, in_channels: list[int], out_channels: int = 256) -> None:
        super().__init__(in_channels, out_channels, _plain_conv, False)


def im2seq(x: Tensor) -> Tensor:
    """[N, C, 1, W] feature map -> [N, W, C] sequence (the height must already be 1)."""
    if x.shape[2] != 1:
        raise ValueError(f"im2seq needs a feature map of height 1, got {tuple(x.shape)}")
    return x.squeeze(2).transpose(1, 2)


class _Reshape(nn.Module):
    """Sequence = feature columns, no mixing."""

    def __init__(self, in_channels: int, hidden_size: int) -> None:
        super().__init__()
        self.out_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        return im2seq(x)


class _BiLSTM(nn.Module):
    """Two-layer bidirectional LSTM over all columns (padding included, like the reference export)."""

    def __init__(self, in_channels: int, hidden_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_channels, hidden_size, num_layers=2, bidirectional=True, batch_first=True)
        self.out_channels = 2 * hidden_size

    def forward(self, x: Tensor) -> Tensor:
        return self.lstm(im2seq(x))[0]


# Each encoder maps the backbone's [N, C, H, W] map to [N, T, C']; map-level encoders (e.g. SVTR) fit here too.
_ENCODERS: dict[str, type[nn.Module]] = {"reshape": _Reshape, "rnn": _BiLSTM}


@register("neck")
class SequenceEncoder(nn.Module):
    """Recogniser neck: turns the backbone map into a [N, T, C] sequence with the chosen ``encoder_type``."""

    def __init__(self, in_channels: int, encoder_type: str = "rnn", hidden_size: int = 64) -> None:
        super().__init__()
        if encoder_type not in _ENCODERS:
            raise ConfigError(f"unknown encoder_type {encoder_type!r}; choose one of {sorted(_ENCODERS)}")
        self.encoder = _ENCODERS[encoder_type](in_channels, hidden_size)
        self.out_channels: int = self.encoder.out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x)
