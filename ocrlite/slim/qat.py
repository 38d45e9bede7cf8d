"""Quantization-aware fine-tuning (PACT) on the one trainer, exported as an int8 ONNX for onnxruntime.

A stage config's ``train.qat`` section (``QATSettings``) makes ``ocrlite train`` wrap its task in ``QATTask``:

- every ``Conv2d`` and ``Linear`` of the net (not the LSTM) becomes ``QConv2d`` / ``QLinear``: its input goes
  through a PACT clip (``ActivationClip``: learnt bounds ``lower`` <= 0 <= ``upper``, uint8 grid with a zero
  point, ``fake_quant_activation``) and its weight is fake-quantized symmetric per output channel
  (``fake_quant_weight``), after folding the BatchNorm that follows the conv -- the weight onnxruntime will
  hold, since the exporter folds BN (``ocrlite.backends.fold``). Linear weights take 7 bits (-63..63,
  ``LINEAR_WEIGHT_BITS``): onnxruntime fuses a MatMul with quantized inputs into an integer kernel whose
  uint8 x int8 pairs saturate 16 bits on x86 CPUs without VNNI (AVX2), and 7-bit weights cannot. Rounding
  passes gradients straight through (STE); the clip passes them to ``x`` inside the bounds and to the
  bound a value was clipped at;
* the bounds start at a percentile of the float net's inputs on ``init_batches`` training batches (what PTQ
  calibration would pick), train with ``clip_lr`` times the learning rate and an L2 penalty
  ``alpha_decay * (lower^2 + upper^2)`` (logged ``clip_l2``) that pulls them in, as in PACT;
- BatchNorm statistics must be frozen (``train.freeze_bn: true``): the fold uses the running statistics.

The bounds are parameters, so checkpoints (safetensors) hold them and ``--resume`` continues bit-exact.
Evaluation runs the fake-quantized net. The export is the float net (``<name>.safetensors``, loads with the
stage config as any fine-tune) and, in ``export/int8/``, ``<kind>.int8.onnx`` built by ``qdq_int8``: the
float net's ONNX with int8 weights (DequantizeLinear) and a QuantizeLinear/DequantizeLinear pair with the
learnt bounds' scale and zero point on the input of every quantized conv/linear -- onnxruntime then
computes what the fine-tuned net computed -- and dynamic int8 LSTMs (as ``ocrlite quantize``); plus a
stage config and a pipeline (``ocr.yaml``) that run it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.io.atomic import atomic_write_bytes, atomic_write_text
from ocrlite.settings import build_settings, range_error, setting
from ocrlite.slim.distill import WrappedTask
from ocrlite.train.task import Task

__all__ = ["QATSettings", "ActivationClip", "QConv2d", "QLinear", "QATTask", "activation_grid",
           "fake_quant_activation", "fake_quant_weight", "prepare_qat", "init_clips", "qat_task", "qdq_int8",
           "inference_grids", "clip_grids", "CLIP_KEY", "LINEAR_WEIGHT_BITS"]

METHODS = ("pact",)
CLIP_KEY = ".clip."  # state-dict keys of the clip bounds contain this
LINEAR_WEIGHT_BITS = 7  # u8 x s7 pair sums fit int16: exact in onnxruntime's integer MatMul on any x86 CPU
_INIT_STEP = 10**9  # init batches are drawn as steps 1e9, 1e9 + 1, ...: never a training step's batch


@dataclass(frozen=True)
class QATSettings:
    """The ``train.qat`` section (see the module docstring)."""

    method: str = setting("pact", choices=METHODS)
    bits: int = 8  # only 8 (checked in __post_init__, which says why)
    alpha_decay: float = setting(1e-4, low=0.0)
    clip_lr: float = 100.0  # more than 0 (checked in __post_init__)
    init_percentile: float = 99.99  # more than 50, at most 100 (checked in __post_init__)
    init_batches: int = setting(2, low=1)

    def __post_init__(self) -> None:
        if self.bits != 8:
            raise ConfigError(f"train.qat.bits: onnxruntime runs 8-bit weights and activations; got {self.bits}")
        if not self.clip_lr > 0:
            raise range_error("train.qat.clip_lr", self.clip_lr, "more than 0")
        if not 50 < self.init_percentile <= 100:
            raise range_error("train.qat.init_percentile", self.init_percentile, "more than 50, at most 100")


def activation_grid(lower: Tensor, upper: Tensor, bits: int = 8) -> tuple[Tensor, Tensor]:
    """Scale and zero point of the unsigned ``bits`` grid spanning ``[min(lower, 0), upper]``."""
    levels = 2**bits - 1
    lo = torch.clamp(lower, max=0.0)
    hi = torch.maximum(upper, lo + 1e-6)
    scale = (hi - lo) / levels
    return scale, torch.clamp(torch.round(-lo / scale), 0, levels)


def fake_quant_activation(x: Tensor, lower: Tensor, upper: Tensor, bits: int = 8) -> Tensor:
    """PACT: ``x`` clipped to ``[lower, upper]`` and rounded to the ``activation_grid`` (as QuantizeLinear +
    DequantizeLinear). Gradients: 1 to ``x`` inside the bounds, 0 outside; ``upper`` gets those of the values
    clipped above it, ``lower`` those clipped below it; rounding is a straight-through estimator."""
    lo = torch.clamp(lower, max=0.0)
    hi = torch.maximum(upper, lo + 1e-6)
    clipped = torch.minimum(torch.maximum(x, lo), hi)
    scale, zero = activation_grid(lower.detach(), upper.detach(), bits)
    q = torch.clamp(torch.round(clipped.detach() / scale) + zero, 0, 2**bits - 1)
    return clipped + ((q - zero) * scale - clipped).detach()


def fake_quant_weight(weight: Tensor, bits: int = 8) -> Tensor:
    """Symmetric per-output-channel (axis 0) rounding to ``max|w| / (2^(bits-1) - 1)`` steps, straight-through
    gradient (nothing is clipped: the grid spans each channel's largest weight)."""
    levels = 2 ** (bits - 1) - 1
    peak = weight.detach().abs().reshape(weight.shape[0], -1).amax(dim=1)
    scale = torch.where(peak > 0, peak / levels, torch.ones_like(peak)).reshape(-1, *[1] * (weight.ndim - 1))
    q = torch.clamp(torch.round(weight.detach() / scale), -levels, levels) * scale
    return weight + (q - weight).detach()


class ActivationClip(nn.Module):
    """PACT's learnt clipping of a layer's input: ``lower`` (<= 0; starts at 0 for non-negative inputs) and
    ``upper``.

    While ``observed`` is a list the input passes unchanged and its percentiles are appended (``init_clips``).
    """

    def __init__(self, bits: int = 8) -> None:
        super().__init__()
        self.bits = bits
        self.lower = nn.Parameter(torch.zeros(()))
        self.upper = nn.Parameter(torch.ones(()))
        self.observed: list[tuple[float, float]] | None = None
        self.percentile = 100.0

    def forward(self, x: Tensor) -> Tensor:
        if self.observed is not None:
            flat = x.detach().float().flatten()
            flat = flat[:: max(1, flat.numel() >> 22)]  # torch.quantile takes at most 2^24 values
            q = torch.tensor([1 - self.percentile / 100, self.percentile / 100], device=flat.device)
            low, high = torch.quantile(flat, q).tolist()
            self.observed.append((low, high))
            return x
        return fake_quant_activation(x, self.lower, self.upper, self.bits)


class QConv2d(nn.Conv2d):
    """A ``Conv2d`` with a PACT-clipped input (``clip``) and a fake-quantized weight: the weight folded with the
    BatchNorm that follows it (``bn``, kept where it is) is rounded, then unfolded so that BN's output equals
    the int8 folded conv's."""

    clip: ActivationClip
    bn: tuple[nn.BatchNorm2d, ...]

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight
        if self.bn:
            bn = self.bn[0]
            var = bn.running_var
            assert var is not None  # conv_bn_pairs takes BN layers with running statistics only
            gamma = bn.weight if bn.weight is not None else torch.ones_like(var)
            fold = (gamma / torch.sqrt(var + bn.eps)).detach()
            fold = torch.where(fold != 0, fold, torch.ones_like(fold)).reshape(-1, 1, 1, 1)
            weight = fake_quant_weight(weight * fold, self.clip.bits) / fold
        else:
            weight = fake_quant_weight(weight, self.clip.bits)
        return self._conv_forward(self.clip(x), weight, self.bias)


class QLinear(nn.Linear):
    """A ``Linear`` with a PACT-clipped input (``clip``) and a fake-quantized weight (per output feature,
    ``LINEAR_WEIGHT_BITS``)."""

    clip: ActivationClip

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.clip(x), fake_quant_weight(self.weight, LINEAR_WEIGHT_BITS), self.bias)


