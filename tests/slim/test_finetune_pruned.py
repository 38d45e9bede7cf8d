"""Fine-tune after pruning: ``ocrlite prune``'s stage config trains with ``ocrlite train`` and the export loads."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from ocrlite.cli import main
from ocrlite.slim.groups import prunable_roots
from ocrlite.stages import stage_spec

pytest.importorskip("torch_pruning")

SAMPLE = Path(__file__).parents[1] / "images" / "sample.png"
# the four text lines of tests/images/sample.png (x0, y0, x1, y1)
LINES = {"OCRLITE 2026": (40, 29, 283, 63), "Invoice No. 48213": (40, 97, 348, 131),
         "Total: 42.50 EUR": (40, 164, 320, 201), "Thank you!": (40, 232, 232, 271)}


def _labels(tmp_path: Path) -> Path:
    """A PaddleOCR det label file for the sample page."""
    boxes = [{"transcription": text, "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]}
             for text, (x0, y0, x1, y1) in LINES.items()]
    path = tmp_path / "det_labels.txt"
    path.write_text(f"{SAMPLE.resolve()}\t{json.dumps(boxes)}\n", encoding="utf-8")
    return path


def _curves(path: Path, cheap: set[str]) -> Path:
    """Sensitivity curves where only ``cheap`` groups may lose half their channels."""
    net = stage_spec("det").build_net()
    curves = {name: {"0.5": 0.0 if name in cheap else 1.0} for name in prunable_roots(net)}
    path.write_text(json.dumps({"curves": curves}))
    return path


def _prune(config: str, sensitivity: Path, out: Path) -> None:
    run = CliRunner().invoke(main, ["--threads", "1", "prune", "--config", config, "--flops-target", "0.97",
                                    "--sensitivity", str(sensitivity), "-o", str(out)])
    assert run.exit_code == 0, run.output


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(prune output, fine-tune run) of det_ppocrv3 pruned in its deep backbone blocks, then trained 2 steps."""
    torch.set_num_threads(1)
    tmp_path = tmp_path_factory.mktemp("finetune")
    pruned = tmp_path / "pruned"
    cheap = {f"backbone.mid.{i}" for i in range(10, 15)} | {"backbone.last"}
    _prune("det_ppocrv3.yaml", _curves(tmp_path / "sen.json", cheap), pruned)
    # the pruned stage config has no train: section; --set adds one
    train = {"task": "det", "data": {"format": "paddle", "root": str(_labels(tmp_path)), "eval_on": "train"},
             "augment": {"size": 256}, "steps": 2, "batch_size": 1, "warmup_steps": 1, "eval_every": 2,
             "log_every": 1, "freeze_bn": True}
    out = tmp_path / "run"
    run = CliRunner().invoke(main, ["--threads", "1", "train", str(pruned / "det.yaml"), "-o", str(out), "-q",
                                    "--set", f"train={json.dumps(train)}", "--set", "preprocess.limit_side_len=320"])
    assert run.exit_code == 0, run.output
    assert "steps=2 samples=2" in run.output
    return pruned, out


def _detect(config: Path) -> int:
    run = CliRunner().invoke(main, ["--threads", "1", "detect", "--config", str(config), str(SAMPLE)])
    assert run.exit_code == 0, run.output
    return len(json.loads(run.output)["boxes"])


def test_pruned_detector_fine_tunes_and_exports(finetuned: tuple[Path, Path]) -> None:
    pruned, out = finetuned
    rows = (out / "log.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(rows) == 2 and all(math.isfinite(float(row.split(",")[2])) for row in rows)
    before = load_file(str(pruned / "det.safetensors"))
    after = load_file(str(out / "export" / "det.safetensors"))
    key = "backbone.blocks.14.expand.conv.weight"
    width = before[key].shape[0]
    assert width < 480 and before[key].shape == after[key].shape == (width, 80, 1, 1)  # still the pruned width
    assert not torch.equal(before[key], after[key])  # and trained
    assert any(k.startswith("head.thresh.") for k in after)  # the DB threshold branch was added for training
    # the export loads strictly through the stage layer (its config names the branch) and detects the lines
    spec = stage_spec("det", str(out / "export" / "det.yaml"))
    assert spec.build_net().backbone.blocks[14].expand.conv.out_channels == width
    assert _detect(out / "export" / "det.yaml") == len(LINES)


def test_a_fine_tuned_detector_prunes_again(finetuned: tuple[Path, Path], tmp_path: Path) -> None:
    # prune -> fine-tune -> prune: the neck outputs (the DB head's inputs) lose channels this time; the
    # trained threshold branch is dropped, not left at the old width
    _, out = finetuned
    again = tmp_path / "again"
    _prune(str(out / "export" / "det.yaml"), _curves(tmp_path / "sen.json", {f"neck.output.{i}" for i in range(4)}),
           again)
    tensors = load_file(str(again / "det.safetensors"))
    assert tensors["head.binarize.conv1.weight"].shape[1] < 96  # 4 levels x 24 before
    assert not any(k.startswith("head.thresh.") for k in tensors)
    assert _detect(again / "det.yaml") == len(LINES)
