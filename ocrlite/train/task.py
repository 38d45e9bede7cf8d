"""The interface every training task (det, cls, rec) implements for the one trainer."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from torch import Tensor, nn

__all__ = ["Task"]


class Task(Protocol):
    """A trainable stage: its net, its batches, its loss and its evaluation.

    ``batch`` makes one training batch and draws every random choice from ``rng``; the trainer gives
    step ``k`` the generator seeded by ``(seed, k)``, so a batch depends on its step alone: batches can
    be made ahead in worker processes and a resumed run continues bit-exact.
    ``evaluate`` runs the *inference* predictor around ``model`` and returns named scores;
    ``metric`` names the score used to keep the best checkpoint (higher is better; an optional ``tiebreak``
    attribute names the score that decides between evaluations with the same ``metric``).
    Optional methods the trainer looks for: ``param_groups(model)`` (the optimiser's parameter groups, each
    group's ``lr_scale`` times the schedule), ``deployed(model)`` (the net to keep as the best weights),
    ``task_tensors()`` and ``load_task_tensors(tensors)`` (state outside the model, saved in checkpoints),
    ``scored_data()`` (what ``evaluate`` scores, by content: ``data.scored_data``; a resume must score the same).
    An optional ``notes`` attribute lists lines ``ocrlite train`` says when the run starts (an empty evaluation
    split).
    """

    name: str  # 'det' | 'cls' | 'rec'
    metric: str
    stage: dict[str, Any]  # the stage config (model, weights, preprocess, postprocess, train)

    def build_model(self) -> nn.Module:
        """The stage's net, with the parent weights loaded when the config names them."""
        ...

    def batch(self, rng: np.random.Generator) -> dict[str, Tensor]:
        """One training batch of CPU tensors (the trainer moves it to the device)."""
        ...

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Scalar loss to minimise and named floats to log."""
        ...

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Scores on the task's evaluation data, computed through the inference predictor."""
        ...