def _quantized(module: nn.Module, bn: nn.BatchNorm2d | None, bits: int) -> nn.Module:
    """``module`` (Conv2d or Linear) as its Q class, sharing its parameters."""
    q: QConv2d | QLinear
    if isinstance(module, nn.Conv2d):
        shape: dict[str, Any] = {"kernel_size": module.kernel_size, "stride": module.stride, "padding": module.padding,
                                 "dilation": module.dilation, "groups": module.groups}
        q = QConv2d(module.in_channels, module.out_channels, bias=module.bias is not None,
                    padding_mode=module.padding_mode, **shape)
        q.bn = (bn,) if bn is not None else ()
    else:
        assert isinstance(module, nn.Linear)
        q = QLinear(module.in_features, module.out_features, module.bias is not None)
    q.weight, q.bias = module.weight, module.bias
    q.clip = ActivationClip(bits)
    return q.to(module.weight.device)


def prepare_qat(net: nn.Module, bits: int = 8) -> list[str]:
    """Replace every Conv2d and Linear of ``net`` (in place) by ``QConv2d`` / ``QLinear``; return their names."""
    from ocrlite.backends.fold import conv_bn_pairs

    bns = {id(conv): bn for seq in net.modules() if isinstance(seq, nn.Sequential)
           for _, conv, _, bn in conv_bn_pairs(seq)}
    names = [name for name, module in net.named_modules()
             if type(module) in (nn.Conv2d, nn.Linear)]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = net.get_submodule(parent_name)
        module = getattr(parent, child)
        setattr(parent, child, _quantized(module, bns.get(id(module)), bits))
    if not names:
        raise ConfigError("train.qat: the net has no Conv2d or Linear to quantize")
    return names


