"""Run folders and resume: a folder holding a run is refused, checkpoints carry the best weights and are
checked against the resuming run, pruning goes by step, resumed logs hold each step once, and the data
manifest is one ``eval --split`` reads."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file
from tiny_crnn import tiny_crnn
from torch import nn

from ocrlite.charset import Charset
from ocrlite.cli import main
from ocrlite.errors import ConfigError
from ocrlite.files import find_charset
from ocrlite.stages import load_stage_config
from ocrlite.train.checkpoint import load_checkpoint, save_checkpoint
from ocrlite.train.cls_task import ClsTask
from ocrlite.train.rec_task import RecTask
from ocrlite.train.synth import write_synth_set
from ocrlite.train.trainer import TrainSettings, check_resume, train

CHARSET = Charset.from_file(find_charset("ppocr_keys_v1.txt", None, None), use_space_char=True)


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synth_set(tmp_path_factory.mktemp("synth"), 12, CHARSET, lang="en", seed=3)


def _stage(labels: Path | str, steps: int, evaluate: bool = True, **train: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"train": [str(labels)], **({"eval": str(labels), "eval_limit": 4} if evaluate else {})}
    section = {"task": "rec", "data": data, "steps": steps, "batch_size": 3, "lr": 1e-3, "warmup_steps": 1,
               "eval_every": 2, "save_every": 2, "log_every": 1, "freeze_bn": True, **train}
    return {**tiny_crnn(section), "_dir": None}


def _config(tmp_path: Path, labels: Path | str) -> Path:
    stage = _stage(labels, 4)
    stage.pop("_dir")
    path = tmp_path / "tiny_rec.yaml"
    path.write_text(yaml.safe_dump(stage), encoding="utf-8")
    return path


def _train_cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["--threads", "1", "train", *args, "-q"])


def _logged_steps(run: Path) -> list[int]:
    with open(run / "log.csv", encoding="utf-8", newline="") as fh:
        return [int(row["step"]) for row in csv.DictReader(fh)]


def _same(a: Path, b: Path) -> bool:
    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


class _Scripted(RecTask):
    """A rec task whose evaluations score what the test scripts (to make a chosen step the best)."""

    def __init__(self, stage: dict[str, Any], scores: list[float], ned: list[float] | None = None) -> None:
        super().__init__(stage, 3)
        self.scores, self.ned = iter(scores), iter(ned) if ned is not None else None

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return {"word_acc": next(self.scores), **({"one_minus_ned": next(self.ned)} if self.ned else {})}


def test_a_folder_that_holds_a_run_is_refused_unless_resumed(labels: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config, run = str(_config(tmp_path, labels)), tmp_path / "run"
    assert _train_cli(config, "-o", str(run)).exit_code == 0
    before = (run / "log.csv").read_bytes(), (run / "best.safetensors").read_bytes()
    again = _train_cli(config, "-o", str(run), "--set", "train.steps=2")
    assert again.exit_code == 2
    assert again.output == (f"ocrlite: error: {run} already holds a training run (checkpoints): continue it with "
                            f"--resume {run} or train into another folder\n")
    assert ((run / "log.csv").read_bytes(), (run / "best.safetensors").read_bytes()) == before
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["LATEST", "step_0000002", "step_0000004"]
    other = tmp_path / "other"  # a checkpoint of another run does not open a folder that holds one either
    shutil.copytree(run, other)
    refused = _train_cli(config, "-o", str(other), "--resume", str(run / "checkpoints" / "step_0000002"))
    assert refused.exit_code == 2 and "already holds a training run" in refused.output
    extended = _train_cli(config, "-o", str(run), "--resume", str(run), "--set", "train.steps=6")
    assert extended.exit_code == 0, extended.output
    assert "steps=6" in extended.output and _logged_steps(run) == [1, 2, 3, 4, 5, 6]
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_0000006"


def test_a_resumed_run_fingerprints_its_evaluation_samples_once(labels: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``train.data.scored_data`` hashes every evaluation sample; on --resume it ran twice (run.py's early check,
    then the trainer's), where once serves both."""
    import ocrlite.train.rec_task as rec_task

    torch.set_num_threads(1)
    config, run = str(_config(tmp_path, labels)), tmp_path / "run"
    assert _train_cli(config, "-o", str(run), "--set", "train.steps=2").exit_code == 0
    calls: list[str] = []
    real = rec_task.scored_data
    monkeypatch.setattr(rec_task, "scored_data", lambda key, samples: calls.append(key) or real(key, samples))
    resumed = _train_cli(config, "-o", str(run), "--resume", str(run), "--set", "train.steps=4", "--no-export")
    assert resumed.exit_code == 0, resumed.output
    assert calls == ["train.data.eval"] and _logged_steps(run) == [1, 2, 3, 4]


