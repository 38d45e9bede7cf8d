"""The backbone zoo: every zoo config runs and trains; published parameter counts; the seed's CRNN trunk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from ocrlite.config import apply_overrides
from ocrlite.errors import ConfigError
from ocrlite.files import find_config
from ocrlite.models import build_model
from ocrlite.models.zoo.crnn_vgg import CRNNVGG
from ocrlite.registry import BACKBONES, build
from ocrlite.stages import load_stage_config

ZOO = Path(__file__).resolve().parents[2] / "configs" / "zoo"
ZOO_CONFIGS = sorted(p.name for p in ZOO.glob("*.yaml"))
ZOO_BACKBONES = ["MobileNetV1", "MobileNetV2", "MobileNetV3", "PPLCNet", "ShuffleNetV2", "SqueezeNet", "CRNNVGG"]

# Published ImageNet (1000 classes, 224x224) parameter counts: torchvision for the exact ones, the papers'
# rounded figures for MobileNetV1 (4.2M) and PP-LCNet (2.96M).
PUBLISHED = {
    "mobilenet_v1_imagenet.yaml": 4_200_000,
    "mobilenet_v2_imagenet.yaml": 3_504_872,
    "mobilenet_v3_large_imagenet.yaml": 5_483_032,
    "mobilenet_v3_small_imagenet.yaml": 2_542_856,
    "squeezenet1_0_imagenet.yaml": 1_248_424,
    "squeezenet1_1_imagenet.yaml": 1_235_496,
    "shufflenet_v2_imagenet.yaml": 2_278_604,
    "shufflenet_v2_x0_5_imagenet.yaml": 1_366_792,
    "pp_lcnet_imagenet.yaml": 2_960_000,
}
# Same layer for layer as torchvision, so equal to the parameter; MobileNetV3 keeps PaddleOCR's SE widths
# (channels // 4, torchvision rounds to multiples of 8) and its expansion conv in the first block.
EXACT = {"mobilenet_v2_imagenet.yaml", "squeezenet1_0_imagenet.yaml", "squeezenet1_1_imagenet.yaml",
         "shufflenet_v2_imagenet.yaml", "shufflenet_v2_x0_5_imagenet.yaml"}


def _model_cfg(name: str) -> dict:
    return yaml.safe_load((ZOO / name).read_text(encoding="utf-8"))["model"]


def _params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_zoo_covers_every_backbone_as_det_and_rec() -> None:
    used = {_model_cfg(n)["backbone"]["name"] for n in ZOO_CONFIGS}
    assert set(ZOO_BACKBONES) <= used <= set(BACKBONES)
    kinds = {n.rsplit("_", 1)[1] for n in ZOO_CONFIGS}
    assert kinds == {"det.yaml", "rec.yaml", "imagenet.yaml"}
    assert set(PUBLISHED) <= set(ZOO_CONFIGS)


def _batch(name: str) -> tuple[torch.Tensor, tuple[int, ...]]:
    if name.endswith("_det.yaml"):
        return torch.randn(2, 3, 32, 64), (2, 1, 32, 64)
    if name.endswith("_rec.yaml"):
        steps = 17 if name.startswith("crnn_vgg") else 16  # the seed's trunk gives W/4 + 1 columns
        return torch.randn(2, 3, 32, 64), (2, steps, 6625)
    return torch.randn(2, 3, 32, 32), (2, 1000)


@pytest.mark.parametrize("name", ZOO_CONFIGS)
def test_zoo_config_loads_runs_and_trains(name: str) -> None:
    """Every zoo config runs; the trainable ones (det, rec) also give every parameter a gradient."""
    stage = load_stage_config(str(ZOO / name))
    assert stage["weights"] is None
    torch.manual_seed(0)
    net = build_model(stage["model"])
    x, expected = _batch(name)
    with torch.no_grad():
        out = net.eval()(x)
    assert out.shape == expected and torch.isfinite(out).all()
    if name.endswith("_imagenet.yaml"):
        return  # parameter-count references, not OCR stages
    out = net.train().forward_train(x)
    loss = out.mean() if name.endswith("_det.yaml") else out.log_softmax(-1).mean()
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_imagenet_parameter_counts_match_published(name: str) -> None:
    count = _params(build_model(_model_cfg(name)))
    assert abs(count - PUBLISHED[name]) / PUBLISHED[name] < 0.01, count
    if name in EXACT:
        assert count == PUBLISHED[name]


@pytest.mark.parametrize(
    ("separable", "params"), [(False, 5_551_360), (True, 781_450)], ids=["plain", "depthwise_separable"]
)
def test_seed_crnn_trunk_params_and_shapes(separable: bool, params: int) -> None:
    net = CRNNVGG(in_channels=1, separable=separable).eval()
    assert _params(net) == params
    x = torch.zeros(1, 1, 32, 320)
    shapes = []
    with torch.no_grad():
        for unit in net.units:  # the seed prints after pool0, pool1, relu2, pool3, relu4, pool5, relu6
            x = unit(x)
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(64, 16, 160), (128, 8, 80), (256, 8, 80), (256, 4, 81), (512, 4, 81), (512, 2, 82), (512, 1, 81)]


DET_CASES = [
    ({"name": "MobileNetV1"}, [128, 256, 512, 1024]),
    ({"name": "MobileNetV2"}, [24, 32, 96, 1280]),
    ({"name": "PPLCNet"}, [64, 128, 256, 512]),
    ({"name": "ShuffleNetV2"}, [24, 116, 232, 1024]),
    ({"name": "SqueezeNet", "version": "1_0"}, [256, 512, 512]),
]


@pytest.mark.parametrize(("cfg", "channels"), DET_CASES, ids=[c["name"] for c, _ in DET_CASES])
def test_det_mode_gives_stride_4_to_32_maps(cfg: dict, channels: list[int]) -> None:
    net = build("backbone", cfg).eval()
    assert net.out_channels == channels
    with torch.no_grad():
        maps = net(torch.zeros(1, 3, 32, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [(c, 32 // 2**i, 64 // 2**i) for i, c in enumerate(channels, 2)]


@pytest.mark.parametrize("cfg", [c for c, _ in DET_CASES] + [{"name": "MobileNetV3", "model_name": "small"}],
                         ids=[c["name"] for c, _ in DET_CASES] + ["MobileNetV3"])
def test_rec_mode_collapses_height_and_keeps_quarter_width(cfg: dict) -> None:
    net = build("backbone", {**cfg, "mode": "rec"}).eval()
    with torch.no_grad():
        out = net(torch.zeros(1, 3, 32, 64))
    assert out.shape == (1, net.out_channels, 1, 16)


def test_width_multiplier_override_shrinks_the_net() -> None:
    stage = load_stage_config(str(ZOO / "mobilenet_v1_imagenet.yaml"))
    smaller = apply_overrides(stage, ["model.backbone.scale=0.75"])
    assert smaller["model"]["backbone"]["scale"] == 0.75
    assert _params(build_model(smaller["model"])) < _params(build_model(stage["model"]))


def test_mobilenet_v1_resolution_multiplier_resizes_the_input() -> None:
    net = build("backbone", {"name": "MobileNetV1", "resolution": 0.5}).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 64, 64))[-1].shape[-1] == 1


@pytest.mark.parametrize(
    ("backbone", "match"),
    [
        ({"name": "MobileNetV2", "depth": 2}, "unknown key.*depth.*allowed: in_channels, scale"),
        ({"name": "MobileNet"}, "unknown backbone 'MobileNet'.*MobileNetV2"),
        ({"name": "ShuffleNetV2", "scale": 0.75}, "scale must be one of"),
        ({"name": "SqueezeNet", "version": "1.1"}, "version must be one of 1_0, 1_1"),
        ({"name": "PPLCNet", "mode": "cls"}, "mode must be one of det, rec; got 'cls'"),
        ({"name": "CRNNVGG", "mode": "det"}, "mode must be one of rec"),
    ],
)
def test_bad_zoo_settings_are_one_line_config_errors(backbone: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        build_model({"backbone": backbone, "head": {"name": "ClassifierHead"}})
    assert "\n" not in str(info.value)


def test_zoo_configs_resolve_by_relative_name_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config("zoo/mobilenet_v2_det.yaml").resolve() == (ZOO / "mobilenet_v2_det.yaml").resolve()
