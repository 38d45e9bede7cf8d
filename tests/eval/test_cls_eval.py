"""0/180 direction scoring: the crop pairs and the accuracy that ``ocrlite eval cls`` and cls training share, and
``eval cls`` on pipelines with and without a cls stage."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from ocrlite.cli import main
from ocrlite.eval.metrics import direction_accuracy, upright_and_turned
from ocrlite.io.images import read_image

SAMPLE = Path(__file__).resolve().parents[1] / "images" / "sample.png"


def test_upright_and_turned_pairs_are_180_degree_rotations() -> None:
    page = read_image(SAMPLE)
    images, angles = upright_and_turned([page, page[30:62, 40:285]])
    assert angles == [0, 180, 0, 180] and images[0] is page
    assert np.array_equal(images[1], cv2.rotate(page, cv2.ROTATE_180)) and images[1].flags.c_contiguous
    assert np.array_equal(images[3], cv2.rotate(page[30:62, 40:285], cv2.ROTATE_180))


def test_direction_accuracy() -> None:
    assert direction_accuracy([0, 180, 180, 0], [0, 180, 0, 180]) == 0.5
    assert direction_accuracy([], []) == 0.0
    with pytest.raises(ValueError, match="1 prediction lists for 2 ground-truth lists"):
        direction_accuracy([0], [0, 180])


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two line crops of the sample page in a PaddleOCR label-file folder."""
    root = tmp_path_factory.mktemp("crops")
    page = cv2.imread(str(SAMPLE))
    cv2.imwrite(str(root / "a.png"), page[30:62, 40:285])
    cv2.imwrite(str(root / "b.png"), page[95:135, 40:350])
    (root / "labels.txt").write_text("a.png\tOCRLITE 2026\nb.png\tInvoice No. 48213\n")
    return root


def _eval(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--threads", "1", "eval", "cls", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_eval_cls_scores_the_cls_stage_whether_or_not_use_cls_is_on(crops: Path) -> None:
    rows = {}
    for use_cls in ("true", "false"):
        code, out, err = _eval("--data", str(crops), "--format", "json", "--set", f"pipeline.use_cls={use_cls}")
        assert (code, err) == (0, "")
        rows[use_cls] = json.loads(out)
    assert rows["true"]["n"] == rows["false"]["n"] == 4  # each crop upright and turned
    assert rows["true"]["accuracy"] == rows["false"]["accuracy"] == 100.0


def test_eval_cls_reads_a_paddleocr_direction_label_file(crops: Path, tmp_path: Path) -> None:
    """PaddleOCR's cls label file (``path<TAB>0`` or ``180``) labels an upside-down crop 180. It was scored as if
    every crop were upright: the shipped classifier, right on every crop, read 50 %. Its 180 crops are turned
    upright first, so the score is the one of the same crops stored upright."""
    cv2.imwrite(str(tmp_path / "a.png"), cv2.imread(str(crops / "a.png")))
    cv2.imwrite(str(tmp_path / "b.png"), cv2.rotate(cv2.imread(str(crops / "b.png")), cv2.ROTATE_180))
    (tmp_path / "labels.txt").write_text("a.png\t0\r\nb.png\t180\r\n", encoding="utf-8")
    code, out, err = _eval("--data", str(tmp_path), "--format", "json")
    assert (code, err) == (0, "")
    row = json.loads(out)
    assert (row["n"], row["accuracy"]) == (4, 100.0)


def test_eval_cls_without_a_cls_stage_is_one_line_exit_2(crops: Path, tmp_path: Path) -> None:
    config = tmp_path / "no_cls.yaml"
    config.write_text("det: det_ppocrv3.yaml\nrec: rec_ppocrv2.yaml\n")
    code, out, err = _eval("--data", str(crops), "--config", str(config))
    assert (code, out) == (2, "")
    assert err == "ocrlite: error: no_cls.yaml cannot be evaluated on this task: it has no direction classifier " \
                  "(cls stage)\n"
