"""ImageNet-style classifier head, used to check backbone parameter counts against published ones."""

from __future__ import annotations

from torch import Tensor, nn

from ocrlite.models.blocks import make_activation
from ocrlite.registry import register

__all__ = ["ClassifierHead"]


@register("head")
class ClassifierHead(nn.Module):
    """Global average pool -> [Linear to ``hidden_channels`` -> act -> dropout] -> Linear to ``num_classes``.

    Takes a backbone's map, or its det-mode list of maps (the deepest one is classified). The optional
    hidden layer is the 1280-d (MobileNetV3-large, PP-LCNet) or 1024-d (MobileNetV3-small) FC after pooling.
    SqueezeNet's own head is conv1x1 -> ReLU -> pool; pool -> Linear has the same parameters and MACs.
    """

    def __init__(
        self,
        in_channels: int | list[int],
        num_classes: int = 1000,
        hidden_channels: int | None = None,
        act: str = "hardswish",
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        channels = in_channels[-1] if isinstance(in_channels, list) else in_channels
        self.pool = nn.AdaptiveAvgPool2d(1)
        layers: list[nn.Module] = []
        if hidden_channels:
            layers += [nn.Linear(channels, hidden_channels), make_activation(act)]
            channels = hidden_channels
        layers += [nn.Dropout(dropout), nn.Linear(channels, num_classes)]
        self.fc = nn.Sequential(*layers)
        self.out_channels = num_classes

    def forward(self, x: Tensor | list[Tensor]) -> Tensor:
        if isinstance(x, (list, tuple)):
            x = x[-1]
        return self.fc(self.pool(x).flatten(1))
