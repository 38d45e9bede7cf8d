"""Our nets with the shipped weights vs onnxruntime outputs of the original ONNX models (stored fixtures).

The fixtures were produced by scripts/convert_ppocr.py from onnxruntime; this test needs no onnxruntime
and fails (never skips) when a fixture or weight file is missing or the numbers drift.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import ocrlite.weights
from ocrlite.models import build_model
from ocrlite.weights import load_weights, read_manifest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
WEIGHTS = Path(ocrlite.weights.__file__).resolve().parent
ATOL = 1e-4


def _run(name: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    manifest = read_manifest(WEIGHTS / f"{name}.json")
    config = yaml.safe_load((ROOT / "configs" / manifest["config"]).read_text(encoding="utf-8"))
    assert config["weights"] == name
    net = build_model(config["model"]).eval()
    load_weights(net, WEIGHTS / f"{name}.safetensors", manifest["sha256"])
    fixture = load_file(str(FIXTURES / f"parity_{name}.safetensors"))
    with torch.no_grad():
        return net(fixture["input"]), fixture


def test_det_probability_map_matches_onnxruntime() -> None:
    out, fixture = _run("det_ppocrv3")
    assert out.shape == fixture["expected"].shape == (1, 1, 64, 96)
    assert (out - fixture["expected"]).abs().max().item() <= ATOL
    assert torch.equal(out > 0.3, fixture["expected"] > 0.3)


@pytest.mark.parametrize("name", ["cls_ppocr_mobile_v2", "rec_ppocrv2"])
def test_logits_and_argmax_match_onnxruntime(name: str) -> None:
    out, fixture = _run(name)
    assert out.shape == fixture["expected"].shape
    assert (out - fixture["expected"]).abs().max().item() <= ATOL
    assert torch.equal(out.argmax(-1), fixture["argmax"])
