"""Pre-processing known answers: detector resize, normalisation, quad crops, line batches."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocrlite.postprocess import order_quad
from ocrlite.preprocess import crop_quad, det_resize, line_batch, normalize, rec_batch_width, resize_line


def _blank(h: int, w: int) -> np.ndarray:
    return np.zeros((h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("size", "limit", "limit_type", "expected"),
    [
        ((720, 1280), 960, "max", (544, 960)),  # PaddleOCR default on an ICDAR page
        ((720, 1280), 736, "min", (736, 1312)),  # RapidOCR default
        ((1, 1), 960, "max", (32, 32)),  # never below 32
        ((64, 96), 960, "max", (64, 96)),  # "max" never enlarges
        ((2000, 3000), 736, "min", (1984, 3008)),  # "min" never shrinks; 62.5 -> 62
        ((528, 100), 960, "max", (512, 96)),  # 528/32 = 16.5 rounds half to even -> 16
        ((2, 2000), 736, "min", (32, 4000)),  # "min" enlarges a thin strip up to a long side of 4000
        ((60, 3000), 736, "min", (64, 4000)),  # 80 px rounds half to even -> 64
        ((1000, 6000), 736, "min", (992, 6016)),  # ... and never shrinks one already longer
    ],
)
def test_det_resize_sizes(
    size: tuple[int, int], limit: int, limit_type: str, expected: tuple[int, int]
) -> None:
    resized, ratio_h, ratio_w = det_resize(_blank(*size), limit, limit_type)
    assert resized.shape == (*expected, 3)
    assert ratio_h == pytest.approx(expected[0] / size[0])
    assert ratio_w == pytest.approx(expected[1] / size[1])


def test_det_resize_rejects_unknown_limit_type() -> None:
    with pytest.raises(ValueError, match="limit_type"):
        det_resize(_blank(10, 10), 960, "both")


def test_normalize_values_and_layout() -> None:
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[1, 2] = (255, 0, 51)
    out = normalize(image, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert out.shape == (3, 2, 3) and out.dtype == np.float32
    assert out.transpose(1, 2, 0).flags["C_CONTIGUOUS"]  # a CHW view of channels-last memory
    expected = [(1 - 0.485) / 0.229, -0.456 / 0.224, (0.2 - 0.406) / 0.225]
    np.testing.assert_allclose(out[:, 1, 2], expected, rtol=1e-6)
    np.testing.assert_allclose(out[:, 0, 0], [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225], rtol=1e-6)
    # bit for bit the float32 arithmetic of (x / 255 - mean) / std
    photo = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    mean, std = np.float32([0.485, 0.456, 0.406]), np.float32([0.229, 0.224, 0.225])
    reference = ((photo.astype(np.float32) / np.float32(255) - mean) / std).transpose(2, 0, 1)
    assert np.array_equal(normalize(photo, mean, std), reference)
    # every level of every channel (a table lookup), and a mirrored view of an image (not contiguous)
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)[:, ::-1]
    reference = ((levels.astype(np.float32) / np.float32(255) - mean) / std).transpose(2, 0, 1)
    assert np.array_equal(normalize(levels, mean, std), reference)
    with pytest.raises(ValueError, match="uint8"):
        normalize(photo.astype(np.float32), mean, std)


def test_crop_axis_aligned_quad_is_exact() -> None:
    image = np.random.default_rng(1).integers(0, 256, (80, 140, 3), dtype=np.uint8)
    quad = np.array([[10, 20], [110, 20], [110, 50], [10, 50]])
    crop = crop_quad(image, quad)
    assert crop is not None
    np.testing.assert_array_equal(crop, image[20:50, 10:110])


def test_crop_rotated_rectangle() -> None:
    """A red 120x40 rectangle turned 30 degrees, with a blue left end, comes out upright."""
    image = np.full((200, 200, 3), 255, dtype=np.uint8)
    corners = order_quad(cv2.boxPoints(((100.0, 100.0), (120.0, 40.0), 30.0)))
    cv2.fillPoly(image, [np.rint(corners).astype(np.int32)], (0, 0, 255))
    left_end = np.array([corners[0], corners[0] + (corners[1] - corners[0]) * 0.2,
                         corners[3] + (corners[2] - corners[3]) * 0.2, corners[3]])
    cv2.fillPoly(image, [np.rint(left_end).astype(np.int32)], (255, 0, 0))
    crop = crop_quad(image, corners)
    assert crop is not None
    assert abs(crop.shape[1] - 120) <= 1 and abs(crop.shape[0] - 40) <= 1
    inner = crop[8:-8]
    assert (np.abs(inner[:, 40:-8].astype(int) - (0, 0, 255)) < 40).all()  # red body
    assert (np.abs(inner[:, 4:16].astype(int) - (255, 0, 0)) < 40).all()  # blue end stays left


def test_tall_crop_turned_counter_clockwise() -> None:
    image = np.full((100, 100, 3), 255, dtype=np.uint8)
    image[10:20, 40:60] = 0  # black block at the top of the tall region
    crop = crop_quad(image, np.array([[40, 10], [60, 10], [60, 70], [40, 70]]))
    assert crop is not None
    assert crop.shape == (20, 60, 3) and crop.flags["C_CONTIGUOUS"]
    assert (crop[:, :10] == 0).all() and (crop[:, 12:] == 255).all()  # top went to the left


def test_square_ratio_below_threshold_not_turned() -> None:
    crop = crop_quad(_blank(100, 100), np.array([[0, 0], [40, 0], [40, 59], [0, 59]]))
    assert crop is not None and crop.shape == (59, 40, 3)  # 59 / 40 < 1.5


@pytest.mark.parametrize(
    "quad",
    [
        np.array([[5, 5], [5, 5], [5, 5], [5, 5]]),
        np.array([[0, 10], [50, 10], [50, 10.5], [0, 10.5]]),  # under 1 px high
    ],
)
def test_degenerate_quad_gives_none(quad: np.ndarray) -> None:
    assert crop_quad(_blank(20, 60), quad) is None


@pytest.mark.parametrize(
    ("size", "expected_w"),
    [((32, 100), 150), ((10, 1000), 192), ((100, 1), 1), ((48, 48), 48)],
)
def test_resize_line(size: tuple[int, int], expected_w: int) -> None:
    assert resize_line(_blank(*size), 48, 192).shape == (48, expected_w, 3)


def test_line_batch_shapes_and_padding() -> None:
    crops = [np.full((32, 100, 3), 255, dtype=np.uint8), np.full((16, 800, 3), 0, dtype=np.uint8)]
    batch = line_batch(crops, 48, 192, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert batch.shape == (2, 3, 48, 192) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0, :, :, :150], 1.0)  # white -> +1
    np.testing.assert_array_equal(batch[0, :, :, 150:], 0.0)  # right padding
    np.testing.assert_array_equal(batch[1], -1.0)  # black, squeezed to the full width
    assert line_batch([], 48, 192, (0.5,) * 3, (0.5,) * 3).shape == (0, 3, 48, 192)


def test_rec_batch_width() -> None:
    narrow = [_blank(32, 100), _blank(40, 40)]
    assert rec_batch_width(narrow, 32, 320) == 320  # never below min_width
    assert rec_batch_width(narrow + [_blank(32, 800)], 32, 320) == 800
    assert rec_batch_width([_blank(30, 1000)], 32, 320) == 1066  # int(32 * 1000 / 30)
