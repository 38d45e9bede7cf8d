"""Quantization-aware fine-tuning (PACT): fake-quant known answers, the int8 ONNX computing what the
fake-quantized net computed, a 3-step run on the one trainer whose int8 export reads crops through
``ocrlite recognize``, bit-exact resume with the clip bounds in the checkpoints, and bad settings."""

from __future__ import annotations

import copy
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

from ocrlite.backends.export import export_stage
from ocrlite.backends.fold import fold_net
from ocrlite.backends.onnxruntime import OnnxRunner
from ocrlite.cli import main
from ocrlite.preprocess import line_batch
from ocrlite.slim.qat import (
    CLIP_KEY,
    QConv2d,
    activation_grid,
    clip_grids,
    fake_quant_activation,
    fake_quant_weight,
    init_clips,
    prepare_qat,
    qat_task,
    qdq_int8,
)
from ocrlite.stages import stage_spec
from ocrlite.train.run import build_task
from ocrlite.train.trainer import TrainSettings, train

pytest.importorskip("onnxruntime")

SAMPLE = Path(__file__).parents[1] / "images" / "sample.png"
LINES = [(32, 60, 43, 280), (100, 128, 43, 344), (167, 198, 42, 317), (235, 268, 42, 229)]  # y0, y1, x0, x1

TINY = tiny_crnn({**SYNTH_EN, "steps": 3, "batch_size": 4, "lr": 0.001, "warmup_steps": 1, "log_every": 1,
                 "save_every": 2, "freeze_bn": True, "qat": {"init_batches": 1}})  # trained with fake quantization


def _crops() -> list[np.ndarray]:
    page = cv2.imread(str(SAMPLE))
    return [page[y0 - 3 : y1 + 3, x0 - 3 : x1 + 3] for y0, y1, x0, x1 in LINES]


def test_activation_fake_quant_known_answer():
    """Bounds [-1.28, 1.27]: scale 0.01, zero point 128; values snap to the grid, gradients pass inside
    the bounds (STE), each bound gets the gradients of the values clipped at it (PACT)."""
    scale, zero = activation_grid(torch.tensor(-1.28), torch.tensor(1.27))
    assert math.isclose(float(scale), 0.01, rel_tol=1e-5) and int(zero) == 128
    x = torch.tensor([-2.0, -0.004, 0.5, 0.123, 1.3], requires_grad=True)
    lower, upper = torch.tensor(-1.28, requires_grad=True), torch.tensor(1.27, requires_grad=True)
    y = fake_quant_activation(x, lower, upper)
    assert torch.allclose(y, torch.tensor([-1.28, 0.0, 0.5, 0.12, 1.27]), atol=1e-6)
    (y * torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])).sum().backward()
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 0.0]
    assert float(lower.grad) == 1.0 and float(upper.grad) == 5.0
    # an unsigned input (lower 0): 0 .. 2.55 in steps of 0.01
    z = torch.tensor([0.004, 0.006, 2.0, 3.0], requires_grad=True)
    u = torch.tensor(2.55, requires_grad=True)
    out = fake_quant_activation(z, torch.tensor(0.0), u)
    assert torch.allclose(out, torch.tensor([0.0, 0.01, 2.0, 2.55]), atol=1e-6)
    out.sum().backward()
    assert z.grad.tolist() == [1.0, 1.0, 1.0, 0.0] and float(u.grad) == 1.0


def test_weight_fake_quant_known_answer():
    """Per output channel, symmetric: max|w| / 127 steps; gradient 1 everywhere (no weight is clipped)."""
    w = torch.tensor([[1.27, -0.5, 0.333], [0.0, 0.0, 0.0], [-2.54, 1.0, 0.01]], requires_grad=True)
    q = fake_quant_weight(w)
    assert torch.allclose(q, torch.tensor([[1.27, -0.5, 0.33], [0.0, 0.0, 0.0], [-2.54, 1.0, 0.0]]), atol=1e-6)
    q.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))


