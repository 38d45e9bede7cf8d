"""The CRNN VGG trunk from the user's seed article, plain or with every conv made depthwise-separable.

On a 1x32x320 line the plain trunk has 5,551,360 parameters and the separable one 781,450 (the seed's
torchsummary totals); both end in [N, 512, 1, 81]. Convs keep their biases as in the seed, and BN sits
only after convs 2, 4 and 6; in the separable form the depthwise and pointwise convs follow each other
with no BN or activation between them, exactly as the seed writes it.
"""

from __future__ import annotations

from torch import Tensor, nn

from ocrlite.models.blocks import check_mode
from ocrlite.registry import register

__all__ = ["CRNNVGG"]

# Rows: output channels, kernel, padding, BN, pool after the ReLU ("2x2": 2x2/2; "2x1": 2x2/(2, 1) padded (0, 1)).
_TABLE = [
    (64, 3, 1, False, "2x2"),  # [64, 16, 160]
    (128, 3, 1, False, "2x2"),  # [128, 8, 80]
    (256, 3, 1, True, None),  # [256, 8, 80]
    (256, 3, 1, False, "2x1"),  # [256, 4, 81]
    (512, 3, 1, True, None),  # [512, 4, 81]
    (512, 3, 1, False, "2x1"),  # [512, 2, 82]
    (512, 2, 0, True, None),  # [512, 1, 81]
]
_POOLS = {"2x2": lambda: nn.MaxPool2d(2, 2), "2x1": lambda: nn.MaxPool2d(2, (2, 1), (0, 1))}


def _conv(in_channels: int, out_channels: int, kernel: int, padding: int, separable: bool) -> nn.Module:
    if not separable:
        return nn.Conv2d(in_channels, out_channels, kernel, 1, padding)
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, kernel, 1, padding, groups=in_channels),
        nn.Conv2d(in_channels, out_channels, 1),
    )


@register("backbone")
class CRNNVGG(nn.Module):
    """Seven conv units (conv [+BN] + ReLU [+ pool]) taking a 32-high line to a [N, 512, 1, W/4 + 1] map.

    Recognition only (``mode="rec"``): the stride pattern is fixed by the seed. ``separable`` swaps every
    kxk conv for depthwise kxk + pointwise 1x1.
    """

    def __init__(self, in_channels: int = 3, separable: bool = False, mode: str = "rec") -> None:
        super().__init__()
        check_mode(mode, ("rec",))
        units: list[nn.Module] = []
        channels = in_channels
        for out, kernel, padding, bn, pool in _TABLE:
            layers = [_conv(channels, out, kernel, padding, separable)]
            layers += [nn.BatchNorm2d(out)] if bn else []
            layers.append(nn.ReLU())
            layers += [_POOLS[pool]()] if pool else []
            units.append(nn.Sequential(*layers))
            channels = out
        self.units = nn.Sequential(*units)
        self.out_channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.units(x)
