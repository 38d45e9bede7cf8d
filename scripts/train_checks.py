"""Acceptance checks of issue 11 for detection and classification training (CPU, a few minutes each), and of
issue 12 for distillation (``distill``: four training runs and the teacher's labels, about 45 CPU minutes on
one thread).

    python scripts/train_checks.py det-overfit   # 4 ICDAR 2015 images: hmean >= 0.9 through the real post-processing
    python scripts/train_checks.py det-finetune  # ICDAR 2015 dev, every 5th image held out: falling loss, held-out
                                                 # hmean within 2 points of the converted det_ppocrv3 (bootstrap)
    python scripts/train_checks.py cls           # 0/180 classifier from scratch on FUNSD line crops: >= 85 % held out
    python scripts/train_checks.py rec-funsd     # the v2 CRNN fine-tuned on FUNSD train words: held-out FUNSD words
                                                 # +5 points, IIIT5K and ICDAR 2015 words -2 at most (one eval run each)
    python scripts/train_checks.py distill       # semi-supervised distillation: the v2 CRNN on 5 labelled FUNSD forms
                                                 # + ppocr-v6-small's pseudo-labels of 3000 unlabelled crops beats
                                                 # the same student on the 5 forms alone (paired, on every seed)
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

import yaml

from ocrlite.errors import OcrliteError, exit_on_error
from ocrlite.io.atomic import atomic_write_text

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
# distill: training forms (0-based, id order) whose true labels the student gets; the teacher reads the first
# UNLABELLED training crops (forms 0-17) without theirs; the same recipe and steps for both students
LABELLED_FORMS = (20, 40, 60, 80, 100)
UNLABELLED = 3000
DISTILL_SEEDS = (0, 1)
DISTILL_RECIPE = ["weights=rec_ppocrv2_en", "train.steps=120", "train.warmup_steps=10", "train.save_every=120"]
DISTILL_PSEUDO = ["train.distill.mode=pseudo", "train.distill.teacher=ppocr-v6-small", "train.distill.inputs=crops",
                  "train.distill.min_score=0.9"]
FINETUNE = ["train.steps=120", "train.batch_size=2", "train.eval_every=60", "train.save_every=60",
            "train.freeze=[backbone]"]


OCRLITE = str(Path(sys.executable).with_name("ocrlite"))  # this interpreter's CLI, whether or not on PATH
TRAIN = True  # --no-train: score the runs already in --out
WEIGHTS: Path | None = None  # --weights: score these weights (e.g. a checkpoint) instead of the export
LIMIT: int | None = None  # --limit: distill scores the first N held-out crops


def run_train(config: Path, out: Path, sets: list[str], threads: int, command_name: str = "train") -> None:
    """Run ``ocrlite train`` (or ``distill``) with ``sets`` overrides into ``out`` (printed first); with
    ``--no-train``, an OcrliteError unless ``out`` holds a run (its log.csv)."""
    if not TRAIN:
        if not (out / "log.csv").is_file():
            raise OcrliteError(f"--no-train: {out} holds no training run (no log.csv); run the check without "
                               "--no-train first")
        print(f"(scoring the existing run {out})", flush=True)
        return
    command = [OCRLITE, "--threads", str(threads), command_name, str(config), "-o", str(out), "-q", "--name",
               out.name]
    for item in sets:
        command += ["--set", item]
    run_ocrlite(command, threads)


def run_ocrlite(command: list[str], threads: int, capture: bool = False) -> str:
    """Run an ``ocrlite`` command (printed first) and return its stdout when ``capture``; an OcrliteError naming
    it, with its exit code (and its own error line when captured), when it fails."""
    print("$", shlex.join(command), flush=True)
    done = subprocess.run(command, cwd=REPO, capture_output=capture, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS=str(threads)))
    if done.returncode != 0:
        said = (done.stderr or "").strip().splitlines()[-1:] if capture else []
        raise OcrliteError(f"ocrlite {command[3]} failed with exit {done.returncode}"
                           + (f": {said[0]}" if said else " (its error is above)"))
    return done.stdout or ""


def loss_trend(run: Path, key: str = "loss") -> tuple[float, float]:
    """Mean logged loss over the first and the last quarter of ``log.csv``."""
    with open(run / "log.csv", newline="", encoding="utf-8") as handle:
        values = [float(row[key]) for row in csv.DictReader(handle)]
    quarter = max(1, len(values) // 4)
    return sum(values[:quarter]) / quarter, sum(values[-quarter:]) / quarter


def export_config(out: Path) -> Path:
    """The stage config ``ocrlite train`` exported into ``out/export``; an OcrliteError when there is none."""
    config = next((out / "export").glob("*.yaml"), None)
    if config is None:
        raise OcrliteError(f"{out / 'export'}: no exported model (the run stopped before its end); score one of "
                           "its checkpoints with --no-train --weights CKPT/model.safetensors")
    return config


def exported(out: Path, config: Path) -> Path | dict[str, Any]:
    """The stage config ``ocrlite train`` exported into ``out/export``, or ``config`` with ``--weights``."""
    if WEIGHTS is None:
        return export_config(out)
    from ocrlite.stages import load_stage_config

    stage = load_stage_config(config, [f"weights={WEIGHTS.with_suffix('')}"])
    return {k: v for k, v in stage.items() if k != "train" and not k.startswith("_")}  # _dir etc.: in-process only


def read_evals(out: Path) -> list[dict[str, Any]]:
    """The evaluations of the run in ``out`` (its evals.json); an OcrliteError when it has none yet."""
    path = out / "evals.json"
    if not path.is_file():
        raise OcrliteError(f"{path}: not found; the run in {out} stopped before its first evaluation")
    evals: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return evals


def report(out: Path, result: dict[str, Any]) -> None:
    atomic_write_text(out / "result.json", json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1), flush=True)


def det_stage(data: Path, sets: list[str]) -> dict[str, Any]:
    from ocrlite.stages import load_stage_config

    return load_stage_config(DET_CONFIG, [f"train.data.root={data / 'icdar2015'}", *sets])


def det_overfit(data: Path, out: Path, threads: int) -> bool:
    sets = [f"train.data.root={data / 'icdar2015'}", *OVERFIT]
    run_train(DET_CONFIG, out, sets, threads)
    evals = read_evals(out)
    first, last = loss_trend(out)
    best = max(e["hmean"] for e in evals)
    result = {"check": "det-overfit", "images": 4, "evals": evals, "loss_first_quarter": first,
              "loss_last_quarter": last, "best_hmean": best, "target": 0.9, "passed": best >= 0.9}
    report(out, result)
    return bool(result["passed"])


def det_finetune(data: Path, out: Path, threads: int) -> bool:
    from ocrlite.eval.metrics import bootstrap_hmean
    from ocrlite.predictors import TextDetector
    from ocrlite.train.data import write_split_manifest
    from ocrlite.train.det_task import DetTask, detect_counts

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
    evals = read_evals(out)
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
    """Train the classifier, write the form split, then score the held-out forms' line crops (each upright and
    turned) with ``ocrlite eval cls``: the shipped classifier and the trained one in one run."""
    from ocrlite.eval.datasets import load_funsd_boxes
    from ocrlite.stages import load_stage_config
    from ocrlite.train.cls_task import ClsTask
    from ocrlite.train.data import three_way_split, write_split_manifest

    sets = [f"train.data.root={data / 'funsd'}"]
    run_train(CLS_CONFIG, out, sets, threads)
    task = ClsTask(load_stage_config(CLS_CONFIG, sets), batch_size=1)
    forms = three_way_split(load_funsd_boxes(data / "funsd"), task.data.holdout_every, task.data.val_every)
    write_split_manifest(out, f"FUNSD train forms sorted by id, every {task.data.holdout_every}th form held out, "
                         f"every {task.data.val_every}th of the rest validates (keep-best)",
                         {"train": [f.image for f in forms.train], "val": [f.image for f in forms.val],
                          "held_out": [f.image for f in forms.held_out]})
    pipeline = stage_pipeline(out / "ocr.yaml", "cls", exported(out, CLS_CONFIG))
    rows = eval_rows("cls", data / "funsd", pipeline, threads, out / "split_held_out.json")
    first, last = loss_trend(out, "ce")
    accuracy = round(rows["config"]["accuracy"] / 100, 4)
    result = {"check": "cls", "held_out_crops": rows["config"]["n"] // 2, "scored": rows["config"]["n"],
              "picked_on": task.data.eval_on, "train_crops": len(task.train_crops), "accuracy": accuracy,
              "shipped_classifier_accuracy": round(rows["preset"]["accuracy"] / 100, 4), "loss_first_quarter": first,
              "loss_last_quarter": last, "target": 0.85, "passed": accuracy >= 0.85}
    report(out, result)
    return bool(result["passed"])


def eval_rows(task: str, data: Path, config: Path, threads: int,
              split: Path | None = None) -> dict[str, dict[str, Any]]:
    """``ocrlite eval TASK`` of the preset ppocr-v2 and ``config`` on ``data`` (``split``: its files only) in one
    run: the rows as "preset" and "config"."""
    command = [OCRLITE, "--threads", str(threads), "eval", task, "--data", str(data), "--model", "ppocr-v2",
               "--config", str(config), "--format", "json", *(["--split", str(split)] if split else [])]
    rows = [json.loads(line) for line in run_ocrlite(command, threads, capture=True).splitlines() if line.strip()]
    return {("preset" if row["system"] == "ppocr-v2" else "config"): row for row in rows}


def eval_rec(data: Path, config: Path, threads: int) -> dict[str, dict[str, Any]]:
    """``ocrlite eval rec`` of the converted ppocr-v2 and ``config`` on ``data`` in one run: rows by system."""
    rows = eval_rows("rec", data, config, threads)
    return {"converted": rows["preset"], "fine_tuned": rows["config"]}


def funsd_word_crops(data: Path, crops: Path) -> None:
    """Cut the FUNSD word crops the card's charset can write into ``crops/{train,held_out}`` (every 5th form
    held out)."""
    from ocrlite.charset import Charset
    from ocrlite.files import find_charset
    from ocrlite.train.data import export_funsd_crops

    charset = set(Charset.from_file(find_charset("ppocr_keys_v1.txt", None, None), use_space_char=True).chars)
    counts = export_funsd_crops(data / "funsd", crops, lambda text: set(text) <= charset, "words", every=5)
    print("FUNSD word crops:", json.dumps(counts), flush=True)


def stage_pipeline(path: Path, kind: str, stage: Path | dict[str, Any]) -> Path:
    """A pipeline config at ``path``: the card's stages with the ``kind`` stage replaced by ``stage``."""
    stages = {"det": "det_ppocrv3.yaml", "cls": "cls_ppocr_mobile_v2.yaml", "rec": "rec_ppocrv2.yaml",
              kind: str(stage) if isinstance(stage, Path) else stage}
    path.write_text(yaml.safe_dump(stages, sort_keys=False), encoding="utf-8")
    return path


