"""Training augmentations: polygons follow the pixels, runs are reproducible from the generator."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ocrlite.preprocess import line_batch, resize_line
from ocrlite.train.augment import (
    ClsAugment,
    DetAugment,
    DetSample,
    bda,
    clip_to_image,
    color_jitter,
    copy_paste,
    hflip,
    rand_augment,
    random_crop,
    rescale,
    rotate,
)

QUADS = (
    np.array([[20, 30], [120, 25], [122, 55], [22, 60]], dtype=np.float64),
    np.array([[150, 100], [230, 100], [230, 130], [150, 130]], dtype=np.float64),
    np.array([[40, 150], [90, 140], [95, 170], [45, 180]], dtype=np.float64),
)


def _sample() -> DetSample:
    """Black 200 x 260 image with each quad filled in its own colour (channel i at 255)."""
    image = np.zeros((200, 260, 3), dtype=np.uint8)
    for i, quad in enumerate(QUADS):
        color = [0, 0, 0]
        color[i] = 255
        cv2.fillPoly(image, [np.round(quad).astype(np.int32)], color)
    return DetSample(image, QUADS, (False, False, True))


def _follows(sample: DetSample, min_iou: float = 0.9) -> None:
    """Each polygon i covers the pixels of colour i: IoU of its filled mask and the bright pixels."""
    assert len(sample.polygons) == len(sample.ignore)
    for poly in sample.polygons:
        mask = np.zeros(sample.image.shape[:2], dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        channel = int(np.argmax([sample.image[:, :, c][mask > 0].mean() for c in range(3)]))
        bright = sample.image[:, :, channel] > 127
        inter = np.logical_and(bright, mask > 0).sum()
        union = np.logical_or(bright, mask > 0).sum()
        assert inter / union >= min_iou, (channel, inter / union)


@pytest.mark.parametrize(
    "op",
    [hflip, lambda s: rotate(s, 10.0), lambda s: rotate(s, -7.5), lambda s: rescale(s, 0.6),
     lambda s: rescale(s, 2.3)],
    ids=["flip", "rot+10", "rot-7.5", "scale0.6", "scale2.3"],
)
def test_geometric_ops_move_polygons_with_pixels(op) -> None:  # type: ignore[no-untyped-def]
    out = op(_sample())
    assert len(out.polygons) == 3
    _follows(out, 0.85 if out.image.shape[0] < 200 else 0.9)


def test_flip_is_exact_and_involutive() -> None:
    s = _sample()
    twice = hflip(hflip(s))
    assert np.array_equal(twice.image, s.image)
    for a, b in zip(twice.polygons, s.polygons, strict=False):
        assert np.allclose(a, b)


def test_rotation_keeps_all_corners_inside() -> None:
    out = rotate(_sample(), 10.0)
    h, w = out.image.shape[:2]
    assert w > 260 and h > 200
    for poly in out.polygons:
        assert poly.min() >= 0 and (poly[:, 0] <= w - 1).all() and (poly[:, 1] <= h - 1).all()


def test_random_crop_keeps_text_and_target_size() -> None:
    s = _sample()
    for seed in range(10):
        out = random_crop(s, np.random.default_rng(seed), (128, 96))
        assert out.image.shape == (96, 128, 3)
        assert any(not skip for skip in out.ignore)  # a cared-for text is always kept
        _follows(out, 0.8)


def test_random_crop_keep_scale_pads_without_resizing() -> None:
    s = _sample()
    for seed in range(10):
        out = random_crop(s, np.random.default_rng(seed), (160, 120), keep_scale=True)
        assert out.image.shape == (120, 160, 3)
        _follows(out, 0.9)
        for poly in out.polygons:  # same size as before: a translation of an input polygon
            assert any(np.allclose(poly - poly[0], q - q[0]) for q in QUADS)


def test_random_crop_clips_and_ignores_text_leaving_the_image() -> None:
    # a label the window cuts (here one running past the border: random_crop alone) is clipped and ignored
    leaving = np.array([[200, 10], [300, 10], [300, 40], [200, 40]], dtype=np.float64)
    wide = np.array([[0, 60], [259, 60], [259, 90], [0, 90]], dtype=np.float64)  # no free column: whole image
    image = np.zeros((200, 260, 3), dtype=np.uint8)
    out = random_crop(DetSample(image, (leaving, wide), (False, False)), np.random.default_rng(0), (260, 200))
    assert out.ignore == (True, False)
    clipped = out.polygons[0]
    assert clipped[:, 0].max() == pytest.approx(259, abs=1e-6)  # the last pixel column
    assert clipped[:, 0].min() == pytest.approx(200, abs=1e-6)


def test_the_chain_clips_labels_crossing_the_image_edge_and_keeps_them_as_text() -> None:
    """A label drawn up to x = width (or text cut by the photo's border) is text up to the edge, as PaddleOCR
    clips it: the chain clips it to the image first and keeps its flag (it was ignored, so the net learnt
    nothing there); a label wholly outside the image is dropped, a '###' one stays ignored."""
    leaving = np.array([[200, 10], [260, 10], [260, 40], [200, 40]], dtype=np.float64)  # to x = width
    wide = np.array([[0, 60], [259, 60], [259, 90], [0, 90]], dtype=np.float64)
    outside = np.array([[270, 10], [300, 10], [300, 40], [270, 40]], dtype=np.float64)
    dont_care = np.array([[10, 120], [80, 120], [80, 150], [10, 150]], dtype=np.float64)
    sample = DetSample(np.zeros((200, 260, 3), dtype=np.uint8), (leaving, wide, outside, dont_care),
                       (False, False, False, True))
    clipped = clip_to_image(sample)
    assert clipped.ignore == (False, False, True)
    assert clipped.polygons[0][:, 0].max() == pytest.approx(259) and clipped.polygons[0][:, 0].min() == 200
    assert clipped.polygons[1] is wide and clipped.polygons[2] is dont_care
    chain = DetAugment(size=(260, 200), flip=0.0, max_angle=0.0, scale=(1.0, 1.0), color=0.0)
    out = chain(sample, np.random.default_rng(0))
    assert out.ignore == (False, False, True)


def test_copy_paste_adds_non_overlapping_instances_with_their_pixels() -> None:
    base = _sample()
    donor_img = np.zeros((120, 160, 3), dtype=np.uint8)
    text = np.array([[10, 10], [70, 10], [70, 30], [10, 30]], dtype=np.float64)
    cv2.fillPoly(donor_img, [text.astype(np.int32)], (0, 255, 0))
    donor = DetSample(donor_img, (text,), (False,))
    out = copy_paste(base, donor, np.random.default_rng(3))
    assert len(out.polygons) == 4 and out.ignore[-1] is False
    pasted = out.polygons[-1]
    mask = np.zeros(out.image.shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(pasted).astype(np.int32)], 1)
    assert (out.image[mask > 0] == [0, 255, 0]).all()
    from shapely.geometry import Polygon

    assert not any(Polygon(pasted).intersects(Polygon(q)) for q in QUADS)
    # pixels outside the pasted polygon are unchanged
    assert np.array_equal(out.image[mask == 0], base.image[mask == 0])


def test_det_chain_is_deterministic_and_consistent() -> None:
    aug = DetAugment(size=(160, 160), copy_paste=1.0)
    a = aug(_sample(), np.random.default_rng(7), donor=_sample())
    b = aug(_sample(), np.random.default_rng(7), donor=_sample())
    assert np.array_equal(a.image, b.image) and len(a.polygons) == len(b.polygons)
    assert all(np.array_equal(p, q) for p, q in zip(a.polygons, b.polygons, strict=False))
    c = aug(_sample(), np.random.default_rng(8), donor=_sample())
    assert not np.array_equal(a.image, c.image)


def test_color_jitter_changes_pixels_not_shape() -> None:
    image = _sample().image
    out = color_jitter(image, np.random.default_rng(1))
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)


def test_cls_ops_keep_shape_and_orientation() -> None:
    rng = np.random.default_rng(0)
    line = np.full((48, 192, 3), 255, dtype=np.uint8)
    cv2.putText(line, "Total 42", (5, 35), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2)
    ink_left = (line[:, :96] < 128).sum() - (line[:, 96:] < 128).sum()
    for _ in range(20):
        out = ClsAugment()(line, rng)
        assert out.shape == line.shape and out.dtype == np.uint8
    # the same generator state gives the same output
    assert np.array_equal(bda(line, np.random.default_rng(5), 1.0), bda(line, np.random.default_rng(5), 1.0))
    assert np.array_equal(rand_augment(line, np.random.default_rng(5)), rand_augment(line, np.random.default_rng(5)))
    assert not np.array_equal(bda(line, np.random.default_rng(5), 1.0), line)
    assert ink_left != 0  # the sample text is not symmetric, so a flip would be detectable


def _edge_width(image: np.ndarray) -> float:
    """10-90 % rise (pixels) of a dark-to-light vertical edge, from the column means (sub-pixel)."""
    profile = image.astype(np.float64).mean(axis=(0, 2))
    profile = (profile - profile.min()) / (profile.max() - profile.min())

    def cross(level: float) -> float:
        i = int(np.argmax(profile >= level))
        return i - 1 + (level - profile[i - 1]) / (profile[i] - profile[i - 1])

    return cross(0.9) - cross(0.1)


def test_cls_augment_at_input_size_blurs_in_input_pixels() -> None:
    # a 16 px high crop with a sharp edge is enlarged 3x to the net's 48 px: the resize alone gives a 2.4 px rise
    crop = np.zeros((16, 64, 3), dtype=np.uint8)
    crop[:, 32:] = 255
    plain = resize_line(crop, 48, 192)
    assert plain.shape == (48, 192, 3) and _edge_width(plain) == pytest.approx(2.4)
    # no op drawn: exactly the inference resize, which line_batch then leaves as it is
    same = ClsAugment(num_ops=0, bda_prob=0.0, height=48, max_width=192)(crop, np.random.default_rng(0))
    assert np.array_equal(same, plain)
    assert np.array_equal(line_batch([same], 48, 192, [0.5] * 3, [0.5] * 3), line_batch([crop], 48, 192, [0.5] * 3,
                                                                                          [0.5] * 3))
    at_input, at_crop = [], []
    for seed in range(20):  # every BDA op on: blur sigma 0.3-1.5 px, noise, contrast, JPEG
        at_input.append(_edge_width(ClsAugment(0, 0.5, 1.0, 48, 192)(crop, np.random.default_rng(seed))))
        at_crop.append(_edge_width(resize_line(ClsAugment(0, 0.5, 1.0)(crop, np.random.default_rng(seed)), 48, 192)))
    # Gaussian 10-90 rise 2.563 sigma: at most sqrt(2.4^2 + (2.563 * 1.5)^2) = 4.5 input px; on the raw crop 3x wider
    assert max(at_input) < 4.6 and min(at_input) > 2.0
    assert max(at_crop) > 9.0 and np.median(at_crop) > 2 * np.median(at_input)
