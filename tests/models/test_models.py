"""Every model config builds and runs; the trainable det config trains; shipped sizes; strict weight loading."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from ocrlite.errors import ConfigError, WeightsError
from ocrlite.models import build_model
from ocrlite.stages import stage_kind, stage_spec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
MODEL_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.yaml") if "model" in yaml.safe_load(p.read_text()))
# Small inputs per task prefix: det sides are multiples of 32, rec must be 32 high.
INPUTS = {"det": (2, 3, 64, 96), "cls": (2, 3, 48, 192), "rec": (2, 3, 32, 96), "page": (2, 3, 224, 224)}
SHIPPED_PARAMS = {"det_ppocrv3.yaml": 580_161, "cls_ppocr_mobile_v2.yaml": 129_356, "rec_ppocrv2.yaml": 2_066_433}


Net = torch.nn.Module
State = dict[str, torch.Tensor]


def _model_cfg(name: str) -> dict:
    return yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))["model"]


def test_shipped_configs_are_present() -> None:
    assert set(SHIPPED_PARAMS) <= set(MODEL_CONFIGS)


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_config_builds_and_runs(name: str) -> None:
    cfg = yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))
    kind = stage_kind(cfg)
    assert kind is not None, name
    spec = stage_spec(kind, name)  # the stage layer: CTC classes come from the charset
    net = spec.build_net(load_weights=False)
    shape = list(INPUTS[kind])
    if kind == "rec":  # 32-high CRNN lines; 48-high SVTR/PP-LCNetV3 lines (T = W/8)
        shape[2] = cfg["preprocess"]["height"]
        shape[3] = 96 if shape[2] == 32 else 192
    x = torch.randn(shape)
    with torch.no_grad():
        out = net(x)
    classes = len(spec.charset) if spec.charset is not None else 0
    expected = {"det": (2, 1, 64, 96), "cls": (2, 2), "rec": (2, 24, classes), "page": (2, 4)}[kind]
    assert out.shape == expected
    assert torch.isfinite(out).all()
    if kind == "det":
        assert 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("name", SHIPPED_PARAMS)
def test_shipped_parameter_counts(name: str) -> None:
    net = build_model(_model_cfg(name))
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == SHIPPED_PARAMS[name]


def test_trainable_det_backward_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    net = build_model(_model_cfg("det_mv3_dbfpn.yaml")).train()
    maps = net.forward_train(torch.randn(2, 3, 64, 64))
    assert maps.shape == (2, 3, 64, 64)
    maps.mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_train_and_eval_outputs_agree_in_shape() -> None:
    net = build_model(_model_cfg("rec_ppocrv2.yaml"))
    x = torch.randn(2, 3, 32, 64)
    assert net.train()(x).shape == net.eval()(x).shape == (2, 16, 6625)


def test_unknown_component_and_key_raise_config_error() -> None:
    cfg = _model_cfg("cls_ppocr_mobile_v2.yaml")
    with pytest.raises(ConfigError, match="MobileNetV3"):
        build_model({**cfg, "backbone": {"name": "NoSuchNet"}})
    with pytest.raises(ConfigError, match="scal"):
        build_model({**cfg, "backbone": {**cfg["backbone"], "scal": 0.5}})


@pytest.fixture()
def cls_weights(tmp_path: Path) -> tuple[Net, State, Path]:
    net = build_model(_model_cfg("cls_ppocr_mobile_v2.yaml"))
    state = {k: v.clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    return net, state, tmp_path


def _write(tensors: State, path: Path) -> Path:
    save_file(tensors, str(path))
    return path


def test_load_weights_roundtrip_with_sha256(cls_weights: tuple[Net, State, Path]) -> None:
    from ocrlite.weights import load_weights

    net, state, tmp = cls_weights
    state["head.fc.bias"] = torch.tensor([1.5, -2.0])
    path = _write(state, tmp / "ok.safetensors")
    load_weights(net, path, hashlib.sha256(path.read_bytes()).hexdigest())
    assert torch.equal(net.head.fc.bias.detach(), torch.tensor([1.5, -2.0]))
    assert load_file(str(path)).keys() == state.keys()


def test_load_weights_rejects_missing_key(cls_weights: tuple[Net, State, Path]) -> None:
    from ocrlite.weights import load_weights

    net, state, tmp = cls_weights
    del state["head.fc.weight"]
    with pytest.raises(WeightsError, match="missing: head.fc.weight"):
        load_weights(net, _write(state, tmp / "w.safetensors"))


def test_load_weights_rejects_unexpected_key(cls_weights: tuple[Net, State, Path]) -> None:
    from ocrlite.weights import load_weights

    net, state, tmp = cls_weights
    state["head.extra"] = torch.zeros(1)
    with pytest.raises(WeightsError, match="unexpected: head.extra"):
        load_weights(net, _write(state, tmp / "w.safetensors"))


def test_load_weights_rejects_shape_mismatch(cls_weights: tuple[Net, State, Path]) -> None:
    from ocrlite.weights import load_weights

    net, state, tmp = cls_weights
    state["head.fc.bias"] = torch.zeros(3)
    with pytest.raises(WeightsError, match="shape mismatch: head.fc.bias"):
        load_weights(net, _write(state, tmp / "w.safetensors"))


def test_load_weights_rejects_missing_file(cls_weights: tuple[Net, State, Path]) -> None:
    from ocrlite.weights import load_weights

    net, _, tmp = cls_weights
    with pytest.raises(WeightsError, match="not found"):
        load_weights(net, tmp / "absent.safetensors")


def test_load_weights_rejects_bad_sha256(cls_weights: tuple[Net, State, Path]) -> None:
    from ocrlite.weights import load_weights

    net, state, tmp = cls_weights
    with pytest.raises(WeightsError, match="sha256"):
        load_weights(net, _write(state, tmp / "w.safetensors"), "0" * 64)
