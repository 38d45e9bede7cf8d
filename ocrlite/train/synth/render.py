"""Drawing a synthetic line: a text in a font on a background, then the look of a scan or a photo."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw

from ...charset import Charset
from ...errors import ConfigError
from ...extras import debian
from .fonts import CJK_FONT_NAMES, FontBank
from .text import LANGS, TextSource, load_words, pick

__all__ = ["ZH_SHARE", "SCENE_SHARE", "Synthesizer", "degrade", "tilt_in_box"]

ZH_SHARE = 0.15  # share of Chinese lines in ``en+zh``
LOW_RES_SHARE = 0.3  # share of scene words returned at 1/3 to 2/3 of the model's height
SCENE_SHARE = 0.45  # share of scene-style words (colours, larger distortions) among the English samples
TRACKING_SHARE = 0.15  # share of one-word scene samples drawn with wide letter spacing
TILT_SHARE = 0.3  # share of scene words tilted by up to 20 degrees (10 for short words) inside their box


def _colour(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))  # type: ignore[return-value]


def _scene_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A colour as photos show them: most are dulled towards their grey (signs, walls, print under
    daylight), some stay saturated."""
    colour = np.array(_colour(rng, 0, 256), np.float32)
    if rng.random() < 0.6:
        grey = colour.mean()
        colour = grey + (colour - grey) * rng.uniform(0.0, 0.6)
    return tuple(int(v) for v in colour)  # type: ignore[return-value]


