"""Enhanced CTC: the center loss's known answers, the CTC alignment, a logged run, bit-exact resume, bad config."""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file
from tiny_crnn import tiny_crnn

from ocrlite.charset import Charset
from ocrlite.cli import main
from ocrlite.errors import ConfigError
from ocrlite.files import find_charset
from ocrlite.train.center_loss import CenterBank, center_loss, ctc_align
from ocrlite.train.rec_task import RecTask
from ocrlite.train.run import build_task
from ocrlite.train.synth import write_synth_set
from ocrlite.train.trainer import TrainSettings, train

CHARSET = Charset.from_file(find_charset("ppocr_keys_v1.txt", None, None), use_space_char=True)


def test_features_on_their_centers_give_zero() -> None:
    centers = torch.tensor([[9.0, 9.0], [1.0, 2.0], [-3.0, 0.5]])
    labels = torch.tensor([[1, 2, 0, 1]])
    features = centers[labels]  # blank steps sit far from the blank's "center": they are not counted
    features[0, 2] = torch.tensor([100.0, -100.0])
    assert center_loss(features, labels, centers).item() == 0.0


def test_center_loss_known_value() -> None:
    # steps: class 1 at (3, 4) from center (0, 0) -> 25; a blank step (skipped); class 2 at (1, 2) from (1, 1) -> 1
    centers = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    features = torch.tensor([[[3.0, 4.0], [9.0, 9.0], [1.0, 2.0]]], requires_grad=True)
    labels = torch.tensor([[1, 0, 2]])
    loss = center_loss(features, labels, centers)
    assert loss.item() == pytest.approx(13.0)  # (25 + 1) / 2 non-blank steps
    loss.backward()
    assert features.grad is not None  # d/df |f - c|^2 / 2 = (f - c); the blank step gets none
    assert torch.allclose(features.grad, torch.tensor([[[3.0, 4.0], [0.0, 0.0], [0.0, 1.0]]]))
    assert center_loss(features, torch.zeros(1, 3, dtype=torch.long), centers).item() == 0.0  # all blank


def test_centers_start_at_the_first_batch_mean_then_move_by_rate() -> None:
    bank = CenterBank(classes=3, dim=2)
    first = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [5.0, 5.0]]])
    loss = bank.step(first, torch.tensor([[1, 1, 0]]), rate=0.5)
    assert loss.item() == pytest.approx(1.0)  # center (1, 0): each step 1 away
    assert bank.centers[1].tolist() == [1.0, 0.0] and bank.seen.tolist() == [False, True, False]
    loss = bank.step(torch.tensor([[[3.0, 0.0]]]), torch.tensor([[1]]), rate=0.5)
    assert loss.item() == pytest.approx(4.0)  # taken against the old center, then it moves halfway
    assert bank.centers[1].tolist() == [2.0, 0.0]
    assert bank.centers[0].tolist() == [0.0, 0.0] and bank.centers[2].tolist() == [0.0, 0.0]


def test_alignment_is_the_best_path_of_the_target() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 4) * 2
    texts = [[1, 2], [3], [2, 2]]
    targets = torch.tensor([c for t in texts for c in t])
    got = ctc_align(logits, targets, torch.tensor([len(t) for t in texts]))
    log_probs = logits.log_softmax(-1)
    for i, text in enumerate(texts):  # brute force over all 4^5 paths that collapse to the text
        best = max((p for p in itertools.product(range(4), repeat=5) if _collapse(p) == text),
                   key=lambda p: sum(log_probs[i, t, c].item() for t, c in enumerate(p)))
        assert tuple(got[i].tolist()) == best
    # "11" needs 3 steps (1, blank, 1): two steps cannot spell it, so every step is left out (blank)
    assert ctc_align(torch.zeros(1, 2, 3), torch.tensor([1, 1]), torch.tensor([2])).tolist() == [[0, 0]]


def _collapse(path: tuple[int, ...]) -> list[int]:
    out, prev = [], None
    for c in path:
        if c != prev and c != 0:
            out.append(c)
        prev = c
    return out


@pytest.fixture(scope="module")
def synth_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synth_set(tmp_path_factory.mktemp("synth"), 12, CHARSET, lang="en", seed=5)


def _stage(labels: Path, steps: int, center: dict[str, Any] | None) -> dict[str, Any]:
    train_section: dict[str, Any] = {
        "task": "rec", "data": {"train": [str(labels)]}, "steps": steps, "batch_size": 3, "lr": 1e-3,
        "warmup_steps": 2, "eval_every": 100, "save_every": 3, "log_every": 1, "freeze_bn": True}
    if center is not None:
        train_section["center_loss"] = center
    return {**tiny_crnn(train_section), "_dir": None}


