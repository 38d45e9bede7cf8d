"""Acceptance checks of issue 11 for detection and classification training (CPU, a few minutes each).

    python scripts/train_checks.py det-overfit   # 4 ICDAR 2015 images: hmean >= 0.9 through the real post-processing
    python scripts/train_checks.py det-finetune  # ICDAR 2015 dev, every 5th image held out: falling loss, held-out
                                                 # hmean within 2 points of the converted det_ppocrv3 (bootstrap)
    python scripts/train_checks.py cls           # 0/180 classifier from scratch on FUNSD line crops: >= 85 % held out
    python scripts/train_checks.py rec-funsd     # the v2 CRNN fine-tuned on FUNSD train words: held-out FUNSD words
                                                 # +5 points, IIIT5K and ICDAR 2015 words -2 at most (one eval run each)
    python scripts/train_checks.py all

Each check runs ``ocrlite train`` (the command is printed) into ``--out/<check>``, then scores the result
through the inference predictors and writes ``result.json`` and the split manifests ``split_train.json`` /
``split_val.json`` / ``split_held_out.json`` there (``ocrlite eval det --split .../split_held_out.json`` scores
the same images). Keep-best picks on the validation split (part of the training forms/images); the held-out
split is scored once, after training.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DET_CONFIG = REPO / "configs" / "train" / "det_ppocrv3_ic15.yaml"
CLS_CONFIG = REPO / "configs" / "train" / "cls_funsd.yaml"
REC_FUNSD_CONFIG = REPO / "configs" / "train" / "rec_ppocrv2_funsd.yaml"

OVERFIT = [
    "train.data.limit=4", "train.data.eval_on=train", "train.augment.flip=0", "train.augment.max_angle=0",
    "train.augment.scale_min=0.75", "train.augment.scale_max=0.75", "train.augment.color=0",
    "train.augment.copy_paste=0", "train.augment.size=640", "train.augment.keep_scale=true", "train.steps=400",
    "train.batch_size=2", "train.lr=0.001",
    "train.warmup_steps=10", "train.eval_every=50", "train.save_every=50", "train.weight_decay=0",
    "train.freeze=[backbone]",
]
FINETUNE = ["train.steps=120", "train.batch_size=2", "train.eval_every=60", "train.save_every=60",
            "train.freeze=[backbone]"]


OCRLITE = str(Path(sys.executable).with_name("ocrlite"))  # this interpreter's CLI, whether or not on PATH
TRAIN = True  # --no-train: score the runs already in --out
WEIGHTS: Path | None = None  # --weights: score these weights (e.g. a checkpoint) instead of the export


def run_train(config: Path, out: Path, sets: list[str], threads: int) -> None:
    """Run ``ocrlite train`` with ``sets`` overrides into ``out`` (printed first)."""
    if not TRAIN:
        print(f"(scoring the existing run {out})", flush=True)
        return
    command = [OCRLITE, "--threads", str(threads), "train", str(config), "-o", str(out), "-q", "--name", out.name]
    for item in sets:
        command += ["--set", item]
    print("$", shlex.join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS=str(threads)))


def loss_trend(run: Path, key: str = "loss") -> tuple[float, float]:
    """Mean logged loss over the first and the last quarter of ``log.csv``."""
    with open(run / "log.csv", newline="", encoding="utf-8") as handle:
        values = [float(row[key]) for row in csv.DictReader(handle)]
    quarter = max(1, len(values) // 4)
    return sum(values[:quarter]) / quarter, sum(values[-quarter:]) / quarter


def exported(out: Path, config: Path) -> Path | dict[str, Any]:
    """The stage config ``ocrlite train`` exported into ``out/export``, or ``config`` with ``--weights``."""
    if WEIGHTS is None:
        return next((out / "export").glob("*.yaml"))
    from ocrlite.stages import load_stage_config

    stage = load_stage_config(config, [f"weights={WEIGHTS.with_suffix('')}"])
    return {k: v for k, v in stage.items() if k != "train"}


def report(out: Path, result: dict[str, Any]) -> None:
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1), flush=True)


def det_stage(data: Path, sets: list[str]) -> dict[str, Any]:
    from ocrlite.stages import load_stage_config

    return load_stage_config(DET_CONFIG, [f"train.data.root={data / 'icdar2015'}", *sets])


def det_overfit(data: Path, out: Path, threads: int) -> bool:
    sets = [f"train.data.root={data / 'icdar2015'}", *OVERFIT]
    run_train(DET_CONFIG, out, sets, threads)
    evals = json.loads((out / "evals.json").read_text(encoding="utf-8"))
    first, last = loss_trend(out)
    best = max(e["hmean"] for e in evals)
    result = {"check": "det-overfit", "images": 4, "evals": evals, "loss_first_quarter": first,
              "loss_last_quarter": last, "best_hmean": best, "target": 0.9, "passed": best >= 0.9}
    report(out, result)
    return bool(result["passed"])


def det_finetune(data: Path, out: Path, threads: int) -> bool:
    from ocrlite.predictors import TextDetector
    from ocrlite.train.data import write_split_manifest
    from ocrlite.train.det_task import DetTask, bootstrap_hmean, detect_counts

    sets = [f"train.data.root={data / 'icdar2015'}", *FINETUNE]
    run_train(DET_CONFIG, out, sets, threads)
    task = DetTask(det_stage(data, FINETUNE), batch_size=1)
    write_split_manifest(out, "ICDAR 2015 dev sorted by N, every 5th image held out, every 6th of the rest "
                         "validates (keep-best)", {"train": [r.image for r in task.train_records],
                                                   "val": [r.image for r in task.eval_records],
                                                   "held_out": [r.image for r in task.held_out_records]})
    records = task.held_out_records
    before = detect_counts(TextDetector.from_config("det_ppocrv3.yaml"), records)
    after = detect_counts(TextDetector.from_config(exported(out, DET_CONFIG)), records)
    total = {name: sum(counts[1:], counts[0]) for name, counts in (("converted", before), ("fine_tuned", after))}
    delta = total["fine_tuned"].hmean - total["converted"].hmean
    first, last = loss_trend(out)
    evals = json.loads((out / "evals.json").read_text(encoding="utf-8"))
    result = {
        "check": "det-finetune", "held_out_images": len(records), "picked_on": task.data.eval_on,
        "val_images": len(task.eval_records), "val_evals": evals,
        "converted": {**total["converted"].row(), "hmean_95ci": bootstrap_hmean(before, 2000)},
        "fine_tuned": {**total["fine_tuned"].row(), "hmean_95ci": bootstrap_hmean(after, 2000)},
        "hmean_delta": delta, "hmean_delta_95ci_paired": bootstrap_hmean(after, 2000, baseline=before),
        "loss_first_quarter": first, "loss_last_quarter": last,
        "passed": delta >= -0.02 and last < first,
    }
    report(out, result)
    return bool(result["passed"])


def cls_check(data: Path, out: Path, threads: int) -> bool:
    from ocrlite.predictors import TextClassifier
    from ocrlite.stages import load_stage_config
    from ocrlite.train.cls_task import ClsTask
    from ocrlite.train.data import load_funsd_boxes, three_way_split, write_split_manifest

    sets = [f"train.data.root={data / 'funsd'}"]
    run_train(CLS_CONFIG, out, sets, threads)
    task = ClsTask(load_stage_config(CLS_CONFIG, sets), batch_size=1)
    forms = three_way_split(load_funsd_boxes(data / "funsd"), task.data.holdout_every, task.data.val_every)
    write_split_manifest(out, f"FUNSD train forms sorted by id, every {task.data.holdout_every}th form held out, "
                         f"every {task.data.val_every}th of the rest validates (keep-best)",
                         {"train": [f.image for f in forms.train], "val": [f.image for f in forms.val],
                          "held_out": [f.image for f in forms.held_out]})
    scores = {}
    for name, config in (("trained", exported(out, CLS_CONFIG)), ("shipped", "cls_ppocr_mobile_v2.yaml")):
        classifier = TextClassifier.from_config(config)
        angles = [a for a, _ in classifier(task.held_out_crops)]
        scores[name] = sum(a == b for a, b in zip(angles, task.held_out_angles, strict=True)) / len(angles)
    first, last = loss_trend(out, "ce")
    result = {"check": "cls", "held_out_crops": len(task.held_out_crops) // 2, "scored": len(task.held_out_crops),
              "picked_on": task.data.eval_on,
              "train_crops": len(task.train_crops), "accuracy": scores["trained"],
              "shipped_classifier_accuracy": scores["shipped"], "loss_first_quarter": first,
              "loss_last_quarter": last, "target": 0.85, "passed": scores["trained"] >= 0.85}
    report(out, result)
    return bool(result["passed"])


def eval_rec(data: Path, config: Path, threads: int) -> dict[str, dict[str, Any]]:
    """``ocrlite eval rec`` of the converted ppocr-v2 and ``config`` on ``data`` in one run: rows by system."""
    command = [OCRLITE, "--threads", str(threads), "eval", "rec", "--data", str(data), "--model", "ppocr-v2",
               "--config", str(config), "--format", "json"]
    print("$", shlex.join(command), flush=True)
    done = subprocess.run(command, check=True, cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {("converted" if row["system"] == "ppocr-v2" else "fine_tuned"): row for row in rows}


def rec_funsd(data: Path, out: Path, threads: int) -> bool:
    from ocrlite.charset import Charset
    from ocrlite.files import find_charset
    from ocrlite.train.data import export_funsd_crops

    crops = out / "crops"
    if TRAIN:
        charset = set(Charset.from_file(find_charset("ppocr_keys_v1.txt", None, None), use_space_char=True).chars)
        counts = export_funsd_crops(data / "funsd", crops, lambda text: set(text) <= charset, "words", every=5)
        print("FUNSD word crops:", json.dumps(counts), flush=True)
    run_train(REC_FUNSD_CONFIG, out, [f"train.data.train=[{crops / 'train' / 'labels.txt'}]"], threads)
    pipeline = out / "ocr.yaml"
    rec = exported(out, REC_FUNSD_CONFIG)
    pipeline.write_text(f"det: det_ppocrv3.yaml\ncls: cls_ppocr_mobile_v2.yaml\nrec: {rec}\n", encoding="utf-8")
    sets = {"funsd_held_out_words": crops / "held_out", "iiit5k": data / "iiit5k",
            "icdar2015_words": data / "icdar2015_words"}
    scores = {name: eval_rec(folder, pipeline, threads) for name, folder in sets.items()}
    delta = {name: rows["fine_tuned"]["accuracy"] - rows["converted"]["accuracy"] for name, rows in scores.items()}
    first, last = loss_trend(out)
    result = {"check": "rec-funsd", "scores": scores, "accuracy_delta_points": delta,
              "loss_first_quarter": first, "loss_last_quarter": last,
              "passed": delta["funsd_held_out_words"] >= 5 and delta["iiit5k"] >= -2 and delta["icdar2015_words"] >= -2}
    report(out, result)
    return bool(result["passed"])


CHECKS = {"det-overfit": det_overfit, "det-finetune": det_finetune, "cls": cls_check, "rec-funsd": rec_funsd}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=[*CHECKS, "all"])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO.parent / "runs" / "train_checks")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-train", action="store_true", help="score the runs already in --out")
    parser.add_argument("--weights", type=Path, help="with --no-train: score these weights (a checkpoint's "
                        "model.safetensors) instead of the export")
    args = parser.parse_args()
    global TRAIN, WEIGHTS
    TRAIN, WEIGHTS = not args.no_train, args.weights
    names = list(CHECKS) if args.check == "all" else [args.check]
    passed = {name: CHECKS[name](args.data.resolve(), args.out / name, args.threads) for name in names}
    print("passed:", passed)
    return 0 if all(passed.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