def _clips(net: nn.Module) -> Iterator[ActivationClip]:
    return (m for m in net.modules() if isinstance(m, ActivationClip))


def init_clips(net: nn.Module, batches: list[Tensor], percentile: float) -> None:
    """Set every clip's bounds from the float net's inputs on ``batches``: the lowest ``100 - percentile``
    and highest ``percentile`` percentiles (widest over the batches; lower at most 0)."""
    clips = list(_clips(net))
    for clip in clips:
        clip.observed, clip.percentile = [], percentile
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                net(batch)
    finally:
        net.train(was_training)
        for clip in clips:
            observed, clip.observed = clip.observed or [(0.0, 1.0)], None
            with torch.no_grad():
                clip.lower.fill_(min(0.0, min(low for low, _ in observed)))
                clip.upper.fill_(max(high for _, high in observed))


def clip_grids(state: dict[str, Tensor], bits: int = 8) -> dict[str, tuple[float, int]]:
    """Module name -> (scale, zero point) of its input's grid, from a QAT state dict's clip bounds."""
    grids = {}
    for key in state:
        if key.endswith(CLIP_KEY + "upper"):
            name = key[: -len(CLIP_KEY + "upper")]
            scale, zero = activation_grid(state[f"{name}{CLIP_KEY}lower"], state[key], bits)
            grids[name] = (float(scale), int(zero))
    return grids


