"""``train``/``distill`` read ``--set`` keys as every command does: the pipeline-tree prefix may be given."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ocrlite.cli import main
from ocrlite.errors import ConfigError
from ocrlite.train.cls_task import ClsAugmentSettings
from ocrlite.train.det_task import DetAugmentSettings, DetLossSettings
from ocrlite.train.run import load_training_config
from ocrlite.train.settings import from_mapping

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "train" / "rec_ppocrv2_en.yaml")


def test_stage_prefix_is_dropped_from_training_overrides() -> None:
    stage = load_training_config(CONFIG, ["rec.train.steps=10", "train.batch_size=4"])
    assert (stage["train"]["steps"], stage["train"]["batch_size"]) == (10, 4)
    stage = load_training_config(CONFIG, ["rec.train.distill.weight=0.5"], teacher="ppocr-v2", distill=True)
    assert stage["train"]["distill"] == {"weight": 0.5, "teacher": "ppocr-v2"}
    with pytest.raises(ConfigError, match="'det.train.steps=10' does not apply to the rec stage config"):
        load_training_config(CONFIG, ["det.train.steps=10"])


@pytest.mark.parametrize("command", ["train", "distill"])
def test_train_commands_take_prefixed_keys(command: str, tmp_path: Path) -> None:
    """The prefixed key reaches the config: a bad task named through it is the trainer's own one-line error."""
    teacher = ["--teacher", "ppocr-v2"] if command == "distill" else []
    result = CliRunner().invoke(main, [command, CONFIG, *teacher, "-o", str(tmp_path / "run"), "-q",
                                       "--set", "rec.train.task=bogus"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "ocrlite: error: train.task must be one of rec, det, cls, got 'bogus'\n"


@pytest.mark.parametrize(("section", "values", "message"), [
    (DetLossSettings, {"main_loss": "foo"}, "train.loss.main_loss must be dice or bce"),
    (DetAugmentSettings, {"scale_min": 3, "scale_max": 1}, "train.augment.scale_min and scale_max"),
    (DetAugmentSettings, {"size": 0}, "train.augment.size must be at least 32"),
    (ClsAugmentSettings, {"num_ops": -1}, "train.augment.num_ops must be 0 or more"),
])
def test_out_of_range_training_settings_are_config_errors(section: type, values: dict, message: str) -> None:
    """Each was a traceback deep in the data loader or the loss (exit 1), not one line (exit 2)."""
    with pytest.raises(ConfigError, match=message):
        from_mapping(section, "train", values)


@pytest.mark.parametrize("name", ["sub/x", "../escaped", ".."])
def test_an_export_name_with_folders_is_refused(tmp_path: Path, name: str) -> None:
    run = CliRunner().invoke(main, ["train", CONFIG, "-o", str(tmp_path / "run"), "--name", name])
    assert run.exit_code == 2 and "must be a plain file name" in run.output and not (tmp_path / "run").exists()


def test_a_freeze_prefix_that_names_no_module_is_an_error() -> None:
    """A typo in train.freeze trained the whole net without a word."""
    from torch import nn

    from ocrlite.train.trainer import freeze_modules

    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4))
    with pytest.raises(ConfigError, match="train.freeze: 'bogus.module' names no module"):
        freeze_modules(net, ["bogus.module"])
    freeze_modules(net, ["0"])
    assert not net[0].weight.requires_grad and net[1].weight.requires_grad
