"""Distillation losses: known answers, and KD pulls a fresh student towards the shipped classifier."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import torch

from ocrlite.preprocess import line_batch
from ocrlite.slim.distill import dml_loss, feature_l2, kd_loss
from ocrlite.stages import stage_spec

SAMPLE = Path(__file__).parents[1] / "images" / "sample.png"


def test_known_answers():
    a = torch.tensor([[0.0, math.log(3.0)]])  # p = [0.25, 0.75]
    b = torch.zeros(1, 2)  # q = [0.5, 0.5]
    kl_ab = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    kl_ba = 0.5 * math.log(2.0) + 0.5 * math.log(2.0 / 3.0)
    assert math.isclose(float(kd_loss(b, a, temperature=1.0)), kl_ab, rel_tol=1e-5)
    assert math.isclose(float(dml_loss(a, b)), (kl_ab + kl_ba) / 2, rel_tol=1e-5)
    assert float(kd_loss(a, a)) == 0.0 and math.isclose(float(feature_l2(a, b)), math.log(3.0) ** 2 / 2, rel_tol=1e-5)


def test_kd_moves_a_fresh_student_to_the_teacher_on_real_crops():
    spec = stage_spec("cls")
    teacher = spec.build_net()
    torch.manual_seed(0)
    student = spec.build_net(load_weights=False).train()
    page = cv2.imread(str(SAMPLE))
    crops = [page[y0:y1, 40:350] for y0, y1 in ((29, 63), (97, 131), (164, 201), (232, 271))]
    crops += [cv2.rotate(c, cv2.ROTATE_180) for c in crops]
    x = torch.from_numpy(line_batch(crops, spec.pre.height, spec.pre.width, spec.pre.mean, spec.pre.std))
    with torch.no_grad():
        target = teacher(x)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = kd_loss(student(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.grad is None for p in teacher.parameters())
