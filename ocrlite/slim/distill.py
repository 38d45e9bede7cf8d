"""Distillation losses and the task wrapper that adds them to any training task's loss.

Distillation runs on the project trainer: ``KDTask`` wraps a task (the trainer's ``Task`` protocol:
``build_model``, ``batch``, ``loss``, ``evaluate``) and returns the task's own loss plus the
teacher terms, so there is no second training loop. Terms:

- ``kd_loss``: Hinton KD, ``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` over the class axis
  (classifier logits [N, C]; CTC logits [N, T, C] per time step);
- ``dml_loss``: deep mutual learning between two students, the symmetric KL halved (PP-OCRv2 U-DML);
- ``feature_l2``: mean squared distance between two students' backbone features (U-DML's feature term).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["kd_loss", "dml_loss", "feature_l2", "KDTask"]


def kd_loss(student: Tensor, teacher: Tensor, temperature: float = 2.0) -> Tensor:
    """``T^2 KL(p_teacher || p_student)`` at temperature T, averaged over every position but the class axis."""
    log_student = F.log_softmax(student / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher.detach() / temperature, dim=-1)
    kl = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=-1)
    return kl.mean() * temperature**2


def dml_loss(a: Tensor, b: Tensor) -> Tensor:
    """Symmetric KL between two students' class distributions, halved; gradients reach both."""
    log_a, log_b = F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)
    kl_ab = (log_a.exp() * (log_a - log_b)).sum(dim=-1)
    kl_ba = (log_b.exp() * (log_b - log_a)).sum(dim=-1)
    return (kl_ab + kl_ba).mean() / 2


def feature_l2(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared distance between two feature maps of the same shape."""
    return F.mse_loss(a, b)


class KDTask:
    """A training task whose loss adds ``weight * kd_loss(student(image), teacher(image))`` (frozen teacher)."""

    def __init__(self, base: Any, teacher: nn.Module, weight: float = 1.0, temperature: float = 2.0) -> None:
        self.base, self.weight, self.temperature = base, weight, temperature
        self.teacher = teacher.eval().requires_grad_(False)
        self.name, self.metric, self.stage = base.name, base.metric, base.stage

    def build_model(self) -> nn.Module:
        return self.base.build_model()

    def batch(self, rng: np.random.Generator) -> dict[str, Tensor]:
        return self.base.batch(rng)

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        total, logs = self.base.loss(model, batch)
        image = batch["image"]
        self.teacher.to(image.device)
        with torch.no_grad():
            target = self.teacher(image)
        kd = kd_loss(model(image), target, self.temperature)
        return total + self.weight * kd, {**logs, "kd": float(kd.detach())}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return self.base.evaluate(model)
