"""DBNet loss: L = alpha * L_P + beta * L1(T) + L_B (PP-OCR: alpha 5, beta 10).

L_P is the loss on the probability (shrink) map: balanced BCE with hard negative mining (at most
``ohem_ratio`` negatives per positive, the hardest ones) or Dice; L1(T) is the mean absolute error of the
threshold map inside the dilated text; L_B is Dice on the approximate binary map with the shrink target.

The loss takes the head's logits and applies the sigmoids itself. BCE is computed from the logits: its
gradient is P - gt however far the sigmoid saturates. Converted PP-OCR detectors output logits of +-20..60, so
text they miss has P < 1e-14; BCE on clamped probabilities (or Dice, whose gradient carries the sigmoid's
P (1 - P)) gives such pixels no gradient at all, and fine-tuning could never teach the net text it misses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["balanced_bce", "dice_loss", "masked_l1", "DBLoss"]

_EPS = 1e-6


def balanced_bce(logits: Tensor, gt: Tensor, mask: Tensor, ohem_ratio: float = 3.0) -> Tensor:
    """BCE of sigmoid(``logits``) over all positives and the ``ohem_ratio`` x #positives hardest negatives,
    averaged over both.

    With no positives no negative is kept either (PaddleOCR's rule) and the loss is 0.
    """
    positive = gt * mask
    negative = (1 - gt) * mask
    n_pos = int(positive.sum().item())
    n_neg = min(int(negative.sum().item()), int(n_pos * ohem_ratio))
    bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none")
    pos_loss = (bce * positive).sum()
    neg_loss = torch.topk((bce * negative).flatten(), n_neg).values.sum() if n_neg else bce.sum() * 0
    return (pos_loss + neg_loss) / (n_pos + n_neg + _EPS)


def dice_loss(pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
    """1 - 2 sum(p g m) / (sum(p m) + sum(g m) + eps)."""
    inter = (pred * gt * mask).sum()
    union = (pred * mask).sum() + (gt * mask).sum() + _EPS
    return 1 - 2 * inter / union


def masked_l1(pred: Tensor, gt: Tensor, mask: Tensor) -> Tensor:
    """sum |p - g| m / (sum m + eps)."""
    return ((pred - gt).abs() * mask).sum() / (mask.sum() + _EPS)


class DBLoss(nn.Module):
    """DB loss on the head's training output [N, 3, H, W] (logits of P, T, B) and the targets of
    ``make_db_targets``.

    ``main_loss``: 'bce' (balanced BCE with hard negative mining) or 'dice' for L_P (PP-OCRv3's config uses
    Dice). ``forward`` returns the total and its parts.
    """

    def __init__(self, alpha: float = 5.0, beta: float = 10.0, ohem_ratio: float = 3.0, main_loss: str = "bce"):
        super().__init__()
        if main_loss not in ("bce", "dice"):
            raise ValueError(f"main_loss must be 'bce' or 'dice', got {main_loss!r}")
        self.alpha, self.beta, self.ohem_ratio, self.main_loss = alpha, beta, ohem_ratio, main_loss

    def forward(
        self, maps: Tensor, shrink: Tensor, shrink_mask: Tensor, thresh: Tensor, thresh_mask: Tensor
    ) -> dict[str, Tensor]:
        prob, thresh_pred, binary = torch.sigmoid(maps).unbind(1)
        if self.main_loss == "bce":
            loss_p = balanced_bce(maps[:, 0], shrink, shrink_mask, self.ohem_ratio)
        else:
            loss_p = dice_loss(prob, shrink, shrink_mask)
        loss_t = masked_l1(thresh_pred, thresh, thresh_mask)
        loss_b = dice_loss(binary, shrink, shrink_mask)
        total = self.alpha * loss_p + self.beta * loss_t + loss_b
        return {"loss": total, "loss_shrink": loss_p, "loss_thresh": loss_t, "loss_binary": loss_b}
