"""DB heads: the probability map (+ threshold map for training) and PP-OCRv6's BN-folded variant."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrlite.registry import register

__all__ = ["DBHead", "FusedDBHead"]


class _DBBranch(nn.Sequential):
    """3x3 conv-BN-ReLU to C/4, two 2x2 stride-2 transposed convs (x4 upsampling), sigmoid -> [N, 1, H, W]."""

    def __init__(self, in_channels: int, mid: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, mid, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.ConvTranspose2d(mid, mid, 2, stride=2)
        self.bn2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.ConvTranspose2d(mid, 1, 2, stride=2)
        self.sigmoid = nn.Sigmoid()

    def logits(self, x: Tensor) -> Tensor:
        """The map before the sigmoid."""
        for module in list(self)[:-1]:
            x = module(x)
        return x


@register("head")
class DBHead(nn.Module):
    """DBNet head. ``forward`` returns the text probability map P in [0, 1] (the sigmoid is part of P's definition).

    With ``with_threshold`` a threshold branch T exists for training and ``forward_train`` returns the
    logits of [P, T, B = 1 / (1 + exp(-k (P - T)))] stacked on the channel axis ([N, 3, H, W]).
    """

    def __init__(
        self, in_channels: int, k: float = 50, with_threshold: bool = False, mid_channels: int | None = None
    ) -> None:
        super().__init__()
        self.k = k
        mid = in_channels // 4 if mid_channels is None else mid_channels  # explicit once the neck is pruned
        self.binarize = _DBBranch(in_channels, mid)
        self.thresh = _DBBranch(in_channels, mid) if with_threshold else None

    def forward(self, x: Tensor) -> Tensor:
        return self.binarize(x)

    def forward_train(self, x: Tensor) -> Tensor:
        """Logits of the shrink probability, threshold and approximate binary maps, [N, 3, H, W] (the loss
        applies the sigmoids: BCE from logits keeps its gradient where a converted net's P saturates)."""
        if self.thresh is None:
            raise RuntimeError("DBHead was built without the threshold branch (with_threshold=False)")
        prob = self.binarize.logits(x)
        thresh = self.thresh.logits(x)
        return torch.cat([prob, thresh, self.k * (torch.sigmoid(prob) - torch.sigmoid(thresh))], dim=1)


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