def _background(rng: np.random.Generator, h: int, w: int, scene: bool) -> np.ndarray:
    """RGB uint8 background: paper (near white, textured) or, for scene text, colours and gradients."""
    if not scene:
        base = np.full((h, w, 3), int(rng.integers(200, 256)), np.float32)
        base += rng.normal(0, rng.uniform(0, 8), (h, w, 1)).astype(np.float32)
        if rng.random() < 0.3:  # uneven lighting
            base *= np.linspace(rng.uniform(0.8, 1), rng.uniform(0.8, 1), w, dtype=np.float32)[None, :, None]
        return np.clip(base, 0, 255).astype(np.uint8)
    a = np.array(_scene_colour(rng), np.float32)
    b = np.array(_scene_colour(rng), np.float32) if rng.random() < 0.5 else a
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    base = a * (1 - t) + b * t + np.zeros((h, 1, 1), np.float32)
    if rng.random() < 0.5:  # coarse texture
        small = rng.normal(0, rng.uniform(5, 40), (max(1, h // 8), max(1, w // 8), 3)).astype(np.float32)
        base += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(base, 0, 255).astype(np.uint8)


def _ink_for(rng: np.random.Generator, background: np.ndarray, scene: bool) -> tuple[int, int, int]:
    """A text colour that contrasts with the background's mean luminance."""
    if not scene:
        return _colour(rng, 0, 70) if rng.random() < 0.8 else (0, 0, int(rng.integers(80, 160)))
    lum = float(background.mean())
    for _ in range(10):
        ink = _scene_colour(rng)
        if abs(sum(ink) / 3 - lum) > 70:
            return ink
    return (0, 0, 0) if lum > 127 else (255, 255, 255)


class Synthesizer:
    """Renders one labelled sample at a time from an index (see the module docstring)."""

    def __init__(
        self, charset: Charset, lang: str = "en", height: int = 32, fonts: FontBank | None = None,
        words: tuple[str, ...] | None = None, scene_share: float = SCENE_SHARE, zh_share: float = ZH_SHARE,
    ) -> None:
        if lang not in LANGS:
            raise ConfigError(f"unknown synth language {lang!r}; choose one of: {', '.join(LANGS)}")
        if height < 8:
            raise ConfigError(f"synth height must be at least 8 pixels, got {height}")
        for name, share in (("scene", scene_share), ("Chinese", zh_share)):
            if not 0 <= share <= 1:
                raise ConfigError(f"synth {name} share must be between 0 and 1, got {share}")
        self.charset, self.lang, self.height, self.scene_share = charset, lang, height, scene_share
        self.zh_share = zh_share
        self.fonts = fonts or FontBank()
        allowed = set(charset.chars)
        cjk = tuple(c for c in charset.chars if "\u4e00" <= c <= "\u9fff")
        self.text = TextSource(words=words or load_words(), cjk_chars=cjk)
        self._allowed = allowed
        if lang == "en+zh" and not self.fonts.cjk:
            raise ConfigError(f"no CJK font ({', '.join(CJK_FONT_NAMES)}) under {self.fonts.root}"
                              + debian("fonts-wqy-microhei"))
        if lang == "en+zh" and not any(self.fonts.covers(f, ch) for ch in cjk for f in self.fonts.cjk):
            raise ConfigError("synth language en+zh needs Chinese characters in the charset (and a font that "
                              "draws them); it has none: use en")
        if not any(self.fonts.covers(f, ch) for ch in allowed - {" "} for f in self.fonts.latin):
            raise ConfigError(f"no font under {self.fonts.root} draws a character of the charset")
        self._drawn: dict[Path, tuple[str, ...]] = {}

    def sample(self, seed: int, index: int) -> tuple[np.ndarray, str]:
        """(BGR uint8 image, its label) for sample ``index`` of ``seed``: the image is ``self.height`` high,
        or lower for low-resolution scene words (``LOW_RES_SHARE``), which the recognizer upscales."""
        return self.draw(np.random.default_rng([seed, index]))

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """A sample whose every random choice comes from ``rng``."""
        zh = self.lang == "en+zh" and rng.random() < self.zh_share
        scene = not zh and rng.random() < self.scene_share
        maker: Callable[[np.random.Generator], str]
        if zh:
            maker, fonts = self.text.chinese_line, self.fonts.cjk
        else:
            maker, fonts = (self.text.scene_word if scene else self.text.document_line), self.fonts.latin
        for _ in range(20):
            text = "".join(ch for ch in maker(rng) if ch in self._allowed).strip()
            text = " ".join(text.split())
            font = fonts[int(rng.integers(len(fonts)))]
            if text and self.fonts.covers(font, text):
                return self._render(rng, text, font, scene), text
        # a small charset (digits, a few letters) seldom keeps any of a drawn text: its own characters then
        usable = [font for font in fonts if self._drawable(font)]
        font = usable[int(rng.integers(len(usable)))]
        text = "".join(pick(rng, self._drawable(font)) for _ in range(int(rng.integers(1, 11))))
        return self._render(rng, text, font, scene), text

    def _drawable(self, font: Path) -> tuple[str, ...]:
        """The charset's characters, space aside, that ``font`` draws (found once per font)."""
        if font not in self._drawn:
            self._drawn[font] = tuple(sorted(ch for ch in self._allowed if ch != " " and self.fonts.covers(font, ch)))
        return self._drawn[font]

    def _render(self, rng: np.random.Generator, text: str, font_path: Path, scene: bool) -> np.ndarray:
        size = int(rng.integers(16, 64)) if scene else int(rng.integers(12, 44))
        font = self.fonts.font(font_path, size)
        left, top, right, bottom = font.getbbox(text)
        ascent, descent = font.getmetrics()
        tracking = 0.0  # extra space between letters, as signs set them: still one word, no space in the label
        if scene and " " not in text and rng.random() < TRACKING_SHARE:
            tracking = size * rng.uniform(0.05, 0.3)
        text_w, line_h = max(1, right - left + tracking * (len(text) - 1)), ascent + descent
        stroke = int(rng.integers(1, 3)) if scene and rng.random() < 0.2 else 0
        pad_x = int(size * rng.uniform(0.02, 0.6))
        pad_top = int(line_h * rng.uniform(0.0, 0.3))
        pad_bottom = int(line_h * rng.uniform(0.0, 0.3))
        w = int(text_w + 2 * pad_x + 2 * stroke)
        h = int(line_h + pad_top + pad_bottom + 2 * stroke)
        canvas = _background(rng, h, w, scene)
        image = Image.fromarray(canvas)
        draw = ImageDraw.Draw(image)
        ink = _ink_for(rng, canvas, scene)
        outline = _colour(rng, 0, 256) if stroke else None
        origin = (pad_x - left + stroke, pad_top + stroke)
        if scene:
            self._clutter(rng, draw, font_path, size, origin, (w, h), text_w, line_h)
        x, y = origin
        for part in (text,) if not tracking else tuple(text):
            draw.text((x, y), part, font=font, fill=ink, stroke_width=stroke, stroke_fill=outline)
            x += font.getlength(part) + tracking
        out = np.asarray(image)[:, :, ::-1].copy()  # RGB -> BGR
        if scene and rng.random() < TILT_SHARE:
            h, w = out.shape[:2]
            out = tilt_in_box(out, rng.uniform(-20, 20) * (1.0 if w > 1.5 * h else 0.5))
        out = _geometry(rng, out, scene)
        if scene:
            out = _photo_effects(rng, out, size)
        out = degrade(rng, out, strength=1.0 if scene else 0.7)
        height = self.height
        if scene and rng.random() < LOW_RES_SHARE:  # a small, far-away word: the recognizer upscales it
            height = int(rng.integers(max(4, self.height // 3), max(5, self.height * 2 // 3)))
        new_w = max(1, round(out.shape[1] * height / out.shape[0]))
        return cv2.resize(out, (new_w, height), interpolation=cv2.INTER_AREA)

    def _clutter(self, rng: np.random.Generator, draw: ImageDraw.ImageDraw, font_path: Path, font_size: int,
                 origin: tuple[float, float], canvas: tuple[int, int], text_w: float, line_h: float) -> None:
        """What a photo's word crop catches around the word: parts of the lines above and below, the
        end of the word before it, the edge of a sign."""
        w, h = canvas
        x0, y0 = origin
        font = self.fonts.font(font_path, font_size)
        colour = _scene_colour(rng)
        if rng.random() < 0.3:  # a neighbouring line, mostly outside the crop
            other = self.text.scene_word(rng)
            above = rng.random() < 0.5
            shift = line_h * rng.uniform(0.95, 1.15)
            y = y0 - shift if above else y0 + shift
            x = x0 + int(rng.uniform(-0.5, 0.5) * text_w)
            if self.fonts.covers(font_path, other):
                draw.text((x, y), other, font=font, fill=colour)
        if rng.random() < 0.15:  # the end of the word to the left
            other = self.text.word(rng)
            other_w = font.getbbox(other)[2]
            draw.text((x0 - other_w - int(line_h * rng.uniform(0.25, 0.5)), y0), other, font=font, fill=colour)
        if rng.random() < 0.2:  # a sign's edge or a stripe
            y = int(rng.uniform(0, h))
            draw.line([(0, y), (w, y + int(rng.uniform(-0.3, 0.3) * h))], fill=_scene_colour(rng),
                      width=int(rng.integers(1, max(2, h // 6))))


def tilt_in_box(image: np.ndarray, angle: float) -> np.ndarray:
    """``image`` turned by ``angle`` degrees (counter-clockwise) inside its new upright bounding box, as a
    photo's axis-aligned word crop holds a tilted word: nothing is cut off, the corners repeat the border."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(w * cos + h * sin), int(w * sin + h * cos)
    matrix[0, 2] += (new_w - w) / 2
    matrix[1, 2] += (new_h - h) / 2
    return cv2.warpAffine(image, matrix, (new_w, new_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _photo_effects(rng: np.random.Generator, image: np.ndarray, font_size: int) -> np.ndarray:
    """A camera's faults, scaled to the text's size: defocus, motion blur, haze (low contrast) and
    uneven light."""
    out = image
    scale = font_size / 32
    if rng.random() < 0.3:
        sigma = rng.uniform(0.8, 2.2) * scale
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    if rng.random() < 0.15:
        length = max(3, int(rng.uniform(2, 7) * scale) | 1)
        line = np.zeros((length, length), np.float32)
        line[length // 2, :] = 1.0
        turn = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = cv2.warpAffine(line, turn, (length, length))
        kernel = (kernel / max(float(kernel.sum()), 1e-6)).astype(np.float32)
        out = cv2.filter2D(out, -1, kernel)
    if rng.random() < 0.25:
        keep = rng.uniform(0.45, 0.85)
        mean = out.reshape(-1, 3).mean(axis=0)
        out = (out.astype(np.float32) * keep + mean * (1 - keep)).astype(np.uint8)
    if rng.random() < 0.25:
        ramp = np.linspace(rng.uniform(0.5, 1.1), rng.uniform(0.5, 1.1), out.shape[1], dtype=np.float32)
        out = np.clip(out.astype(np.float32) * ramp[None, :, None], 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)


def _geometry(rng: np.random.Generator, image: np.ndarray, scene: bool) -> np.ndarray:
    """Slight rotation / shear / perspective (more for scene text), border replicated."""
    h, w = image.shape[:2]
    amount = 0.12 if scene else 0.03
    if rng.random() < (0.7 if scene else 0.3):
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
        jitter = rng.uniform(-amount, amount, (4, 2)) * np.array([w if not scene else h, h], dtype=np.float32)
        jitter[:, 0] = np.clip(jitter[:, 0], -0.5 * h, 0.5 * h)
        dst = (src + jitter).astype(np.float32)
        dst -= dst.min(axis=0)
        size = (int(np.ceil(dst[:, 0].max())) + 1, int(np.ceil(dst[:, 1].max())) + 1)
        matrix = cv2.getPerspectiveTransform(src, dst)
        image = cv2.warpPerspective(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return image


def degrade(rng: np.random.Generator, image: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Scan- and photo-like degradations of a BGR uint8 image: thin/bold ink, blur, low resolution,
    contrast, noise and JPEG, each applied with a probability scaled by ``strength``."""
    out = image
    h, w = out.shape[:2]
    if rng.random() < 0.25 * strength and h > 20:
        kernel = np.ones((2, 2), np.uint8)
        out = cv2.erode(out, kernel) if rng.random() < 0.5 else cv2.dilate(out, kernel)
    if rng.random() < 0.4 * strength:
        k = int(rng.choice([3, 5])) if h > 24 else 3
        out = cv2.GaussianBlur(out, (k, k), rng.uniform(0.3, 1.2))
    if rng.random() < 0.3 * strength:  # low resolution, then back
        f = rng.uniform(0.4, 0.8)
        small = cv2.resize(out, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.4 * strength:
        alpha, beta = rng.uniform(0.5, 1.2), rng.uniform(-40, 40)
        out = cv2.convertScaleAbs(out, alpha=alpha, beta=beta)
    if rng.random() < 0.4 * strength:
        noise = rng.normal(0, rng.uniform(2, 14), out.shape[:2] + (1,))
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < 0.3 * strength:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(20, 80))])
        if ok:
            out = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR))
    return np.ascontiguousarray(out)