def _tiny_spec(encoder: str = "rnn"):
    stage = copy.deepcopy({k: v for k, v in TINY.items() if k != "train"})
    stage["model"]["neck"]["encoder_type"] = encoder
    return stage_spec("rec", stage)


def test_int8_onnx_computes_the_fake_quantized_net(tmp_path: Path) -> None:
    """Without the LSTM (reshape neck) the int8 graph computes exactly the QAT net's logits (BN folded into the
    rounded weights, the learnt input grids); with onnxruntime's graph optimizations (fused integer MatMuls,
    as the product runs it) up to float rounding, which can move a value across a grid step."""
    import onnx
    import onnxruntime as ort

    spec = _tiny_spec("reshape")
    torch.manual_seed(0)
    net = spec.build_net(load_weights=False)
    for module in net.modules():  # BN statistics and affine that are not the identity
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor in (module.running_mean, module.weight, module.bias):
                tensor.data.uniform_(-0.5, 0.5)
            module.running_var.data.uniform_(0.5, 2.0)
    x = torch.from_numpy(line_batch(_crops(), 32, 320, spec.pre.mean, spec.pre.std))
    qat = copy.deepcopy(net)
    names = prepare_qat(qat)
    assert len(names) == 31 + 2 and isinstance(qat.backbone.stem.conv, QConv2d)  # 31 convs, 2 linears
    init_clips(qat, [x], 99.9)
    with torch.no_grad():
        qat.backbone.blocks[3].pw.conv.clip.upper.mul_(0.5)  # a bound that clips
        fake, fp32 = qat.eval()(x).numpy(), net.eval()(x).numpy()
    folded = copy.deepcopy(net)
    fold_net(folded)
    onnx_fp32 = export_stage(spec, tmp_path / "fp32.onnx", "raw", net=folded)
    int8 = qdq_int8(onnx_fp32, tmp_path / "int8.onnx", clip_grids(qat.state_dict()))
    plain = ort.SessionOptions()
    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    exact = ort.InferenceSession(str(int8), plain, providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    assert np.abs(exact - fake).max() < 1e-5 < 1e-3 < np.abs(fake - fp32).max()
    assert np.abs(OnnxRunner(int8, 1)(x.numpy()) - fake).max() < 0.01 * np.abs(fake).max()
    graph = onnx.load(str(int8)).graph
    assert sum(node.op_type == "QuantizeLinear" for node in graph.node) == len(names)
    dequantized = {node.output[0] for node in graph.node if node.op_type == "DequantizeLinear"}
    assert all(node.input[1] in dequantized for node in graph.node if node.op_type in ("Conv", "MatMul"))


def _config(tmp_path: Path, **train) -> Path:
    stage = copy.deepcopy(TINY)
    stage["train"].update(train)
    path = tmp_path / "tiny_rec.yaml"
    path.write_text(yaml.safe_dump(stage), encoding="utf-8")
    return path


def test_qat_run_exports_an_int8_model_that_recognize_runs(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["--threads", "1", "train", str(_config(tmp_path)), "-o", str(run), "-q"])
    assert result.exit_code == 0, result.output
    assert "exported: " in result.output and result.output.strip().endswith("int8/rec.yaml")
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert len(rows) == 3 and all(math.isfinite(float(r["loss"])) and float(r["clip_l2"]) > 0 for r in rows)
    state = load_file(str(run / "checkpoints" / "step_0000003" / "model.safetensors"))
    assert "backbone.stem.conv.clip.upper" in state and "head.fc.1.clip.lower" in state
    float_weights = load_file(str(run / "export" / "tiny_rec.safetensors"))
    assert not any(CLIP_KEY in key for key in float_weights) and "backbone.stem.conv.weight" in float_weights
    manifest = json.loads((run / "export" / "tiny_rec.json").read_text())
    assert manifest["training"]["qat"]["method"] == "pact"
    crops = tmp_path / "crops"
    crops.mkdir()
    for i, crop in enumerate(_crops()):
        cv2.imwrite(str(crops / f"line{i}.png"), crop)
    int8 = run / "export" / "int8" / "ocr.yaml"
    read = CliRunner().invoke(main, ["--threads", "1", "recognize", "--config", str(int8), "--no-cls", "--json",
                                     str(crops)])
    assert read.exit_code == 0, read.output
    lines = [json.loads(line) for line in read.output.splitlines()]
    assert len(lines) == 4 and all(isinstance(line["text"], str) for line in lines)


def test_qat_resume_is_bit_exact_with_the_clip_bounds(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    stage = yaml.safe_load(_config(tmp_path, steps=4).read_text())
    stage["_dir"] = None
    settings = TrainSettings.from_stage(stage)

    def task():
        return qat_task(build_task(stage, settings.batch_size), stage)

    train(task(), settings, tmp_path / "full", progress=False)
    train(task(), settings, tmp_path / "half", progress=False, stop_at=2)
    train(task(), settings, tmp_path / "half", resume=tmp_path / "half", progress=False)
    a = load_file(str(tmp_path / "full" / "checkpoints" / "step_0000004" / "model.safetensors"))
    b = load_file(str(tmp_path / "half" / "checkpoints" / "step_0000004" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    start = load_file(str(tmp_path / "full" / "checkpoints" / "step_0000002" / "model.safetensors"))
    assert not torch.equal(start["backbone.stem.conv.clip.upper"], a["backbone.stem.conv.clip.upper"])


@pytest.mark.parametrize("override, message", [
    ("train.qat.bits=4", "train.qat.bits: onnxruntime runs 8-bit"),
    ("train.qat.method=lsq", "train.qat.method: 'lsq' is not allowed; choose one of: pact"),
    ("train.qat.colour=1", "train.qat: unknown key 'colour'"),
    ("train.freeze_bn=false", "train.qat: needs train.freeze_bn: true"),
])
def test_bad_qat_settings_are_one_line(tmp_path: Path, override: str, message: str) -> None:
    result = CliRunner().invoke(main, ["train", str(_config(tmp_path)), "-o", str(tmp_path / "r"), "-q",
                                       "--set", override])
    assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1, result.output


def test_qat_detector_exports_int8_without_the_threshold_branch(tmp_path: Path) -> None:
    """The det task trains the DB threshold branch, which the inference graph does not run: its learnt grids
    are left out of the int8 file (the export failed on them), and the int8 detector finds the sample's lines,
    also once the run folder is moved."""
    boxes = [{"transcription": "x", "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]} for y0, y1, x0, x1 in LINES]
    labels = tmp_path / "det_labels.txt"
    labels.write_text(f"{SAMPLE.resolve()}\t{json.dumps(boxes)}\n", encoding="utf-8")
    train = {"task": "det", "data": {"format": "paddle", "root": str(labels), "eval_on": "train"},
             "augment": {"size": 160}, "steps": 1, "batch_size": 1, "lr": 1e-6, "eval_every": 100,
             "freeze_bn": True, "qat": {"init_batches": 1}}
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["--threads", "1", "train", "det_ppocrv3.yaml", "-o", str(run), "-q",
                                       "--set", f"train={json.dumps(train)}", "--set", "preprocess.limit_side_len=320"])
    assert result.exit_code == 0, result.output
    trained = clip_grids(load_file(str(run / "best.safetensors")))
    grids = json.loads((run / "export" / "int8" / "input_grids.json").read_text())
    assert any(name.startswith("head.thresh.") for name in trained)
    assert set(grids) == {name for name in trained if not name.startswith("head.thresh.")}
    moved = run.rename(tmp_path / "moved")  # the int8 config names the run's float weights from inside the run
    found = CliRunner().invoke(main, ["--threads", "1", "detect", "--config",
                                      str(moved / "export" / "int8" / "ocr.yaml"), str(SAMPLE)])
    assert found.exit_code == 0, found.output
    assert len(json.loads(found.output)["boxes"]) == 4
