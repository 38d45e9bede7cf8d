"""SVTR sequence neck of the PP-OCRv3/v4 recognizers (PaddleOCR's EncoderWithSVTR).

The backbone map (height 1) is mixed globally by a small transformer, then fused with the
untouched map ("guide") and projected to ``dims`` channels:

    x (C) -> conv kxk C->C/8 -> conv 1x1 C/8->hidden -> [tokens] -> depth x SVTR block -> LayerNorm
      -> conv 1x1 hidden->C -> concat with x (2C) -> conv kxk 2C->C/8 -> conv 1x1 C/8->dims -> [N, W, dims]

Every conv here is Conv(no bias) + BN + swish. An SVTR block is pre-norm:
``x + attn(LN(x))`` then ``x + mlp(LN(x))`` with global multi-head self-attention (qkv with bias,
scale head_dim ** -0.5) and an MLP hidden -> hidden*mlp_ratio -> hidden with swish. LayerNorm eps is
1e-5 (read from the exported graphs). Dropout and drop-path are inference no-ops and left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.models.blocks import ConvBNAct
from ocrlite.models.necks.sequence import im2seq
from ocrlite.registry import register

__all__ = ["SVTREncoder"]

_LN_EPS = 1e-5


class _Attention(nn.Module):
    """Global multi-head self-attention over [N, T, C] tokens."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if num_heads <= 0 or dim % num_heads:
            raise ConfigError(f"num_heads: {num_heads} does not divide the attention width {dim}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, t, c = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        weights = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(n, t, c))


class SVTRBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=_LN_EPS)
        self.attn = _Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=_LN_EPS)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@register("neck")
class SVTREncoder(nn.Module):
    """SVTR global-mixing neck: [N, C, 1, W] -> [N, W, dims] (see the module docstring).

    ``kernel_size`` is the kernel of the two context convs: [3, 3] in PP-OCRv3, [1, 3] in PP-OCRv4.
    ``use_guide`` only stops gradients in PaddleOCR; at inference the concat is the same either way,
    so it is not a parameter here.
    """

    output_layout = "sequence"  # [N, T, C] for a CTC head (OCRModel checks the wiring)

    def __init__(
        self,
        in_channels: int,
        dims: int = 64,
        depth: int = 2,
        hidden_dims: int = 120,
        num_heads: int = 8,
        mlp_ratio: float = 2.0,
        kernel_size: Sequence[int] = (3, 3),
    ) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(in_channels, in_channels // 8, (kernel_size[0], kernel_size[1]), act="swish")
        self.conv2 = ConvBNAct(in_channels // 8, hidden_dims, 1, act="swish")
        self.blocks = nn.ModuleList(SVTRBlock(hidden_dims, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(hidden_dims, eps=_LN_EPS)
        self.conv3 = ConvBNAct(hidden_dims, in_channels, 1, act="swish")
        self.conv4 = ConvBNAct(2 * in_channels, in_channels // 8, (kernel_size[0], kernel_size[1]), act="swish")
        self.conv1x1 = ConvBNAct(in_channels // 8, dims, 1, act="swish")
        self.out_channels = dims

    def forward(self, x: Tensor) -> Tensor:
        z = self.conv2(self.conv1(x))
        n, c, h, w = z.shape
        tokens = z.flatten(2).transpose(1, 2)  # [N, H*W, C]
        for block in self.blocks:
            tokens = block(tokens)
        z = self.norm(tokens).transpose(1, 2).reshape(n, c, h, w)
        z = self.conv4(torch.cat([x, self.conv3(z)], dim=1))
        return im2seq(self.conv1x1(z))