@pytest.mark.parametrize("labels", ["argmax", "aligned"])
def test_center_loss_is_logged_and_resume_is_bit_exact(synth_set: Path, tmp_path: Path, labels: str) -> None:
    torch.set_num_threads(1)
    stage = _stage(synth_set, 6, {"weight": 0.05, "labels": labels, "rate": 0.2})
    settings = TrainSettings.from_stage(stage)
    full = train(RecTask(stage, 3), settings, tmp_path / "full", progress=False)
    with open(tmp_path / "full" / "log.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6 and all(math.isfinite(float(r["center"])) for r in rows)
    assert all(float(r["loss"]) == pytest.approx(float(r["ctc"]) + 0.05 * float(r["center"]), rel=1e-5) for r in rows)
    assert any(float(r["center"]) > 0 for r in rows)
    half = train(RecTask(stage, 3), settings, tmp_path / "half", progress=False, stop_at=3)
    assert half.steps == 3
    resumed = train(RecTask(stage, 3), settings, tmp_path / "half", resume=tmp_path / "half", progress=False)
    assert resumed.last_loss == full.last_loss
    for name in ("model.safetensors", "task.safetensors"):
        a = load_file(str(tmp_path / "full" / "checkpoints" / "step_0000006" / name))
        b = load_file(str(tmp_path / "half" / "checkpoints" / "step_0000006" / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    centers = load_file(str(tmp_path / "full" / "checkpoints" / "step_0000006" / "task.safetensors"))
    assert centers["center_loss.centers"].shape == (6625, 16) and bool(centers["center_loss.seen"].any())
    assert not centers["center_loss.seen"][0]  # blank steps never make a center
    # the exported weights are the plain net's (no centers) and the center term changed the training
    best = load_file(str(tmp_path / "full" / "best.safetensors"))
    assert not any(k.startswith("center_loss") for k in best)
    if labels != "argmax":
        return
    plain_stage = _stage(synth_set, 6, None)
    plain = train(RecTask(plain_stage, 3), TrainSettings.from_stage(plain_stage), tmp_path / "plain", progress=False)
    assert plain.last_loss != full.last_loss
    assert not (tmp_path / "plain" / "checkpoints" / "step_0000006" / "task.safetensors").exists()


def test_train_cli_records_the_center_loss_in_the_export_manifest(synth_set: Path, tmp_path: Path) -> None:
    stage = _stage(synth_set, 2, {})
    stage.pop("_dir")
    config = tmp_path / "rec.yaml"
    config.write_text(yaml.safe_dump(stage), encoding="utf-8")
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["--threads", "1", "train", str(config), "-o", str(run), "-q", "--name", "ectc",
                                       "--set", "train.center_loss.labels=aligned"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((run / "export" / "ectc.json").read_text(encoding="utf-8"))
    assert manifest["training"]["center_loss"] == {"weight": 0.05, "labels": "aligned", "rate": 0.1}
    header = (run / "log.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:6] == ["step", "lr", "loss", "grad_norm", "ctc", "center"]


@pytest.mark.parametrize("setting, message", [
    ("train.center_loss.weight=0", "train.center_loss.weight: 0.0 is out of range; allowed: more than 0"),
    ("train.center_loss.labels=viterbi",
     "train.center_loss.labels: 'viterbi' is not allowed; choose one of: argmax, aligned"),
    ("train.center_loss.rate=1.5", "train.center_loss.rate: 1.5 is out of range; allowed: 0.0..1.0"),
    ("train.center_loss.rate=fast", "train.center_loss.rate: expected a finite number, got 'fast'"),
    ("train.center_loss.centre=1", "train.center_loss: unknown key"),
])
def test_bad_center_loss_setting_is_one_line_and_exit_2(synth_set: Path, tmp_path: Path, setting: str,
                                                        message: str) -> None:
    stage = _stage(synth_set, 2, {})
    stage.pop("_dir")
    config = tmp_path / "rec.yaml"
    config.write_text(yaml.safe_dump(stage), encoding="utf-8")
    result = CliRunner().invoke(main, ["train", str(config), "-o", str(tmp_path / "run"), "-q", "--set", setting])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ocrlite: error: {message}"), result.output


def test_center_loss_outside_recognition_or_with_two_students_is_a_config_error(synth_set: Path) -> None:
    from ocrlite.slim.distill import distill_task

    stage = _stage(synth_set, 2, {"weight": 0.05})
    stage["train"]["task"] = "cls"
    with pytest.raises(ConfigError, match="^train.center_loss is for rec tasks, not cls$"):
        build_task(stage, 2)
    stage = _stage(synth_set, 2, {"weight": 0.05})
    stage["train"]["distill"] = {"mode": "udml"}
    with pytest.raises(ConfigError, match="train.center_loss: not available with train.distill.mode udml"):
        distill_task(build_task(stage, 2), stage)
