"""PP-LCNet (Cui et al. 2021), the ImageNet layout: h-swish, 5x5 depthwise in the last stage, SE in the last two blocks.

MobileNetV1Enhance (pp_lcnet.py) is PaddleOCR's text-line variant with another table and fixed (2, 1) strides;
this one follows the paper's table and serves as a det (four stages) or rec (``mode="rec"``) backbone.
"""

from __future__ import annotations

from torch import nn

from ocrlite.models.blocks import ConvBNAct, DepthwiseSeparable, StagedBackbone, make_divisible, rec_stride
from ocrlite.registry import register

__all__ = ["PPLCNet"]

# Rows of (kernel, output channels, SE). The stem ends with the paper's "blocks2" (stride 1); each of the four
# stages after it opens with a downsampling row.
_STEM_BLOCKS = [(3, 32, False)]
_STAGES = [
    [(3, 64, False), (3, 64, False)],  # 1/4
    [(3, 128, False), (3, 128, False)],  # 1/8
    [(3, 256, False), *[(5, 256, False)] * 5],  # 1/16
    [(5, 512, True), (5, 512, True)],  # 1/32
]


@register("backbone")
class PPLCNet(StagedBackbone):
    """PP-LCNet at width ``scale`` (stem 16 channels at 1.0x, last stage 512).

    The paper's 1280-d FC after global pooling is ClassifierHead's ``hidden_channels``; with it and a
    1000-way FC at 1.0x the net has 2,953,800 parameters (published: 2.96M).
    """

    def __init__(self, in_channels: int = 3, scale: float = 1.0, mode: str = "det") -> None:
        super().__init__()
        width = lambda c: make_divisible(c * scale)  # noqa: E731
        channels = width(16)
        stem: list[nn.Module] = [ConvBNAct(in_channels, channels, 3, rec_stride(mode, 0), act="hardswish")]
        for k, out, se in _STEM_BLOCKS:
            stem.append(DepthwiseSeparable(channels, width(out), k, 1, se))
            channels = width(out)
        stages, taps = [], []
        for point, rows in enumerate(_STAGES, start=1):
            blocks = []
            for i, (k, out, se) in enumerate(rows):
                blocks.append(DepthwiseSeparable(channels, width(out), k, rec_stride(mode, point) if i == 0 else 1, se))
                channels = width(out)
            stages.append(nn.Sequential(*blocks))
            taps.append(channels)
        self._assemble(mode, nn.Sequential(*stem), stages, taps)
