"""``ocrlite eval det|cls|rec|e2e`` on FUNSD: det, cls and rec score its line or word boxes directly, the crops cut
from its forms (before, these tasks refused FUNSD: its crops had to be exported first), also through a form split;
e2e scores each form's words as a bag of words (its rows carry the counts behind the percentages) and takes no
unit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ocrlite.cli import main
from ocrlite.eval.datasets import load_funsd, load_funsd_boxes
from ocrlite.eval.metrics import bow_tokens
from ocrlite.train.data import write_split_manifest

FORMS = ("0000971160", "0000989556")


@pytest.fixture(scope="module")
def funsd(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two FUNSD forms in a FUNSD-shaped folder."""
    root = tmp_path_factory.mktemp("funsd")
    for folder, suffix in (("images", ".png"), ("annotations", ".json")):
        (root / folder).mkdir()
        for form in FORMS:
            (root / folder / f"{form}{suffix}").symlink_to(shared_data / "funsd" / folder / f"{form}{suffix}")
    return root


def _eval(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(main, ["--threads", "1", "eval", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_det_scores_the_line_boxes_by_default_and_the_words_on_request(funsd: Path) -> None:
    """A line detector matches FUNSD's lines (an entity's words on one row), not its single words."""
    lines, = _eval("det", "--data", str(funsd))
    words, = _eval("det", "--data", str(funsd), "--unit", "words")
    assert lines["n"] == words["n"] == 2
    assert lines["hmean"] > 60 and lines["hmean"] > words["hmean"] + 20


def test_rec_reads_every_word_crop_of_the_forms(funsd: Path) -> None:
    """Every word box with an area (of the first form: --limit counts forms) is read once; the card's English
    CRNN reads these words better than the converted one, which runs them together and in capitals."""
    form = load_funsd_boxes(funsd)[0]
    words = sum(1 for box in form.words if box.box[0] < box.box[2] and box.box[1] < box.box[3])
    converted, english = _eval("rec", "--data", str(funsd), "--limit", "1", "--model", "ppocr-v2,ppocr-v2-en")
    assert converted["n"] == english["n"] == words
    assert english["accuracy_cs"] > converted["accuracy_cs"] + 30


def test_cls_scores_the_line_crops_upright_and_turned_through_a_form_split(funsd: Path, tmp_path: Path) -> None:
    forms = load_funsd_boxes(funsd)
    write_split_manifest(tmp_path, "one form", {"one": [forms[1].image]})
    whole, = _eval("cls", "--data", str(funsd))
    one, = _eval("cls", "--data", str(funsd), "--split", str(tmp_path / "split_one.json"))
    assert whole["n"] == 2 * sum(len(form.lines) for form in forms)
    assert one["n"] == 2 * len(forms[1].lines) and one["accuracy"] > 90


def test_e2e_rows_carry_the_word_counts_behind_their_percentages(funsd: Path) -> None:
    """The bag-of-words P/R/F1 came rounded to 0.01 % only; the counts they come from are kept beside them, for
    both cases, with the ICDAR rows' names (``matched``, ``n_pred``, ``n_gt``; ``_cs``)."""
    row, = _eval("e2e", "--data", str(funsd))
    words = [word for _, form_words in load_funsd(funsd) for word in form_words]
    for suffix, case_sensitive in (("", False), ("_cs", True)):
        matched, n_pred, n_gt = (row[f"{key}{suffix}"] for key in ("matched", "n_pred", "n_gt"))
        assert n_gt == sum(bow_tokens(words, case_sensitive).values()) and 0 < matched <= min(n_pred, n_gt)
        precision, recall = matched / n_pred, matched / n_gt
        assert row[f"bow_precision{suffix}"] == round(100 * precision, 2)
        assert row[f"bow_recall{suffix}"] == round(100 * recall, 2)
        assert row[f"bow_f1{suffix}"] == round(100 * 2 * precision * recall / (precision + recall), 2)
    assert row["matched_cs"] <= row["matched"] and row["n_gt_cs"] == row["n_gt"]


def test_a_unit_where_there_are_no_funsd_boxes_is_one_line(funsd: Path) -> None:
    result = CliRunner().invoke(main, ["eval", "e2e", "--data", str(funsd), "--unit", "words"])
    assert result.exit_code == 2 and result.stderr == (
        "ocrlite: error: a unit (words or lines) chooses the FUNSD boxes of det, cls and rec evaluations; e2e on "
        "funsd data has none\n")
