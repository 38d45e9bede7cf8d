"""Direction-classifier training task: labels from the 180-degree turn, batches, evaluation via TextClassifier."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ocrlite.errors import ConfigError
from ocrlite.io.atomic import write_image
from ocrlite.predictors import TextClassifier
from ocrlite.stages import load_stage_config
from ocrlite.train.cls_task import ClsTask

WORDS = ["Invoice 48213", "Total: $12.50", "Date 2024-01-31", "Thank you!", "Page 3 of 7", "Amount due",
         "Ref. AB-77", "Signature", "Phone 555-0101", "Qty 12"]


def _label_file(tmp_path: Path) -> Path:
    lines = []
    for i, text in enumerate(WORDS):
        image = np.full((40, 12 + 19 * len(text), 3), 255, dtype=np.uint8)
        cv2.putText(image, text, (6, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (20, 20, 20), 2)
        write_image(tmp_path / f"w{i}.png", image)
        lines.append(f"w{i}.png\t{text}")
    (tmp_path / "labels.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path / "labels.txt"


def _stage(root: Path, weights: str | None) -> dict:
    stage = load_stage_config("cls_ppocr_mobile_v2.yaml")
    stage["weights"] = weights
    stage["train"] = {"task": "cls", "data": {"format": "labels", "root": str(root)}}
    return stage


def test_batches_label_turned_crops_180(tmp_path: Path) -> None:
    task = ClsTask(_stage(_label_file(tmp_path), None), batch_size=16)
    assert len(task.train_crops) == 8 and len(task.eval_crops) == 4  # every 5th line held out, both ways
    assert (task.augment.height, task.augment.max_width) == (48, 192)  # augmented at the net's input size
    task.augment = lambda image, rng: image  # type: ignore[assignment,method-assign]  # see pixels as drawn
    batch = task.batch(np.random.default_rng(0))
    assert batch["image"].shape == (16, 3, 48, 192) and set(batch["label"].tolist()) == {0, 1}
    # each image is some training crop batched as inference batches it: upright with label 0, turned with 1
    upright = task.collate(task.train_crops, [0] * 8)["image"]
    turned = task.collate([c[::-1, ::-1] for c in task.train_crops], [1] * 8)["image"]
    for image, label in zip(batch["image"], batch["label"], strict=True):
        pool = turned if label == 1 else upright
        assert any(torch.equal(image, candidate) for candidate in pool)
    again = task.batch(np.random.default_rng(0))
    assert torch.equal(batch["image"], again["image"]) and torch.equal(batch["label"], again["label"])
    model = task.build_model()
    loss, logs = task.loss(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and logs["ce"] == pytest.approx(float(loss.detach()))


def test_a_paddleocr_direction_label_file_trains_its_180_crops_turned_upright(tmp_path: Path) -> None:
    """PaddleOCR's cls label file (``path<TAB>0`` or ``180``) gives upside-down crops the label 180; they were read
    as upright crops, so the net learnt their direction backwards. Read so, the task holds the very crops of the
    same images labelled with their text."""
    texts = _label_file(tmp_path).read_text(encoding="utf-8").splitlines()
    lines = []
    for i, line in enumerate(texts):
        name = line.partition("\t")[0]
        if i % 2:  # every other crop stored upside down, as a direction data set holds them
            write_image(tmp_path / f"t{i}.png", cv2.rotate(cv2.imread(str(tmp_path / name)), cv2.ROTATE_180))
            name = f"t{i}.png"
        lines.append(f"{name}\t{180 if i % 2 else 0}")
    (tmp_path / "angles.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    by_text = ClsTask(_stage(tmp_path / "labels.txt", None), batch_size=4)
    by_angle = ClsTask(_stage(tmp_path / "angles.txt", None), batch_size=4)
    for ours, theirs in ((by_angle.train_crops, by_text.train_crops), (by_angle.eval_crops, by_text.eval_crops)):
        assert len(ours) == len(theirs) > 0
        assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert by_angle.eval_angles == by_text.eval_angles


def test_paired_batches_hold_each_crop_both_ways_and_val_stays_apart(tmp_path: Path) -> None:
    stage = _stage(_label_file(tmp_path), None)
    stage["train"]["data"].update(pairs=True, val_every=4, eval_on="val")
    stage["train"]["augment"] = {"at_input": False}
    task = ClsTask(stage, batch_size=6)
    assert task.augment.height == 0  # augmented at the crop's own size
    # 10 lines: 2 held out (every 5th), then every 4th of the other 8 validates
    assert (len(task.train_crops), len(task.eval_crops), len(task.held_out_crops)) == (6, 4, 4)
    held = {c.tobytes() for c in task.held_out_crops}
    assert not held & {c.tobytes() for c in task.eval_crops} and not held & {c.tobytes() for c in task.train_crops}
    task.augment = lambda image, rng: image  # type: ignore[assignment,method-assign]
    batch = task.batch(np.random.default_rng(1))
    assert batch["label"].tolist() == [0, 1] * 3
    for upright, turned in zip(batch["image"][0::2], batch["image"][1::2], strict=True):
        pool = task.collate([c[::-1, ::-1] for c in task.train_crops if any(
            torch.equal(upright, x) for x in task.collate([c], [0])["image"])], [1])["image"]
        assert len(pool) == 1 and torch.equal(turned, pool[0])  # the same crop, turned


@pytest.mark.parametrize("val_every, notes", [
    (9, ["train.data.eval_on: the val split is empty, so no step is scored and the run keeps its last weights; "
         "lower train.data.val_every (now 9) or set train.data.eval_on=train"]),
    (8, []),
])
def test_an_empty_split_to_score_is_a_note_not_an_error(tmp_path: Path, val_every: int, notes: list[str]) -> None:
    """10 lines: 2 held out, then every 9th of the other 8 validates: none (``ocrlite train`` says the notes)."""
    stage = _stage(_label_file(tmp_path), None)
    stage["train"]["data"].update(val_every=val_every, eval_on="val")
    task = ClsTask(stage, batch_size=4)
    assert task.notes == notes and len(task.eval_crops) == 2 * (not notes)


def test_evaluate_matches_the_inference_classifier(tmp_path: Path) -> None:
    task = ClsTask(_stage(_label_file(tmp_path), "cls_ppocr_mobile_v2"), batch_size=4)
    model = task.build_model().train()
    scores = task.evaluate(model)
    assert model.training
    shipped = TextClassifier.from_config("cls_ppocr_mobile_v2.yaml")
    angles = [a for a, _ in shipped(task.eval_crops)]
    expected = np.mean([a == b for a, b in zip(angles, task.eval_angles, strict=True)])
    assert scores["accuracy"] == pytest.approx(expected)


def test_bad_format_is_a_config_error(tmp_path: Path) -> None:
    stage = _stage(_label_file(tmp_path), None)
    stage["train"]["data"]["format"] = "coco"
    with pytest.raises(ConfigError, match="train.data.format"):
        ClsTask(stage, 4)


def test_a_head_with_other_than_two_classes_is_refused_at_the_start(tmp_path: Path) -> None:
    """A 3-class head would train (labels 0 and 1 only) and export a classifier whose third output, when it wins,
    has no angle: every image it reads then fails (IndexError)."""
    stage = _stage(_label_file(tmp_path), None)
    stage["model"]["head"]["class_num"] = 3
    with pytest.raises(ConfigError, match=r"^model.head.class_num must be 2, one class per postprocess.labels "
                                          r"angle \[0, 180\], got 3$"):
        ClsTask(stage, 4)


def test_funsd_recipe_trains_on_crops_as_inference_batches_them(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[2] / "configs" / "train" / "cls_funsd.yaml"
    stage = load_stage_config(config, [f"train.data.root={_label_file(tmp_path)}", "train.data.format=labels",
                                       "train.data.val_every=4"])
    task = ClsTask(stage, batch_size=4)
    batch = task.batch(np.random.default_rng(3))
    # the recipe draws no RandAugment/BDA op: each pair is a training crop upright and turned, batched as
    # TextClassifier batches it
    assert batch["label"].tolist() == [0, 1, 0, 1]
    upright = task.collate(task.train_crops, [0] * len(task.train_crops))["image"]
    turned = task.collate([c[::-1, ::-1] for c in task.train_crops], [1] * len(task.train_crops))["image"]
    for i in (0, 2):
        match = [j for j, candidate in enumerate(upright) if torch.equal(batch["image"][i], candidate)]
        assert len(match) == 1 and torch.equal(batch["image"][i + 1], turned[match[0]])


def test_a_label_file_read_like_the_recognizer_s(tmp_path: Path) -> None:
    """The cls task reads a rec label file with the one ``path<TAB>text`` reader: a BOM and CRLF line ends are
    fine, and a line without a tab is refused with its number (it was taken whole as an image path)."""
    labels = _label_file(tmp_path)
    labels.write_bytes(b"\xef\xbb\xbf" + labels.read_bytes().replace(b"\n", b"\r\n"))
    assert len(ClsTask(_stage(labels, None), batch_size=16).train_crops) == 8
    labels.write_text(labels.read_text(encoding="utf-8-sig") + "w0.png\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"labels.txt:11: expected 'image path<TAB>text', got 'w0.png'"):
        ClsTask(_stage(labels, None), batch_size=16)


def test_a_unit_given_for_a_label_file_is_refused(tmp_path: Path) -> None:
    """``train.data.unit`` picks FUNSD's word or line boxes; a label file's crops are what they are, so a unit
    given for one was silently ignored."""
    stage = _stage(_label_file(tmp_path), None)
    stage["train"]["data"]["unit"] = "words"
    with pytest.raises(ConfigError, match=r"^train.data.unit: only FUNSD data \(format funsd\) has word and line "
                                          r"boxes to choose from; format labels has its own, so leave unit out$"):
        ClsTask(stage, 4)


def test_a_unit_written_in_the_config_is_removed_by_setting_it_null(tmp_path: Path) -> None:
    """``--set train.data.unit=null`` said "train.data.unit: expected a string, got None", so a config file's
    ``unit`` could not be taken out for other data; null means not set, as ``train.data.eval: null`` does."""
    import yaml

    from ocrlite.train.run import load_training_config

    labels = _label_file(tmp_path)
    stage = _stage(labels, None)
    stage["train"]["data"]["unit"] = "words"
    config = tmp_path / "cls.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in stage.items() if not k.startswith("_")}), encoding="utf-8")
    with pytest.raises(ConfigError, match="^train.data.unit: only FUNSD data"):
        ClsTask(load_training_config(str(config), []), 4)
    task = ClsTask(load_training_config(str(config), ["train.data.unit=null"]), 4)
    assert (len(task.train_crops), task.data.unit) == (8, "lines")


def test_a_line_height_the_classifier_cannot_take_is_one_line_at_the_start(tmp_path: Path) -> None:
    """At 32 px or less the shipped classifier's MobileNetV3 runs out of rows: training failed with a RuntimeError
    traceback at its first step and ``ocrlite classify`` with an "unexpected RuntimeError" per file. 33 px works
    (found by trying every height); at 33 the net classifies a real crop."""
    from click.testing import CliRunner

    from ocrlite.cli import main

    message = ("cls.preprocess.height: 32 is too small for this net (its feature map runs out); the smallest that "
               "works is 33")
    stage = _stage(_label_file(tmp_path), "cls_ppocr_mobile_v2")
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        ClsTask({**stage, "preprocess": {**stage["preprocess"], "height": 32}}, 4).build_model()
    crop = tmp_path / "w0.png"
    result = CliRunner().invoke(main, ["classify", str(crop), "--set", "cls.preprocess.height=32"])
    assert (result.exit_code, result.output) == (2, f"ocrlite: error: {message}\n")
    works = CliRunner().invoke(main, ["classify", str(crop), "--set", "cls.preprocess.height=33"])
    assert works.exit_code == 0 and works.output.startswith(f"{crop}\t0\t"), works.output


def test_what_a_cls_run_scores_is_told_by_content(tmp_path: Path) -> None:
    """The crops a resumed run scores must be its checkpoint's (``trainer.check_resume``): the same label file and
    images moved elsewhere are the same, another split is not."""
    import shutil

    from ocrlite.train.trainer import scored_by

    (tmp_path / "a").mkdir()
    labels = _label_file(tmp_path / "a")
    moved = Path(shutil.copytree(labels.parent, tmp_path / "b")) / labels.name
    first = scored_by(ClsTask(_stage(labels, None), 4))
    assert first is not None and first["key"] == "train.data (its eval_on split)"
    assert scored_by(ClsTask(_stage(moved, None), 4)) == first
    other = _stage(moved, None)
    other["train"]["data"]["holdout_every"] = 3
    assert scored_by(ClsTask(other, 4)) != first
