"""PP-OCRv6 recogniser necks: ConvSVTRNeck (small: conv context + two SVTR blocks) and ConvMixNeck (tiny)."""

from __future__ import annotations

from torch import Tensor, nn

from ocrlite.models.blocks import ConvBNAct
from ocrlite.models.necks.sequence import im2seq
from ocrlite.models.necks.svtr import SVTRBlock
from ocrlite.registry import register

__all__ = ["ConvSVTRNeck", "ConvMixNeck"]


@register("neck")
class ConvSVTRNeck(nn.Module):
    """PP-OCRv6 small rec neck: [N, C, 1, W] -> [N, W, dims].

    shortcut = 1x1(C->dims); z = 1x1(C->dims); z = z + dw1xk(z); SVTR blocks over the W tokens;
    LayerNorm (eps 1e-6); output = z + shortcut. Convs are conv + BN + swish.
    """

    output_layout = "sequence"  # [N, T, C] for a CTC head (OCRModel checks the wiring)

    def __init__(
        self, in_channels: int, dims: int = 120, depth: int = 2, num_heads: int = 8, mlp_ratio: float = 2.0,
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        self.shortcut = ConvBNAct(in_channels, dims, 1, act="swish")
        self.proj = ConvBNAct(in_channels, dims, 1, act="swish")
        self.local = ConvBNAct(dims, dims, (1, kernel_size), groups=dims, act="swish")
        self.blocks = nn.ModuleList(SVTRBlock(dims, num_heads, mlp_ratio) for _ in range(depth))
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

    output_layout = "sequence"  # [N, T, C] for a CTC head (OCRModel checks the wiring)

    def __init__(self, in_channels: int, kernel_size: int = 5) -> None:
        super().__init__()
        self.local = ConvBNAct(in_channels, in_channels, (1, kernel_size), groups=in_channels, act="hardswish")
        self.pw = ConvBNAct(in_channels, in_channels, 1, act="hardswish")
        self.out_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        return im2seq(self.pw(self.local(x)))
