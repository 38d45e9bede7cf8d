"""Detection training task: threshold-branch init for converted weights, batches, loss, evaluation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from ocrlite.errors import ConfigError, WeightsError
from ocrlite.eval.metrics import PRScores, bootstrap_hmean, evaluate_detection
from ocrlite.files import find_weights
from ocrlite.io.images import read_image
from ocrlite.predictors import TextDetector
from ocrlite.stages import load_stage_config, stage_spec
from ocrlite.train.det_task import DetTask, build_det_model
from ocrlite.weights import sha256_file

THRESHOLD_NOTE = ("det_ppocrv3.safetensors has no DB threshold branch: initialised its 13 tensors (hidden layers "
                  "copied from the probability branch, last conv zero: T = 0.5)\n")


def _stage(**train: object) -> dict:
    stage = load_stage_config("det_ppocrv3.yaml")
    stage["train"] = {"task": "det", **train}
    return stage


def test_converted_weights_get_an_initialised_threshold_branch(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ocrlite.train.det_task"):
        model = build_det_model(_stage()).eval()
    assert "no DB threshold branch: initialised its 13 tensors" in caplog.text
    reference = stage_spec("det", "det_ppocrv3.yaml").build_net()
    own = model.state_dict()
    for key, value in reference.state_dict().items():
        assert torch.equal(own[key], value), key
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        maps = torch.sigmoid(model.forward_train(x))  # the training output is logits
        assert torch.equal(maps[:, :1], reference(x))  # P is the inference map
    assert maps.shape == (1, 3, 64, 96) and torch.equal(maps[:, 1], torch.full_like(maps[:, 1], 0.5))  # T = 0.5
    assert torch.allclose(maps[:, 2], torch.sigmoid(50 * (maps[:, 0] - 0.5)))
    assert torch.equal(own["head.thresh.bn1.running_var"], own["head.binarize.bn1.running_var"])


def test_keep_best_scores_the_validation_images_not_the_held_out_ones(tmp_path: Path) -> None:
    box = {"transcription": "a", "points": [[8, 8], [40, 8], [40, 24], [8, 24]]}
    for k in range(20):  # one image per line: an image listed twice is refused
        cv2.imwrite(str(tmp_path / f"page{k}.png"), np.full((64, 64, 3), 255, np.uint8))
    (tmp_path / "labels.txt").write_text("".join(f"page{k}.png\t{json.dumps([box])}\n" for k in range(20)))
    data = {"format": "paddle", "root": str(tmp_path / "labels.txt"), "holdout_every": 5, "val_every": 4}
    task = DetTask(_stage(data={**data, "eval_on": "val"}), batch_size=1)
    assert (len(task.train_records), len(task.eval_records), len(task.held_out_records)) == (12, 4, 4)
    assert not {id(r) for r in task.eval_records} & {id(r) for r in task.held_out_records}
    with pytest.raises(ConfigError, match="val needs train.data.val_every"):
        DetTask(_stage(data={**data, "val_every": 0, "eval_on": "val"}), batch_size=1)


def test_only_the_threshold_branch_may_be_missing(tmp_path: Path) -> None:
    path, _ = find_weights("det_ppocrv3", None)
    tensors = load_file(str(path))
    broken = {k: v for k, v in tensors.items() if k != "head.binarize.conv1.weight"}
    save_file(broken, str(tmp_path / "broken.safetensors"))
    stage = _stage()
    stage["weights"] = str(tmp_path / "broken")
    with pytest.raises(WeightsError, match="missing: head.binarize.conv1.weight"):
        build_det_model(stage)
    # a file with a partial threshold branch is refused too
    full = build_det_model(_stage()).state_dict()
    partial = dict(tensors, **{"head.thresh.conv1.weight": full["head.thresh.conv1.weight"]})
    save_file(partial, str(tmp_path / "partial.safetensors"))
    stage["weights"] = str(tmp_path / "partial")
    with pytest.raises(WeightsError, match="only partly present"):
        build_det_model(stage)


def test_trained_weights_with_the_branch_load_without_init(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    trained = {k: v.contiguous() for k, v in build_det_model(_stage()).state_dict().items()}
    trained["head.thresh.conv3.weight"] = torch.rand_like(trained["head.thresh.conv3.weight"])
    save_file(trained, str(tmp_path / "trained.safetensors"))
    stage = _stage()
    stage["weights"] = str(tmp_path / "trained")
    with caplog.at_level(logging.INFO, logger="ocrlite.train.det_task"):
        model = build_det_model(stage)
    assert "initialised" not in caplog.text
    assert torch.equal(model.state_dict()["head.thresh.conv3.weight"], trained["head.thresh.conv3.weight"])


@pytest.mark.data
def test_det_task_batches_loss_and_evaluation(shared_data: Path) -> None:
    stage = _stage(data={"root": str(shared_data / "icdar2015"), "limit": 2, "eval_on": "train"},
                   augment={"size": 256})
    stage["preprocess"]["limit_side_len"] = 480  # smaller eval input keeps the test fast
    task = DetTask(stage, batch_size=2)
    assert [r.image.name for r in task.train_records] == ["img_1.jpg", "img_7.jpg"]
    batch = task.batch(np.random.default_rng(0))
    assert batch["image"].shape == (2, 3, 256, 256) and batch["thresh"].shape == (2, 256, 256)
    assert batch["thresh"].min() >= 0.3 - 1e-6 and batch["thresh"].max() <= 0.7 + 1e-6
    again = task.batch(np.random.default_rng(0))
    assert all(torch.equal(batch[k], again[k]) for k in batch)
    model = task.build_model()
    # evaluation goes through the inference detector: same score as the shipped pipeline on these images
    model.train()
    scores = task.evaluate(model)
    assert model.training  # evaluation restores the mode
    detector = TextDetector.from_config({k: v for k, v in stage.items() if k != "train"})
    preds = [[b.points for b in detector(read_image(r.image))] for r in task.eval_records]
    expected = evaluate_detection(preds, [r.regions() for r in task.eval_records])
    assert scores["hmean"] == pytest.approx(expected.hmean) and scores["recall"] == pytest.approx(expected.recall)
    model.train()
    loss, parts = task.loss(model, batch)
    loss.backward()
    assert torch.isfinite(loss) and set(parts) == {"loss", "loss_shrink", "loss_thresh", "loss_binary"}
    # the zeroed last layer of the threshold branch learns first; the probability branch gets gradient too
    assert model.head.thresh.conv3.weight.grad.abs().sum() > 0
    assert model.head.binarize.conv1.weight.grad.abs().sum() > 0


def test_bootstrap_interval_brackets_the_hmean() -> None:
    counts = [PRScores(m, 10, 10) for m in (9, 8, 7, 10, 6, 9, 8, 7)]
    total = sum(counts, PRScores())
    low, high = bootstrap_hmean(counts, 2000, seed=1)
    assert low < total.hmean < high and 0.6 <= low and high <= 1.0
    assert bootstrap_hmean([PRScores(5, 5, 5)] * 4) == (1.0, 1.0)
    with pytest.raises(ValueError, match="no images to resample"):
        bootstrap_hmean([])
    # paired: the same detector against itself differs by exactly 0 on every resample
    assert bootstrap_hmean(counts, baseline=counts) == (0.0, 0.0)
    better = [PRScores(c.matched + 1, 10, 10) for c in counts]
    low, high = bootstrap_hmean(better, baseline=counts)
    assert 0 < low <= high and high == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize(
    ("override", "message"),
    [("train.data.format=coco", "train.data.format must be icdar2015, paddle or funsd"),
     ("train.loss.alpha=abc", "train.loss.alpha: expected a finite number, got 'abc'"),
     ("train.augment.sise=640", "train.augment: unknown key 'sise'"),
     ("train.data.unit=word", "train.data.unit must be 'words' or 'lines', got 'word'"),
    # ICDAR 2015 and PaddleOCR label files have their own boxes: the unit (FUNSD's words or lines) was ignored
    ("icdar2015 train.data.unit=words", "train.data.unit: only FUNSD data (format funsd) has word and line boxes "
                                        "to choose from; format icdar2015 has its own, so leave unit out"),
    ("paddle train.data.unit=lines", "train.data.unit: only FUNSD data (format funsd) has word and line boxes to "
                                     "choose from; format paddle has its own, so leave unit out"),
     # a size off the stride met a RuntimeError traceback at the first step (feature maps 7 and 8 wide at 100); at
     # 32 the deepest map is 1 x 1, where BatchNorm cannot train on a batch of one (ValueError traceback)
     ("train.augment.size=100", "train.augment.size: 100 is out of range; allowed: a multiple of 32 (the "
                                "detector's stride), 64 or more"),
     ("train.augment.size=32", "train.augment.size: 32 is out of range; allowed: 64..")],
)
def test_bad_det_settings_are_one_line_errors(tmp_path: Path, override: str, message: str) -> None:
    from click.testing import CliRunner

    from ocrlite.cli import main

    config = Path(__file__).resolve().parents[2] / "configs" / "train" / "det_ppocrv3_ic15.yaml"
    fmt, _, override = override.rpartition(" ")  # the data format, when the case names one
    fmt = fmt or ("funsd" if override.startswith("train.data.unit") else "icdar2015")
    result = CliRunner().invoke(main, ["train", str(config), "-o", str(tmp_path / "run"), "-q", "--set",
                                       f"train.data.root={tmp_path}", "--set", f"train.data.format={fmt}",
                                       "--set", override])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def _label_file(folder: Path, image: str) -> Path:
    box = {"transcription": "a", "points": [[8, 8], [40, 8], [40, 24], [8, 24]]}
    labels = folder / "labels.txt"
    labels.write_text(f"{image}\t{json.dumps([box])}\n", encoding="utf-8")
    return labels


@pytest.mark.parametrize("content, reason", [(None, "No such file or directory"),
                                             (b"not an image", "not a recognised image file")])
def test_a_missing_or_broken_image_fails_the_start(tmp_path: Path, content: bytes | None, reason: str) -> None:
    if content is not None:
        (tmp_path / "page.png").write_bytes(content)
    data = {"format": "paddle", "root": str(_label_file(tmp_path, "page.png")), "holdout_every": 0}
    with pytest.raises(ConfigError, match=f"^cannot read image {tmp_path / 'page.png'}: {reason}$"):
        DetTask(_stage(data=data), batch_size=1)


def test_the_data_manifest_records_the_ground_truth_files_with_the_images(tmp_path: Path) -> None:
    """data_manifest.json lists every file a run reads with its sha256; a det run listed its images only, so a
    label file edited between two runs left no trace in it (nor in the export's data_manifest_sha256)."""
    from ocrlite.train.run import run_training

    cv2.imwrite(str(tmp_path / "page.png"), np.full((64, 64, 3), 255, np.uint8))
    labels = _label_file(tmp_path, "page.png")
    (tmp_path / "icdar" / "images").mkdir(parents=True)
    (tmp_path / "icdar" / "gt").mkdir()
    cv2.imwrite(str(tmp_path / "icdar" / "images" / "img_1.jpg"), np.full((64, 64, 3), 255, np.uint8))
    (tmp_path / "icdar" / "gt" / "gt_img_1.txt").write_text("8,8,40,8,40,24,8,24,a\n", encoding="utf-8")
    config = Path(__file__).resolve().parents[2] / "configs" / "train" / "det_ppocrv3_ic15.yaml"
    for fmt, root, expected in (("paddle", labels, [labels, tmp_path / "page.png"]),
                                ("icdar2015", tmp_path / "icdar", [tmp_path / "icdar" / "gt" / "gt_img_1.txt",
                                                                   tmp_path / "icdar" / "images" / "img_1.jpg"])):
        run = tmp_path / f"run_{fmt}"
        run_training(str(config), [f"train.data.format={fmt}", f"train.data.root={root}", "train.steps=1",
                                   "train.data.holdout_every=0", "train.data.eval_on=train", "train.batch_size=1",
                                   "train.augment.size=64"], run, export=False, progress=False)
        manifest = json.loads((run / "data_manifest.json").read_text(encoding="utf-8"))
        assert manifest["files"] == [{"path": str(f.resolve()), "sha256": sha256_file(f)} for f in expected]


def test_an_image_that_fails_in_a_worker_process_is_one_line(tmp_path: Path) -> None:
    """Its header reads (the start's check passes), its pixels do not: the worker's error comes back as it is."""
    from ocrlite.errors import ImageReadError
    from ocrlite.train.trainer import TrainSettings, train

    _, encoded = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (tmp_path / "page.png").write_bytes(encoded.tobytes()[: len(encoded) // 2])
    data = {"format": "paddle", "root": str(_label_file(tmp_path, "page.png")), "holdout_every": 0}
    stage = _stage(data=data, augment={"size": 64}, steps=1, batch_size=1, workers=1)
    with pytest.raises(ImageReadError) as caught:
        train(DetTask(stage, batch_size=1), TrainSettings.from_stage(stage), tmp_path / "run", progress=False)
    assert str(caught.value) == f"{tmp_path / 'page.png'}: corrupt or truncated image data (image file is truncated)"


def test_the_training_config_used_for_inference_says_how_to_run_it(tmp_path: Path) -> None:
    """``ocrlite detect/eval --config configs/train/det_ppocrv3_ic15.yaml`` (a baseline with the config to be
    trained) builds the threshold branch, which the converted weights lack: the error listed the missing
    ``head.thresh.*`` tensors only. It now names the setting that runs it, and with it the boxes are the converted
    detector's."""
    from click.testing import CliRunner

    from ocrlite.cli import main

    config = Path(__file__).resolve().parents[2] / "configs" / "train" / "det_ppocrv3_ic15.yaml"
    sample = Path(__file__).resolve().parents[1] / "images" / "sample.png"
    refused = CliRunner().invoke(main, ["--threads", "1", "detect", "--config", str(config), str(sample)])
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr == ("ocrlite: error: det_ppocrv3.safetensors has no DB threshold branch (head.thresh), "
                              "which this det config builds (model.head.with_threshold: true, as training configs "
                              "do); inference does not run it: set det.model.head.with_threshold=false\n")
    runs = [CliRunner().invoke(main, ["--threads", "1", "detect", *args, str(sample)])
            for args in (["--config", str(config), "--set", "det.model.head.with_threshold=false"],
                         ["--config", "det_ppocrv3.yaml"])]
    assert runs[0].exit_code == runs[1].exit_code == 0 and runs[0].stdout == runs[1].stdout
    assert json.loads(runs[0].stdout)["boxes"]


def test_the_cli_says_when_it_initialises_the_threshold_branch(tmp_path: Path) -> None:
    """The docs promise a log line; the command line shows it on stderr, and not again when the run resumes (the
    checkpoint's trained branch replaces the initialised one)."""
    from click.testing import CliRunner

    from ocrlite.cli import main

    cv2.imwrite(str(tmp_path / "page.png"), np.full((64, 64, 3), 255, np.uint8))
    config = Path(__file__).resolve().parents[2] / "configs" / "train" / "det_ppocrv3_ic15.yaml"
    run = tmp_path / "run"
    args = ["--threads", "1", "train", str(config), "-o", str(run), "-q",
            "--set", f"train.data.root={_label_file(tmp_path, 'page.png')}", "--set", "train.data.format=paddle",
            "--set", "train.data.holdout_every=0", "--set", "train.data.eval_on=train", "--set", "train.steps=1",
            "--set", "train.batch_size=1", "--set", "train.augment.size=64", "--no-export"]
    fresh = CliRunner().invoke(main, args)
    assert fresh.exit_code == 0, fresh.output
    said = "det_ppocrv3.safetensors has no DB threshold branch: initialised its 13 tensors"
    assert said in fresh.stderr and said not in fresh.stdout
    resumed = CliRunner().invoke(main, [*args, "--set", "train.steps=2", "--resume", str(run)])
    assert resumed.exit_code == 0, resumed.output
    assert "threshold branch" not in resumed.output


@pytest.mark.parametrize("pages, note", [
    (4, "train.data.eval_on: the holdout split is empty, so no step is scored and the run keeps its last weights; "
        "lower train.data.holdout_every (now 5) or set train.data.eval_on=train\n"),
    (5, ""),  # the 5th image is held out and scored
])
def test_the_cli_says_when_the_split_it_scores_is_empty(tmp_path: Path, pages: int, note: str) -> None:
    """4 images, every 5th held out and scored (eval_on: holdout): no step was scored and the run ended "best: -"
    without a word. It still trains, and says why at the start."""
    from click.testing import CliRunner

    from ocrlite.cli import main

    box = {"transcription": "a", "points": [[8, 8], [40, 8], [40, 24], [8, 24]]}
    for k in range(pages):
        cv2.imwrite(str(tmp_path / f"page{k}.png"), np.full((64, 64, 3), 255, np.uint8))
    (tmp_path / "labels.txt").write_text("".join(f"page{k}.png\t{json.dumps([box])}\n" for k in range(pages)))
    config = Path(__file__).resolve().parents[2] / "configs" / "train" / "det_ppocrv3_ic15.yaml"
    result = CliRunner().invoke(main, [
        "--threads", "1", "train", str(config), "-o", str(tmp_path / "run"), "-q", "--no-export",
        "--set", f"train.data.root={tmp_path / 'labels.txt'}", "--set", "train.data.format=paddle",
        "--set", "train.data.eval_on=holdout", "--set", "train.steps=1", "--set", "train.batch_size=1",
        "--set", "train.augment.size=64"])
    assert result.exit_code == 0, result.output
    assert result.stderr.replace(THRESHOLD_NOTE, "") == note
    scored = json.loads((tmp_path / "run" / "evals.json").read_text(encoding="utf-8"))
    assert ("hmean" in scored[0]) == (not note) and result.stdout.endswith("best: -\n") == bool(note)


def test_what_a_det_run_scores_is_told_by_content(tmp_path: Path) -> None:
    """A resumed run must score the samples its checkpoint's best was scored on (``trainer.check_resume``): the
    same images and boxes moved elsewhere are the same, another split or another box is not."""
    import shutil

    from ocrlite.train.trainer import scored_by

    (tmp_path / "a").mkdir()
    for k in range(4):
        cv2.imwrite(str(tmp_path / "a" / f"page{k}.png"), np.full((64, 64, 3), 40 * k, np.uint8))
    box = {"transcription": "a", "points": [[8, 8], [40, 8], [40, 24], [8, 24]]}
    (tmp_path / "a" / "labels.txt").write_text("".join(f"page{k}.png\t{json.dumps([box])}\n" for k in range(4)))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    wider = {**box, "points": [[8, 8], [48, 8], [48, 24], [8, 24]]}
    (tmp_path / "b" / "labels2.txt").write_text("".join(f"page{k}.png\t{json.dumps([box if k < 3 else wider])}\n"
                                                        for k in range(4)))

    def scored(root: Path, **data: object) -> dict[str, str] | None:
        stage = _stage(data={"format": "paddle", "root": str(root), "holdout_every": 2, **data})
        return scored_by(DetTask(stage, batch_size=1))

    first = scored(tmp_path / "a" / "labels.txt")
    assert first is not None and first["key"] == "train.data (its eval_on split)"
    assert scored(tmp_path / "b" / "labels.txt") == first
    assert scored(tmp_path / "b" / "labels2.txt") != first
    assert scored(tmp_path / "a" / "labels.txt", eval_on="train") != first
    assert scored(tmp_path / "a" / "labels.txt", holdout_every=0) is None  # nothing scored
