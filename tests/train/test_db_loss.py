"""DB loss (on the head's logits): hand-computed values, an empty page, gradients reaching the net's maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ocrlite.train.db_loss import DBLoss, balanced_bce, dice_loss, masked_l1
from ocrlite.train.db_targets import make_db_targets

PRED = torch.tensor([[0.8, 0.1], [0.4, 0.2]])
LOGIT = torch.logit(PRED)
GT = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
ONES = torch.ones(2, 2)


def test_balanced_bce_keeps_the_hardest_negatives() -> None:
    pos, negs = -math.log(0.8), [-math.log(0.9), -math.log(0.6), -math.log(0.8)]
    assert balanced_bce(LOGIT, GT, ONES, 3.0).item() == pytest.approx((pos + sum(negs)) / 4, rel=1e-5)
    # ratio 1: only the hardest negative (p = 0.4) counts
    assert balanced_bce(LOGIT, GT, ONES, 1.0).item() == pytest.approx((pos - math.log(0.6)) / 2, rel=1e-5)
    # a masked-out negative is never mined
    mask = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    assert balanced_bce(LOGIT, GT, mask, 1.0).item() == pytest.approx((pos - math.log(0.8)) / 2, rel=1e-5)


def test_bce_keeps_the_gradient_of_a_saturated_miss() -> None:
    # a converted detector's logit on text it misses is about -33: P = 5e-15, yet the loss is 40 and the
    # gradient on the logit is P - 1 (a loss on clamped probabilities or Dice would give 0 here)
    logits = torch.tensor([[-40.0]], requires_grad=True)
    loss = balanced_bce(logits, torch.ones(1, 1), torch.ones(1, 1))
    loss.backward()
    assert loss.item() == pytest.approx(40.0, rel=1e-5) and logits.grad.item() == pytest.approx(-1.0, rel=1e-5)
    maps = torch.full((1, 3, 1, 1), -40.0, requires_grad=True)
    DBLoss(main_loss="bce")(maps, torch.ones(1, 1, 1), torch.ones(1, 1, 1), torch.full((1, 1, 1), 0.7),
                            torch.ones(1, 1, 1))["loss"].backward()
    assert maps.grad[0, 0].item() == pytest.approx(-5.0, rel=1e-4)  # alpha * (P - 1)


def test_dice_and_l1_known_values() -> None:
    assert dice_loss(PRED, GT, ONES).item() == pytest.approx(1 - 2 * 0.8 / 2.5, rel=1e-5)
    target = torch.tensor([[0.7, 0.3], [0.3, 0.5]])
    mask = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert masked_l1(PRED, target, mask).item() == pytest.approx((0.1 + 0.2) / 2, rel=1e-5)


def test_total_is_5_lp_plus_10_l1_plus_dice() -> None:
    maps = torch.logit(torch.stack([PRED, torch.full((2, 2), 0.5), torch.tensor([[0.9, 0.0], [0.1, 0.0]])])[None])
    thresh = torch.tensor([[0.7, 0.3], [0.3, 0.5]])[None]
    parts = DBLoss()(maps, GT[None], ONES[None], thresh, ONES[None])
    expected_l1 = (0.2 + 0.2 + 0.2 + 0.0) / 4
    expected_b = 1 - 2 * 0.9 / (1.0 + 1.0)
    assert parts["loss_thresh"].item() == pytest.approx(expected_l1, rel=1e-5)
    assert parts["loss_binary"].item() == pytest.approx(expected_b, rel=1e-5)
    total = 5 * parts["loss_shrink"] + 10 * parts["loss_thresh"] + parts["loss_binary"]
    assert parts["loss"].item() == pytest.approx(total.item(), rel=1e-6)
    dice = DBLoss(main_loss="dice")(maps, GT[None], ONES[None], thresh, ONES[None])
    assert dice["loss_shrink"].item() == pytest.approx(1 - 2 * 0.8 / 2.5, rel=1e-5)


@pytest.mark.parametrize("main_loss", ["bce", "dice"])
def test_finite_on_a_batch_with_no_text(main_loss: str) -> None:
    t = make_db_targets([], [], 32, 32)
    assert t.shrink.sum() == 0 and t.thresh_mask.sum() == 0
    to = lambda a: torch.from_numpy(np.stack([a, a]))  # noqa: E731
    maps = torch.rand(2, 3, 32, 32, requires_grad=True)
    parts = DBLoss(main_loss=main_loss)(maps, to(t.shrink), to(t.shrink_mask), to(t.thresh), to(t.thresh_mask))
    assert all(torch.isfinite(v) for v in parts.values())
    parts["loss"].backward()
    assert torch.isfinite(maps.grad).all()


def test_gradient_reaches_all_three_maps() -> None:
    box = np.array([[4, 4], [28, 4], [28, 16], [4, 16]], dtype=np.float64)
    t = make_db_targets([box], [False], 32, 32)
    to = lambda a: torch.from_numpy(a)[None]  # noqa: E731
    maps = torch.zeros((1, 3, 32, 32), requires_grad=True)  # logits: every map at 0.5
    parts = DBLoss()(maps, to(t.shrink), to(t.shrink_mask), to(t.thresh), to(t.thresh_mask))
    parts["loss"].backward()
    for channel in range(3):
        assert maps.grad[0, channel].abs().sum() > 0
    # descending the gradient lowers the loss
    with torch.no_grad():
        stepped = maps - 0.01 * maps.grad.sign()
    lower = DBLoss()(stepped, to(t.shrink), to(t.shrink_mask), to(t.thresh), to(t.thresh_mask))["loss"]
    assert lower.item() < parts["loss"].item()
