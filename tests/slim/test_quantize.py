"""``ocrlite quantize``: an int8 recognizer at under 30 % of the fp32 file that still reads real text lines."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from ocrlite.cli import main
from ocrlite.errors import ConfigError
from ocrlite.eval.metrics import edit_distance
from ocrlite.stages import pipeline_spec, stage_spec

pytest.importorskip("onnxruntime")

SAMPLE = Path(__file__).parents[1] / "images" / "sample.png"
LINES = [(32, 60, 43, 280), (100, 128, 43, 344), (167, 198, 42, 317), (235, 268, 42, 229)]  # y0, y1, x0, x1


@pytest.fixture(scope="module")
def quantized(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("q")
    page = cv2.imread(str(SAMPLE))
    calib = root / "calib"
    calib.mkdir()
    for i, (y0, y1, x0, x1) in enumerate(LINES):
        cv2.imwrite(str(calib / f"line{i}.png"), page[y0 - 3 : y1 + 3, x0 - 3 : x1 + 3])
    run = CliRunner().invoke(main, ["quantize", "--config", "ocr_ppocr_v2.yaml", "--calib", str(calib),
                                    "-o", str(root / "out")])
    assert run.exit_code == 0, run.output
    return root / "out"


def test_int8_file_is_under_30_percent_of_fp32(quantized):
    assert (quantized / "rec.int8.onnx").stat().st_size <= 0.30 * stage_spec("rec").weights.stat().st_size
    spec = pipeline_spec(quantized / "ocr.yaml")
    assert spec.rec.backend == "onnxruntime" and spec.rec.onnx == quantized / "rec.int8.onnx"


def test_int8_pipeline_reads_the_sample_close_to_fp32(quantized):
    fp32 = CliRunner().invoke(main, ["ocr", str(SAMPLE)])
    int8 = CliRunner().invoke(main, ["ocr", "--config", str(quantized / "ocr.yaml"), str(SAMPLE)])
    assert int8.exit_code == 0, int8.output
    texts = [line["text"] for line in json.loads(int8.output)["lines"]]
    reference = [line["text"] for line in json.loads(fp32.output)["lines"]]
    assert len(texts) == len(reference) == 4
    # Calibrated on these 4 lines only; the dev-set word accuracy is in scripts/bench_slim.py.
    errors = sum(edit_distance(a, b) for a, b in zip(texts, reference))
    assert errors <= 0.25 * sum(map(len, reference)), (texts, reference)


def test_onnx_key_needs_the_onnxruntime_backend(quantized):
    with pytest.raises(ConfigError, match="needs backend: onnxruntime"):
        stage_spec("rec", quantized / "rec.yaml", ["backend=torch"])
    run = CliRunner().invoke(main, ["quantize", "--config", "ocr_ppocr_v2.yaml", "--calib", str(quantized),
                                    "-o", str(quantized / "x")])
    assert run.exit_code == 2 and "no images found" in run.output and run.output.count("\n") == 1
