"""oneDNN kernels for a folded inference net on the CPU: every Conv2d and Linear, with the activation after it.

Done once at load, after ``fold_net``, on our own inference copy of a net (never on a net being trained or
exported). Why: torch's ``Conv2d`` sends a 1x1 stride-1 conv with a batch under 16 on one thread (each
recognizer lane runs on one thread) to im2col plus BLAS, and ``Linear`` to BLAS sgemm; this torch's BLAS is
MKL, whose sgemm runs about half as fast as oneDNN's on AMD CPUs (measured on the dev machine's EPYC, one
thread, the PP-OCRv6 CTC head's 240x80 @ 80x6906: 9.3 ms MKL, 5.1 ms oneDNN). oneDNN also applies the
activation that follows a conv in the same pass (torch's GELU on channels-last tensors alone took 16 % of
the PP-OCRv6 tiny recognizer). Outputs change only by float rounding (about 1e-6 relative).

Fused: a conv followed, in an ``nn.Sequential``, by a supported activation (folded ``nn.Identity`` layers
between them skipped), and the ``(conv, activation)`` attribute pairs that a module lists in
``CONV_ACTIVATION_PAIRS`` (its forward applies that activation straight to that conv's output).
"""

from __future__ import annotations

from typing import TypeGuard

import torch
from torch import Tensor, nn

__all__ = ["OneDNNConv2d", "OneDNNLinear", "onednn_available", "use_onednn"]

Fusion = tuple[str, list[float], str]  # oneDNN post-op name, its scalars, its algorithm
_NO_ACTIVATION: Fusion = ("none", [], "")


def _fusion(act: nn.Module) -> Fusion | None:
    """The oneDNN post-op computing ``act``, or None when it has none."""
    if type(act) is nn.GELU:
        return ("gelu", [], act.approximate)  # "none" (erf) or "tanh", the names oneDNN takes
    if type(act) is nn.ReLU6:
        return ("hardtanh", [0.0, 6.0], "")
    names = {nn.ReLU: "relu", nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid", nn.SiLU: "swish"}
    name = names.get(type(act))
    return (name, [], "") if name is not None else None


def onednn_available() -> bool:
    """Whether this torch has the oneDNN ops (a CPU build with MKL-DNN)."""
    return (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


class OneDNNConv2d(nn.Module):
    """A ``Conv2d`` (zero padding given as numbers) run by oneDNN, optionally with an activation fused."""

    def __init__(self, conv: nn.Conv2d, fusion: Fusion = _NO_ACTIVATION) -> None:
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.fusion = fusion

    def forward(self, x: Tensor) -> Tensor:
        name, scalars, algorithm = self.fusion
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups, name, scalars, algorithm)


class OneDNNLinear(nn.Module):
    """A ``Linear`` run by oneDNN's matmul."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight, self.bias = linear.weight, linear.bias

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")


def _convertible(conv: nn.Module) -> TypeGuard[nn.Conv2d]:
    return type(conv) is nn.Conv2d and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def _fuse(parent: nn.Module, conv_name: str, act_name: str) -> None:
    """Replace ``parent.conv_name`` by a oneDNN conv computing ``parent.act_name`` too, which becomes Identity."""
    conv, act = getattr(parent, conv_name), getattr(parent, act_name)
    fusion = _fusion(act)
    if _convertible(conv) and fusion is not None:
        setattr(parent, conv_name, OneDNNConv2d(conv, fusion))
        setattr(parent, act_name, nn.Identity())


def use_onednn(net: nn.Module) -> int:
    """Run ``net``'s convs and linears through oneDNN, in place (``net`` in eval mode, on the CPU, folded);
    return how many layers now do."""
    if net.training:
        raise ValueError("use_onednn needs a net in eval mode")
    for module in list(net.modules()):
        pairs = list(getattr(module, "CONV_ACTIVATION_PAIRS", ()))
        if isinstance(module, nn.Sequential):  # folded BatchNorms (Identity) between a conv and its activation
            names = [name for name, child in module.named_children() if not isinstance(child, nn.Identity)]
            pairs += zip(names, names[1:])
        for conv, act in pairs:
            _fuse(module, conv, act)
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if _convertible(child):
                setattr(module, name, OneDNNConv2d(child))
            elif type(child) is nn.Linear:
                setattr(module, name, OneDNNLinear(child))
    return sum(isinstance(m, (OneDNNConv2d, OneDNNLinear)) for m in net.modules())
