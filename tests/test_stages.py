"""The stage layer: one precedence for settings, validated values, class counts from the charset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ocrlite.errors import ConfigError
from ocrlite.settings import DetPreprocess, build_settings
from ocrlite.stages import command_stage, pipeline_spec, stage_spec

WEIGHTS = Path(__file__).resolve().parents[1] / "ocrlite" / "weights"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_precedence_default_manifest_yaml_override(tmp_path: Path) -> None:
    """A value comes from the dataclass default < manifest < YAML < --set."""
    for name in ("det_ppocrv3.safetensors", "det_ppocrv3.json"):
        shutil.copy(WEIGHTS / name, tmp_path / name)
    manifest = json.loads((tmp_path / "det_ppocrv3.json").read_text())
    manifest["postprocess"] = {"box_thresh": 0.61, "unclip_ratio": 1.7}
    (tmp_path / "det_ppocrv3.json").write_text(json.dumps(manifest))
    config = tmp_path / "det.yaml"
    config.write_text((CONFIGS / "det_ppocrv3.yaml").read_text().split("postprocess:")[0]
                      + "postprocess:\n  unclip_ratio: 1.8\n  thresh: 0.25\n")
    spec = stage_spec("det", config)
    assert spec.weights == tmp_path / "det_ppocrv3.safetensors"  # beside the config comes first
    assert spec.post.box_thresh == 0.61  # manifest over default (0.6)
    assert spec.post.unclip_ratio == 1.8  # YAML over manifest
    assert spec.post.max_candidates == 1000  # default
    assert stage_spec("det", config, ["postprocess.thresh=0.2"]).post.thresh == 0.2  # --set over YAML


def test_values_are_checked_by_type_choice_and_range() -> None:
    assert build_settings(DetPreprocess, "det.preprocess", {"limit_side_len": 640}).limit_side_len == 640
    for values, message in [
        ({"limit_side_len": "big"}, "det.preprocess.limit_side_len: expected an integer, got 'big'"),
        ({"limit_side_len": True}, "expected an integer, got True"),
        ({"limit_side_len": 8}, "det.preprocess.limit_side_len: 8 is out of range; allowed: 32..8192"),
        ({"mean": [0.5, 0.5]}, "det.preprocess.mean: expected 3 values, got 2"),
        ({"std": [0.5, 0.0, 0.5]}, "det.preprocess.std: (0.5, 0.0, 0.5) is out of range"),
        ({"size": 3}, "det.preprocess: unknown key 'size'; allowed: limit_side_len, limit_type, mean, std"),
    ]:
        with pytest.raises(ConfigError) as caught:
            build_settings(DetPreprocess, "det.preprocess", values)
        assert message in str(caught.value)


def test_ctc_class_count_comes_from_the_charset() -> None:
    spec = pipeline_spec()
    assert spec.rec.model["head"]["out_channels"] == len(spec.rec.charset) == 6625
    with pytest.raises(ConfigError, match="out_channels: 97 does not match the charset's 6625 classes"):
        stage_spec("rec", None, ["model.head.out_channels=97"])


def test_a_stage_config_takes_overrides_with_or_without_its_prefix() -> None:
    plain = command_stage("det", "det_ppocrv3.yaml", ["postprocess.box_thresh=0.4"])
    prefixed = command_stage("det", "det_ppocrv3.yaml", ["det.postprocess.box_thresh=0.4"])
    assert plain is not None and prefixed is not None
    assert plain.post.box_thresh == prefixed.post.box_thresh == 0.4
    with pytest.raises(ConfigError, match="does not apply to the det stage config"):
        command_stage("det", "det_ppocrv3.yaml", ["rec.preprocess.height=32"])
    preset = command_stage("cls", None, [], model="ppocr-v4")
    assert preset is not None and preset.kind == "cls"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("det.model.neck.out_channels=-4",
         "det.model.neck RSEFPN: cannot build with out_channels: -4 must be positive"),
        ("det.model.head.k=abc", "det.model.head DBHead: cannot build with k: expected a finite number, got 'abc'"),
        ("det.model.backbone.mode=rec",
         "det.model.neck RSEFPN: takes a list of feature maps (a backbone in det mode)"),
        ("rec.model.neck=null",
         "rec.model.head CTCHead: takes a sequence [N, T, C], but rec.model.backbone MobileNetV1E"),
    ],
)
def test_bad_model_sections_fail_when_the_pipeline_is_built(override: str, message: str) -> None:
    """The Python API: a ConfigError naming the block when OCR() builds its nets (a RuntimeError traceback,
    a silent success or a failure at the first image before)."""
    from ocrlite.api import OCR

    with pytest.raises(ConfigError) as caught:
        OCR(overrides=[override])
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_net_is_tried_on_its_input_size_only_when_not_its_weights_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a shipped recognizer or classifier at the size its weights' manifest gives runs no trial batch
    (start-up time); another height is tried, and one the net cannot take is a ConfigError."""
    import ocrlite.stages

    tried: list[tuple[int, int]] = []
    takes = ocrlite.stages._takes
    monkeypatch.setattr(ocrlite.stages, "_takes", lambda net, h, w: tried.append((h, w)) or takes(net, h, w))
    stage_spec("rec").build_net()
    stage_spec("cls").build_net()
    assert tried == []
    stage_spec("rec", overrides=["preprocess.height=40"]).build_net()
    assert tried == [(40, 320)]
    with pytest.raises(ConfigError, match="the largest that works is 48"):
        stage_spec("rec", overrides=["preprocess.height=49"]).build_net()
