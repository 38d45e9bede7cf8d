"""Post-processing known answers: DB boxes, reading order, charset, CTC decoding, angles."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ocrlite.charset import Charset
from ocrlite.errors import ConfigError
from ocrlite.postprocess import (
    CTCDecoded,
    DBPostProcess,
    classify_angles,
    ctc_greedy_decode,
    needs_flip,
    order_quad,
    sort_reading_order,
)
from ocrlite.settings import build_settings

# ---------------------------------------------------------------- DB boxes


def _prob_map(*rects: tuple[int, int, int, int, float], shape: tuple[int, int] = (200, 300)) -> np.ndarray:
    """A map of zeros with filled rectangles (x0, y0, x1, y1 inclusive, value)."""
    prob = np.zeros(shape, dtype=np.float32)
    for x0, y0, x1, y1, value in rects:
        prob[y0 : y1 + 1, x0 : x1 + 1] = value
    return prob


def _expected_quad(x0: int, y0: int, x1: int, y1: int, ratio: float = 1.5) -> np.ndarray:
    """The unclipped rectangle DB should return: the pixel-centre rectangle grown by A * r / L."""
    w, h = x1 - x0, y1 - y0
    d = w * h * ratio / (2 * (w + h))
    return np.array([[x0 - d, y0 - d], [x1 + d, y0 - d], [x1 + d, y1 + d], [x0 - d, y1 + d]])


def _by_x(found: list[tuple[np.ndarray, float]]) -> list[tuple[np.ndarray, float]]:
    return sorted(found, key=lambda item: int(item[0][0, 0]))


def test_db_two_rectangles() -> None:
    prob = _prob_map((20, 30, 119, 49, 0.9), (150, 100, 269, 129, 0.8))
    found = _by_x(DBPostProcess()(prob, 200, 300))
    assert len(found) == 2
    for (quad, score), rect, value in zip(found, [(20, 30, 119, 49), (150, 100, 269, 129)], [0.9, 0.8]):
        assert quad.dtype == np.int32 and quad.shape == (4, 2)
        np.testing.assert_allclose(quad, _expected_quad(*rect), atol=1.5)
        assert score == pytest.approx(value, abs=1e-6)


def test_db_box_thresh_filters_weak_regions() -> None:
    prob = _prob_map((20, 30, 119, 49, 0.9), (150, 100, 269, 129, 0.5))
    found = DBPostProcess()(prob, 200, 300)
    assert len(found) == 1 and found[0][1] == pytest.approx(0.9)
    assert len(DBPostProcess(box_thresh=0.4)(prob, 200, 300)) == 2


def test_db_tiny_blob_and_empty_map() -> None:
    prob = _prob_map((20, 30, 119, 49, 0.9), (200, 150, 201, 151, 1.0))
    assert len(DBPostProcess()(prob, 200, 300)) == 1
    assert DBPostProcess()(np.zeros((64, 64), dtype=np.float32), 64, 64) == []


def test_db_maps_back_to_source_size() -> None:
    prob = _prob_map((20, 30, 119, 49, 0.9))
    (quad, _), = DBPostProcess()(prob, 400, 450)  # source is 2x taller, 1.5x wider
    np.testing.assert_allclose(quad, _expected_quad(20, 30, 119, 49) * [1.5, 2.0], atol=2.5)


def test_db_clips_to_image() -> None:
    prob = _prob_map((0, 0, 99, 19, 0.9), shape=(100, 120))
    (quad, _), = DBPostProcess()(prob, 100, 120)
    assert quad[:, 0].min() == 0 and quad[:, 1].min() == 0
    assert quad[:, 0].max() <= 119 and quad[:, 1].max() <= 99


def test_db_slow_mode_and_dilation_agree_on_rectangles() -> None:
    prob = _prob_map((20, 30, 119, 49, 0.9), (150, 100, 269, 129, 0.8))
    fast = _by_x(DBPostProcess()(prob, 200, 300))
    slow = _by_x(DBPostProcess(score_mode="slow")(prob, 200, 300))
    dilated = _by_x(DBPostProcess(use_dilation=True)(prob, 200, 300))
    for (qf, sf), (qs, ss), (qd, _) in zip(fast, slow, dilated):
        np.testing.assert_array_equal(qf, qs)
        assert sf == pytest.approx(ss)
        assert np.abs(qd - qf).max() <= 2
    message = "det.postprocess.score_mode: 'medium' is not allowed; choose one of: fast, slow"
    with pytest.raises(ConfigError, match=message):
        build_settings(DBPostProcess, "det.postprocess", {"score_mode": "medium"})


def test_db_rotated_box_found() -> None:
    prob = np.zeros((200, 200), dtype=np.float32)
    corners = cv2.boxPoints(((100.0, 100.0), (120.0, 30.0), 20.0))
    cv2.fillPoly(prob, [np.rint(corners).astype(np.int32)], 0.9)
    (quad, score), = DBPostProcess()(prob, 200, 200)
    assert score > 0.85
    top = quad[1] - quad[0]
    assert np.degrees(np.arctan2(top[1], top[0])) == pytest.approx(20, abs=2)


# ---------------------------------------------------------------- ordering


def test_order_quad_clockwise_from_top_left() -> None:
    expected = np.array([[10, 20], [50, 20], [50, 40], [10, 40]])
    for perm in ([2, 0, 3, 1], [3, 2, 1, 0], [0, 1, 2, 3]):
        np.testing.assert_array_equal(order_quad(expected[perm]), expected)
    tilted = np.array([[0, 30], [40, 0], [55, 20], [15, 50]], dtype=np.float32)  # TL, TR, BR, BL
    np.testing.assert_array_equal(order_quad(tilted[[2, 3, 1, 0]]), tilted)


def _box(x: int, y: int) -> np.ndarray:
    return np.array([[x, y], [x + 30, y], [x + 30, y + 10], [x, y + 10]])


def test_sort_reading_order_lines_left_to_right() -> None:
    quads = [_box(100, 5), _box(10, 8), _box(50, 40), _box(10, 42), _box(0, 60)]
    assert sort_reading_order(quads) == [1, 0, 3, 2, 4]
    assert sort_reading_order([_box(50, 0), _box(0, 10)]) == [0, 1]  # 10 px apart: next line
    assert sort_reading_order([]) == []


def test_db_boxes_in_reading_order() -> None:
    prob = _prob_map((150, 20, 250, 39, 0.9), (10, 24, 120, 43, 0.9), (10, 100, 200, 119, 0.9))
    found = DBPostProcess()(prob, 200, 300)
    ordered = [found[i][0] for i in sort_reading_order([quad for quad, _ in found])]
    # Line 1: the box starting at x=10 (4 px lower) reads before the one at x=150; then line 2.
    assert [(q[0, 0] < 100, q[0, 1] > 80) for q in ordered] == [(True, False), (False, False), (True, True)]


# ---------------------------------------------------------------- charset


def test_charset_crlf_without_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_bytes("a\r\nb\r\n中".encode())
    with_space = Charset.from_file(path)
    assert with_space.chars == ("a", "b", "中", " ") and len(with_space) == 5
    without = Charset.from_file(path, use_space_char=False)
    assert without.chars == ("a", "b", "中") and len(without) == 4


def test_charset_lf_with_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text("x\ny\n", encoding="utf-8")
    assert Charset.from_file(path).chars == ("x", "y", " ")


def test_charset_encode_decode() -> None:
    charset = Charset(["a", "b", "c"])
    assert charset.encode("ab?c a") == [1, 2, 3, 4, 1]
    assert charset.decode([0, 1, 0, 2, 4, 3]) == "ab c"
    with pytest.raises(ValueError, match="class index 5"):
        charset.decode([5])


# ---------------------------------------------------------------- CTC


def _probs(rows: list[list[tuple[int, float]]], n_classes: int = 5) -> np.ndarray:
    """N x T x C probabilities: at each step class k gets p, the rest share 1 - p."""
    out = np.zeros((len(rows), len(rows[0]), n_classes), dtype=np.float32)
    for n, row in enumerate(rows):
        for t, (k, p) in enumerate(row):
            out[n, t] = (1 - p) / (n_classes - 1)
            out[n, t, k] = p
    return out


def test_ctc_known_answers() -> None:
    charset = Charset(["a", "b", "c"])  # 1=a 2=b 3=c 4=space
    probs = _probs(
        [
            [(1, 0.9), (1, 0.8), (0, 0.7), (1, 0.6), (2, 0.5), (2, 0.95)],  # a a _ a b b -> "aab"
            [(0, 0.9), (0, 0.9), (0, 0.9), (0, 0.9), (0, 0.9), (0, 0.9)],  # all blank -> ""
            [(3, 0.9), (4, 0.8), (4, 0.4), (0, 0.9), (1, 0.7), (0, 0.9)],  # c, space, a
        ]
    )
    aab, empty, spaced = ctc_greedy_decode(probs, charset)
    assert aab[:3] == CTCDecoded("aab", pytest.approx((0.9 + 0.6 + 0.5) / 3), (0, 3, 4))[:3]
    assert aab.probs == pytest.approx((0.9, 0.6, 0.5))
    assert empty[:4] == ("", 0.0, (), ())
    assert spaced.text == "c a" and spaced.steps == (0, 1, 4)
    assert spaced.score == pytest.approx((0.9 + 0.8 + 0.7) / 3)


def test_ctc_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match="N x T x C"):
        ctc_greedy_decode(np.zeros((4, 5), dtype=np.float32), Charset(["a"]))


# ---------------------------------------------------------------- angle classifier


def test_classify_angles_and_flip_threshold() -> None:
    probs = np.array([[0.95, 0.05], [0.05, 0.95], [0.1, 0.9]], dtype=np.float32)
    decisions = classify_angles(probs)
    assert [angle for angle, _ in decisions] == [0, 180, 180]
    assert [score for _, score in decisions] == pytest.approx([0.95, 0.95, 0.9])
    assert [needs_flip(a, s, 0.9) for a, s in decisions] == [False, True, False]  # strict >
    assert classify_angles(probs, labels=(180, 0))[0][0] == 180