class QATTask(WrappedTask):
    """A training task fine-tuned with fake quantization (see the module docstring)."""

    def __init__(self, base: Task, settings: QATSettings, seed: int = 0) -> None:
        super().__init__(base, {"qat": asdict(settings)})
        self.settings, self.seed = settings, seed

    def build_model(self) -> nn.Module:
        net = self.base.build_model()
        prepare_qat(net, self.settings.bits)
        batches = [self.base.batch(np.random.default_rng([self.seed, _INIT_STEP + i]))["image"]
                   for i in range(self.settings.init_batches)]
        init_clips(net, batches, self.settings.init_percentile)
        return net

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """The clip bounds (``clip_lr`` times the learning rate, no weight decay) and the other parameters."""
        clips = {id(p) for clip in _clips(model) for p in clip.parameters()}
        trained = [p for p in model.parameters() if p.requires_grad]
        return [{"params": [p for p in trained if id(p) not in clips]},
                {"params": [p for p in trained if id(p) in clips], "lr_scale": self.settings.clip_lr,
                 "weight_decay": 0.0}]

    def loss(self, model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        total, logs = self.base.loss(model, batch)
        bounds = torch.stack([bound for clip in _clips(model) for bound in (clip.lower, clip.upper)])
        penalty = self.settings.alpha_decay * bounds.pow(2).sum()
        return total + penalty, {**logs, "clip_l2": float(penalty.detach())}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        return self.base.evaluate(model)

    def export_weights(self, run_dir: Path) -> bytes:
        """The run's best weights without the clip bounds: the float net, loadable by the stage config."""
        from safetensors.torch import load_file, save

        state = load_file(str(run_dir / "best.safetensors"))
        return save({k: v for k, v in state.items() if CLIP_KEY not in k})

    def finish_export(self, run_dir: Path, exported: Path) -> Path:
        """``export/int8/``: the int8 ONNX of the exported float net with the best step's learnt input grids,
        its stage config and a pipeline; returns the stage config."""
        from safetensors.torch import load_file

        from ocrlite.backends.export import export_stage
        from ocrlite.slim.quantize import RUNNER_HEADS
        from ocrlite.slim.save import raw_stage, save_onnx_stage, write_pipeline
        from ocrlite.stages import stage_spec

        kind = self.name
        trained = clip_grids(load_file(str(run_dir / "best.safetensors")), self.settings.bits)
        out = exported.parent / "int8"
        out.mkdir(parents=True, exist_ok=True)
        spec = stage_spec(kind, exported)
        assert spec.weights is not None  # the export names its weights
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = export_stage(spec, Path(tmp) / "fp32.onnx", RUNNER_HEADS[kind])
            grids = inference_grids(fp32, trained)
            int8 = qdq_int8(fp32, out / f"{kind}.int8.onnx", grids)
        atomic_write_text(out / "input_grids.json", json.dumps(grids, indent=1) + "\n")
        summary = (f"int8 {kind} from PACT fine-tuning by ocrlite train (int8 weights, learnt int8 input grids "
                   f"on {len(grids)} convs/linears, dynamic int8 LSTM)")
        stage = save_onnx_stage(out, kind, int8, spec.weights, raw_stage(kind, exported), summary, beside=True)
        write_pipeline(out, exported, {kind: stage})
        return stage


def qat_task(task: Task, stage: dict[str, Any]) -> QATTask:
    """``task`` wrapped for the stage's ``train.qat`` section."""
    train = stage.get("train") or {}
    settings: QATSettings = build_settings(QATSettings, "train.qat", train.get("qat"))
    if not train.get("freeze_bn"):
        raise ConfigError("train.qat: needs train.freeze_bn: true (the fake-quantized weights fold the BatchNorm "
                          "statistics, which must not move)")
    mode = (train.get("distill") or {}).get("mode")
    if mode in ("udml", "cml"):
        raise ConfigError(f"train.qat: cannot fine-tune a {mode} student pair; use it with one net (or mode kd)")
    return QATTask(task, settings, int(train.get("seed", 0)))


def _scope(name: str) -> str:
    """The ONNX node-name prefix the exporter gives module ``name`` (``head.fc.0`` -> ``/net/head/fc/fc.0/``)."""
    parts = name.split(".")
    scopes = [f"{parts[i - 1]}.{part}" if part.isdigit() and i else part for i, part in enumerate(parts)]
    return "/net/" + "/".join(scopes) + "/"


def inference_grids(fp32: Path, grids: dict[str, tuple[float, int]]) -> dict[str, tuple[float, int]]:
    """The ``grids`` of the modules that ``fp32`` (an export of the net's inference forward) computes: a module
    that only training runs (a DB head's threshold branch) has no node there, so no int8 input."""
    import onnx

    graph = onnx.load(str(fp32)).graph
    names = [node.name for node in graph.node]
    inputs = {name for node in graph.node for name in node.input}
    found = {name: grid for name, grid in grids.items()
             if f"net.{name}.weight" in inputs or any(n.startswith(_scope(name)) for n in names)}
    if grids and not found:  # module names and node names no longer meet: never a silently float "int8" file
        raise ConfigError(f"int8 export: none of the {len(grids)} quantized modules is found in {fp32.name}")
    return found


def qdq_int8(fp32: Path, out: Path, grids: dict[str, tuple[float, int]]) -> Path:
    """``fp32`` (an export of the float net) with, for each module of ``grids``, its Conv/MatMul/Gemm node's
    weight stored int8 per output channel (MatMul/Gemm: ``LINEAR_WEIGHT_BITS``) and its input quantized to
    ``(scale, zero point)`` (uint8), and dynamic int8 LSTMs; written to ``out``."""
    import onnx
    from onnx import helper, numpy_helper

    from ocrlite.slim.quantize import dynamic_int8, int8_dequantized

    with tempfile.TemporaryDirectory() as tmp:
        model = onnx.load(str(dynamic_int8(fp32, Path(tmp) / "lstm.onnx", ("LSTM",))))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    nodes = [n for n in graph.node if n.op_type in ("Conv", "MatMul", "Gemm") and len(n.input) > 1
             and n.input[1] in initializers]
    inputs: dict[str, list[Any]] = {}
    weights = []
    for name, (scale, zero) in grids.items():
        found = [n for n in nodes if n.input[1] == f"net.{name}.weight" or n.name.startswith(_scope(name))]
        if len(found) != 1:
            raise ConfigError(f"int8 export: module {name} matches {len(found)} Conv/MatMul nodes of {fp32.name}")
        node = found[0]
        transposed = node.op_type == "MatMul" or (node.op_type == "Gemm" and not any(
            a.name == "transB" and a.i for a in node.attribute))
        levels = 127 if node.op_type == "Conv" else 2 ** (LINEAR_WEIGHT_BITS - 1) - 1
        weights.append(int8_dequantized(graph, initializers[node.input[1]], 1 if transposed else 0, levels))
        graph.initializer.extend([numpy_helper.from_array(np.array(scale, np.float32), f"{node.name}_in_scale"),
                                  numpy_helper.from_array(np.array(zero, np.uint8), f"{node.name}_in_zero")])
        args = [f"{node.name}_in_scale", f"{node.name}_in_zero"]
        inputs[node.name] = [
            helper.make_node("QuantizeLinear", [node.input[0], *args], [f"{node.name}_in_q"], name=f"{node.name}_q"),
            helper.make_node("DequantizeLinear", [f"{node.name}_in_q", *args], [f"{node.name}_in_dq"],
                             name=f"{node.name}_dq")]
        node.input[0] = f"{node.name}_in_dq"
    ordered = weights + [new for node in graph.node for new in (*inputs.get(node.name, []), node)]
    del graph.node[:]
    graph.node.extend(ordered)
    onnx.checker.check_model(model)
    atomic_write_bytes(out, model.SerializeToString())
    return out
