"""Distillation modes on the one trainer: U-DML's loss (known answers, two tiny students), a 3-step
``ocrlite distill`` U-DML run from ppocr-v2's recognizer whose export reads the sample page, CML's terms
(known answers) and a 2-step CML run whose exported detector finds the sample's four lines."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file
from tiny_crnn import SYNTH_EN, tiny_crnn

from ocrlite import OCR
from ocrlite.cli import main
from ocrlite.errors import ConfigError
from ocrlite.preprocess import normalize
from ocrlite.slim.cml import shrink_dml, teacher_target
from ocrlite.slim.distill import distill_task, dml_loss, teacher_spec
from ocrlite.train.rec_task import RecTask
from ocrlite.train.run import build_task, load_training_config

SAMPLE = Path(__file__).parents[1] / "images" / "sample.png"
# two builds of the tiny CRNN are two different random students
TINY = tiny_crnn({**SYNTH_EN, "distill": {"mode": "udml", "weight": 0.5, "feature_weight": 2.0}})


def test_dml_known_answers():
    logits = torch.randn(2, 5, 7)
    assert float(dml_loss(logits, logits.clone())) == 0.0
    # two time steps: p = [0.25, 0.75] vs q = [0.5, 0.5], then equal distributions; the mean over both steps
    a = torch.tensor([[[0.0, math.log(3.0)], [1.0, 2.0]]])
    b = torch.tensor([[[0.0, 0.0], [5.0, 6.0]]])
    kl_ab = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    kl_ba = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    expected = (kl_ab + kl_ba) / 2 / 2  # symmetric KL halved, averaged over the two steps
    assert math.isclose(float(dml_loss(a, b)), expected, rel_tol=1e-6)
    assert math.isclose(expected, math.log(3.0) / 16, rel_tol=1e-12)  # (ln 2 + ln 1.5) / 4 / 4


def test_udml_loss_sums_both_ctc_terms_dml_and_feature_l2():
    torch.manual_seed(0)
    task = distill_task(RecTask(TINY, 2), TINY)
    pair = task.build_model().train()
    batch = task.batch(np.random.default_rng([0, 0]))
    total, logs = task.loss(pair, batch)
    assert logs["dml"] > 0 and logs["l2"] > 0 and logs["ctc"] != logs["peer_ctc"]
    expected = logs["ctc"] + logs["peer_ctc"] + 0.5 * logs["dml"] + 2.0 * logs["l2"]
    assert float(total.detach()) == pytest.approx(expected, rel=1e-5)
    total.backward()
    for net in (pair.student, pair.peer):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.head.parameters())
    assert task.deployed(pair) is pair.student
    pair.peer.load_state_dict(pair.student.state_dict())  # identical students: no mutual terms
    _, logs = task.loss(pair, batch)
    assert logs["dml"] == 0.0 and logs["l2"] == 0.0 and logs["ctc"] == logs["peer_ctc"]


def test_udml_peer_from_other_weights_makes_the_mutual_terms_act() -> None:
    config = yaml.safe_load((Path(__file__).parents[2] / "configs" / "rec_ppocrv2.yaml").read_text(encoding="utf-8"))
    config["train"] = {"task": "rec", "data": {"synth": "en"}, "augment": {"tia_prob": 0.0, "bda_prob": 0.0},
                       "distill": {"mode": "udml", "peer_weights": "rec_ppocrv2_en"}}
    task = distill_task(RecTask(config, 2), config)
    pair = task.build_model()
    student, peer = pair.student.state_dict(), pair.peer.state_dict()
    assert any(not torch.equal(student[k], peer[k]) for k in student)  # converted vs our fine-tune
    _, logs = task.loss(pair.train(), task.batch(np.random.default_rng([0, 0])))
    assert logs["dml"] > 0 and logs["l2"] > 0
    config["train"]["distill"]["mode"] = "kd"
    config["train"]["distill"]["teacher"] = "ppocr-v2"
    with pytest.raises(ConfigError, match="peer_weights is for udml and cml"):
        distill_task(RecTask(config, 2), config)


@pytest.mark.parametrize("peer, reason", [
    ("nope.safetensors", "weights 'nope.safetensors' not found in "),
    ("rec_ppocrv3", "rec_ppocrv3.safetensors does not fit the net: "),  # another architecture's weights
    ("det_ppocrv3", "det_ppocrv3.json preprocess: unknown key 'limit_side_len'; "),  # a detector's weights
])
@pytest.mark.parametrize("student", [[], ["--set", "weights=rec_ppocrv2"]])
def test_bad_peer_weights_name_the_setting_before_the_run_starts(tmp_path: Path, peer: str, reason: str,
                                                                 student: list[str]) -> None:
    """Errors about peer_weights said only "weights 'x' not found" or "... does not fit the net" (the first not
    naming the setting, the second after the run folder was started), or "rec.weights: ... (in STUDENT.yaml)".
    Then they named the value twice and the student's key ("peer_weights: nope: rec.weights: weights 'nope' not
    found"), and blamed an override of the student's own weights ("(from the override 'weights=...')")."""
    path, run = _student(tmp_path), tmp_path / "run"
    result = CliRunner().invoke(main, ["--threads", "1", "distill", str(path), "-o", str(run), "-q", *student,
                                       "--set", f"train.distill.peer_weights={peer}"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"ocrlite: error: train.distill.peer_weights: {reason}")
    assert result.output.count("\n") == 1 and "(in " not in result.output and "(from " not in result.output
    assert not run.exists()  # refused before anything was written


def _student(tmp_path: Path) -> Path:
    """ppocr-v2's recognizer with a 3-step U-DML train section (synthetic lines, a small learning rate)."""
    config = yaml.safe_load((Path(__file__).parents[2] / "configs" / "rec_ppocrv2.yaml").read_text(encoding="utf-8"))
    config["train"] = {"task": "rec", "data": {"synth": "en"}, "augment": {"tia_prob": 0.0, "bda_prob": 0.0},
                       "steps": 3, "batch_size": 2, "lr": 1e-5, "warmup_steps": 0, "log_every": 1,
                       "save_every": 2, "distill": {"mode": "udml"}}
    path = tmp_path / "rec_udml.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_udml_cli_run_exports_the_student_which_reads_the_sample(tmp_path: Path) -> None:
    config, run = _student(tmp_path), tmp_path / "run"
    result = CliRunner().invoke(main, ["--threads", "1", "distill", str(config), "-o", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert "steps=3 samples=6" in result.output
    with open(run / "log.csv", encoding="utf-8") as fh:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    assert len(rows) == 3
    for r in rows:  # same weights, same batches, no dropout: the students stay identical
        assert r["dml"] == 0.0 and r["l2"] == 0.0 and r["ctc"] == r["peer_ctc"] > 0
        assert r["loss"] == pytest.approx(2 * r["ctc"], rel=1e-5)
    best = load_file(str(run / "best.safetensors"))
    checkpoint = load_file(str(run / "checkpoints" / "step_0000003" / "model.safetensors"))
    assert set(checkpoint) == {f"student.{k}" for k in best} | {f"peer.{k}" for k in best}
    assert all(torch.equal(best[k], checkpoint[f"student.{k}"]) for k in best)
    manifest = json.loads((run / "export" / "rec_udml.json").read_text(encoding="utf-8"))
    assert manifest["training"]["distill"]["mode"] == "udml"
    exported = run / "export" / "rec_udml.yaml"
    assert "student 1 of a U-DML pair" in exported.read_text(encoding="utf-8")
    pipeline = tmp_path / "ocr.yaml"
    pipeline.write_text(yaml.safe_dump({"det": "det_ppocrv3.yaml", "rec": str(exported),
                                        "pipeline": {"use_cls": False}}), encoding="utf-8")
    page = OCR(config=pipeline)(SAMPLE)
    # three steps on synthetic lines drawn in whatever fonts the machine has may move a space ("42.50 EUR")
    assert [line.replace(" ", "") for line in page.text.splitlines()[:3]] == [
        "OCRLITE2026", "InvoiceNo.48213", "Total:42.50EUR"]

    again = tmp_path / "again"  # resume the pair from step 2: the same student weights at step 3
    result = CliRunner().invoke(main, ["--threads", "1", "distill", str(config), "-o", str(again), "-q",
                                       "--resume", str(run / "checkpoints" / "step_0000002"), "--no-export"])
    assert result.exit_code == 0, result.output
    resumed = load_file(str(again / "best.safetensors"))
    assert all(torch.equal(resumed[k], best[k]) for k in best)


@pytest.mark.parametrize("args, message", [
    (["--set", "train.distill.mode=mdl"],
     "train.distill.mode: 'mdl' is not allowed; choose one of: kd, cml, udml, pseudo"),
    (["--set", "train.distill.mode=udml", "--teacher", "ppocr-v2"],
     "train.distill.teacher: mode udml trains two students and takes no teacher"),
    (["--set", "train.distill.mode=udml", "--set", "train.distill.feature=head"],
     "train.distill.feature: 'head' is not allowed; choose one of: backbone, neck"),
    ([], "train.distill.teacher: give a preset name or a config file (--teacher)"),
    (["--set", "train.distill.mode=cml", "--teacher", "ppocr-v2"],
     "train.distill.mode: cml trains detectors (det); this is a rec task"),
])
def test_bad_distill_mode_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    config = dict(TINY, train={**TINY["train"], "distill": {}})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = CliRunner().invoke(main, ["distill", str(path), "-o", str(tmp_path / "run"), *args])
    assert result.exit_code == 2, result.output
    assert result.output == f"ocrlite: error: {message}\n"


def test_cml_teacher_target_matches_opencv_threshold_and_dilation():
    prob = torch.rand(2, 9, 11, generator=torch.Generator().manual_seed(3)) ** 3
    target = teacher_target(prob)
    for image, got in zip(prob.numpy(), target.numpy()):
        expected = cv2.dilate((image > 0.3).astype(np.uint8), np.ones((2, 2), np.uint8))
        assert np.array_equal(got, expected.astype(np.float32))
    assert 0 < float((prob > 0.3).float().mean()) < float(target.mean()) < 1


def test_cml_shrink_dml_known_answers():
    z = torch.randn(1, 4, 5)
    assert float(shrink_dml(z, z.clone())) == 0.0
    # P = 0.5 vs 0.75: KL(p||q) + KL(q||p) = 0.25 ln 2 + 0.25 ln 1.5 = 0.25 ln 3; halved: ln 3 / 8 per pixel
    a, b = torch.zeros(1, 1, 2), torch.full((1, 1, 2), math.log(3.0))
    assert math.isclose(float(shrink_dml(a, b)), math.log(3.0) / 8, rel_tol=1e-6)


def _det_student(tmp_path: Path) -> Path:
    """det_ppocrv3 with a 2-step CML train section on the sample page (its four lines labelled)."""
    lines = [(40, 29, 283, 63), (40, 97, 348, 131), (40, 164, 320, 201), (40, 232, 232, 271)]
    boxes = [{"transcription": "x", "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]} for x0, y0, x1, y1 in lines]
    labels = tmp_path / "det_labels.txt"
    labels.write_text(f"{SAMPLE.resolve()}\t{json.dumps(boxes)}\n", encoding="utf-8")
    train = {"task": "det", "data": {"format": "paddle", "root": str(labels), "eval_on": "train"},
             "augment": {"size": 256}, "steps": 2, "batch_size": 1, "lr": 1e-5, "warmup_steps": 0,
             "log_every": 1, "freeze_bn": True, "distill": {"mode": "cml", "weight": 0.5, "teacher_weight": 2.0}}
    config = yaml.safe_load((Path(__file__).parents[2] / "configs" / "det_ppocrv3.yaml").read_text(encoding="utf-8"))
    path = tmp_path / "det_cml.yaml"
    path.write_text(yaml.safe_dump({**config, "train": train}), encoding="utf-8")
    return path


def test_cml_teacher_reads_the_batch_in_its_own_normalisation(tmp_path: Path) -> None:
    stage = load_training_config(str(_det_student(tmp_path)), [], "ppocr-v4")  # v4's det: mean/std 0.5
    task = distill_task(build_task(stage, 1), stage)
    teacher = teacher_spec("det", "ppocr-v4")
    assert task.pre.mean != teacher.pre.mean
    page = cv2.resize(cv2.imread(str(SAMPLE)), (384, 320))
    got = task.target(torch.from_numpy(normalize(page, task.pre.mean, task.pre.std))[None])
    with torch.no_grad():
        prob = teacher.build_net()(torch.from_numpy(normalize(page, teacher.pre.mean, teacher.pre.std))[None])
    expected = teacher_target(prob[:, 0])
    # measured: 0 of 122,880 pixels differ; fed the student's normalisation unchanged, 174 would
    assert int((got != expected).sum()) <= 10 and float(expected.mean()) > 0.02


def test_cml_cli_run_sums_its_terms_and_exports_a_detector(tmp_path: Path) -> None:
    path = _det_student(tmp_path)
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["--threads", "1", "distill", str(path), "--teacher", "ppocr-v4", "-o", str(run),
                                       "-q", "--set", "preprocess.limit_side_len=320"])
    assert result.exit_code == 0, result.output
    with open(run / "log.csv", encoding="utf-8") as fh:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    assert len(rows) == 2
    for r in rows:  # the students start from the same weights: no DML; the teacher's map is another target
        assert r["dml"] == 0.0 and r["teacher"] == r["peer_teacher"] > 0 and r["loss_shrink"] > 0
        expected = r["db"] + r["peer_db"] + 2.0 * (r["teacher"] + r["peer_teacher"]) + 0.5 * r["dml"]
        assert r["loss"] == pytest.approx(expected, rel=1e-5) and r["db"] == r["peer_db"] > 0
    manifest = json.loads((run / "export" / "det_cml.json").read_text(encoding="utf-8"))
    assert manifest["training"]["distill"]["teacher_weights"] == "det_ppocrv4"
    detect = CliRunner().invoke(main, ["--threads", "1", "detect", "--config", str(run / "export" / "det_cml.yaml"),
                                       str(SAMPLE)])
    assert detect.exit_code == 0, detect.output
    assert len(json.loads(detect.output)["boxes"]) == 4
