"""scripts/train_checks.py as a user runs it: from any folder, with relative --out, --data and --weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocrlite.files import find_weights

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_checks.py"


def test_cls_scores_a_checkpoint_given_with_relative_paths(shared_data: Path, tmp_path: Path) -> None:
    """``cls --no-train --weights CKPT`` (docs/train-det-cls.md) run outside the repository: the weights are the
    shipped classifier's, so the checkpoint's row must equal the shipped row on the same held-out crops."""
    funsd = tmp_path / "data" / "funsd"
    for sub in ("annotations", "images"):
        (funsd / sub).mkdir(parents=True)
    for form in sorted((shared_data / "funsd" / "annotations").glob("*.json"))[:5]:  # the 5th form is held out
        (funsd / "annotations" / form.name).symlink_to(form)
        (funsd / "images" / f"{form.stem}.png").symlink_to(shared_data / "funsd" / "images" / f"{form.stem}.png")
    run = tmp_path / "out" / "cls"
    run.mkdir(parents=True)
    (run / "log.csv").write_text("step,ce\n1,0.7\n2,0.5\n", encoding="utf-8")
    shipped, _ = find_weights("cls_ppocr_mobile_v2", None)
    (tmp_path / "ckpt.safetensors").write_bytes(shipped.read_bytes())
    done = subprocess.run([sys.executable, str(SCRIPT), "cls", "--no-train", "--out", "out", "--data", "data",
                           "--weights", "ckpt.safetensors"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr
    result = json.loads((run / "result.json").read_text(encoding="utf-8"))
    assert result["scored"] == 2 * result["held_out_crops"] > 0
    assert result["accuracy"] == result["shipped_classifier_accuracy"] > 0.9


@pytest.mark.parametrize(("check", "run_files", "message"), [
    ("det-overfit", {}, "--no-train: {run} holds no training run (no log.csv); run the check without --no-train first"),
    ("det-overfit", {"log.csv": "step,loss\n1,5.0\n"},
     "{run}/evals.json: not found; the run in {run} stopped before its first evaluation"),
    ("det-finetune", {"log.csv": "step,loss\n1,5.0\n", "evals.json": "[]"},
     "{run}/export: no exported model (the run stopped before its end); score one of its checkpoints with "
     "--no-train --weights CKPT/model.safetensors"),
])
def test_no_train_without_a_finished_run_is_one_line(tmp_path: Path, check: str, run_files: dict[str, str],
                                                     message: str) -> None:
    """``--no-train`` scores the run already in --out; where there is none (or it stopped early) it said so with a
    traceback (FileNotFoundError on evals.json, StopIteration on the export)."""
    data = tmp_path / "data" / "icdar2015"
    for sub in ("images", "gt"):
        (data / sub).mkdir(parents=True)
    cv2.imwrite(str(data / "images" / "img_1.jpg"), np.full((64, 64, 3), 255, np.uint8))
    (data / "gt" / "gt_img_1.txt").write_text("8,8,40,8,40,24,8,24,a\n", encoding="utf-8")
    run = tmp_path / "out" / check
    run.mkdir(parents=True)
    for name, text in run_files.items():
        (run / name).write_text(text, encoding="utf-8")
    done = subprocess.run([sys.executable, str(SCRIPT), check, "--no-train", "--out", str(tmp_path / "out"),
                           "--data", str(tmp_path / "data")], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert done.returncode != 0
    assert done.stderr.splitlines()[-1:] == [f"train_checks.py: error: {message.format(run=run)}"]
    assert "Traceback" not in done.stderr
