"""OnnxRunner on a tiny hand-built ONNX graph (no model files needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from ocrlite.backends.onnxruntime import OnnxRunner  # noqa: E402


def softmax_model(path: Path) -> Path:
    """An ONNX graph: float32 [N, T, C] -> softmax over C, plus a second (ignored) output."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Softmax", ["x"], ["probs"], axis=-1),
            helper.make_node("Identity", ["x"], ["copy"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", 3])],
        [
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", "T", 3]),
            helper.make_tensor_value_info("copy", TensorProto.FLOAT, ["N", "T", 3]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_runner_returns_first_output(tmp_path: Path):
    runner = OnnxRunner(softmax_model(tmp_path / "tiny.onnx"), threads=1)
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float64)  # cast to float32 inside
    out = runner(x)
    expected = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    assert out.dtype == np.float32 and out.shape == (2, 4, 3)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert "threads=1" in repr(runner)


def test_missing_model_file(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        OnnxRunner(tmp_path / "absent.onnx")


def test_a_graph_without_the_top1_head_is_read_through_its_first_output(tmp_path: Path):
    runner = OnnxRunner(softmax_model(tmp_path / "tiny.onnx"), threads=1)
    assert runner.top1 is None  # the recognizer then reads the probabilities (it raised TypeError per image)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from click.testing import CliRunner

    from ocrlite.cli import main

    folder = tmp_path_factory.mktemp("exports")
    for stage, head in (("rec", "probs"), ("cls", "raw"), ("cls", "probs"), ("det", "raw")):
        result = CliRunner().invoke(main, ["export", "--stage", stage, "--head", head,
                                           "-o", str(folder / f"{stage}_{head}.onnx")])
        assert result.exit_code == 0, result.output
    return folder


@pytest.mark.parametrize(("stage", "file", "message"), [
    ("cls", "cls_raw", "cls_raw.onnx returns the net's logits, not probabilities: export it with --head probs"),
    ("rec", "det_raw",
     "det_raw.onnx: its output has 4 dimensions, a rec stage's net gives 3 (a file exported for another stage?)"),
    ("cls", "rec_probs",
     "rec_probs.onnx: its output has 3 dimensions, a cls stage's net gives 2 (a file exported for another stage?)"),
])
def test_a_given_onnx_file_that_cannot_serve_the_stage_is_one_line(exports: Path, stage: str, file: str,
                                                                     message: str):
    from click.testing import CliRunner

    from ocrlite.cli import main

    sample = Path(__file__).parents[1] / "images" / "sample.png"
    result = CliRunner().invoke(main, ["ocr", str(sample), "--set", f"{stage}.backend=onnxruntime",
                                       "--set", f"{stage}.onnx={exports / (file + '.onnx')}"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"ocrlite: error: {message}\n"


def test_given_probability_exports_read_as_the_torch_backend_does(exports: Path):
    from ocrlite import OCR

    sample = Path(__file__).parents[1] / "images" / "sample.png"
    given = OCR(overrides=[f"rec.onnx={exports / 'rec_probs.onnx'}", f"cls.onnx={exports / 'cls_probs.onnx'}",
                           "rec.backend=onnxruntime", "cls.backend=onnxruntime", "pipeline.use_cls=true"])
    torch = OCR(overrides=["pipeline.use_cls=true"])
    assert [line.text for line in given(sample).lines] == [line.text for line in torch(sample).lines]


def test_backend_argument_applies_before_a_given_onnx_file_is_checked(exports: Path):
    from ocrlite import OCR
    from ocrlite.errors import ConfigError

    given = [f"rec.onnx={exports / 'rec_probs.onnx'}"]
    assert OCR(overrides=given, backend="onnxruntime").spec.rec.onnx == exports / "rec_probs.onnx"
    with pytest.raises(ConfigError, match=r"^rec.onnx: a given ONNX file needs backend: onnxruntime \(got 'torch'\)$"):
        OCR(overrides=[*given, "rec.backend=onnxruntime"], backend="torch")
