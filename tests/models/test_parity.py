"""Our nets with the converted weights vs onnxruntime outputs of the original ONNX models (stored fixtures).

One case per fixture ``tests/fixtures/parity_<name>.safetensors`` (written by scripts/convert_ppocr.py from
onnxruntime); this test needs no onnxruntime. The default models' weights ship in ocrlite/weights and must
be there. Weights of the optional presets live in the ``ocrlite_models`` data package: when it is not
installed those cases skip, unless OCRLITE_REQUIRE_DATA=1 (as in CI), where they fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ocrlite.weights
from ocrlite.charset import Charset
from ocrlite.postprocess import ctc_greedy_decode
from ocrlite.stages import load_stage_config, stage_kind, stage_spec
from ocrlite.weights import read_manifest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
WEIGHTS = Path(ocrlite.weights.__file__).resolve().parent
ATOL = 1e-4
NAMES = sorted(p.stem.removeprefix("parity_") for p in FIXTURES.glob("parity_*.safetensors"))


def _weights_dir(name: str, request: pytest.FixtureRequest) -> Path:
    """Shipped weights folder, or the optional package's (skipped/failed by its fixture if absent)."""
    if (WEIGHTS / f"{name}.json").is_file():
        return WEIGHTS
    return request.getfixturevalue("preset_weights")


def _run(name: str, request: pytest.FixtureRequest) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict, Path]:
    folder = _weights_dir(name, request)
    manifest = read_manifest(folder / f"{name}.json")
    config = load_stage_config(manifest["config"])
    assert config["weights"] == name
    kind = stage_kind(config)
    assert kind is not None
    spec = stage_spec(kind, manifest["config"])
    assert spec.weights == folder / f"{name}.safetensors"
    net = spec.build_net()  # the stage layer: class count from the charset, weights loaded strictly
    fixture = load_file(str(FIXTURES / f"parity_{name}.safetensors"))
    with torch.no_grad():
        return net(fixture["input"]), fixture, config, folder


def test_every_default_model_has_a_fixture() -> None:
    assert {"det_ppocrv3", "cls_ppocr_mobile_v2", "rec_ppocrv2"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_output_matches_onnxruntime(name: str, request: pytest.FixtureRequest) -> None:
    out, fixture, config, folder = _run(name, request)
    assert out.shape == fixture["expected"].shape
    assert (out - fixture["expected"]).abs().max().item() <= ATOL
    if "argmax" not in fixture:  # detector: the probability map, same binary mask at the DB threshold
        assert torch.equal(out > 0.3, fixture["expected"] > 0.3)
        return
    assert torch.equal(out.argmax(-1), fixture["argmax"])
    charset_name = config["postprocess"].get("charset")
    if charset_name:  # recognizer: identical decoded strings
        path = folder / charset_name if (folder / charset_name).is_file() else WEIGHTS / charset_name
        charset = Charset.from_file(path, config["postprocess"].get("use_space_char", True))
        assert len(charset) == out.shape[-1]
        ours = [d.text for d in ctc_greedy_decode(out.softmax(-1).numpy(), charset)]
        reference = [d.text for d in ctc_greedy_decode(fixture["expected"].softmax(-1).numpy(), charset)]
        assert ours == reference