def rec_funsd(data: Path, out: Path, threads: int) -> bool:
    crops = out / "crops"
    if TRAIN:
        funsd_word_crops(data, crops)
    run_train(REC_FUNSD_CONFIG, out, [f"train.data.train=[{crops / 'train' / 'labels.txt'}]"], threads)
    pipeline = stage_pipeline(out / "ocr.yaml", "rec", exported(out, REC_FUNSD_CONFIG))
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


def distill_split(data: Path, crops: Path, out: Path) -> tuple[Path, Path]:
    """The labelled set (true labels of the crops of whole training forms ``LABELLED_FORMS``, written to
    ``out/labelled.txt``) and the unlabelled set (a folder of links to the first ``UNLABELLED`` training crops,
    ``out/unlabelled``), with ``out/split_{labelled,unlabelled}.json``; no form is in both."""
    import bisect
    import itertools

    from ocrlite.eval.datasets import load_funsd_boxes
    from ocrlite.train.data import holdout_split, write_split_manifest

    forms, _ = holdout_split(load_funsd_boxes(data / "funsd"), 5)  # the split export_funsd_crops wrote
    starts = list(itertools.accumulate((len(f.words) for f in forms), initial=0))  # word k -> word_{k:06d}.png
    labels = dict(line.split("\t", 1) for line in (crops / "train" / "labels.txt").read_text("utf-8").splitlines())
    labelled = [name for k in LABELLED_FORMS for i in range(starts[k], starts[k + 1])
                if (name := f"word_{i:06d}.png") in labels]
    unlabelled = sorted(labels)[:UNLABELLED]
    unlabelled_forms = sorted({bisect.bisect_right(starts, int(name[5:11])) - 1 for name in unlabelled})
    if set(unlabelled_forms) & set(LABELLED_FORMS):
        raise SystemExit(f"the unlabelled crops reach the labelled forms {LABELLED_FORMS}")
    out.mkdir(parents=True, exist_ok=True)
    label_file, folder = out / "labelled.txt", out / "unlabelled"
    label_file.write_text("".join(f"{crops / 'train' / n}\t{labels[n]}\n" for n in labelled), encoding="utf-8")
    folder.mkdir(exist_ok=True)
    for name in unlabelled:
        if not (folder / name).exists():
            (folder / name).symlink_to(crops / "train" / name)
    write_split_manifest(out, f"FUNSD training forms sorted by id: true labels of forms {list(LABELLED_FORMS)} "
                         f"(0-based); the first {UNLABELLED} training crops unlabelled",
                         {"labelled": [forms[k].image for k in LABELLED_FORMS],
                          "unlabelled": [forms[k].image for k in unlabelled_forms]},
                         {"unit": "words", "crops": {"labelled": len(labelled), "unlabelled": len(unlabelled)}})
    print(f"labelled: {len(labelled)} crops of training forms {list(LABELLED_FORMS)}; unlabelled: "
          f"{len(unlabelled)} crops of training forms {unlabelled_forms[0]}-{unlabelled_forms[-1]}", flush=True)
    return label_file, folder


