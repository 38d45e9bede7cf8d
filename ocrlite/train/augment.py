"""Training augmentations, deterministic given an ``np.random.Generator``.

Detection (``DetSample``: BGR image + polygons + ignore flags): flip, rotate, random scale, random crop that
keeps polygons (EastRandomCropData-like), colour jitter and CopyPaste. Every geometric op moves the polygons
exactly as it moves the pixels, with pixel (x, y) at the point (x, y) (the convention of ``cv2.fillPoly``,
``cv2.warpAffine`` and the DB targets). Classification (text-line crops): BDA (blur, noise, contrast, JPEG)
and RandAugment-style photometric and small geometric ops; none of them turns a line upside down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import cv2
import numpy as np
from shapely.geometry import Polygon, box

from ..preprocess import resize_line

__all__ = [
    "DetSample",
    "DetAugment",
    "hflip",
    "rotate",
    "rescale",
    "random_crop",
    "clip_to_image",
    "color_jitter",
    "copy_paste",
    "bda",
    "rand_augment",
    "ClsAugment",
]


@dataclass(frozen=True)
class DetSample:
    """An image (H x W x 3 uint8 BGR), its text polygons (N_i x 2 float64) and their ignore flags."""

    image: np.ndarray
    polygons: tuple[np.ndarray, ...] = ()
    ignore: tuple[bool, ...] = ()


def _affine(sample: DetSample, matrix: np.ndarray, size: tuple[int, int]) -> DetSample:
    """Warp image and polygons by a 2 x 3 affine ``matrix`` into a ``size`` = (width, height) canvas."""
    image = cv2.warpAffine(sample.image, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    polys = tuple(p @ matrix[:, :2].T + matrix[:, 2] for p in sample.polygons)
    return replace(sample, image=image, polygons=polys)


def hflip(sample: DetSample) -> DetSample:
    """Mirror left-right: x -> W - 1 - x; point order is reversed so polygons stay clockwise."""
    width = sample.image.shape[1]
    image = np.ascontiguousarray(sample.image[:, ::-1])
    polys = tuple(np.stack([width - 1 - p[::-1, 0], p[::-1, 1]], axis=1) for p in sample.polygons)
    return replace(sample, image=image, polygons=polys)


def rotate(sample: DetSample, angle: float) -> DetSample:
    """Rotate by ``angle`` degrees (counter-clockwise) about the centre; the canvas grows so nothing is cut."""
    height, width = sample.image.shape[:2]
    centre = ((width - 1) / 2, (height - 1) / 2)
    matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w = int(np.ceil(width * cos + height * sin))
    new_h = int(np.ceil(width * sin + height * cos))
    matrix[0, 2] += (new_w - 1) / 2 - centre[0]
    matrix[1, 2] += (new_h - 1) / 2 - centre[1]
    return _affine(sample, matrix, (new_w, new_h))


def rescale(sample: DetSample, scale: float) -> DetSample:
    """Resize by ``scale``; points follow the pixel centres: x' = (x + 0.5) s' - 0.5 with s' the exact ratio."""
    height, width = sample.image.shape[:2]
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    image = cv2.resize(sample.image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    ratio = np.array([new_w / width, new_h / height])
    polys = tuple((p + 0.5) * ratio - 0.5 for p in sample.polygons)
    return replace(sample, image=image, polygons=polys)


def _crop_window(
    sample: DetSample, rng: np.random.Generator, min_side: float, tries: int, max_size: tuple[int, int] | None
) -> tuple[int, ...]:
    """(x0, y0, x1, y1) inclusive; edges drawn from rows/columns no polygon covers, with a cared-for text inside
    and, with ``max_size`` = (width, height), no larger than that."""
    height, width = sample.image.shape[:2]
    free_x, free_y = np.ones(width, dtype=bool), np.ones(height, dtype=bool)
    for poly in sample.polygons:
        x0, y0 = np.clip(np.floor(poly.min(axis=0)).astype(int), 0, [width - 1, height - 1])
        x1, y1 = np.clip(np.ceil(poly.max(axis=0)).astype(int), 0, [width - 1, height - 1])
        free_x[x0 : x1 + 1] = False
        free_y[y0 : y1 + 1] = False
    xs, ys = np.flatnonzero(free_x), np.flatnonzero(free_y)
    cared = [p for p, skip in zip(sample.polygons, sample.ignore, strict=False) if not skip]
    if len(xs) < 2 or len(ys) < 2 or not cared:
        return 0, 0, width - 1, height - 1
    for _ in range(tries):
        x0, x1 = np.sort(rng.choice(xs, 2))
        y0, y1 = np.sort(rng.choice(ys, 2))
        if x1 - x0 < min_side * width or y1 - y0 < min_side * height:
            continue
        if max_size is not None and (x1 - x0 >= max_size[0] or y1 - y0 >= max_size[1]):
            continue
        if any(p[:, 0].min() >= x0 and p[:, 0].max() <= x1 and p[:, 1].min() >= y0 and p[:, 1].max() <= y1
               for p in cared):
            return int(x0), int(y0), int(x1), int(y1)
    return 0, 0, width - 1, height - 1


def _clipped(poly: np.ndarray, window: Polygon) -> np.ndarray | None:
    """The part of ``poly`` inside ``window`` (N x 2), or None when no area is left (or it falls apart)."""
    shape = Polygon(poly)
    if not shape.is_valid:
        shape = shape.buffer(0)
    if not shape.intersects(window):
        return None
    part = shape.intersection(window)
    if part.geom_type != "Polygon" or part.area <= 0:
        return None
    return np.asarray(part.exterior.coords[:-1], dtype=np.float64)


def clip_to_image(sample: DetSample) -> DetSample:
    """Polygons that cross the image's edge (a label drawn up to x = width, text cut off by the photo's border)
    clipped to the image, keeping their flags, as PaddleOCR's labels are; polygons wholly outside dropped."""
    height, width = sample.image.shape[:2]
    frame = box(0, 0, width - 1, height - 1)
    polys: list[np.ndarray] = []
    flags: list[bool] = []
    for poly, skip in zip(sample.polygons, sample.ignore, strict=False):
        inside = bool((poly >= 0).all() and (poly[:, 0] <= width - 1).all() and (poly[:, 1] <= height - 1).all())
        part = poly if inside else _clipped(poly, frame)
        if part is not None:
            polys.append(part)
            flags.append(skip)
    return replace(sample, polygons=tuple(polys), ignore=tuple(flags))


def random_crop(
    sample: DetSample,
    rng: np.random.Generator,
    size: tuple[int, int] = (640, 640),
    min_side: float = 0.1,
    tries: int = 50,
    keep_scale: bool = False,
) -> DetSample:
    """Crop a window whose edges avoid text, resize it into ``size`` = (width, height) keeping its ratio and
    zero-pad right/bottom. Polygons inside the window are kept, those it cuts are clipped and ignored, the rest
    dropped. ``keep_scale``: windows fit in ``size`` and are only padded, not resized (a window that fits is
    found within ``tries``, else the whole image is resized as usual), so text keeps the size it has."""
    x0, y0, x1, y1 = _crop_window(sample, rng, min_side, tries, size if keep_scale else None)
    window = box(x0, y0, x1, y1)
    polys: list[np.ndarray] = []
    flags: list[bool] = []
    for poly, skip in zip(sample.polygons, sample.ignore, strict=False):
        shape = Polygon(poly)
        if window.covers(shape if shape.is_valid else shape.buffer(0)):
            polys.append(poly)
            flags.append(skip)
        elif (part := _clipped(poly, window)) is not None:
            polys.append(part)
            flags.append(True)
    crop = sample.image[y0 : y1 + 1, x0 : x1 + 1]
    scale = min(size[0] / crop.shape[1], size[1] / crop.shape[0])
    if keep_scale and scale >= 1:
        scale = 1.0
    cropped = DetSample(crop, tuple(p - [x0, y0] for p in polys), tuple(flags))
    resized = rescale(cropped, scale)
    canvas = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    h, w = resized.image.shape[:2]
    h, w = min(h, size[1]), min(w, size[0])
    canvas[:h, :w] = resized.image[:h, :w]
    return replace(resized, image=canvas)


def color_jitter(image: np.ndarray, rng: np.random.Generator, strength: float = 0.3) -> np.ndarray:
    """Random brightness, contrast and saturation, each factor in [1 - strength, 1 + strength]."""
    b, c, s = rng.uniform(1 - strength, 1 + strength, size=3)
    out = image.astype(np.float32) * b
    out = (out - out.mean()) * c + out.mean()
    gray = out.mean(axis=2, keepdims=True)
    out = (out - gray) * s + gray
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def copy_paste(
    sample: DetSample, donor: DetSample, rng: np.random.Generator, max_instances: int = 3, tries: int = 20
) -> DetSample:
    """Paste up to ``max_instances`` cared-for text instances of ``donor`` (pixels inside their polygons) into
    ``sample`` at random places where they overlap no existing or pasted polygon (2 px margin)."""
    image = sample.image.copy()
    height, width = image.shape[:2]
    polys, flags = list(sample.polygons), list(sample.ignore)
    occupied = [Polygon(p).buffer(2) for p in polys]
    candidates = [p for p, skip in zip(donor.polygons, donor.ignore, strict=False) if not skip]
    order = rng.permutation(len(candidates))[:max_instances]
    for index in order:
        poly = candidates[int(index)]
        x0, y0 = np.floor(poly.min(axis=0)).astype(int)
        x1, y1 = np.ceil(poly.max(axis=0)).astype(int)
        dh, dw = donor.image.shape[:2]
        if x0 < 0 or y0 < 0 or x1 >= dw or y1 >= dh or x1 - x0 + 1 > width or y1 - y0 + 1 > height:
            continue
        patch = donor.image[y0 : y1 + 1, x0 : x1 + 1]
        local = poly - [x0, y0]
        mask = np.zeros(patch.shape[:2], dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(local).astype(np.int32)], 1)
        for _ in range(tries):
            ox = int(rng.integers(0, width - patch.shape[1] + 1))
            oy = int(rng.integers(0, height - patch.shape[0] + 1))
            placed = local + [ox, oy]
            shape = Polygon(placed).buffer(2)
            if any(shape.intersects(other) for other in occupied):
                continue
            region = image[oy : oy + patch.shape[0], ox : ox + patch.shape[1]]
            region[mask.astype(bool)] = patch[mask.astype(bool)]
            polys.append(placed)
            flags.append(False)
            occupied.append(shape)
            break
    return DetSample(image, tuple(polys), tuple(flags))


