"""A crop far wider than any text line (a 1 x 10000 px image): capped width, own batch, per-crop CLI errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from ocrlite import OCR, predictors
from ocrlite.backends import Runner
from ocrlite.cli import main
from ocrlite.io.images import read_image
from ocrlite.postprocess import CTCDecoded
from ocrlite.predictors import TextRecognizer, _ratio_batches
from ocrlite.preprocess import MAX_LINE_RATIO, line_batch, rec_batch_width

SAMPLE = Path(__file__).resolve().parent / "images" / "sample.png"


def _lines() -> list[np.ndarray]:
    """Two text lines of the sample page: "OCRLITE 2026" and "Invoice No. 48213"."""
    page = read_image(SAMPLE)
    return [page[30:62, 40:285], page[98:130, 40:350]]


def _wide() -> np.ndarray:
    return np.full((1, 10000, 3), 200, dtype=np.uint8)


@pytest.fixture(scope="module")
def recognizer() -> TextRecognizer:
    return TextRecognizer.from_config()


def test_batch_width_is_capped_at_the_widest_line_ratio() -> None:
    assert rec_batch_width([_wide()], 32, 320) == 32 * MAX_LINE_RATIO  # not 320000
    assert rec_batch_width([_wide()], 48, 320) == 48 * MAX_LINE_RATIO
    line = np.zeros((10, 644, 3), np.uint8)  # the widest line the pipeline cuts from FUNSD / ICDAR 2015 pages
    assert rec_batch_width([line], 32, 320) == 2060  # int(32 * 64.4): not capped


def test_wide_crops_are_batched_after_and_apart_from_the_lines() -> None:
    rng = np.random.default_rng(0)
    crops = [np.zeros((int(h), int(w), 3), np.uint8) for h, w in rng.integers(8, 700, (20, 2))]
    ratios = [c.shape[1] / c.shape[0] for c in crops]
    order = sorted(range(len(crops)), key=ratios.__getitem__)
    as_before = [order[i : i + 6] for i in range(0, len(order), 6)]  # the batching of pages before the cap
    assert list(_ratio_batches(crops, 6)) == as_before
    wide = [_wide(), np.zeros((2, 401, 3), np.uint8)]  # ratios 10000 and 200.5: both past the cap
    assert list(_ratio_batches(crops + wide, 6)) == [*as_before, [21, 20]]


def test_a_wide_crop_changes_neither_its_batch_mates_nor_the_memory(
        recognizer: TextRecognizer, monkeypatch: pytest.MonkeyPatch) -> None:
    alone = recognizer(_lines())
    assert [d.text for d in alone] == ["OCRLITE 2026", "Invoice No.48213"]
    widths: list[int] = []

    def recording(crops: list[np.ndarray], height: int, width: int, *norm: Any) -> np.ndarray:
        widths.append(width)
        return line_batch(crops, height, width, *norm)

    monkeypatch.setattr(predictors, "line_batch", recording)
    assert recognizer([*_lines(), _wide()])[:2] == alone  # text, score and step widths bit for bit
    height = recognizer.pre.height
    assert widths == [rec_batch_width(_lines(), height, recognizer.pre.width), height * MAX_LINE_RATIO]


def test_ocr_recognize_reads_a_page_of_lines_and_a_wide_crop() -> None:
    ocr = OCR(stages=("rec",))
    assert [text for text, _ in ocr.recognize([*_lines(), _wide()])][:2] == ["OCRLITE 2026", "Invoice No.48213"]


def test_recognize_command_reports_a_failing_crop_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, crop in zip(("a.png", "b.png", "c_wide.png"), [*_lines(), _wide()]):
        cv2.imwrite(str(tmp_path / name), crop)
    read_batch = TextRecognizer._read_batch

    def out_of_memory(self: TextRecognizer, runner: Runner, group: list[np.ndarray]) -> list[CTCDecoded]:
        if any(crop.shape[1] / crop.shape[0] > MAX_LINE_RATIO for crop in group):
            raise MemoryError("cannot allocate the batch")
        return read_batch(self, runner, group)

    monkeypatch.setattr(TextRecognizer, "_read_batch", out_of_memory)
    result = CliRunner().invoke(main, ["recognize", "--no-cls", str(tmp_path)])
    assert result.exit_code == 1, result.exception
    assert [line.split("\t")[:2] for line in result.stdout.splitlines()] == [
        [str(tmp_path / "a.png"), "OCRLITE 2026"], [str(tmp_path / "b.png"), "Invoice No.48213"]]
    assert result.stderr.splitlines() == [
        f"ocrlite: error: {tmp_path / 'c_wide.png'}: unexpected MemoryError: cannot allocate the batch"]
