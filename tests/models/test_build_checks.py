"""Model arguments are checked where blocks are built (registry.build, OCRModel): every bad value or block that
does not connect is a one-line ConfigError naming its section, raised at build time, with no torch warning."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from ocrlite.errors import ConfigError
from ocrlite.models import build_model
from ocrlite.registry import build

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHIPPED = sorted(
    p.relative_to(CONFIGS).as_posix()
    for p in [*CONFIGS.glob("*.yaml"), *CONFIGS.glob("zoo/*.yaml"), *CONFIGS.glob("train/*.yaml")]
    if "model" in yaml.safe_load(p.read_text(encoding="utf-8"))
)


def _model(config: str) -> dict:
    return copy.deepcopy(yaml.safe_load((CONFIGS / config).read_text(encoding="utf-8"))["model"])


def _error(config: str, part: str | None = None, value: object = None, **changes: object) -> str:
    """The one-line message of building ``config``'s model with ``changes`` in section ``part`` (or ``part``
    replaced by ``value`` when no changes are given), with every warning an error."""
    cfg = _model(config)
    if part is not None and changes:
        cfg[part] = {**cfg[part], **changes}
    elif part is not None:
        cfg[part] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError) as caught:
            build_model(cfg, "det.model" if config.startswith("det") else "rec.model")
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("config", "part", "changes", "expected"),
    [
        ("det_ppocrv3.yaml", "neck", {"out_channels": -4}, "det.model.neck RSEFPN: cannot build with out_channels: -4"),
        ("det_ppocrv3.yaml", "backbone", {"in_channels": -1}, "det.model.backbone MobileNetV3: cannot build with in_"),
        ("det_ppocrv3.yaml", "head", {"mid_channels": -2}, "det.model.head DBHead: cannot build with mid_channels: -2"),
        ("rec_ppocrv2.yaml", "head", {"mid_channels": -5}, "rec.model.head CTCHead: cannot build with mid_channels"),
        ("rec_ppocrv2.yaml", "backbone", {"scale": -0.5}, "MobileNetV1Enhance: cannot build with scale: -0.5 must"),
        ("rec_ppocrv3.yaml", "neck", {"dims": -8}, "rec.model.neck SVTREncoder: cannot build with dims: -8 must be"),
        ("rec_ppocrv3.yaml", "neck", {"mlp_ratio": -1}, "SVTREncoder: cannot build with mlp_ratio: -1 must be posi"),
        ("rec_ppocrv3.yaml", "neck", {"num_heads": 7}, "SVTREncoder: num_heads: 7 does not divide the attention wi"),
        ("rec_ppocrv3.yaml", "neck", {"depth": -1}, "SVTREncoder: cannot build with depth: -1 must be 0 or more"),
        ("rec_ppocrv3.yaml", "neck", {"kernel_size": [1, 4]}, "cannot build with kernel_size: [1, 4]: 4 must be odd"),
        ("rec_ppocrv6_tiny.yaml", "neck", {"kernel_size": -1}, "ConvMixNeck: cannot build with kernel_size: -1 must"),
        ("det_ppocrv6_tiny.yaml", "backbone", {"blocks": []}, "RepMixerNet: blocks: expected a non-empty list of [in,"),
        ("det_ppocrv6_tiny.yaml", "backbone", {"blocks": [[32, 32, 1, True], [31, 48, 2, False]]},
         "RepMixerNet: blocks[1]: takes 31 channels, but the row before gives 32"),
        ("det_ppocrv3.yaml", "neck", {"shortcut": "maybe"}, "RSEFPN: cannot build with shortcut: expected true or"),
        ("det_ppocrv3.yaml", "head", {"k": "abc"}, "det.model.head DBHead: cannot build with k: expected a finite num"),
        ("det_ppocrv3.yaml", "head", {"k": float("nan")}, "DBHead: cannot build with k: expected a finite number, got"),
        ("det_ppocrv3.yaml", "neck", {"widths": 5}, "RSEFPN: cannot build with widths: expected a mapping or null"),
        ("det_ppocrv3.yaml", "neck", {"widths": {"lateral": True}},
         "det.model.neck RSEFPN: widths.lateral: expected a positive integer, got True"),
        ("det_ppocrv3.yaml", "neck", {"widths": {"outputs": [True, 24, 24, 24]}},
         "RSEFPN: widths.outputs: expected 4 positive integers, got [True, 24, 24, 24]"),
        ("det_ppocrv3.yaml", "backbone", {"widths": {"last": True}},
         "det.model.backbone MobileNetV3: widths.last: expected a positive integer, got True"),
        ("det_ppocrv3.yaml", "head", {"in_channels": 5}, "DBHead: in_channels is set by the block before this one"),
        ("rec_ppocrv2.yaml", "backbone", {"last_conv_stride": [1, 2, 3]},
         "MobileNetV1Enhance: last_conv_stride: expected an integer or [h, w], got [1, 2, 3]"),
        ("rec_ppocrv2.yaml", "backbone", {"last_conv_stride": True}, "cannot build with last_conv_stride: expected an"),
        ("rec_ppocrv2.yaml", "backbone", {"mode": "det"}, "rec.model.backbone MobileNetV1Enhance: mode must be one of"),
        ("det_ppocrv4.yaml", "head", {"name": "FusedDBHead"},  # DBHead's k: FusedDBHead's list of them was empty
         "det.model.head FusedDBHead: unknown key(s) k; allowed: none (it takes no arguments)"),
    ],
)
def test_bad_model_arguments_are_one_line_config_errors(config: str, part: str, changes: dict, expected: str) -> None:
    """Each was a RuntimeError/IndexError traceback, or silently accepted (shortcut, k, last_conv_stride)."""
    assert expected in _error(config, part, **changes)


@pytest.mark.parametrize(
    ("config", "part", "changes", "expected"),
    [
        ("det_ppocrv3.yaml", "neck", {"out_channels": 0}, "det.model.neck RSEFPN: cannot build with out_channels: 0"),
        ("det_ppocrv3.yaml", "neck", {"out_channels": 2}, "layer ins_conv.0.se.conv1.weight would have no channels"),
        ("rec_ppocrv3.yaml", "neck", {"mlp_ratio": 0.001}, "layer blocks.0.mlp.0.weight would have no channels"),
        ("rec_ppocrv2.yaml", "head", {"mid_channels": 0}, "rec.model.head CTCHead: cannot build with mid_channels: 0"),
    ],
)
def test_zero_sizes_are_config_errors_before_torch_warns(config: str, part: str, changes: dict, expected: str) -> None:
    """A zero size printed three lines of torch UserWarning, then failed as a weights shape mismatch."""
    assert expected in _error(config, part, **changes)  # _error turns any warning into a failure


@pytest.mark.parametrize(
    ("config", "part", "value", "expected"),
    [
        ("det_ppocrv3.yaml", "backbone", {"name": "MobileNetV3", "scale": 0.5, "model_name": "large", "mode": "rec"},
         "det.model.neck RSEFPN: takes a list of feature maps (a backbone in det mode), but det.model.backbone "
         "MobileNetV3 gives one feature map"),
        ("det_ppocrv3.yaml", "neck", None,
         "det.model.head DBHead: takes one feature map [N, C, H, W], but det.model.backbone MobileNetV3 gives 4 "
         "feature maps ([16, 24, 56, 480] channels)"),
        ("rec_ppocrv2.yaml", "neck", None,
         "rec.model.head CTCHead: takes a sequence [N, T, C], but rec.model.backbone MobileNetV1Enhance gives one "
         "feature map"),
        ("rec_ppocrv6_small.yaml", "neck", None, "rec.model.head CTCHead: takes a sequence"),
        ("rec_ppocrv2.yaml", "head", {"name": "DBHead"},
         "rec.model.head DBHead: takes one feature map [N, C, H, W], but rec.model.neck SequenceEncoder gives a seq"),
        ("det_ppocrv3.yaml", "head", {"name": "CTCHead"}, "det.model.head CTCHead: takes a sequence [N, T, C], but "),
    ],
)
def test_blocks_that_do_not_connect_fail_at_build(config: str, part: str, value: object, expected: str) -> None:
    """These failed inside the next block's constructor with an unrelated message, or (a rec model without a
    neck) built and failed at its first forward pass."""
    assert expected in _error(config, part, value)


def test_model_errors_name_the_section_given_and_default_to_model() -> None:
    cfg = _model("rec_ppocrv2.yaml")
    cfg["neck"] = None
    with pytest.raises(ConfigError, match=r"^model\.head CTCHead: takes a sequence"):
        build_model(cfg)
    with pytest.raises(ConfigError, match=r"^model: expected a mapping"):
        build_model(5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^backbone MobileNetV1: cannot build with scale: 0 must be positive"):
        build("backbone", {"name": "MobileNetV1", "scale": 0})
    with pytest.raises(ConfigError, match=r"^x\.neck: unknown neck 'Nope'; choose one of: "):
        build("neck", {"name": "Nope"}, section="x.neck", in_channels=8)
    with pytest.raises(ConfigError, match=r"^x\.neck: no name given \(keys: nme, out_channels\); add name: one of "
                                          r"ConvMixNeck, .*, RSEFPN, "):  # it said "unknown neck None"
        build("neck", {"nme": "RSEFPN", "out_channels": 96}, section="x.neck", in_channels=8)


def test_any_construction_failure_is_a_config_error() -> None:
    """An exotic value the generic rules do not cover still ends as one line naming the block."""
    with pytest.raises(ConfigError, match=r"^rec\.model\.backbone MobileNetV1Enhance: cannot build with .*scale"):
        build("backbone", {"name": "MobileNetV1Enhance", "scale": 0.001}, section="rec.model.backbone")


def test_arguments_are_checked_against_annotations() -> None:
    ok = {"name": "CTCHead", "out_channels": 10}
    assert build("head", {**ok, "mid_channels": None}, in_channels=8).out_channels == 10  # Optional: null is fine
    for value, message in [
        (2.5, "mid_channels: expected an integer or null, got 2.5"),
        (True, "mid_channels: expected an integer or null, got True"),
        ("8", "mid_channels: expected an integer or null, got '8'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            build("head", {**ok, "mid_channels": value}, in_channels=8)
    assert build("head", {"name": "DBHead", "k": 50}, in_channels=96).k == 50  # an int for a float stays as given
    with pytest.raises(ConfigError, match=r"dropout: 1\.0 must be in \[0, 1\)"):
        build("head", {"name": "ClassifierHead", "dropout": 1.0}, in_channels=8)


@pytest.mark.parametrize("config", SHIPPED)
def test_every_shipped_config_builds_without_warnings(config: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = build_model(_model(config))
    assert sum(p.numel() for p in net.parameters()) > 0 and all(p.numel() > 0 for p in net.parameters())


def test_connection_check_keeps_rec_nets_running() -> None:
    """The wiring check is static: a rec net with a sequence neck still runs as before."""
    net = build_model(_model("rec_ppocrv2.yaml")).eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 32, 64)).shape == (1, 16, 6625)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "det.model.neck.out_channels=-4"],
         "error: det.model.neck RSEFPN: cannot build with out_channels: -4 must be"),
        (["--set", "det.model.neck.shortcut=maybe"],
         "error: det.model.neck RSEFPN: cannot build with shortcut: expected true"),
        (["--set", "rec.model.neck=null"],
         "error: rec.model.head CTCHead: takes a sequence [N, T, C], but rec.model.backbone Mob"),
        (["--model", "ppocr-v6-tiny", "--set", "det.model.backbone.blocks=[]"], "RepMixerNet: blocks: expected a"),
    ],
)
def test_the_cli_says_one_line_and_exits_2(args: list[str], expected: str) -> None:
    from click.testing import CliRunner

    from ocrlite.cli import main

    sample = Path(__file__).resolve().parents[1] / "images" / "sample.png"
    result = CliRunner().invoke(main, ["ocr", str(sample), *args])
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocrlite: error: ") and expected in lines[0]
