"""CI-sized version of the FUNSD fine-tuning check (scripts/train_checks.py rec-funsd): the card's CRNN,
fine-tuned on the word crops of a few FUNSD forms, reads held-out forms' words better."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ocrlite.eval.datasets import load_word_crops
from ocrlite.eval.metrics import evaluate_recognition
from ocrlite.io.images import read_image
from ocrlite.predictors import TextRecognizer
from ocrlite.stages import load_stage_config
from ocrlite.train.data import export_funsd_crops
from ocrlite.train.rec_task import RecTask
from ocrlite.train.run import export_model
from ocrlite.train.trainer import TrainSettings, train

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "rec_ppocrv2_funsd.yaml"


def _accuracy(config: str | Path, folder: Path) -> float:
    samples = load_word_crops(folder)
    recognizer = TextRecognizer.from_config(config)
    texts = [d.text for d in recognizer([read_image(path) for path, _ in samples])]
    return evaluate_recognition(texts, [text for _, text in samples]).accuracy


@pytest.mark.data
def test_funsd_fine_tune_raises_held_out_word_accuracy(shared_data: Path, tmp_path: Path) -> None:
    torch.set_num_threads(2)
    counts = export_funsd_crops(shared_data / "funsd", tmp_path / "crops", lambda t: True, "words", every=5, limit=10)
    assert counts["train"]["forms"] == 8 and counts["held_out"]["forms"] == 2  # split by form
    stage = load_stage_config(CONFIG, [f"train.data.train=[{tmp_path / 'crops' / 'train' / 'labels.txt'}]",
                                       "train.steps=40", "train.batch_size=16", "train.lr=0.0005",
                                       "train.warmup_steps=5", "train.save_every=40"])
    settings = TrainSettings.from_stage(stage)
    task = RecTask(stage, settings.batch_size)
    result = train(task, settings, tmp_path / "run", progress=False)
    tuned = export_model(tmp_path / "run", stage, "rec_funsd", task, result, {})
    held_out = tmp_path / "crops" / "held_out"
    before, after = _accuracy("rec_ppocrv2.yaml", held_out), _accuracy(tuned, held_out)
    assert after >= before + 0.03, (before, after)