def paired(scores: dict[str, tuple[list[Any], list[Any]]], better: str, base: str) -> dict[str, Any]:
    """``better`` against ``base`` on the same crops: the crops only one of them reads right, the accuracy
    difference (points) and its paired bootstrap 95 % interval, case-insensitive and case-sensitive."""
    from ocrlite.eval.metrics import correct_words, paired_bootstrap

    result: dict[str, Any] = {}
    for suffix, case_sensitive in (("", False), ("_cs", True)):
        a, b = (correct_words(*scores[name], case_sensitive=case_sensitive) for name in (better, base))
        low, high = paired_bootstrap(a, b)
        result[f"accuracy{suffix}"] = {
            "only_better": sum(x and not y for x, y in zip(a, b)), "only_base": sum(y and not x for x, y in zip(a, b)),
            "difference": round(100 * (sum(a) - sum(b)) / len(a), 2),
            "ci95": [round(100 * low, 2), round(100 * high, 2)]}
    return result


def distill(data: Path, out: Path, threads: int) -> bool:
    """Semi-supervised distillation: the same student, recipe, steps and seed on the labelled forms alone
    (``alone_sK``) and on them plus ppocr-v6-small's pseudo-labels of the unlabelled crops (``distilled_sK``,
    ``ocrlite distill`` in mode pseudo; the teacher's labels are read once and reused by every seed's run).
    A run whose export exists is kept (remove its folder to train it again). The held-out FUNSD word crops
    (all, or the first ``--limit``) are scored in one in-process run of the evaluator, with the student before
    training and the teacher; passed when every seed's paired 95 % interval of distilled - alone is above 0."""
    import shutil

    import torch

    from ocrlite.api import OCR
    from ocrlite.eval.harness import evaluate, format_table, ocrlite_system

    crops = out.parent / "rec-funsd" / "crops"  # shared with rec-funsd
    if not (crops / "train" / "labels.txt").is_file():
        funsd_word_crops(data, crops)
    label_file, unlabelled = distill_split(data, crops, out)
    runs: dict[str, Path] = {}
    for seed in DISTILL_SEEDS:
        sets = [*DISTILL_RECIPE, f"train.seed={seed}", f"train.data.train=[{label_file}]"]
        alone, distilled = out / f"alone_s{seed}", out / f"distilled_s{seed}"
        if not (alone / "export").is_dir():
            run_train(REC_FUNSD_CONFIG, alone, sets, threads)
        labelled_before = next(out.glob("distilled_s*/pseudo/manifest.json"), None)
        if labelled_before is not None and not (distilled / "pseudo").exists():
            shutil.copytree(labelled_before.parent, distilled / "pseudo")  # reused when its manifest matches
        if not (distilled / "export").is_dir():
            run_train(REC_FUNSD_CONFIG, distilled, [*sets, *DISTILL_PSEUDO, f"train.distill.unlabelled=[{unlabelled}]"],
                      threads, "distill")
        runs.update({alone.name: alone, distilled.name: distilled})
    torch.set_num_threads(threads)
    systems = [ocrlite_system(name, OCR(model=name, stages=("rec",))) for name in ("ppocr-v2-en", "ppocr-v6-small")]
    systems += [ocrlite_system(name, OCR(stage_pipeline(out / f"ocr_{name}.yaml", "rec",
                                                        export_config(run)), stages=("rec",)))
                for name, run in runs.items()]
    outputs: dict[str, tuple[list[Any], list[Any]]] = {}
    rows = evaluate("rec", systems, crops / "held_out", LIMIT, outputs=outputs)
    print(format_table(rows), flush=True)
    comparisons = {f"seed {seed}": paired(outputs, f"distilled_s{seed}", f"alone_s{seed}") for seed in DISTILL_SEEDS}
    for name, comparison in comparisons.items():
        for key, c in comparison.items():
            print(f"{name} {key}: distilled - alone = {c['difference']:+.2f} points, 95 % paired bootstrap "
                  f"[{c['ci95'][0]:+.2f}, {c['ci95'][1]:+.2f}]; crops only distilled reads right: "
                  f"{c['only_better']}, only alone: {c['only_base']}", flush=True)
    result = {"check": "distill", "rows": rows, "paired": comparisons,
              "passed": all(c["accuracy"]["ci95"][0] > 0 for c in comparisons.values())}
    report(out, result)
    return bool(result["passed"])


CHECKS = {"det-overfit": det_overfit, "det-finetune": det_finetune, "cls": cls_check, "rec-funsd": rec_funsd,
          "distill": distill}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=[*CHECKS, "all"])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO.parent / "runs" / "train_checks")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-train", action="store_true", help="score the runs already in --out")
    parser.add_argument("--limit", type=int, help="distill: score the first N held-out crops (default: all 4,100)")
    parser.add_argument("--weights", type=Path, help="with --no-train: score these weights (a checkpoint's "
                        "model.safetensors) instead of the export")
    args = parser.parse_args()
    global TRAIN, WEIGHTS, LIMIT
    # absolute: ocrlite runs in the repository's folder, and a stage config resolves weights against its own
    TRAIN, WEIGHTS, LIMIT = not args.no_train, args.weights.resolve() if args.weights else None, args.limit
    names = list(CHECKS) if args.check == "all" else [args.check]
    passed = {name: CHECKS[name](args.data.resolve(), args.out.resolve() / name, args.threads) for name in names}
    print("passed:", passed)
    return 0 if all(passed.values()) else 1


if __name__ == "__main__":
    exit_on_error(main, "train_checks.py")
