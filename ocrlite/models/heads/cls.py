"""Direction classifier head."""

from __future__ import annotations

from torch import Tensor, nn

from ocrlite.registry import register

__all__ = ["ClsHead"]


@register("head")
class ClsHead(nn.Module):
    """Global average pool + Linear -> class logits [N, class_num]."""

    def __init__(self, in_channels: int, class_num: int = 2) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, class_num)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(x).flatten(1))
