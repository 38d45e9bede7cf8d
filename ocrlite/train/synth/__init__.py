"""Synthetic text-line images for recognition training (our own Pillow renderer).

Three kinds of samples: document lines (forms, letters, invoices: mixed case, spaces, dates,
amounts, phone numbers, codes, punctuation, words from ``/usr/share/dict/american-english``; a share
``MARKED_SHARE`` around a sign documents print beyond ASCII punctuation: yen, degrees, plus-minus, times,
trademarks, sections, bullets, dashes, typographic quotes, ellipses, comparisons),
scene-text-like single words as photos' word crops show them (dulled colours, textured backgrounds,
wide letter spacing, parts of neighbouring lines and signs, tilt and perspective, defocus and motion
blur, haze, uneven light) and, with ``lang="en+zh"``, Chinese lines drawn from the charset so the CJK reading is kept.
Every sample is drawn from ``np.random.default_rng([seed, index])``: a set is deterministic and
any sample can be re-made alone. Text is always a string of the recognizer's charset; a font is
used for a text only when it has a glyph for every character (checked against its .notdef glyph).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ...charset import Charset
from ...errors import ConfigError
from .fonts import FONT_ROOT, FontBank
from .render import SCENE_SHARE, ZH_SHARE, Synthesizer, degrade, tilt_in_box
from .text import LANGS, WORDS_FILE, TextSource, load_words

__all__ = ["FontBank", "Synthesizer", "TextSource", "write_synth_set", "load_words", "tilt_in_box", "degrade",
           "LANGS", "FONT_ROOT", "WORDS_FILE", "SCENE_SHARE", "ZH_SHARE"]


def write_synth_set(
    out_dir: Path,
    count: int,
    charset: Charset,
    lang: str = "en",
    seed: int = 0,
    height: int = 32,
    start: int = 0,
    progress: Callable[[int], None] | None = None,
    fonts: Path = FONT_ROOT,
    words: Path = WORDS_FILE,
    scene_share: float = SCENE_SHARE,
    zh_share: float = ZH_SHARE,
) -> Path:
    """Write ``count`` PNG crops under ``out_dir/images`` and ``out_dir/labels.txt``; return the label file.

    Samples ``start .. start+count-1`` of ``seed`` are written, so disjoint index ranges of one seed
    give disjoint sets (e.g. a training set and a validation set). A ``labels.txt`` already in ``out_dir`` is
    removed before the first image is written and the new one written whole at the end, so a run stopped on
    the way leaves no label file rather than one that names images it did not write.
    """
    from ...io.atomic import atomic_write_text, write_image

    if count < 1:
        raise ConfigError(f"synth count must be at least 1, got {count}")
    synth = Synthesizer(charset, lang, height, FontBank(fonts), load_words(words), scene_share, zh_share)
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    label_file = out_dir / "labels.txt"
    label_file.unlink(missing_ok=True)
    lines = []
    for k in range(start, start + count):
        image, text = synth.sample(seed, k)
        name = f"images/{k:07d}.png"
        write_image(out_dir / name, image)
        lines.append(f"{name}\t{text}\n")
        if progress is not None:
            progress(1)
    atomic_write_text(label_file, "".join(lines))
    return label_file
