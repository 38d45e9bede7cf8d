"""Enhanced CTC (PP-OCRv2): a center loss on the features that feed the CTC head's last Linear.

Each time step's feature ``f_t`` is pulled towards the center ``c_k`` of the class ``k`` it is assigned:
the greedy argmax of the logits (``labels: argmax``, PaddleOCR's choice) or the ground truth aligned to
the steps by the best CTC path (``labels: aligned``). Blank steps are left out. The loss is the mean
squared distance ``|f_t - c_k|^2`` over the non-blank steps of the batch, added to CTC with ``weight``.

PaddleOCR keeps its centers fixed (random, or per-class means from a pass over the training data).
Here a class's center starts as the mean of its features the first time the class is seen and then
follows a moving average, ``c_k += rate * (batch mean of class k - c_k)`` after each step (``rate: 0``
keeps every center where it started). Centers are no parameters: they get no gradient and live in the
checkpoint as safetensors tensors (``CenterBank.tensors``), so a resumed run continues bit-exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError
from ..settings import range_error, setting

__all__ = ["CenterLossSettings", "CenterBank", "center_loss", "ctc_align", "greedy_labels"]

LABELS = ("argmax", "aligned")


@dataclass(frozen=True)
class CenterLossSettings:
    """The ``train.center_loss`` section (its presence turns the loss on)."""

    weight: float = 0.05  # more than 0 (checked in __post_init__)
    labels: str = setting("argmax", choices=LABELS)
    rate: float = setting(0.1, low=0.0, high=1.0)

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise range_error("train.center_loss.weight", self.weight, "more than 0")


def center_loss(features: Tensor, labels: Tensor, centers: Tensor) -> Tensor:
    """Mean of ``|features[n, t] - centers[labels[n, t]]|^2`` over the steps whose label is not blank (0);
    0 when every step is blank. ``features`` [N, T, D], ``labels`` [N, T], ``centers`` [C, D] (no gradient)."""
    keep = labels != 0
    picked = features[keep].float()
    if not picked.shape[0]:
        return features.sum() * 0.0
    return (picked - centers.detach()[labels[keep]]).pow(2).sum(dim=1).mean()


def greedy_labels(logits: Tensor) -> Tensor:
    """The class of each step by argmax: [N, T, C] -> [N, T]."""
    return logits.detach().argmax(dim=-1)


def ctc_align(logits: Tensor, targets: Tensor, target_lengths: Tensor) -> Tensor:
    """The best CTC path of each sample's target through its [T, C] scores: [N, T] classes, blank 0.

    Viterbi over the target with blanks between and around its characters (a step stays, moves one on,
    or skips a blank between two different characters). A target that no path of T steps can spell
    gives an all-blank row, so the center loss skips it.
    """
    log_probs = logits.detach().float().log_softmax(dim=-1)
    n, steps, _ = log_probs.shape
    device = log_probs.device
    lengths = target_lengths.to(device)
    longest = int(lengths.max()) if n else 0
    width = 2 * longest + 1
    ends = torch.cumsum(lengths, 0)
    chars = torch.zeros(n, max(longest, 1), dtype=torch.long, device=device)
    for i in range(n):
        chars[i, : int(lengths[i])] = targets[int(ends[i] - lengths[i]): int(ends[i])].to(device)
    extended = torch.zeros(n, width, dtype=torch.long, device=device)
    extended[:, 1::2] = chars[:, :longest]
    valid = torch.arange(width, device=device)[None] < (2 * lengths + 1)[:, None]
    skip = torch.zeros(n, width, dtype=torch.bool, device=device)  # s may come from s - 2
    skip[:, 2:] = (extended[:, 2:] != 0) & (extended[:, 2:] != extended[:, :-2])
    never = torch.tensor(-torch.inf, device=device)
    emit = log_probs.gather(2, extended[:, None, :].expand(n, steps, width))  # [N, T, S]
    score = torch.full((n, width), -torch.inf, device=device)
    score[:, :2] = emit[:, 0, :2]
    score = torch.where(valid, score, never)
    moves = torch.zeros(n, steps, width, dtype=torch.long, device=device)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, steps):
        one = torch.cat([score.new_full((n, 1), -torch.inf), score[:, :-1]], 1)
        two = torch.cat([score.new_full((n, 2), -torch.inf), score[:, :-2]], 1)
        two = torch.where(skip, two, never)
        best, move = torch.stack([score, one, two], 0).max(0)
        moves[:, t] = move
        score = torch.where(valid, best + emit[:, t], never)
    last = 2 * lengths
    end_blank = score.gather(1, last[:, None])[:, 0]
    end_char = score.gather(1, (last - 1).clamp(min=0)[:, None])[:, 0]
    state = torch.where((end_char > end_blank) & (lengths > 0), last - 1, last)
    feasible = torch.maximum(end_blank, end_char) > -torch.inf
    path = torch.zeros(n, steps, dtype=torch.long, device=device)
    for t in range(steps - 1, -1, -1):
        path[:, t] = extended.gather(1, state[:, None])[:, 0]
        if t:
            state = state - moves[:, t].gather(1, state[:, None])[:, 0]
    return torch.where(feasible[:, None], path, torch.zeros_like(path))


class CenterBank:
    """Per-class centers [C, D] and which classes have one yet (see the module docstring)."""

    def __init__(self, classes: int, dim: int) -> None:
        self.centers = torch.zeros(classes, dim)
        self.seen = torch.zeros(classes, dtype=torch.bool)

    def to(self, device: torch.device) -> None:
        self.centers, self.seen = self.centers.to(device), self.seen.to(device)

    def step(self, features: Tensor, labels: Tensor, rate: float) -> Tensor:
        """The center loss of this batch; then the centers move towards this batch's class means.

        A class seen for the first time gets its batch mean as its center before the loss is taken."""
        self.to(features.device)
        keep = labels != 0
        picked, classes = features.detach()[keep].float(), labels[keep]
        sums = torch.zeros_like(self.centers).index_add_(0, classes, picked)
        counts = torch.zeros(self.centers.shape[0], device=features.device).index_add_(
            0, classes, torch.ones_like(classes, dtype=torch.float))
        present = counts > 0
        means = sums / counts.clamp(min=1)[:, None]
        self.centers = torch.where((present & ~self.seen)[:, None], means, self.centers)
        self.seen = self.seen | present
        loss = center_loss(features, labels, self.centers)
        self.centers = torch.where(present[:, None], self.centers + rate * (means - self.centers), self.centers)
        return loss

    def tensors(self) -> dict[str, Tensor]:
        """The state to checkpoint, as contiguous CPU tensors."""
        return {"center_loss.centers": self.centers.cpu().contiguous(),
                "center_loss.seen": self.seen.cpu().contiguous()}

    def load(self, tensors: dict[str, Tensor]) -> None:
        """Restore what ``tensors`` wrote; shapes must match this bank's."""
        centers, seen = tensors.get("center_loss.centers"), tensors.get("center_loss.seen")
        if centers is None or seen is None:
            return  # a checkpoint from a run without the center loss: start afresh
        if centers.shape != self.centers.shape:
            raise ConfigError(f"checkpoint centers {tuple(centers.shape)} do not match this model's "
                              f"{tuple(self.centers.shape)}")
        self.centers, self.seen = centers.clone(), seen.clone()
