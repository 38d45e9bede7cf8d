"""Same pages, same output: the fast paths (folded nets, one classifier call, CTC top-1 in the runner) and the
onnxruntime backend read every line as the plain unfolded PyTorch path does -- identical texts, boxes within
1 px -- on the sample image and real FUNSD and ICDAR 2015 pages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ocrlite.api import OCR
from ocrlite.backends.torch import TorchRunner
from ocrlite.cli import main
from ocrlite.eval.datasets import load_funsd, load_icdar2015
from ocrlite.io.images import read_image
from ocrlite.results import PageResult
from ocrlite.stages import StageSpec, pipeline_spec

SAMPLE = Path(__file__).resolve().parents[1] / "images" / "sample.png"


def _plain(spec: StageSpec):
    """The unfolded net behind a bare callable: no ``top1``, so the recognizer decodes full probabilities."""
    runner = TorchRunner(spec.build_net(), softmax=spec.kind != "det" and spec.outputs == "logits")
    return lambda batch: runner(batch)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OCR]:
    pytest.importorskip("onnxruntime")
    cache = tmp_path_factory.mktemp("onnx")
    patch = pytest.MonkeyPatch()
    patch.setenv("OCRLITE_ONNX_CACHE", str(cache))
    spec = pipeline_spec()
    assert spec.cls is not None
    engines = {
        "reference": OCR(det_runner=_plain(spec.det), cls_runner=_plain(spec.cls), rec_runner=_plain(spec.rec)),
        "torch": OCR(),
        "onnxruntime": OCR(backend="onnxruntime"),
    }
    patch.undo()
    return engines


def _assert_same(pages: dict[str, PageResult]) -> None:
    reference = pages.pop("reference")
    assert reference.lines
    for name, page in pages.items():
        assert [line.text for line in page.lines] == [line.text for line in reference.lines], name
        for line, ref in zip(page.lines, reference.lines):
            assert np.abs(np.asarray(line.points) - np.asarray(ref.points)).max() <= 1.0, name
            assert abs(line.score - ref.score) < 1e-3, name


def test_sample_image(engines: dict[str, OCR]) -> None:
    image = read_image(SAMPLE)
    _assert_same({name: engine(image) for name, engine in engines.items()})


def test_dev_pages(engines: dict[str, OCR], shared_data: Path) -> None:
    paths = [load_funsd(shared_data / "funsd")[0][0], load_icdar2015(shared_data / "icdar2015")[0][0]]
    for path in paths:
        image = read_image(path)
        _assert_same({name: engine(image) for name, engine in engines.items()})


def test_cli_backend_onnxruntime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("OCRLITE_ONNX_CACHE", str(tmp_path))
    result = CliRunner().invoke(main, ["--threads", "1", "ocr", str(SAMPLE), "--backend", "onnxruntime",
                                       "--format", "txt"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == OCR()(read_image(SAMPLE)).text.strip()


def test_missing_onnxruntime_is_one_line_exit_2(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['onnxruntime'] = None; from ocrlite.cli import main; "
            f"main(['ocr', {str(SAMPLE)!r}, '--set', 'rec.backend=onnxruntime'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"OCRLITE_ONNX_CACHE": str(tmp_path), "PATH": ""})
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and 'pip install "ocrlite[onnx]"' in done.stderr
