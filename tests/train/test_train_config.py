"""``train``/``distill`` read ``--set`` keys as every command does: the pipeline-tree prefix may be given."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from tiny_crnn import SYNTH_EN, tiny_crnn

from ocrlite.cli import main
from ocrlite.errors import ConfigError
from ocrlite.settings import build_settings
from ocrlite.train.cls_task import ClsAugmentSettings, ClsData
from ocrlite.train.det_task import DetAugmentSettings, DetData, DetLossSettings
from ocrlite.train.run import load_training_config
from ocrlite.train.trainer import TrainSettings

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "train" / "rec_ppocrv2_en.yaml")


def test_stage_prefix_is_dropped_from_training_overrides() -> None:
    stage = load_training_config(CONFIG, ["rec.train.steps=10", "train.batch_size=4"])
    assert (stage["train"]["steps"], stage["train"]["batch_size"]) == (10, 4)
    stage = load_training_config(CONFIG, ["rec.train.distill.weight=0.5"], teacher="ppocr-v2", distill=True)
    assert stage["train"]["distill"] == {"weight": 0.5, "teacher": "ppocr-v2"}
    with pytest.raises(ConfigError, match="'det.train.steps=10' does not apply to the rec stage config"):
        load_training_config(CONFIG, ["det.train.steps=10"])


def test_a_key_of_a_section_the_config_lacks_makes_the_section() -> None:
    """``--set train.distill.teacher=X`` on a config without ``distill:`` said "train has no section 'distill'"
    while ``--set 'train.distill={teacher: X}'`` worked; a misspelt section is still refused, with the closest."""
    stage = load_training_config(CONFIG, ["train.distill.teacher=ppocr-v2", "rec.train.qat.bits=8"])
    assert stage["train"]["distill"] == {"teacher": "ppocr-v2"} and stage["train"]["qat"] == {"bits": 8}
    with pytest.raises(ConfigError, match=r"^override train.distil.teacher: train has no section 'distil'; "
                                          r"did you mean train.distill\? allowed: .*\bdistill\b"):
        load_training_config(CONFIG, ["train.distil.teacher=ppocr-v2"])
    with pytest.raises(ConfigError, match="has no section 'bogus'"):
        load_training_config(CONFIG, ["train.bogus.x=1"])


def test_train_validates_a_section_made_by_an_override(tmp_path: Path) -> None:
    """The made section is checked like one in the file: here its teacher, through ``ocrlite train``."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_crnn(SYNTH_EN)), encoding="utf-8")
    result = CliRunner().invoke(main, ["train", str(config), "-o", str(tmp_path / "run"), "-q",
                                       "--set", "train.distill.teacher=nope"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("ocrlite: error: train.distill.teacher: 'nope' is neither a preset")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["train", "distill"])
def test_train_commands_take_prefixed_keys(command: str, tmp_path: Path) -> None:
    """The prefixed key reaches the config: a bad task named through it is the trainer's own one-line error."""
    teacher = ["--teacher", "ppocr-v2"] if command == "distill" else []
    result = CliRunner().invoke(main, [command, CONFIG, *teacher, "-o", str(tmp_path / "run"), "-q",
                                       "--set", "rec.train.task=bogus"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "ocrlite: error: train.task must be one of rec, det, cls, got 'bogus'\n"


@pytest.mark.parametrize(("cls", "section", "values", "message"), [
    (DetLossSettings, "train.loss", {"main_loss": "foo"},
     "train.loss.main_loss: 'foo' is not allowed; choose one of: dice, bce"),
    (DetLossSettings, "train.loss", {"shrink_ratio": 1},
     "train.loss.shrink_ratio: 1.0 is out of range; allowed: more than 0 and less than 1"),
    (DetLossSettings, "train.loss", {"thresh_min": 0.7, "thresh_max": 0.3}, "train.loss.thresh_min and thresh_max"),
    (DetAugmentSettings, "train.augment", {"scale_min": 3, "scale_max": 1}, "train.augment.scale_min and scale_max"),
    (DetAugmentSettings, "train.augment", {"size": 0}, "train.augment.size: 0 is out of range; allowed: 64.."),
    (DetAugmentSettings, "train.augment", {"flip": 1.5}, "train.augment.flip: 1.5 is out of range; allowed: 0.0..1.0"),
    (ClsAugmentSettings, "train.augment", {"num_ops": -1}, "train.augment.num_ops: -1 is out of range; allowed: 0.."),
    # a negative count acted as "all" (limit > 0 / eval_limit > 0 guarded the cut) or kept every crop (min_width)
    (DetData, "train.data", {"limit": -1}, "train.data.limit: -1 is out of range; allowed: 0.."),
    (ClsData, "train.data", {"eval_limit": -5}, "train.data.eval_limit: -5 is out of range; allowed: 0.."),
    (ClsData, "train.data", {"min_width": -8}, "train.data.min_width: -8 is out of range; allowed: 0.."),
    # a negative split period silently acted as 0 (nothing held out / no validation split)
    (DetData, "train.data", {"holdout_every": -5}, "train.data.holdout_every: -5 is out of range; allowed: 0.."),
    (ClsData, "train.data", {"val_every": -1}, "train.data.val_every: -1 is out of range; allowed: 0.."),
])
def test_out_of_range_training_settings_are_config_errors(cls: type, section: str, values: dict, message: str) -> None:
    """Each was a traceback deep in the data loader or the loss (exit 1), not one line (exit 2)."""
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}") as caught:
        build_settings(cls, section, values)
    assert "\n" not in str(caught.value)


def test_a_list_of_strings_takes_a_lone_string_and_refuses_other_items() -> None:
    """``train.freeze=backbone.stem`` (a lone string) is a one-item list; a list of numbers is one line naming it."""
    assert TrainSettings.from_stage({"train": {"freeze": "backbone.stem"}}).freeze == ["backbone.stem"]
    assert TrainSettings.from_stage({"train": {"freeze": ["a", "b"]}}).freeze == ["a", "b"]
    for bad in ([1, 2], 5):
        with pytest.raises(ConfigError) as caught:
            TrainSettings.from_stage({"train": {"freeze": bad}})
        assert str(caught.value) == f"train.freeze: expected a list of str, got {bad!r}"


@pytest.mark.parametrize("section", [[1], "steps", 5])
def test_a_training_section_that_is_no_mapping_is_one_line(section: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        TrainSettings.from_stage({"train": section})
    assert str(caught.value) == f"train must be a mapping, got {section!r}"
    with pytest.raises(ConfigError) as caught:
        build_settings(DetLossSettings, "train.loss", section)
    assert str(caught.value) == f"train.loss must be a mapping, got {section!r}"


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


def test_freezing_every_module_is_one_line_not_a_backward_traceback(tmp_path: Path) -> None:
    """train.freeze=[backbone, neck, head] left nothing to train: the first backward pass raised 'element 0 of
    tensors does not require grad' as a traceback."""
    import yaml
    from tiny_crnn import SYNTH_EN, tiny_crnn

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_crnn({**SYNTH_EN, "steps": 1, "batch_size": 2, "workers": 0})))
    run = CliRunner().invoke(main, ["--threads", "1", "train", str(config), "-o", str(tmp_path / "run"), "-q",
                                    "--set", "train.freeze=[backbone, neck, head]"])
    assert (run.exit_code, run.output) == (
        2, "ocrlite: error: train.freeze: backbone, neck, head leaves no parameter of the net to train\n")


SECTIONS = "task, data, augment, center_loss, loss, distill, qat"


@pytest.mark.parametrize(("task", "key", "meant"), [
    ("det", "eval_on", " did you mean train.data.eval_on?"), ("cls", "eval_on", " did you mean train.data.eval_on?"),
    ("rec", "eval_on", ""),  # a rec task's data has no eval_on
    ("det", "main_loss", " did you mean train.loss.main_loss?"),
    (None, "teacher", " did you mean train.distill.teacher?"),
    ("bogus", "eval_on", " did you mean train.data.eval_on?"), ("rec", "stepz", ""),
])
def test_an_unknown_training_key_lists_the_sections_too_and_says_where_it_belongs(task: str | None, key: str,
                                                                                  meant: str) -> None:
    """The list left the sections out, so ``--set train.eval_on=val`` did not point to ``train.data.eval_on``."""
    with pytest.raises(ConfigError) as caught:
        TrainSettings.from_stage({"train": {"task": task, "steps": 5, key: 1}})
    assert str(caught.value) == (f"train: unknown key {key!r};{meant} allowed: steps, batch_size, optimizer, lr, "
                                 "weight_decay, beta1, beta2, warmup_steps, min_lr, clip_grad_norm, freeze_bn, freeze, "
                                 "amp, channels_last, seed, workers, eval_every, save_every, log_every, " + SECTIONS)


def test_train_names_the_section_of_a_misplaced_key(tmp_path: Path) -> None:
    config = str(Path(CONFIG).with_name("det_ppocrv3_ic15.yaml"))
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", config, "-o", str(run), "-q", "--set", "train.eval_on=val"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("ocrlite: error: train: unknown key 'eval_on'; did you mean train.data.eval_on? ")
    assert result.stderr.endswith(f", log_every, {SECTIONS}\n") and not run.exists()


def test_a_bad_section_key_leaves_no_empty_run_folder(tmp_path: Path) -> None:
    """The task's sections are read after the run folder is made: a failed start removes it while empty."""
    config = str(Path(CONFIG).with_name("det_ppocrv3_ic15.yaml"))
    run = tmp_path / "new" / "run"
    result = CliRunner().invoke(main, ["train", config, "-o", str(run), "-q", "--set", "train.data.eval_onn=val"])
    assert result.exit_code == 2 and "train.data: unknown key 'eval_onn'" in result.stderr
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize(("config", "key"), [("det_ppocrv3_ic15.yaml", "limit"), ("cls_funsd.yaml", "eval_limit"),
                                             ("cls_funsd.yaml", "min_width")])
def test_a_negative_data_count_is_one_line_before_any_data_is_read(config: str, key: str, tmp_path: Path) -> None:
    path = str(Path(CONFIG).parent / config)
    result = CliRunner().invoke(main, ["train", path, "-o", str(tmp_path / "run"), "-q",
                                       "--set", f"train.data.{key}=-1", "--set", f"train.data.root={tmp_path}"])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"ocrlite: error: train.data.{key}: -1 is out of range; allowed: 0..\n"
