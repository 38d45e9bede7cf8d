"""Distillation: loss known answers, KD pulls a fresh student towards the shipped classifier, and
``ocrlite distill`` trains a tiny recognizer against ppocr-v2's CRNN on the one trainer."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import pytest
import torch
import yaml
from click.testing import CliRunner
from tiny_crnn import SYNTH_EN, tiny_crnn

from ocrlite.cli import main
from ocrlite.predictors import TextRecognizer
from ocrlite.preprocess import line_batch
from ocrlite.slim.distill import dml_loss, feature_l2, kd_loss
from ocrlite.stages import stage_spec

SAMPLE = Path(__file__).parents[1] / "images" / "sample.png"


def test_known_answers():
    a = torch.tensor([[0.0, math.log(3.0)]])  # p = [0.25, 0.75]
    b = torch.zeros(1, 2)  # q = [0.5, 0.5]
    kl_ab = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    kl_ba = 0.5 * math.log(2.0) + 0.5 * math.log(2.0 / 3.0)
    assert math.isclose(float(kd_loss(b, a, temperature=1.0)), kl_ab, rel_tol=1e-5)
    assert math.isclose(float(dml_loss(a, b)), (kl_ab + kl_ba) / 2, rel_tol=1e-5)
    assert float(kd_loss(a, a)) == 0.0 and math.isclose(float(feature_l2(a, b)), math.log(3.0) ** 2 / 2, rel_tol=1e-5)


def test_kd_moves_a_fresh_student_to_the_teacher_on_real_crops():
    spec = stage_spec("cls")
    teacher = spec.build_net()
    torch.manual_seed(0)
    student = spec.build_net(load_weights=False).train()
    page = cv2.imread(str(SAMPLE))
    crops = [page[y0:y1, 40:350] for y0, y1 in ((29, 63), (97, 131), (164, 201), (232, 271))]
    crops += [cv2.rotate(c, cv2.ROTATE_180) for c in crops]
    x = torch.from_numpy(line_batch(crops, spec.pre.height, spec.pre.width, spec.pre.mean, spec.pre.std))
    with torch.no_grad():
        target = teacher(x)
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = kd_loss(student(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.grad is None for p in teacher.parameters())


TINY_STUDENT = tiny_crnn({**SYNTH_EN, "steps": 8, "batch_size": 4, "lr": 0.05, "warmup_steps": 1, "log_every": 1})


def _student(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_rec.yaml"
    path.write_text(yaml.safe_dump(TINY_STUDENT), encoding="utf-8")
    return path


def test_distill_cli_adds_a_falling_kd_term_and_exports(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["--threads", "1", "distill", str(_student(tmp_path)), "--teacher", "ppocr-v2",
                                       "-o", str(run), "-q", "--set", "train.distill.weight=0.5"])
    assert result.exit_code == 0, result.output
    assert "steps=8 samples=32" in result.output
    with open(run / "log.csv", encoding="utf-8") as fh:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    assert len(rows) == 8 and all(math.isfinite(r["kd"]) and r["kd"] > 0 for r in rows)
    for r in rows:  # the logged loss is the task's CTC plus weight * KD
        assert r["loss"] == pytest.approx(r["ctc"] + 0.5 * r["kd"], rel=1e-4)
    first, last = rows[0]["kd"], sum(r["kd"] for r in rows[-3:]) / 3
    assert last < 0.5 * first, [r["kd"] for r in rows]
    manifest = json.loads((run / "export" / "tiny_rec.json").read_text(encoding="utf-8"))
    distill = manifest["training"]["distill"]
    assert distill["teacher"] == "ppocr-v2" and distill["teacher_weights"] == "rec_ppocrv2"
    assert distill["weight"] == 0.5 and distill["temperature"] == 2.0
    recognizer = TextRecognizer.from_config(str(run / "export" / "tiny_rec.yaml"))
    page = cv2.imread(str(SAMPLE))
    assert recognizer.pre.height == 32 and len(recognizer([page[29:63, 40:290]])) == 1


def test_resume_refuses_a_teacher_whose_weights_changed_under_the_same_name(tmp_path: Path) -> None:
    """A resumed KD run compared the teacher by name only: a teacher config whose weights file was replaced (same
    names, other weights) resumed without a word, training the rest of the run against another teacher."""
    weights = Path(stage_spec("rec").weights)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    config = yaml.safe_load((Path(__file__).parents[2] / "configs" / "rec_ppocrv2.yaml").read_text(encoding="utf-8"))
    (teacher / "teacher.yaml").write_text(yaml.safe_dump({**config, "weights": "./t.safetensors"}), encoding="utf-8")
    (teacher / "t.safetensors").write_bytes(weights.read_bytes())
    run, student = tmp_path / "run", _student(tmp_path)
    args = ["--threads", "1", "distill", str(student), "--teacher", str(teacher / "teacher.yaml"), "-q",
            "--no-export", "--set", "train.batch_size=2", "--set", "train.save_every=1"]
    first = CliRunner().invoke(main, [*args, "-o", str(run), "--set", "train.steps=1"])
    assert first.exit_code == 0, first.output
    (teacher / "t.safetensors").write_bytes(weights.with_name("rec_ppocrv2_en.safetensors").read_bytes())
    resumed = CliRunner().invoke(main, [*args, "-o", str(run), "--resume", str(run), "--set", "train.steps=2"])
    assert resumed.exit_code == 2, resumed.output
    assert resumed.output.count("\n") == 1 and resumed.output.startswith(f"ocrlite: error: --resume {run}")
    assert "the teacher is not the checkpoint's: train.distill.teacher_sha256 is" in resumed.output
    (teacher / "t.safetensors").write_bytes(weights.read_bytes())  # the checkpoint's teacher again: it resumes
    again = CliRunner().invoke(main, [*args, "-o", str(run), "--resume", str(run), "--set", "train.steps=2"])
    assert again.exit_code == 0, again.output


def test_resume_takes_a_default_distill_setting_given_as_left_out(tmp_path: Path) -> None:
    """A run started with --set train.distill.temperature=2 (the default) refused --resume without it: "train.distill
    .temperature is not set here but 2 in the checkpoint". Another temperature is still refused."""
    run = tmp_path / "run"
    args = ["--threads", "1", "distill", str(_student(tmp_path)), "--teacher", "ppocr-v2", "-o", str(run), "-q",
            "--no-export", "--set", "train.batch_size=2", "--set", "train.save_every=1"]
    first = CliRunner().invoke(main, [*args, "--set", "train.steps=1", "--set", "train.distill.temperature=2"])
    assert first.exit_code == 0, first.output
    resumed = CliRunner().invoke(main, [*args, "--resume", str(run), "--set", "train.steps=2"])
    assert resumed.exit_code == 0, resumed.output
    changed = CliRunner().invoke(main, [*args, "--resume", str(run), "--set", "train.steps=3",
                                        "--set", "train.distill.temperature=3"])
    assert changed.exit_code == 2 and changed.output.count("\n") == 1, changed.output
    assert changed.output.startswith(f"ocrlite: error: --resume {run / 'checkpoints' / 'step_0000002'}: "
                                     "train.distill.temperature is 3.0 here but 2.0 in the checkpoint")


