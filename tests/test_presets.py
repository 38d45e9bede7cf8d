"""Model presets (API, CLI, ``ocrlite models``) and word boxes from CTC time steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ocrlite.api import OCR
from ocrlite.cli import main
from ocrlite.errors import ConfigError
from ocrlite.postprocess import CTCDecoded, ctc_word_boxes, line_words
from ocrlite.presets import PRESETS, get_preset
from ocrlite.results import TextLine
from ocrlite.stages import load_pipeline_config

# GT phrases (substrings of entity texts) of FUNSD training form 0000971160, multi-word, with their spaces.
FUNSD_PAGE = "0000971160"
FUNSD_PHRASES = [
    "R&D QUALITY IMPROVEMENT",
    "Discontinue coal retention analyses on licensee submitted",
    "Coal Retention testing is not",
    "performed by most licensees",
    "Have you contacted your",
    "comments to the Quality Council",
]




# --- word boxes ---------------------------------------------------------------------------------

QUAD = np.array([[0, 0], [100, 0], [100, 10], [0, 10]], dtype=np.float64)


def test_word_boxes_follow_the_ctc_steps() -> None:
    # Centres at 0.15, 0.35, 0.55, 0.75, 0.95 of the crop; spacing 0.2, so the ends extend by 0.1.
    decoded = CTCDecoded("ab cd", 0.8, (1, 3, 5, 7, 9), (0.9, 0.7, 0.99, 0.6, 0.8), step_width=0.1)
    words = ctc_word_boxes(decoded, QUAD)
    assert [w.text for w in words] == ["ab", "cd"]
    np.testing.assert_allclose(words[0].points, [[5, 0], [45, 0], [45, 10], [5, 10]])
    np.testing.assert_allclose(words[1].points, [[65, 0], [100, 0], [100, 10], [65, 10]])  # clipped at the end
    assert words[0].score == pytest.approx(0.8) and words[1].score == pytest.approx(0.7)


def test_word_boxes_of_a_crop_read_upside_down_run_from_the_right() -> None:
    decoded = CTCDecoded("ab cd", 0.8, (1, 3, 5, 7, 9), (0.9,) * 5, step_width=0.1)
    words = ctc_word_boxes(decoded, QUAD, angle=180)
    np.testing.assert_allclose(words[0].points, [[55, 0], [95, 0], [95, 10], [55, 10]])  # clockwise from top-left
    np.testing.assert_allclose(words[1].points[[0, 1], 0], [0, 35])


@pytest.mark.parametrize(("angle", "first", "second"), [(0, (5, 45), (65, 100)), (180, (55, 95), (0, 35))])
def test_word_boxes_of_a_vertical_line_run_along_it(angle: int, first: tuple, second: tuple) -> None:
    """``crop_quad`` turns a tall crop counter-clockwise: its text runs down the page, or up when the crop was
    read turned 180 degrees; each word spans the line's width and its part of the line's height."""
    tall = np.array([[0, 0], [10, 0], [10, 100], [0, 100]], dtype=np.float64)
    decoded = CTCDecoded("ab cd", 0.8, (1, 3, 5, 7, 9), (0.9,) * 5, step_width=0.1)
    words = ctc_word_boxes(decoded, tall, angle)
    for word, (top, bottom) in zip(words, (first, second)):
        np.testing.assert_allclose(word.points, [[0, top], [10, top], [10, bottom], [0, bottom]])
    fallback = line_words(TextLine(tall, "ab cd", 0.9, 0.9, angle))  # no CTC steps: equal shares
    np.testing.assert_allclose(fallback[0].points[:, 1], [0, 0, 40, 40] if angle == 0 else [60, 60, 100, 100])


def test_word_boxes_on_a_slanted_line_interpolate_both_edges() -> None:
    quad = np.array([[0, 0], [100, 20], [100, 30], [0, 10]], dtype=np.float64)
    (word,) = ctc_word_boxes(CTCDecoded("word", 0.9, (0, 1, 2, 3), step_width=0.25), quad)
    np.testing.assert_allclose(word.points, quad)  # the whole line: centres 1/8..7/8, ends extend by 1/8


def test_no_word_boxes_without_geometry_or_text() -> None:
    assert ctc_word_boxes(CTCDecoded("ab", 0.9, (1, 2)), QUAD) == ()  # step_width unknown
    assert ctc_word_boxes(CTCDecoded("  ", 0.9, (1, 2), step_width=0.1), QUAD) == ()


# --- presets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ppocr-v2", "ppocr-v3", "ppocr-v4", "en-ppocr-v4"])
def test_preset_configs_load(name: str) -> None:
    cfg = load_pipeline_config(get_preset(name).config)
    assert {"det", "rec"} <= set(cfg)
    assert cfg["rec"]["preprocess"]["height"] == (32 if name == "ppocr-v2" else 48)


def test_model_and_config_are_exclusive() -> None:
    with pytest.raises(ConfigError, match="either config or model"):
        OCR("ocr_ppocr_v2.yaml", model="ppocr-v3")
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        OCR(model="nope")


def test_models_command_lists_every_preset() -> None:
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.stdout.splitlines()[1:] if not line.startswith("*")]  # the footnote
    assert names == list(PRESETS)
    assert "ppocr-v2 (default)" in result.stdout and "MB" in result.stdout


def test_en_ppocr_v4_reads_a_funsd_form_with_spaces(shared_data: Path, preset_weights: Path) -> None:
    page = shared_data / "funsd" / "images" / f"{FUNSD_PAGE}.png"
    result = CliRunner().invoke(main, ["ocr", "--model", "en-ppocr-v4", str(page)])
    assert result.exit_code == 0, result.stderr
    lines = json.loads(result.stdout)["lines"]
    text = " ".join(line["text"] for line in lines).casefold()
    found = [phrase for phrase in FUNSD_PHRASES if phrase.casefold() in text]
    assert len(found) >= 4, (found, text)
    # word geometry: every word of a line lies inside the line's x range, left to right
    words = [w for line in lines for w in line.get("words", [])]
    assert len(words) >= 80
    for line in lines:
        xs = [w["points"][0][0] for w in line.get("words", [])]
        assert xs == sorted(xs)
        assert [w["text"] for w in line.get("words", [])] == line["text"].split()
