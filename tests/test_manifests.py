"""A weights manifest's fields are checked when the weights are named: one line naming the file, exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ocrlite.cli import main
from ocrlite.files import find_weights

SAMPLE = Path(__file__).resolve().parent / "images" / "sample.png"


def _weights_with_manifest(folder: Path, **changes: object) -> Path:
    """A copy of the shipped detector weights whose manifest has ``changes``."""
    weights, manifest = find_weights("det_ppocrv3", None)
    copy = folder / "det_copy.safetensors"
    shutil.copyfile(weights, copy)
    data = {**json.loads(manifest.read_text(encoding="utf-8")), **changes}
    (folder / "det_copy.json").write_text(json.dumps(data), encoding="utf-8")
    return copy


@pytest.mark.parametrize(("changes", "message"), [
    ({"sha256": 5}, "det_copy.json: sha256 must be 64 hex digits, got 5"),
    ({"sha256": ["ab"]}, "det_copy.json: sha256 must be 64 hex digits, got ['ab']"),
    ({"outputs": "weird"}, "det_copy.json: outputs must be one of logits, probabilities, got 'weird'"),
    ({"preprocess": [1]}, "det_copy.json: preprocess must be an object, got [1]"),
    ({"preprocess": {"height": 48}}, "det.weights: det_copy.json preprocess: unknown key 'height'"),
    ({"postprocess": {"box_thresh": 7}}, "det.weights: det_copy.json postprocess.box_thresh: 7.0 is out of range"),
])
def test_bad_manifest_fields_are_one_line(tmp_path: Path, changes: dict, message: str) -> None:
    weights = _weights_with_manifest(tmp_path, **changes)
    result = CliRunner().invoke(main, ["ocr", str(SAMPLE), "--set", f"det.weights={weights}"])
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr


def test_weights_of_another_stage_are_named_by_their_manifest() -> None:
    result = CliRunner().invoke(main, ["ocr", str(SAMPLE), "--set", "det.weights=cls_ppocr_mobile_v2"])
    assert result.exit_code == 2
    assert result.stderr.startswith("ocrlite: error: det.weights: cls_ppocr_mobile_v2.json preprocess: unknown key")


def test_a_good_manifest_copy_reads_the_sample(tmp_path: Path) -> None:
    weights = _weights_with_manifest(tmp_path)
    result = CliRunner().invoke(main, ["ocr", str(SAMPLE), "--set", f"det.weights={weights}", "--format", "txt"])
    assert result.exit_code == 0 and "Invoice" in result.stdout
