"""``ocrlite eval det``/``e2e`` on a PaddleOCR det label file (``path<TAB>[{transcription, points}]``), read by the
one reader the detector trainer uses too: the same images scored from their ICDAR 2015 ground truth and from a label
file built from it give the same rows, and the rows carry the counts behind P/R/H."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ocrlite.cli import main
from ocrlite.eval.datasets import load_icdar2015

IMAGES = 3  # the first ICDAR 2015 test images, natural order


def _label_file(icdar: Path, folder: Path) -> Path:
    """A det label file of the first ``IMAGES`` ICDAR 2015 images, their paths relative to the file's folder."""
    (folder / "images").symlink_to(icdar / "images")
    lines = []
    for image, regions in load_icdar2015(icdar)[:IMAGES]:
        boxes = [{"transcription": r.text, "points": r.points.tolist()} for r in regions]
        lines.append(f"images/{image.name}\t{json.dumps(boxes)}")
    path = folder / "det_labels.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _rows(task: str, *args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(main, ["--threads", "1", "eval", task, "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("task", ["det", "e2e"])
def test_a_det_label_file_scores_as_the_icdar_ground_truth_it_was_built_from(
        shared_data: Path, tmp_path: Path, task: str) -> None:
    icdar = shared_data / "icdar2015"
    [from_labels] = _rows(task, "--data", str(_label_file(icdar, tmp_path)))
    [from_icdar] = _rows(task, "--data", str(icdar), "--limit", str(IMAGES))
    assert from_labels["n"] == IMAGES and from_labels["recall"] > 0
    assert {k: v for k, v in from_labels.items() if k not in ("data", "s_per_item")} == \
        {k: v for k, v in from_icdar.items() if k not in ("data", "s_per_item")}


def test_a_det_label_file_is_refused_for_crop_tasks_and_a_bad_line_is_one_line(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("a.jpg\tnot json\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["eval", "det", "--data", str(labels)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"ocrlite: error: {labels}:1: expected 'image<TAB>[{{transcription, points}}]'")
    assert result.stderr.count("\n") == 1
    result = CliRunner().invoke(main, ["eval", "rec", "--data", str(labels)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"ocrlite: error: rec evaluation needs crops or funsd data; {labels} holds det_labels\n"


@pytest.mark.parametrize("task", ["det", "e2e"])
def test_det_and_e2e_rows_carry_the_counts_behind_their_percentages(shared_data: Path, task: str) -> None:
    """The JSON rows gave P/R/H rounded to 0.01 % only; the counts they come from are kept beside them."""
    icdar = shared_data / "icdar2015"
    [row] = _rows(task, "--data", str(icdar), "--limit", "2")
    cared = sum(not r.dont_care for _, regions in load_icdar2015(icdar)[:2] for r in regions)  # '###' left out
    assert row["n_gt"] == cared and row["matched"] > 0
    assert row["precision"] == round(100 * row["matched"] / row["n_pred"], 2)
    assert row["recall"] == round(100 * row["matched"] / cared, 2)
    assert [k for k in row if k in ("precision", "recall", "hmean")] == ["precision", "recall", "hmean"]
