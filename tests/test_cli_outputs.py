"""Where commands write: an output path that cannot be written is one line and exit 2, before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ocrlite.cli import main

SAMPLE = Path(__file__).resolve().parent / "images" / "sample.png"


def _run(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["--threads", "1", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr.splitlines()


@pytest.fixture()
def a_file(tmp_path: Path) -> Path:
    """A plain file, where a command would need a folder."""
    path = tmp_path / "afile"
    path.write_text("x")
    return path


@pytest.mark.parametrize("command", [["detect"], ["recognize"], ["classify"], ["export", "--stage", "rec"]])
def test_an_output_file_that_cannot_be_written_is_one_line(a_file: Path, command: list[str]) -> None:
    images = [] if command[0] == "export" else [str(SAMPLE)]
    code, errors = _run(*command, *images, "-o", str(a_file / ("out.onnx" if command[0] == "export" else "out.json")))
    assert code == 2 and errors == [f"ocrlite: error: cannot write to {a_file}: {a_file} is a file, not a folder"]


def test_an_output_file_in_a_new_folder_is_written(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "boxes.json"
    code, errors = _run("detect", str(SAMPLE), "-o", str(target))
    assert code == 0 and not errors and target.read_text(encoding="utf-8").count("\n") == 1


def test_a_batch_output_folder_that_cannot_be_made_is_one_line(a_file: Path) -> None:
    code, errors = _run("ocr", str(SAMPLE), "-o", str(a_file / "out"))
    assert code == 2 and errors == [
        f"ocrlite: error: cannot write to {a_file / 'out'}: {a_file} is a file, not a folder"]


def test_an_onnx_cache_that_cannot_be_written_is_one_line(a_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(a_file / "onnx"))
    code, errors = _run("ocr", str(SAMPLE), "--backend", "onnxruntime")
    assert code == 2 and len(errors) == 1
    assert errors[0].startswith(f"ocrlite: error: cannot write to {a_file / 'onnx'}")
    assert "OCRLITE_ONNX_CACHE" in errors[0]


@pytest.mark.parametrize("command", [["quantize", "--stage", "cls", "--calib", str(SAMPLE.parent)], ["prune"]])
def test_an_output_folder_that_cannot_be_made_is_one_line_before_the_work(a_file: Path, command: list[str]) -> None:
    code, errors = _run(*command, "-o", str(a_file / "sub"))
    assert code == 2 and errors == [
        f"ocrlite: error: cannot write to {a_file / 'sub'}: {a_file} is a file, not a folder"]
