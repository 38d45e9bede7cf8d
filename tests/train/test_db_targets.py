"""DB training targets: known answers on an axis-aligned 100 x 20 box, ignore rules, splits."""

from __future__ import annotations

import numpy as np
import pytest

from ocrlite.train.db_targets import make_db_targets, offset_polygon, shrink_distance

BOX = np.array([[10, 10], [110, 10], [110, 30], [10, 30]], dtype=np.float64)  # 100 x 20


def test_shrink_distance_of_100_by_20_box_is_7() -> None:
    # A (1 - r^2) / L = 2000 * 0.84 / 240
    assert shrink_distance(BOX, 0.4) == pytest.approx(7.0)


def test_kernel_is_86_by_6() -> None:
    (kernel,) = offset_polygon(BOX, -shrink_distance(BOX))
    assert np.ptp(kernel[:, 0]) == pytest.approx(86) and np.ptp(kernel[:, 1]) == pytest.approx(6)
    targets = make_db_targets([BOX], [False], 48, 128)
    ys, xs = np.nonzero(targets.shrink)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (17, 103, 17, 23)
    assert targets.shrink_mask.min() == 1.0


def test_threshold_is_07_on_edge_and_03_from_7px() -> None:
    t = make_db_targets([BOX], [False], 48, 128)
    assert t.thresh[20, 10] == pytest.approx(0.7) and t.thresh[10, 60] == pytest.approx(0.7)
    assert t.thresh[30, 40] == pytest.approx(0.7)
    # linear in between: 1 px inside the left edge -> 0.7 - 0.4 / 7
    assert t.thresh[20, 11] == pytest.approx(0.7 - 0.4 / 7, abs=1e-6)
    assert t.thresh[20, 3] == pytest.approx(0.3) and t.thresh[20, 17] == pytest.approx(0.3)
    assert t.thresh[20, 60] == pytest.approx(0.3)  # box centre, 10 px from the long edges
    far = np.ones_like(t.thresh, dtype=bool)
    far[10 - 6 : 30 + 7, 10 - 6 : 110 + 7] = False
    assert np.allclose(t.thresh[far], 0.3)
    assert t.thresh.min() == pytest.approx(0.3) and t.thresh.max() == pytest.approx(0.7)
    # the mask is the dilated box (+7 px each side)
    ys, xs = np.nonzero(t.thresh_mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (3, 117, 3, 37)


@pytest.mark.parametrize("reason", ["dont_care", "too_small"])
def test_ignored_polygons_go_to_the_ignore_mask(reason: str) -> None:
    small = np.array([[50, 5], [70, 5], [70, 10], [50, 10]], dtype=np.float64)  # 5 px high < min_text_size 8
    poly, flag = (BOX, True) if reason == "dont_care" else (small, False)
    t = make_db_targets([poly], [flag], 48, 128)
    assert t.shrink.sum() == 0 and t.thresh_mask.sum() == 0
    x0, y0 = poly.min(axis=0).astype(int)
    x1, y1 = poly.max(axis=0).astype(int)
    assert t.shrink_mask[y0 : y1 + 1, x0 : x1 + 1].max() == 0
    assert t.shrink_mask.sum() == 48 * 128 - (y1 - y0 + 1) * (x1 - x0 + 1)


def test_kernel_that_splits_is_ignored() -> None:
    # a dumbbell: two 30 x 30 squares joined by a thin 2 px bridge; the inward offset cuts the bridge
    dumbbell = np.array(
        [[0, 0], [30, 0], [30, 14], [60, 14], [60, 0], [90, 0], [90, 30], [60, 30], [60, 16], [30, 16], [30, 30],
         [0, 30]], dtype=np.float64,
    ) + 5
    assert len(offset_polygon(dumbbell, -shrink_distance(dumbbell))) == 2
    t = make_db_targets([dumbbell, BOX + [0, 40]], [False, False], 80, 128)
    assert t.shrink[5:36].sum() == 0 and t.shrink_mask[20, 20] == 0
    assert t.shrink[57, 60] == 1  # the second box keeps its kernel
