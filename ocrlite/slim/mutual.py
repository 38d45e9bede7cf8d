"""U-DML (PP-OCRv2): two identical recognizer students trained together on the project trainer.

``UDMLTask`` wraps a rec task; its model is a ``StudentPair`` (``student``, ``peer``: both the task's own
net, both from the config's weights). A step feeds both the same batch and minimises
``CTC(student) + CTC(peer) + weight * dml_loss(student logits, peer logits)
+ feature_weight * feature_l2(student feature, peer feature)``, the feature being the backbone's (or the
neck's) output. Evaluation, the best weights and the export are the student's alone (``deployed``), so
the exported model loads as a normal single net; checkpoints hold the pair, so ``--resume`` continues both.

Both students start from the same weights and the recognizer nets have no dropout, so on the same batches
they stay identical (DML and L2 are 0) unless their weights differ: start from a config without weights
(two random initialisations) or expect plain fine-tuning of two copies.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import Tensor, nn

from ocrlite.slim.distill import WrappedTask, dml_loss, feature_l2
from ocrlite.train.task import Task

__all__ = ["PairTask", "StudentPair", "UDMLTask"]


class StudentPair(nn.Module):
    """Two nets of one architecture: ``student`` (the one exported) and ``peer``."""

    def __init__(self, student: nn.Module, peer: nn.Module) -> None:
        super().__init__()
        self.student, self.peer = student, peer

    def forward(self, x: Tensor) -> Tensor:
        """The student's output (inference uses the student alone)."""
        out: Tensor = self.student(x)
        return out


class PairTask(WrappedTask):
    """A task trained as two students (``StudentPair``): the base task's net and a peer built by ``peer``
    (the same net, or the same architecture from other weights); the student alone is kept and exported."""

    def __init__(self, base: Task, about: dict[str, Any] | None = None,
                 peer: Callable[[], nn.Module] | None = None) -> None:
        super().__init__(base, about)
        self.build_peer = peer or base.build_model

    def build_model(self) -> StudentPair:
        return StudentPair(self.base.build_model(), self.build_peer())

    def deployed(self, model: nn.Module) -> nn.Module:
        """The net whose weights are kept as the run's best and exported: the student."""
        student: nn.Module = model.student  # type: ignore[assignment]
        return student


class UDMLTask(PairTask):
    """A rec task trained as a U-DML pair (see the module docstring)."""

    def __init__(self, base: Task, weight: float = 1.0, feature_weight: float = 1.0, feature: str = "backbone",
                 about: dict[str, Any] | None = None, peer: Callable[[], nn.Module] | None = None) -> None:
        super().__init__(base, about, peer)
        self.weight, self.feature_weight, self.feature = weight, feature_weight, feature

    def _run(self, net: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float], Tensor, Tensor]:
        """The base task's loss on ``net`` and the head's and the feature module's outputs of that pass."""
        seen: dict[str, list[Tensor]] = {"head": [], "feature": []}
        hooks = [net.get_submodule(module).register_forward_hook(
                     lambda _m, _i, out, key=key: seen[key].append(out))
                 for key, module in (("head", "head"), ("feature", self.feature))]
        try:
            loss, logs = self.base.loss(net, batch)
        finally:
            for hook in hooks:
                hook.remove()
        if len(seen["head"]) != 1 or len(seen["feature"]) != 1:
            raise RuntimeError("U-DML needs the base task to run each student once per step")
        return loss, logs, seen["head"][0], seen["feature"][0]

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        loss_a, logs_a, logits_a, feature_a = self._run(model.student, batch)  # type: ignore[arg-type]
        loss_b, logs_b, logits_b, feature_b = self._run(model.peer, batch)  # type: ignore[arg-type]
        dml = dml_loss(logits_a, logits_b)
        l2 = feature_l2(feature_a, feature_b)
        total = loss_a + loss_b + self.weight * dml + self.feature_weight * l2
        logs = {**logs_a, **{f"peer_{k}": v for k, v in logs_b.items()}, "dml": float(dml.detach()),
                "l2": float(l2.detach())}
        return total, logs

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """The student's scores (the base task's evaluation)."""
        return self.base.evaluate(self.deployed(model))
