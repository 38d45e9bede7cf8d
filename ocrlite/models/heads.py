"""Heads: DB probability map (+ threshold map for training), direction classifier, CTC projection."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import register

__all__ = ["DBHead", "ClsHead", "CTCHead"]


class _DBBranch(nn.Sequential):
    """3x3 conv-BN-ReLU to C/4, two 2x2 stride-2 transposed convs (x4 upsampling), sigmoid -> [N, 1, H, W]."""

    def __init__(self, in_channels: int) -> None:
        mid = in_channels // 4
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, mid, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.ConvTranspose2d(mid, mid, 2, stride=2)
        self.bn2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.ConvTranspose2d(mid, 1, 2, stride=2)
        self.sigmoid = nn.Sigmoid()


@register("head")
class DBHead(nn.Module):
    """DBNet head. ``forward`` returns the text probability map P in [0, 1] (the sigmoid is part of P's definition).

    With ``with_threshold`` a threshold branch T exists for training and ``forward_train`` returns
    [P, T, 1 / (1 + exp(-k (P - T)))] stacked on the channel axis ([N, 3, H, W]).
    """

    def __init__(self, in_channels: int, k: float = 50, with_threshold: bool = False) -> None:
        super().__init__()
        self.k = k
        self.binarize = _DBBranch(in_channels)
        self.thresh = _DBBranch(in_channels) if with_threshold else None

    def forward(self, x: Tensor) -> Tensor:
        return self.binarize(x)

    def forward_train(self, x: Tensor) -> Tensor:
        """Shrink probability, threshold and approximate binary maps, [N, 3, H, W]."""
        if self.thresh is None:
            raise RuntimeError("DBHead was built without the threshold branch (with_threshold=False)")
        prob = self.binarize(x)
        thresh = self.thresh(x)
        return torch.cat([prob, thresh, torch.sigmoid(self.k * (prob - thresh))], dim=1)


@register("head")
class ClsHead(nn.Module):
    """Global average pool + Linear -> class logits [N, class_num]."""

    def __init__(self, in_channels: int, class_num: int = 2) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, class_num)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(x).flatten(1))


@register("head")
class CTCHead(nn.Module):
    """Per-step CTC logits [N, T, out_channels]; with ``mid_channels`` two Linear layers with no activation between."""

    def __init__(self, in_channels: int, out_channels: int = 6625, mid_channels: int | None = None) -> None:
        super().__init__()
        if mid_channels is None:
            self.fc: nn.Module = nn.Linear(in_channels, out_channels)
        else:
            self.fc = nn.Sequential(nn.Linear(in_channels, mid_channels), nn.Linear(mid_channels, out_channels))
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)