def test_resuming_a_finished_run_reports_its_last_loss(labels: Path, tmp_path: Path) -> None:
    """Nothing is left to train: one line on stderr says the run already finished, exit 0; the summary line gives
    the run's steps and its last step's loss (it printed loss=nan), the same as the run's own summary and
    log.csv's last row."""
    torch.set_num_threads(1)
    config, run = str(_config(tmp_path, labels)), tmp_path / "run"
    first = _train_cli(config, "-o", str(run))
    assert first.exit_code == 0, first.output
    with open(run / "log.csv", encoding="utf-8", newline="") as fh:
        logged = float(list(csv.DictReader(fh))[-1]["loss"])
    again = _train_cli(config, "-o", str(run), "--resume", str(run))
    assert again.exit_code == 0, again.output
    assert again.stderr == (f"--resume {run}: the run already finished at step 4 (train.steps=4); nothing to train "
                            "(raise train.steps to go on)\n")
    loss = re.search(r"loss=(\S+)", again.output)
    assert loss is not None and loss[1] == f"{logged:.4f}" and "steps=4 " in again.output
    assert re.search(r"loss=(\S+)", first.output)[1] == loss[1]  # type: ignore[index]


def test_pruning_goes_by_step_and_keeps_the_checkpoint_just_written(tmp_path: Path) -> None:
    model = nn.Linear(2, 2)
    optimizer = torch.optim.Adam(model.parameters())

    def folders() -> list[str]:
        return sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))

    for step in (3, 6):  # left by a run that went further
        (tmp_path / "checkpoints" / f"step_{step:07d}").mkdir(parents=True)
    save_checkpoint(tmp_path, 2, model, optimizer, {})
    assert folders() == ["step_0000002"]
    assert (tmp_path / "checkpoints" / "LATEST").read_text().strip() == "step_0000002"
    save_checkpoint(tmp_path, 4, model, optimizer, {})
    save_checkpoint(tmp_path, 8, model, optimizer, {})
    assert folders() == ["step_0000004", "step_0000008"]
    save_checkpoint(tmp_path, 12, model, optimizer, {}, keep=3)
    assert folders() == ["step_0000004", "step_0000008", "step_0000012"]