@dataclass(frozen=True)
class DetAugment:
    """The detection training chain: polygons clipped to the image, CopyPaste, flip, rotate, scale, crop to
    ``size``, colour jitter.

    Probabilities/ranges follow PP-OCR's recipe (flip 0.5, rotate +-10 degrees, scale 0.5-3) with CopyPaste
    and colour jitter added; ``size`` is (width, height) of the training input.
    """

    size: tuple[int, int] = (640, 640)
    flip: float = 0.5
    max_angle: float = 10.0
    scale: tuple[float, float] = (0.5, 3.0)
    color: float = 0.3
    copy_paste: float = 0.0
    keep_scale: bool = False

    def __call__(
        self, sample: DetSample, rng: np.random.Generator, donor: DetSample | None = None
    ) -> DetSample:
        sample = clip_to_image(sample)
        if donor is not None and rng.random() < self.copy_paste:
            sample = copy_paste(sample, clip_to_image(donor), rng)
        if rng.random() < self.flip:
            sample = hflip(sample)
        if self.max_angle > 0:
            sample = rotate(sample, float(rng.uniform(-self.max_angle, self.max_angle)))
        sample = rescale(sample, float(rng.uniform(*self.scale)))
        sample = random_crop(sample, rng, self.size, keep_scale=self.keep_scale)
        if self.color > 0:
            sample = replace(sample, image=color_jitter(sample.image, rng, self.color))
        return sample


