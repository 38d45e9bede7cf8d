"""CTC projection head."""

from __future__ import annotations

from torch import Tensor, nn

from ocrlite.registry import register

__all__ = ["CTCHead"]


@register("head")
class CTCHead(nn.Module):
    """Per-step CTC logits [N, T, out_channels]; with ``mid_channels`` two Linear layers with no activation between."""

    input_layouts = ("sequence",)  # a sequence neck's [N, T, C] (OCRModel checks the wiring)

    def __init__(self, in_channels: int, out_channels: int = 6625, mid_channels: int | None = None) -> None:
        super().__init__()
        if mid_channels is None:
            self.fc: nn.Module = nn.Linear(in_channels, out_channels)
        else:
            self.fc = nn.Sequential(nn.Linear(in_channels, mid_channels), nn.Linear(mid_channels, out_channels))
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(x)