@pytest.mark.parametrize("args, message", [
    (["--teacher", "nope"], "train.distill.teacher: 'nope' is neither a preset (ppocr-v2, "),
    (["--teacher", "det_ppocrv3.yaml"], "train.distill.teacher: det_ppocrv3.yaml is a det stage; the student is a rec"),
    (["--teacher", "en-ppocr-v4"], "train.distill.teacher: en-ppocr-v4 reads lines with preprocess.height 48, the "
                                   "student 32"),
    (["--teacher", "tiny_rec.yaml"], "train.distill.teacher: tiny_rec.yaml's rec stage has no weights (weights: null)"),
    (["--teacher", "ppocr-v2", "--set", "train.distill.temperature=0"],
     "train.distill.temperature: 0.0 is out of range; allowed: more than 0"),
    (["--teacher", "ppocr-v2", "--set", "train.distill.wieght=1"], "train.distill: unknown key 'wieght'"),
])
def test_distill_cli_bad_teacher_or_setting_is_one_line_and_exit_2(tmp_path: Path, args: list[str],
                                                                    message: str) -> None:
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["distill", str(_student(tmp_path)), "-o", str(run), *args])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith(f"ocrlite: error: {message}")
    assert not (run / "log.csv").exists()


def test_a_teacher_that_runs_an_int8_onnx_file_is_refused(tmp_path: Path) -> None:
    """A kd teacher config quantized by ``ocrlite quantize`` (``backend: onnxruntime``, ``onnx: <int8 file>``) taught
    with the float weights its config also names, without a word. (The file is refused before it is read.)"""
    config = yaml.safe_load((Path(__file__).parents[2] / "configs" / "rec_ppocrv2.yaml").read_text(encoding="utf-8"))
    teacher = tmp_path / "rec.yaml"
    teacher.write_text(yaml.safe_dump({**config, "backend": "onnxruntime", "onnx": "rec.int8.onnx"}),
                       encoding="utf-8")
    (tmp_path / "rec.int8.onnx").write_bytes(b"not read")
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["distill", str(_student(tmp_path)), "--teacher", str(teacher), "-o", str(run)])
    assert (result.exit_code, result.output) == (
        2, f"ocrlite: error: train.distill.teacher: {teacher} runs its own ONNX file rec.int8.onnx (an int8 model, "
           "e.g. from ocrlite quantize), which mode kd cannot run in the loss: it would teach with the float weights "
           "the config names; give the float config\n")
    assert not run.exists()


@pytest.mark.parametrize("args, message", [
    (["distill", "rec_ppocrv2.yaml", "--teacher", "ppocr-v2"], "rec_ppocrv2.yaml: no train: section"),
    (["distill", "ocr_ppocr_v2.yaml", "--teacher", "ppocr-v2"], "ocr_ppocr_v2.yaml: a pipeline config; train and "
                                                                "distill take a stage config"),
    (["train", "ocr_ppocr_v2.yaml"], "ocr_ppocr_v2.yaml: a pipeline config"),
    (["train", "ocr_ppocr_v2.yaml", "--set", "rec.train.steps=1"], "ocr_ppocr_v2.yaml: a pipeline config"),
])
def test_a_config_that_cannot_train_says_why(tmp_path: Path, args: list[str], message: str) -> None:
    """``ocrlite distill`` on a stage config without a train: section, or on a pipeline config, said 'train.task
    must be one of rec, det, cls, got None'; ``ocrlite train`` on a pipeline config 'no train: section' (or, with a
    --set, that the override 'does not apply to the single stage config' it is not)."""
    run = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "run")])
    assert (run.exit_code, run.stdout) == (2, ""), run.output
    assert run.stderr.startswith(f"ocrlite: error: {message}") and run.stderr.count("\n") == 1, run.stderr
    assert not (tmp_path / "run").exists()
