"""Fold inference-time affine layers into the preceding conv: fewer ops per call, same function.

Done once at load on a net in eval mode (never on a net being trained): a ``BatchNorm2d`` that directly
follows a ``Conv2d``/``ConvTranspose2d`` inside an ``nn.Sequential`` (every ``ConvBNAct``, the DB head's
branches, the PP-LCNetV3 stem) becomes part of the conv's weight and bias, and PP-LCNetV3's learnable
scalar affine right after a conv (``RepLayer.lab``) too. The folded layers become ``nn.Identity``. The
outputs change only by float rounding (about 1e-6 relative).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["conv_bn_pairs", "fold_net"]

_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def conv_bn_pairs(seq: nn.Sequential) -> list[tuple[str, nn.Conv2d | nn.ConvTranspose2d, str, nn.BatchNorm2d]]:
    """``(conv name, conv, bn name, bn)`` for each BatchNorm2d (with running statistics) that directly
    follows a conv in ``seq``: the pairs ``fold_net`` folds (and QAT fake-quantizes folded)."""
    children = list(seq.named_children())
    pairs = []
    for (name, conv), (bn_name, bn) in zip(children, children[1:]):
        if isinstance(conv, _CONVS) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
            pairs.append((name, conv, bn_name, bn))
    return pairs


def _fold_sequential(seq: nn.Sequential) -> int:
    pairs = conv_bn_pairs(seq)
    for name, conv, bn_name, bn in pairs:
        setattr(seq, name, fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d)))
        setattr(seq, bn_name, nn.Identity())
    return len(pairs)


def _fold_affine(module: nn.Module) -> bool:
    """``conv -> scalar affine`` (PP-LCNetV3's RepLayer): scale the conv's weight and bias."""
    from ocrlite.models.backbones.pp_lcnet_v3 import LearnableAffine

    conv, lab = getattr(module, "conv", None), getattr(module, "lab", None)
    if not (isinstance(conv, nn.Conv2d) and isinstance(lab, LearnableAffine) and conv.bias is not None):
        return False
    scale, shift = lab.scale.detach(), lab.bias.detach()
    with torch.no_grad():
        conv.weight.mul_(scale)
        conv.bias.mul_(scale).add_(shift)
    module.lab = nn.Identity()
    return True


def fold_net(net: nn.Module) -> int:
    """Fold in place (``net`` must be in eval mode); return how many layers were folded."""
    if net.training:
        raise ValueError("fold_net needs a net in eval mode")
    from ocrlite.models.backbones.pp_lcnet_v3 import RepLayer

    folded = 0
    for module in list(net.modules()):
        if isinstance(module, nn.Sequential):
            folded += _fold_sequential(module)
        elif isinstance(module, RepLayer):
            folded += int(_fold_affine(module))
    return folded
