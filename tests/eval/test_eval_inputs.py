"""What ``ocrlite eval`` does with a user's split manifest, sample limit and output path: a split whose files
changed since it was written is refused, a limit below 1 is refused, and an output path that cannot be written
is one line before any model is built or image read, not after the evaluation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ocrlite.cli import main
from ocrlite.errors import ConfigError
from ocrlite.eval.harness import load_samples


def _crops(root: Path) -> list[Path]:
    """Two word crops with a PaddleOCR label file."""
    root.mkdir()
    paths = []
    for k in range(2):
        path = root / f"w{k}.png"
        Image.fromarray(np.full((32, 96, 3), 40 * k, np.uint8)).save(path)
        paths.append(path)
    (root / "labels.txt").write_text("w0.png\tHELLO\nw1.png\tWORLD\n", encoding="utf-8")
    return paths


def _entry(path: Path, sha256: str | None = None) -> dict[str, str]:
    return {"path": str(path), "sha256": sha256 or hashlib.sha256(path.read_bytes()).hexdigest()}


def test_a_split_restricts_to_its_files_and_refuses_files_that_changed(tmp_path: Path) -> None:
    first, second = _crops(tmp_path / "crops")
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"files": [_entry(second)]}))
    assert [path for path, _ in load_samples("rec", tmp_path / "crops", split=split)[1]] == [second]
    split.write_text(json.dumps({"files": [_entry(second, "0" * 64)]}))
    with pytest.raises(ConfigError, match=r"split.json: 1 of its files are missing or differ from their sha256 in "
                                          r"the manifest \(first: .*w1.png\)$"):
        load_samples("rec", tmp_path / "crops", split=split)
    split.write_text(json.dumps({"files": [_entry(first), _entry(tmp_path / "crops" / "labels.txt")]}))
    (tmp_path / "crops" / "labels.txt").write_text("w0.png\tHELL0\nw1.png\tWORLD\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"first: .*labels.txt\)$"):  # the labels changed: another split
        load_samples("rec", tmp_path / "crops", split=split)


def test_the_cli_refuses_a_split_whose_sha256_differs(tmp_path: Path) -> None:
    _, second = _crops(tmp_path / "crops")
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"files": [_entry(second, "ab" * 32)]}))
    result = CliRunner().invoke(main, ["--threads", "1", "eval", "rec", "--data", str(tmp_path / "crops"),
                                       "--split", str(split)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(f"ocrlite: error: {split}: 1 of its files are missing or differ")


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_is_refused_not_read_as_a_slice(tmp_path: Path, limit: int) -> None:
    _crops(tmp_path / "crops")
    with pytest.raises(ConfigError, match=f"^limit must be at least 1, got {limit}$"):
        load_samples("rec", tmp_path / "crops", limit)


def test_an_output_that_cannot_be_written_stops_eval_before_any_work(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _crops(tmp_path / "crops")
    (tmp_path / "file").write_text("not a folder")

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pipeline was built before the output path was checked")

    monkeypatch.setattr("ocrlite.api.OCR", no_work)
    output = tmp_path / "file" / "scores.json"
    result = CliRunner().invoke(main, ["--threads", "1", "eval", "rec", "--data", str(tmp_path / "crops"),
                                       "--format", "json", "-o", str(output)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"ocrlite: error: cannot write to {output.parent}: {tmp_path / 'file'} is a file, " \
                            "not a folder\n"


def test_json_rows_go_to_the_output_file_one_valid_object_per_system(tmp_path: Path) -> None:
    _crops(tmp_path / "crops")
    output = tmp_path / "new" / "scores.json"
    result = CliRunner().invoke(main, ["--threads", "1", "eval", "rec", "--data", str(tmp_path / "crops"),
                                       "--model", "ppocr-v2", "--config", "rec_ppocrv2.yaml", "--format", "json",
                                       "-o", str(output)])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [(row["system"], row["task"], row["n"]) for row in rows] == [("ppocr-v2", "rec", 2),
                                                                         ("rec_ppocrv2.yaml", "rec", 2)]
    assert rows[0]["accuracy"] == rows[1]["accuracy"]  # the same recognizer, one preset and one config
    assert sorted(p.name for p in output.parent.iterdir()) == ["scores.json"]  # no temp file left behind


def test_backend_runs_every_row_on_that_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ocrlite eval --backend onnxruntime`` (as ``ocrlite ocr --backend``) was 'No such option': scoring the
    onnxruntime path of a config took one --set per stage. The rows read as the torch backend reads, through
    the cached export; a backend a stage cannot run on is one line."""
    page = np.asarray(Image.open(Path(__file__).parents[1] / "images" / "sample.png").convert("RGB"))
    crops = tmp_path / "crops"
    crops.mkdir()
    Image.fromarray(page[97:131, 40:347]).save(crops / "line.png")
    (crops / "labels.txt").write_text("line.png\tInvoice No. 48213\n", encoding="utf-8")
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path / "cache"))
    args = ["--threads", "1", "eval", "rec", "--data", str(crops), "--format", "json"]
    torch_run = CliRunner().invoke(main, args)
    onnx_run = CliRunner().invoke(main, [*args, "--backend", "onnxruntime"])
    assert torch_run.exit_code == 0 and onnx_run.exit_code == 0, onnx_run.output
    scores = [{k: v for k, v in json.loads(run.stdout).items() if k != "s_per_item"} for run in (torch_run, onnx_run)]
    assert scores[0] == scores[1] and scores[0]["accuracy"] == 100.0
    assert list((tmp_path / "cache").rglob("*.onnx"))  # the recognizer ran on onnxruntime
    bad = CliRunner().invoke(main, [*args, "--backend", "tensorrt"])
    assert bad.exit_code == 2 and "'tensorrt' is not one of 'torch', 'onnxruntime'" in bad.output
