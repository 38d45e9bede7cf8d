"""CML (PP-OCRv2 detector distillation): a frozen teacher and two detector students on the project trainer.

``CMLTask`` wraps a det task; its model is a ``StudentPair`` (both the task's own DB net with its threshold
branch). A step feeds the teacher and both students the same batch and minimises, for each student,
the ground-truth DB loss (the task's own) + ``teacher_weight * teacher_map_loss``, plus
``weight * dml_loss`` between the two students' shrink maps. The teacher-map loss is 5 x balanced BCE on the
shrink map + Dice on the approximate binary map, both against the teacher's probability map thresholded at
0.3 and dilated by a 2 x 2 kernel (the teacher reads the batch renormalised to its own preprocess mean/std),
inside the ground truth's shrink mask (its ignore regions excluded).
DML treats each shrink-map pixel as a two-class distribution (text / not text): the symmetric Bernoulli KL,
halved. Best weights and the export are the first student's (``deployed``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.slim.distill import dml_loss
from ocrlite.slim.mutual import PairTask
from ocrlite.train.db_loss import balanced_bce, dice_loss

if TYPE_CHECKING:
    from ocrlite.train.det_task import DetTask

__all__ = ["teacher_target", "teacher_map_loss", "shrink_dml", "CMLTask"]

TEACHER_THRESHOLD = 0.3
BCE_WEIGHT = 5.0


def teacher_target(prob: Tensor, threshold: float = TEACHER_THRESHOLD) -> Tensor:
    """``prob`` [N, H, W] > ``threshold``, dilated by a 2 x 2 kernel (each pixel also takes its upper, left and
    upper-left neighbours' value, as OpenCV's ``dilate`` with a 2 x 2 kernel anchored at its centre)."""
    binary = (prob > threshold).float().unsqueeze(1)
    return F.max_pool2d(F.pad(binary, (1, 0, 1, 0)), kernel_size=2, stride=1).squeeze(1)


def teacher_map_loss(maps: Tensor, target: Tensor, mask: Tensor, ohem_ratio: float = 3.0) -> Tensor:
    """5 x balanced BCE of the shrink logits + Dice of the approximate binary map, against ``target``."""
    bce = balanced_bce(maps[:, 0], target, mask, ohem_ratio)
    return BCE_WEIGHT * bce + dice_loss(torch.sigmoid(maps[:, 2]), target, mask)


def shrink_dml(a: Tensor, b: Tensor) -> Tensor:
    """DML between two students' shrink logits [N, H, W]: per-pixel symmetric Bernoulli KL, halved (a logit
    z is the two-class distribution softmax([z, 0]))."""
    return dml_loss(torch.stack([a, torch.zeros_like(a)], -1), torch.stack([b, torch.zeros_like(b)], -1))


class CMLTask(PairTask):
    """A det task trained by CML (see the module docstring)."""

    base: DetTask

    def __init__(self, base: DetTask, teacher: nn.Module, teacher_logits: bool,
                 renorm: tuple[list[float], list[float]] = ([1.0] * 3, [0.0] * 3), teacher_weight: float = 1.0,
                 weight: float = 1.0, about: dict[str, Any] | None = None,
                 peer: Callable[[], nn.Module] | None = None) -> None:
        super().__init__(base, about, peer)
        self.teacher_weight, self.weight = teacher_weight, weight
        self.teacher = teacher.eval().requires_grad_(False)
        self.teacher_logits = teacher_logits  # the teacher's net returns logits rather than probabilities
        # per-channel (scale, shift) taking the student's normalised image to the teacher's normalisation
        self.renorm = tuple(torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in renorm)

    def target(self, image: Tensor) -> Tensor:
        """The teacher's thresholded, dilated probability map of ``image`` [N, H, W] (the student's normalised
        batch, renormalised as the teacher's preprocessing would have normalised the same pixels)."""
        self.teacher.to(image.device)
        scale, shift = (t.to(image.device) for t in self.renorm)
        with torch.no_grad():
            out = self.teacher(image * scale + shift)
        prob = torch.sigmoid(out) if self.teacher_logits else out
        return teacher_target(prob[:, 0].float())

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        target = self.target(batch["image"])
        total: Tensor = torch.zeros((), device=batch["image"].device)
        logs: dict[str, float] = {}
        shrink = []
        for key, net in (("", model.student), ("peer_", model.peer)):
            maps = net.forward_train(batch["image"])  # type: ignore[operator,union-attr]
            if maps.shape[-2:] != target.shape[-2:]:
                raise ConfigError(f"train.distill.teacher: its map {tuple(target.shape[-2:])} does not match the "
                                  f"student's {tuple(maps.shape[-2:])} on the same batch")
            gt, parts = self.base.map_loss(maps, batch)
            teach = teacher_map_loss(maps, target, batch["shrink_mask"])
            total = total + gt + self.teacher_weight * teach
            logs.update({key + ("db" if k == "loss" else k): v for k, v in parts.items()})  # "loss": the total
            logs[f"{key}teacher"] = float(teach.detach())
            shrink.append(maps[:, 0])
        dml = shrink_dml(shrink[0], shrink[1])
        logs["dml"] = float(dml.detach())
        return total + self.weight * dml, logs

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """The first student's scores (the base task's evaluation)."""
        return self.base.evaluate(self.deployed(model))