# --- classification ------------------------------------------------------------------------------


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
    return image if decoded is None else decoded


def bda(image: np.ndarray, rng: np.random.Generator, prob: float = 0.4) -> np.ndarray:
    """Base data augmentation: each of blur, noise, contrast/brightness and JPEG re-encoding with ``prob``."""
    out = image
    if rng.random() < prob:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.3, 1.5)))
    if rng.random() < prob:
        noise = rng.normal(0, float(rng.uniform(2, 12)), size=out.shape)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < prob:
        alpha, beta = rng.uniform(0.6, 1.4), rng.uniform(-30, 30)
        out = np.clip(out.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)
    if rng.random() < prob:
        out = _jpeg(out, int(rng.integers(30, 91)))
    return out


def _shear_x(image: np.ndarray, m: float) -> np.ndarray:
    h, w = image.shape[:2]
    shear = 0.3 * m
    matrix = np.array([[1, shear, -shear * (h - 1) / 2], [0, 1, 0]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _small_rotate(image: np.ndarray, m: float) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 10 * m, 1.0)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _translate_x(image: np.ndarray, m: float) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = np.array([[1, 0, 0.1 * m * w], [0, 1, 0]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)


def _autocontrast(image: np.ndarray, m: float) -> np.ndarray:
    lo, hi = image.min(axis=(0, 1)), image.max(axis=(0, 1))
    scale = 255.0 / np.maximum(hi.astype(np.float32) - lo, 1)
    return np.clip((image.astype(np.float32) - lo) * scale, 0, 255).astype(np.uint8)


def _equalize(image: np.ndarray, m: float) -> np.ndarray:
    return np.stack([cv2.equalizeHist(np.ascontiguousarray(image[:, :, c])) for c in range(3)], axis=2)


def _posterize(image: np.ndarray, m: float) -> np.ndarray:
    bits = 8 - int(round(4 * abs(m)))
    return (image >> (8 - bits) << (8 - bits)).astype(np.uint8)


def _solarize(image: np.ndarray, m: float) -> np.ndarray:
    threshold = int(255 - 128 * abs(m))
    return np.where(image >= threshold, 255 - image, image).astype(np.uint8)


def _sharpness(image: np.ndarray, m: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (0, 0), 1.0)
    return cv2.addWeighted(image, 1 + m, blurred, -m, 0)


def _invert(image: np.ndarray, m: float) -> np.ndarray:
    return (255 - image).astype(np.uint8)


_RAND_OPS: tuple[Callable[[np.ndarray, float], np.ndarray], ...] = (
    _shear_x, _small_rotate, _translate_x, _autocontrast, _equalize, _posterize, _solarize, _sharpness, _invert,
)


def rand_augment(image: np.ndarray, rng: np.random.Generator, num_ops: int = 2, magnitude: float = 0.5,
                 prob: float = 0.5) -> np.ndarray:
    """RandAugment-style: ``num_ops`` ops drawn uniformly, each applied with ``prob`` at a signed magnitude
    of up to ``magnitude`` (0..1). Geometric ops are mild (shear <= 0.3, rotation <= 10 degrees)."""
    out = image
    for index in rng.integers(0, len(_RAND_OPS), size=num_ops):
        m = float(rng.uniform(-magnitude, magnitude))
        if rng.random() < prob:
            out = _RAND_OPS[int(index)](out, m)
    return out


@dataclass(frozen=True)
class ClsAugment:
    """Classifier training chain: RandAugment-style ops then BDA.

    With ``height`` > 0 the crop is first resized as inference resizes it (``resize_line`` to ``height``, width
    capped at ``max_width``), so blur, noise, JPEG and sharpening act in the net's input pixels whatever the
    crop's size (a 15 px line is enlarged about 3x: a blur on the raw crop would be 3x wider at the input).
    """

    num_ops: int = 2
    magnitude: float = 0.5
    bda_prob: float = 0.4
    height: int = 0  # 0: augment the crop at its own size
    max_width: int = 0

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.height > 0:
            image = resize_line(image, self.height, self.max_width)
        return bda(rand_augment(image, rng, self.num_ops, self.magnitude), rng, self.bda_prob)
