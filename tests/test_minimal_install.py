"""What a minimal install (``pip install torch==2.13.0 .``) meets: a missing optional package, weights package,
font or word list is one line naming what to install, exit 2, before anything is written.

A missing package is simulated with ``sys.modules[name] = None``: ``import name`` then fails and
``importlib.util.find_spec(name)`` says it is not installed, as on a machine without it.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ocrlite.cli import main
from ocrlite.errors import BackendError, ConfigError, OcrliteError, WeightsError
from ocrlite.files import MODELS_HINT

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "tests" / "images"
SAMPLE = IMAGES / "sample.png"
ONNX = 'pip install "ocrlite[onnx]"'


def _without(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def _cli(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr.splitlines()


# --- onnx / onnxruntime -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["onnx", "onnxruntime"])
def test_quantize_without_onnx_is_one_line_before_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              name: str) -> None:
    _without(monkeypatch, name)
    out = tmp_path / "new" / "int8"
    code, err = _cli("quantize", "--calib", str(IMAGES), "-o", str(out))
    assert (code, err) == (2, [f"ocrlite: error: ocrlite quantize needs {name}: {ONNX}"])
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("name", ["onnx", "onnxruntime"])
def test_export_without_onnx_speaks_of_exporting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    _without(monkeypatch, name)
    code, err = _cli("export", "-o", str(tmp_path / "new" / "det.onnx"))
    assert (code, err) == (2, [f"ocrlite: error: exporting to ONNX needs {name}: {ONNX}"])
    assert not (tmp_path / "new").exists()


def test_the_exporter_itself_names_onnx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ocrlite.backends.export``, whoever calls it (the export cache, QAT's int8 export)."""
    import torch

    from ocrlite.backends.export import export_net

    _without(monkeypatch, "onnx")
    with pytest.raises(BackendError, match=r'^exporting to ONNX needs onnx: pip install "ocrlite\[onnx\]"$'):
        export_net(torch.nn.Identity(), tmp_path / "x.onnx", "det", torch.zeros(1, 3, 32, 32))


def test_onnxruntime_without_onnx_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime alone cannot run the backend: each net is exported (onnx) first."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path / "cache"))
    _without(monkeypatch, "onnx")
    line = f"ocrlite: error: the onnxruntime backend needs onnx: {ONNX}"
    assert _cli("ocr", str(SAMPLE), "--backend", "onnxruntime") == (2, [line])
    out = tmp_path / "out"
    assert _cli("ocr", str(SAMPLE), "-o", str(out), "--backend", "onnxruntime") == (2, [line])
    assert not out.exists() and not (tmp_path / "cache").exists()  # checked before the batch writes anything


@pytest.mark.parametrize("name", ["onnx", "onnxruntime"])
def test_the_onnxruntime_backend_without_its_packages_in_workers_and_from_python(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Batch mode with worker processes says it once, before anything is written; the Python API (``OCR``, a
    predictor) raises a BackendError with the same line."""
    from ocrlite import OCR, TextClassifier

    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path / "cache"))
    _without(monkeypatch, name)
    line = f"the onnxruntime backend needs {name}: {ONNX}"
    out = tmp_path / "out"
    args = ("ocr", str(SAMPLE), "-o", str(out), "--backend", "onnxruntime", "--workers", "2")
    assert _cli(*args) == (2, [f"ocrlite: error: {line}"])
    assert not out.exists() and not (tmp_path / "cache").exists()
    with pytest.raises(BackendError, match=f"^{re.escape(line)}$"):
        OCR(backend="onnxruntime")
    with pytest.raises(BackendError, match=f"^{re.escape(line)}$"):
        TextClassifier.from_config(overrides=["backend=onnxruntime"])


def _broken(monkeypatch: pytest.MonkeyPatch, folder: Path, name: str, reason: str) -> None:
    """``name`` installed but broken (a wheel for another Python, numpy or CPU): ``find_spec`` finds it,
    ``import`` raises ImportError(reason)."""
    package = folder / "site" / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"raise ImportError({reason!r})\n")
    monkeypatch.syspath_prepend(str(package.parent))
    for module in [module for module in sys.modules if module.split(".")[0] == name]:
        monkeypatch.delitem(sys.modules, module)


def test_an_onnxruntime_that_fails_to_import_is_one_line_before_any_export(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """It was a traceback, after the detector had been exported for nothing."""
    _broken(monkeypatch, tmp_path, "onnxruntime", "libonnxruntime.so.1: cannot open shared object file")
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path / "cache"))
    line = ("ocrlite: error: the onnxruntime backend cannot import onnxruntime (libonnxruntime.so.1: cannot open "
            f"shared object file): reinstall it: pip install --force-reinstall {ONNX.split()[-1]}")
    assert _cli("ocr", str(SAMPLE), "--backend", "onnxruntime") == (2, [line])
    assert not (tmp_path / "cache").exists()


def test_an_onnx_that_fails_to_import_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter (``ocrlite export``, the onnxruntime backend's cache) imports onnx: it was a traceback."""
    pytest.importorskip("onnxruntime")
    _broken(monkeypatch, tmp_path, "onnx", "onnx_cpp2py_export: undefined symbol")
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path / "cache"))
    line = ("ocrlite: error: exporting to ONNX cannot import onnx (onnx_cpp2py_export: undefined symbol): "
            f"reinstall it: pip install --force-reinstall {ONNX.split()[-1]}")
    assert _cli("export", "-o", str(tmp_path / "det.onnx")) == (2, [line])
    assert _cli("ocr", str(SAMPLE), "--backend", "onnxruntime") == (2, [line])
    assert not (tmp_path / "det.onnx").exists() and not list((tmp_path / "cache").iterdir())


