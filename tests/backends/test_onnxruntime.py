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