def test_a_run_resumed_from_an_earlier_checkpoint_keeps_only_its_own_weights_and_rows(
        labels: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    run = tmp_path / "run"
    stage = _stage(labels, 4, evaluate=False)  # no evaluation: the last weights are the result
    train(RecTask(stage, 3), TrainSettings.from_stage(stage), run, progress=False)
    assert _logged_steps(run) == [1, 2, 3, 4]
    old_best = (run / "best.safetensors").read_bytes()
    longer = _stage(labels, 6, evaluate=False)
    result = train(RecTask(longer, 3), TrainSettings.from_stage(longer), run, progress=False,
                   resume=run / "checkpoints" / "step_0000002")
    assert result.steps == 6 and _logged_steps(run) == [1, 2, 3, 4, 5, 6]  # rows 3 and 4 once, of this run
    assert (run / "best.safetensors").read_bytes() != old_best
    assert _same(run / "best.safetensors", run / "checkpoints" / "step_0000006" / "model.safetensors")


def test_the_best_weights_travel_with_the_checkpoint(labels: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    stage = _stage(labels, 6, evaluate=False, eval_every=3, save_every=3)
    settings = TrainSettings.from_stage(stage)
    first = train(_Scripted(stage, [0.5, 0.1]), settings, tmp_path / "a", progress=False)
    assert first.best == {"step": 3, "word_acc": 0.5}
    checkpoint = tmp_path / "ck3"
    shutil.copytree(tmp_path / "a" / "checkpoints" / "step_0000003", checkpoint)
    shutil.rmtree(tmp_path / "a")  # nothing left to borrow the best weights from
    resumed = train(_Scripted(stage, [0.1]), settings, tmp_path / "b", resume=checkpoint, progress=False)
    assert resumed.best == {"step": 3, "word_acc": 0.5}
    best = tmp_path / "b" / "best.safetensors"
    assert _same(best, checkpoint / "model.safetensors")  # the step-3 weights it claims, not step 6's
    assert not _same(best, tmp_path / "b" / "checkpoints" / "step_0000006" / "model.safetensors")
    assert _same(best, tmp_path / "b" / "checkpoints" / "step_0000006" / "best.safetensors")


def test_keep_best_breaks_a_tie_in_word_accuracy_by_one_minus_ned(labels: Path, tmp_path: Path) -> None:
    """Small evaluation sets often score the same word accuracy at several steps: the step that reads closer
    (higher 1 - NED) is kept, not merely the later one; the rank survives a resume."""
    torch.set_num_threads(1)
    stage = _stage(labels, 6, evaluate=False, eval_every=2, save_every=2)
    settings = TrainSettings.from_stage(stage)
    result = train(_Scripted(stage, [0.25, 0.25, 0.25], [0.5, 0.75, 0.5]), settings, tmp_path / "a", progress=False)
    assert result.best == {"step": 4, "word_acc": 0.25, "one_minus_ned": 0.75}
    assert _same(tmp_path / "a" / "best.safetensors", tmp_path / "a" / "checkpoints" / "step_0000004" /
                 "model.safetensors")
    longer = TrainSettings.from_stage({**stage, "train": {**stage["train"], "steps": 8}})
    later = train(_Scripted(stage, [0.25], [0.7]), longer, tmp_path / "a", resume=tmp_path / "a", progress=False)
    assert later.best["step"] == 4


@pytest.fixture(scope="module")
def checkpoint(labels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Step 2 of a tiny run (its config recorded)."""
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("ck") / "run"
    stage = _stage(labels, 2, evaluate=False, freeze=["backbone.stem"])
    train(RecTask(stage, 3), TrainSettings.from_stage(stage), run, progress=False, config=stage)
    return run / "checkpoints" / "step_0000002"


@pytest.mark.parametrize("change, message", [
    ({"lr": 0.002}, "train.lr is 0.002 here but 0.001 in the checkpoint"),
    ({"freeze": []}, 'train.freeze is [] here but ["backbone.stem"] in the checkpoint'),
    ({"steps": 1}, "train.steps=1 is fewer than the checkpoint's step 2"),
    ({"augment": {"tia_prob": 0.0}}, "train.augment.tia_prob is 0.0 here but 0.3 in the checkpoint"),
    ({"center_loss": {}}, 'train.center_loss is {"weight": 0.05, "labels": "argmax", "rate": 0.1} here but not set'),
    ({"model.head.mid_channels": 8}, "model.head.mid_channels is 8 here but 16 in the checkpoint"),
])
def test_resume_checks_the_checkpoint_against_the_run(labels: Path, checkpoint: Path, tmp_path: Path,
                                                      change: dict[str, Any], message: str) -> None:
    stage = _stage(labels, 4, evaluate=False, freeze=["backbone.stem"])
    for key, value in change.items():
        if key.startswith("model."):
            stage["model"]["head"]["mid_channels"] = value
        else:
            stage["train"][key] = value
    with pytest.raises(ConfigError, match="^--resume .*step_0000002: " + re.escape(message)):
        train(RecTask(stage, 3), TrainSettings.from_stage(stage), tmp_path / "run", resume=checkpoint,
              progress=False, config=stage)
    assert not (tmp_path / "run").exists()


def test_resume_may_extend_the_run_and_change_how_often_it_reports(labels: Path, checkpoint: Path,
                                                                   tmp_path: Path) -> None:
    stage = _stage(labels, 3, evaluate=False, freeze=["backbone.stem"], eval_every=5, save_every=5, log_every=2)
    stage["train"]["data"].update(eval=str(labels), eval_limit=2)  # data may change (e.g. a moved set)
    result = train(RecTask(stage, 3), TrainSettings.from_stage(stage), tmp_path / "run", resume=checkpoint,
                   progress=False, config=stage)
    assert result.steps == 3


def test_resume_compares_settings_as_the_task_reads_them(labels: Path, tmp_path: Path) -> None:
    """A run started with a train section's default given (--set train.augment.tia_prob=0.3) refused --resume
    without it: "train.augment is not set here but {"tia_prob": 0.3} in the checkpoint". A default given and one
    left out are the same run; a changed value is still refused, and so is a section whose presence turns it on
    (center_loss) left out."""
    torch.set_num_threads(1)
    config, run = str(_config(tmp_path, labels)), tmp_path / "run"
    defaults = ["--set", "train.augment.tia_prob=0.3", "--set", "train.center_loss.weight=0.05"]
    first = _train_cli(config, "-o", str(run), *defaults, "--set", "train.steps=2", "--no-export")
    assert first.exit_code == 0, first.output
    again = [config, "-o", str(run), "--resume", str(run), "--no-export"]
    resumed = _train_cli(*again, "--set", "train.steps=3", "--set", "train.center_loss={}",
                         "--set", "train.augment.bda_prob=0.3")
    assert resumed.exit_code == 0, resumed.output
    assert _logged_steps(run) == [1, 2, 3]
    refused = [(["--set", "train.center_loss.weight=0.1"], "train.center_loss.weight is 0.1 here but 0.05"),
               ([], 'train.center_loss is not set here but {"weight": 0.05, "labels": "argmax", "rate": 0.1}')]
    for change, message in refused:
        result = _train_cli(*again, "--set", "train.steps=4", *change)
        assert result.exit_code == 2 and result.output.startswith(f"ocrlite: error: --resume {run}"), result.output
        assert f": {message}" in result.output


def test_resume_compares_the_net_and_pre_postprocess_as_the_stage_runs_them(labels: Path, tmp_path: Path) -> None:
    """A default given explicitly in model, preprocess or postprocess (--set preprocess.batch_size=6) refused
    --resume: "preprocess.batch_size is 6 here but not set in the checkpoint". They are compared as the stage
    runs them, defaults filled; a real change is still refused, naming the key."""
    torch.set_num_threads(1)
    config, run = str(_config(tmp_path, labels)), tmp_path / "run"
    first = _train_cli(config, "-o", str(run), "--set", "train.steps=2", "--no-export")
    assert first.exit_code == 0, first.output
    again = [config, "-o", str(run), "--resume", str(run), "--no-export"]
    defaults = ["--set", "preprocess.batch_size=6", "--set", "preprocess.mean=[0.5,0.5,0.5]",
                "--set", "postprocess.use_space_char=true", "--set", "model.backbone.in_channels=3"]
    resumed = _train_cli(*again, "--set", "train.steps=3", *defaults)
    assert resumed.exit_code == 0, resumed.output
    assert _logged_steps(run) == [1, 2, 3]
    for change, message in [("preprocess.width=96", "preprocess.width is 96 here but 64 in the checkpoint"),
                            ("model.backbone.scale=0.5", "model.backbone.scale is 0.5 here but 0.25 in the checkpoint"),
                            ("postprocess.use_space_char=false",
                             "postprocess.use_space_char is false here but true in the checkpoint")]:
        refused = _train_cli(*again, "--set", "train.steps=4", "--set", change)
        assert (refused.exit_code, refused.output.splitlines()[0]) == (
            2, f"ocrlite: error: --resume {run / 'checkpoints' / 'step_0000003'}: {message} (a resumed run "
               "may change only train.steps, eval_every, save_every, log_every, workers and data)"), refused.output


def test_a_train_section_that_does_not_build_is_one_line_on_resume(labels: Path, checkpoint: Path,
                                                                   tmp_path: Path) -> None:
    """Sections are compared as built: a bad value of this run is its own error (not a difference of the defaults
    it hides); a checkpoint setting this version no longer takes says so."""
    stage = _stage(labels, 4, evaluate=False, freeze=["backbone.stem"], augment={"tia_prob": 2})
    settings = TrainSettings.from_stage(stage)
    with pytest.raises(ConfigError, match=r"^train\.augment\.tia_prob: 2\.0 is out of range; allowed: 0\.0\.\.1\.0$"):
        check_resume(checkpoint, settings, stage)
    old = shutil.copytree(checkpoint, tmp_path / "old")
    state = json.loads((old / "state.json").read_text(encoding="utf-8"))
    state["config"]["train"]["augment"] = {"gone": 1}
    (old / "state.json").write_text(json.dumps(state), encoding="utf-8")
    stage["train"].pop("augment")
    with pytest.raises(ConfigError, match=f"^--resume {re.escape(str(old))}: the checkpoint's config does not fit "
                                          "this version: train.augment: unknown key 'gone'"):
        check_resume(old, settings, stage)


def test_a_checkpoint_that_does_not_fit_the_net_is_a_config_error(checkpoint: Path) -> None:
    other = nn.Linear(3, 2)
    with pytest.raises(ConfigError, match="does not fit this net"):
        load_checkpoint(checkpoint, other, torch.optim.Adam(other.parameters()))
    state = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
    net = RecTask({**state["config"], "_dir": None}, 3).build_model()  # the same net, but nothing frozen
    with pytest.raises(ConfigError, match="optimizer state does not fit"):
        load_checkpoint(checkpoint, net, torch.optim.Adam(net.parameters()))


def test_resume_with_dropout_is_bit_exact(labels: Path, tmp_path: Path) -> None:
    """The DataLoader draws from its own generator, not from the restored default one that dropout uses."""
    torch.set_num_threads(1)
    stage = load_stage_config("cls_ppocr_mobile_v2.yaml")
    stage.update(weights=None, train={"task": "cls", "data": {"format": "labels", "root": str(labels)}, "steps": 4,
                                      "batch_size": 4, "warmup_steps": 1, "eval_every": 100, "save_every": 2})
    stage["model"]["head"] = {"name": "ClassifierHead", "num_classes": 2, "dropout": 0.5}
    settings = TrainSettings.from_stage(stage)
    train(ClsTask(stage, 4), settings, tmp_path / "full", progress=False)
    train(ClsTask(stage, 4), settings, tmp_path / "half", progress=False, stop_at=2)
    train(ClsTask(stage, 4), settings, tmp_path / "half", resume=tmp_path / "half", progress=False)
    final = Path("checkpoints") / "step_0000004" / "model.safetensors"
    assert _same(tmp_path / "full" / final, tmp_path / "half" / final)


def test_the_data_manifest_of_a_relative_data_root_serves_eval_split(labels: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrlite.eval.harness import load_samples

    torch.set_num_threads(1)
    monkeypatch.chdir(labels.parent.parent)
    relative = Path(labels.parent.name) / labels.name
    config = _config(tmp_path, relative)
    result = _train_cli(str(config), "-o", str(tmp_path / "run"), "--set", "train.steps=1", "--no-export")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "run" / "data_manifest.json").read_text(encoding="utf-8"))
    assert all(Path(entry["path"]).is_absolute() for entry in manifest["files"])
    monkeypatch.chdir(tmp_path)
    _, samples = load_samples("rec", labels.parent, split=tmp_path / "run" / "data_manifest.json")
    assert len(samples) == 12


def test_a_failed_start_leaves_no_run_folder(labels: Path, checkpoint: Path, tmp_path: Path) -> None:
    config = str(_config(tmp_path, labels))
    (tmp_path / "empty").mkdir()
    missing = _train_cli(config, "-o", str(tmp_path / "a"), "--resume", str(tmp_path / "empty"))
    assert missing.exit_code == 2 and "no checkpoint in" in missing.output
    same = ["--resume", str(checkpoint), "--set", "train.freeze=[backbone.stem]"]
    changed = _train_cli(config, "-o", str(tmp_path / "b"), *same, "--set", "train.lr=0.5")
    assert changed.exit_code == 2 and "train.lr is 0.5 here" in changed.output
    other_net = _train_cli(config, "-o", str(tmp_path / "c"), *same, "--set", "model.head.mid_channels=8")
    assert other_net.exit_code == 2 and "model.head.mid_channels is 8 here" in other_net.output
    assert not any((tmp_path / name).exists() for name in "abc")


@pytest.mark.parametrize("override, message", [
    ("train.seed=-1", "train.seed: -1 is out of range; allowed: 0.."),
    ("train=[1]", "train must be a mapping, got [1]"),
])
def test_bad_train_sections_are_one_line_errors(labels: Path, tmp_path: Path, override: str, message: str) -> None:
    result = _train_cli(str(_config(tmp_path, labels)), "-o", str(tmp_path / "run"), "--set", override)
    assert (result.exit_code, result.output) == (2, f"ocrlite: error: {message}\n")


@pytest.mark.parametrize("resume", [False, True])
def test_a_run_stopped_before_its_first_checkpoint_starts_again_from_step_0(labels: Path, tmp_path: Path,
                                                                            resume: bool) -> None:
    torch.set_num_threads(1)
    config, run = str(_config(tmp_path, labels)), tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("step,lr,loss\n1,0.5,9.0\n", encoding="utf-8")  # what the stopped run left
    (run / "evals.json").write_text('[{"step": 1, "word_acc": 1.0}]', encoding="utf-8")
    (run / "best.safetensors").write_bytes(b"stale")
    result = _train_cli(config, "-o", str(run), *(["--resume", str(run)] if resume else []))
    assert result.exit_code == 0, result.output
    notice = f"--resume {run}: no checkpoint in {run} yet; training starts from step 0\n"
    assert result.stderr == (notice if resume else "")
    assert _logged_steps(run) == [1, 2, 3, 4] and "grad_norm" in (run / "log.csv").read_text(encoding="utf-8")
    assert [e["step"] for e in json.loads((run / "evals.json").read_text(encoding="utf-8"))] == [2, 4]
    assert (run / "best.safetensors").read_bytes() != b"stale"


def test_an_export_named_like_a_shipped_model_loads_its_own_weights_or_none(labels: Path, tmp_path: Path) -> None:
    from ocrlite.errors import WeightsError
    from ocrlite.stages import stage_spec

    torch.set_num_threads(1)
    run = tmp_path / "run"
    result = _train_cli(str(_config(tmp_path, labels)), "-o", str(run), "--name", "rec_ppocrv2_en",
                        "--set", "train.steps=2")
    assert result.exit_code == 0, result.output
    exported = run / "export" / "rec_ppocrv2_en.yaml"
    assert stage_spec("rec", exported).weights == run / "export" / "rec_ppocrv2_en.safetensors"
    moved = tmp_path / "moved" / exported.name  # the config without its weights: never the shipped model
    moved.parent.mkdir()
    shutil.copy(exported, moved)
    with pytest.raises(WeightsError, match=r"^rec.weights: weights './rec_ppocrv2_en' not found in .*moved "
                                           r"\(in .*moved/rec_ppocrv2_en.yaml\)$"):
        stage_spec("rec", moved)


@pytest.mark.parametrize("key", ["counters", "optimizer", "sha256"])
def test_a_checkpoint_state_without_a_key_is_one_line(labels: Path, checkpoint: Path, tmp_path: Path,
                                                      key: str) -> None:
    broken = tmp_path / "ck"
    shutil.copytree(checkpoint, broken)
    state = json.loads((broken / "state.json").read_text(encoding="utf-8"))
    del state[key]
    (broken / "state.json").write_text(json.dumps(state), encoding="utf-8")
    stage = _stage(labels, 4, evaluate=False, freeze=["backbone.stem"])
    with pytest.raises(ConfigError, match=f"^cannot read checkpoint .*ck: state.json has no '{key}'$"):
        train(RecTask(stage, 3), TrainSettings.from_stage(stage), tmp_path / "run", resume=broken, progress=False,
              config=stage)


@pytest.mark.parametrize("key, value, message", [
    ("step", "six", "'step' is not a JSON integer, got \"six\""),
    ("step", -1, "'step' is negative, got -1"),
    ("counters", [1], "'counters' is not a JSON object, got [1]"),
    ("counters", {"step": "x"}, "'counters' must be numbers, got \"step\": \"x\""),
    ("counters", {"step": 3, "loss": True}, "'counters' must be numbers, got \"loss\": true"),
    ("evals", {}, "'evals' is not a JSON array, got {}"),
])
def test_a_checkpoint_state_with_a_value_of_the_wrong_type_is_one_line(labels: Path, checkpoint: Path,
                                                                       tmp_path: Path, key: str, value: Any,
                                                                       message: str) -> None:
    """A damaged or hand-edited state.json that still parses (``"step": "six"``) stopped --resume with a
    traceback (ValueError from int() in check_resume, TypeError further on)."""
    broken = tmp_path / "ck"
    shutil.copytree(checkpoint, broken)
    state = json.loads((broken / "state.json").read_text(encoding="utf-8"))
    state[key] = value
    (broken / "state.json").write_text(json.dumps(state), encoding="utf-8")
    stage = _stage(labels, 4, evaluate=False, freeze=["backbone.stem"])
    with pytest.raises(ConfigError, match=f"^cannot read checkpoint .*ck: state.json's {re.escape(message)}$"):
        train(RecTask(stage, 3), TrainSettings.from_stage(stage), tmp_path / "run", resume=broken, progress=False,
              config=stage)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("optimizer", [{}, {"param_groups": "lr", "scalars": {}}, {"param_groups": [], "scalars": [1]},
                                       {"param_groups": [], "scalars": {"first": {}}}])
def test_a_checkpoint_state_with_a_damaged_optimizer_record_is_one_line(labels: Path, checkpoint: Path,
                                                                        tmp_path: Path, optimizer: Any) -> None:
    """A state.json whose ``optimizer`` is an object but not the record a checkpoint writes (param_groups, scalars)
    passed read_state and stopped the resumed run with a traceback (KeyError 'scalars', AttributeError, ValueError)
    after its run folder was made."""
    broken = tmp_path / "ck"
    shutil.copytree(checkpoint, broken)
    state = json.loads((broken / "state.json").read_text(encoding="utf-8"))
    state["optimizer"] = optimizer
    (broken / "state.json").write_text(json.dumps(state), encoding="utf-8")
    stage = _stage(labels, 4, evaluate=False, freeze=["backbone.stem"])
    with pytest.raises(ConfigError, match=r"^cannot read checkpoint .*ck: state.json's 'optimizer' is not a "
                                          r"checkpoint's optimizer record \(param_groups, scalars\)$"):
        train(RecTask(stage, 3), TrainSettings.from_stage(stage), tmp_path / "run", resume=broken, progress=False,
              config=stage)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_stop_training_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        signum: int, code: int) -> None:
    def signalled(*args: Any, **kwargs: Any) -> None:
        os.kill(os.getpid(), signum)  # arrives while the run trains
        time.sleep(5)
        raise AssertionError("the signal did not stop the run")

    def unhandled(signum: int, frame: Any) -> None:  # SIGTERM's default would end pytest itself
        raise AssertionError("SIGTERM was not handled by the train command")

    monkeypatch.setattr("ocrlite.train.run.run_training", signalled)
    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        result = _train_cli("config.yaml", "-o", str(tmp_path / "run"))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (result.exit_code, result.output) == (
        code, f"ocrlite: error: interrupted; continue with --resume {tmp_path / 'run'} (from its last checkpoint)\n")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_cuda_device_is_reported_before_any_data_is_read(tmp_path: Path) -> None:
    result = _train_cli(str(_config(tmp_path, tmp_path / "missing.txt")), "-o", str(tmp_path / "run"),
                        "--device", "cuda")
    assert (result.exit_code, result.output) == (2, "ocrlite: error: --device cuda: no CUDA device is available\n")
    assert not (tmp_path / "run").exists()


def test_an_output_folder_that_cannot_be_made_is_one_line(labels: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = _train_cli(str(_config(tmp_path, labels)), "-o", str(tmp_path / "file" / "run"))
    assert (result.exit_code, result.output) == (
        2, f"ocrlite: error: cannot write to {tmp_path / 'file' / 'run'}: {tmp_path / 'file'} is a file, "
           "not a folder\n")


@pytest.mark.parametrize("task, section, message", [
    ("rec", {"loss": {"alpha": 1.0}}, "train.loss is for det tasks, not rec"),
    ("cls", {"loss": {}}, "train.loss is for det tasks, not cls"),
    ("det", {"center_loss": {"weight": 0.05}}, "train.center_loss is for rec tasks, not det"),
])
def test_a_train_section_the_task_does_not_read_is_refused(labels: Path, tmp_path: Path, task: str,
                                                          section: dict[str, Any], message: str) -> None:
    stage = _stage(labels, 4)
    stage.pop("_dir")
    stage["train"].update(task=task, **section)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(stage), encoding="utf-8")
    result = _train_cli(str(config), "-o", str(tmp_path / "run"))
    assert (result.exit_code, result.output) == (2, f"ocrlite: error: {message}\n")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["null", "''"])
def test_a_null_eval_file_turns_evaluation_off_like_an_empty_one(labels: Path, tmp_path: Path, value: str) -> None:
    """``train.data.eval: null`` said "train.data.eval: expected a string, got None"; it means no evaluation, as ''
    does: the run scores nothing and keeps its last weights."""
    torch.set_num_threads(1)
    run = tmp_path / "run"
    result = _train_cli(str(_config(tmp_path, labels)), "-o", str(run), "--set", "train.steps=2",
                        "--set", f"train.data.eval={value}", "--no-export")
    assert result.exit_code == 0, result.output
    assert "best: -" in result.output
    assert json.loads((run / "evals.json").read_text(encoding="utf-8")) == [{"step": 2}]
    assert _same(run / "best.safetensors", run / "checkpoints" / "step_0000002" / "model.safetensors")


def test_resume_refuses_other_evaluation_samples_but_takes_the_same_ones_moved(labels: Path, tmp_path: Path) -> None:
    """train.data may change on resume (a moved set), but another train.data.eval resumed without a word and
    keep-best compared the new scores with a best scored on the old samples. The samples are compared by content:
    the same ones moved resume; other ones, or another eval_limit, are refused naming the key."""
    torch.set_num_threads(1)
    config, run = str(_config(tmp_path, labels)), tmp_path / "run"
    first = _train_cli(config, "-o", str(run), "--set", "train.steps=2", "--no-export")
    assert first.exit_code == 0, first.output
    moved = Path(shutil.copytree(labels.parent, tmp_path / "moved"))
    lines = (moved / labels.name).read_text(encoding="utf-8").splitlines()
    (moved / "other.txt").write_text("\n".join(lines[::-1]) + "\n", encoding="utf-8")
    again = [config, "-o", str(run), "--resume", str(run), "--no-export", "--set",
             f"train.data.train=[{moved / labels.name}]"]
    same = _train_cli(*again, "--set", "train.steps=3", "--set", f"train.data.eval={moved / labels.name}")
    assert same.exit_code == 0, same.output
    assert _logged_steps(run) == [1, 2, 3]
    message = (f"ocrlite: error: --resume {run / 'checkpoints' / 'step_0000003'}: train.data.eval scores other "
               "samples than the checkpoint's evaluations, and its best was scored on those; resume with the "
               "checkpoint's evaluation data, or train a new run\n")
    for change in ([f"train.data.eval={moved / 'other.txt'}"], ["train.data.eval_limit=5"]):
        refused = _train_cli(*again, "--set", "train.steps=4", *[a for c in change for a in ("--set", c)])
        assert (refused.exit_code, refused.output) == (2, message)
    assert _logged_steps(run) == [1, 2, 3]


class _Interrupted(RecTask):
    """A rec task whose batches are never made: the run is stopped (Ctrl-C) before its first step."""

    def batch(self, rng: Any) -> dict[str, torch.Tensor]:
        raise KeyboardInterrupt


def test_a_run_resumed_from_an_earlier_checkpoint_and_stopped_again_resumes_from_that_checkpoint(
        labels: Path, tmp_path: Path) -> None:
    """Resuming step 2 of a run that went on to step 4 dropped the log rows after step 2, but LATEST still named
    step 4; stopped before its next checkpoint, the run resumed from step 4, and the log lost rows 3 and 4."""
    torch.set_num_threads(1)
    run = tmp_path / "run"
    stage = _stage(labels, 4, evaluate=False)
    train(RecTask(stage, 3), TrainSettings.from_stage(stage), run, progress=False)
    with pytest.raises(KeyboardInterrupt):
        train(_Interrupted(stage, 3), TrainSettings.from_stage(stage), run, progress=False,
              resume=run / "checkpoints" / "step_0000002")
    assert _logged_steps(run) == [1, 2]
    result = train(RecTask(stage, 3), TrainSettings.from_stage(stage), run, progress=False, resume=run)
    assert result.steps == 4 and _logged_steps(run) == [1, 2, 3, 4]
    assert _same(run / "best.safetensors", run / "checkpoints" / "step_0000004" / "model.safetensors")


def test_a_resumed_run_removes_the_temp_files_a_killed_run_left(labels: Path, tmp_path: Path) -> None:
    """A run killed while writing a file leaves its temp file (``.NAME.XXXXXXXX.part``, as big as the weights for
    best.safetensors or a checkpoint's tensors); resumed, the run removes those of the files it writes again, and
    no other file."""
    torch.set_num_threads(1)
    config, run = str(_config(tmp_path, labels)), tmp_path / "run"
    assert _train_cli(config, "-o", str(run)).exit_code == 0
    left = [run / ".best.safetensors.k1ll3d00.part", run / ".log.csv.k1ll3d00.part",
            run / ".data_manifest.json.k1ll3d00.part", run / "checkpoints" / ".LATEST.k1ll3d00.part",
            run / "checkpoints" / "step_0000006" / ".model.safetensors.k1ll3d00.part",
            run / "export" / ".tiny_rec.safetensors.k1ll3d00.part", run / "export" / ".tiny_rec.json.k1ll3d00.part"]
    kept = run / ".notes.txt.k1ll3d00.part"
    for path in [*left, kept]:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"torn")
    resumed = _train_cli(config, "-o", str(run), "--resume", str(run), "--set", "train.steps=6")
    assert resumed.exit_code == 0, resumed.output
    assert [path.name for path in left if path.exists()] == [] and kept.exists()