def test_a_stage_with_its_own_onnx_file_needs_only_onnxruntime(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is exported for a stage whose ``onnx:`` file is given (``ocrlite quantize``'s int8 stage)."""
    from ocrlite.stages import pipeline_spec

    given = tmp_path / "rec.int8.onnx"
    given.write_bytes(b"only its name is read here")
    spec = pipeline_spec(overrides=["rec.backend=onnxruntime", f"rec.onnx={given}"])
    with monkeypatch.context() as patched:
        _without(patched, "onnx")
        spec.check_backends()
    _without(monkeypatch, "onnxruntime")
    with pytest.raises(BackendError, match=re.escape(f"the onnxruntime backend needs onnxruntime: {ONNX}")):
        spec.check_backends()


def test_a_qat_run_without_onnx_stops_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "onnx")
    run = tmp_path / "run"
    code, err = _cli("train", "train/rec_ppocrv2_en_qat.yaml", "-o", str(run))
    assert (code, err) == (2, [f"ocrlite: error: train.qat (its int8 export at the end) needs onnx: {ONNX}"])
    assert not run.exists()


@pytest.mark.parametrize("name", ["onnx", "onnxruntime"])
def test_quantize_and_qat_with_a_broken_onnx_stop_in_one_line_before_any_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Installed but failing to import: quantize gave a traceback after calibrating and exporting, a QAT run after
    its whole training (each imports onnx/onnxruntime only where it uses them)."""
    _broken(monkeypatch, tmp_path, name, "undefined symbol: PyInit")
    reinstall = (f"cannot import {name} (undefined symbol: PyInit): reinstall it: "
                 f"pip install --force-reinstall {ONNX.split()[-1]}")
    out, run = tmp_path / "new" / "int8", tmp_path / "run"
    assert _cli("quantize", "--calib", str(IMAGES), "-o", str(out)) == (
        2, [f"ocrlite: error: ocrlite quantize {reinstall}"])
    assert _cli("train", "train/rec_ppocrv2_en_qat.yaml", "-o", str(run)) == (
        2, [f"ocrlite: error: train.qat (its int8 export at the end) {reinstall}"])
    assert not (tmp_path / "new").exists() and not run.exists()


# --- other extras -------------------------------------------------------------------------------


def test_prune_without_torch_pruning_is_one_line_before_its_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "torch_pruning")
    out = tmp_path / "pruned"
    code, err = _cli("prune", "--images", str(IMAGES), "-o", str(out))
    assert (code, err) == (2, ['ocrlite: error: pruning needs Torch-Pruning: pip install "ocrlite[slim]"'])
    assert not out.exists()


def test_importing_the_plugin_without_ocrmypdf_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "ocrmypdf")
    monkeypatch.delitem(sys.modules, "ocrlite.ocrmypdf_plugin", raising=False)
    expected = (r'^ocrlite.ocrmypdf_plugin needs OCRmyPDF: pip install "ocrlite\[ocrmypdf\]"; OCRmyPDF also needs '
                r"the tesseract binary \(Debian: apt-get install tesseract-ocr\)$")
    with pytest.raises(ImportError, match=expected):
        importlib.import_module("ocrlite.ocrmypdf_plugin")


def test_backend_error_is_exported_with_the_other_errors() -> None:
    import ocrlite

    assert {"OcrliteError", "ConfigError", "WeightsError", "BackendError"} <= set(ocrlite.__all__)
    assert ocrlite.BackendError is BackendError


# --- presets and their weights package ----------------------------------------------------------


def test_a_preset_of_the_weights_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "ocrlite_models")
    code, err = _cli("ocr", str(SAMPLE), "--model", "ppocr-v6-small")
    assert (code, err) == (2, [f"ocrlite: error: preset 'ppocr-v6-small': its weights are not installed; "
                               f"they are in {MODELS_HINT}"])
    assert "ocrlite source tree" in MODELS_HINT and "pip install ./ocrlite-models" in MODELS_HINT
    listed = CliRunner().invoke(main, ["models"])
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[-1] == f"* not installed: the weights are in {MODELS_HINT}"
    assert "ppocr-v2 (default)" in listed.stdout and "no *" in listed.stdout


def test_models_and_the_weights_module_do_not_import_torch() -> None:
    """``ocrlite models`` reads configs and manifests only: torch would cost it a second."""
    code = ("import sys\nimport ocrlite.weights\nfrom ocrlite.cli import main\n"
            "try:\n    main(['models'])\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.strip().splitlines()[-1] == "False"


# --- fonts and the word list (Debian packages) --------------------------------------------------


def test_synth_names_the_debian_packages(tmp_path: Path) -> None:
    from ocrlite.train.synth import load_words

    empty, latin = tmp_path / "nofonts", tmp_path / "latin"
    empty.mkdir()
    out = tmp_path / "synth"
    code, err = _cli("synth", str(out), "--count", "1", "--fonts", str(empty))
    assert (code, err) == (2, [f"ocrlite: error: no usable TTF/OTF fonts with Latin glyphs under {empty} "
                               "(Debian: apt-get install fonts-dejavu-core fonts-liberation)"])
    assert not out.exists()  # no empty folder left behind
    words = r"\(Debian: apt-get install wamerican, for /usr/share/dict/american-english\)$"
    with pytest.raises(ConfigError, match=words):
        load_words(tmp_path / "words")
    dejavu = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not dejavu.is_file():
        pytest.skip("DejaVu Sans is not installed (fonts-dejavu-core)")
    latin.mkdir()
    shutil.copy(dejavu, latin)
    code, err = _cli("synth", str(out), "--count", "1", "--lang", "en+zh", "--fonts", str(latin))
    assert code == 2 and err[0].endswith("(Debian: apt-get install fonts-wqy-microhei)")
    assert not out.exists()


# --- benchmark scripts --------------------------------------------------------------------------


def test_speed_rows_are_checked_before_they_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import ocrlite.presets
    from ocrlite.eval.speed import check_rows

    with monkeypatch.context() as patched:
        _without(patched, "psutil")
        with pytest.raises(OcrliteError, match=r'needs psutil: pip install "ocrlite\[bench\]"$'):
            check_rows(["v3"], ["torch"], tree_rss=True)
    with monkeypatch.context() as patched:
        _without(patched, "ocrlite_models")
        with pytest.raises(WeightsError, match="^preset 'ppocr-v3': its weights are not installed"):
            check_rows(["v3"], ["torch"])
    monkeypatch.setattr(ocrlite.presets, "check_installed", lambda name: None)
    _without(monkeypatch, "rapidocr_onnxruntime")
    with pytest.raises(ConfigError, match="^the rapidocr peer needs rapidocr_onnxruntime: "
                                          "pip install rapidocr_onnxruntime==1.2.13$"):
        check_rows(["v3"], ["torch"])


@pytest.mark.parametrize(("script", "args", "missing", "line"), [
    ("bench_batch.py", ["--limit", "1"], ["psutil"],
     'the peak-RSS probe of a process tree needs psutil: pip install "ocrlite[bench]"'),
    ("bench_speed.py", ["--limit", "1", "--backends", "torch"], ["ocrlite_models"],
     f"preset 'ppocr-v6-small': its weights are not installed; they are in {MODELS_HINT}"),
    ("bench_orientation.py", ["--parts", "ocrmypdf", "--limit", "1"], ["ocrmypdf", "img2pdf"],
     'the ocrmypdf part needs ocrmypdf and img2pdf: pip install "ocrlite[ocrmypdf]"'),
])
def test_benchmark_scripts_end_in_one_line(script: str, args: list[str], missing: list[str], line: str) -> None:
    code = (f"import runpy, sys; sys.modules.update(dict.fromkeys({missing!r})); sys.argv = [{script!r}, *{args!r}]; "
            f"runpy.run_path({str(ROOT / 'scripts' / script)!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "OCRLITE_MALLOC": "system"})
    assert (done.returncode, done.stderr.splitlines()) == (2, [f"{script}: error: {line}"])
