"""What a network costs: per-layer output shapes, parameters and MACs, weight size, and CPU latency.

MACs (multiply-accumulates) are counted by our own forward hooks: convolutions (also transposed), linear
layers, LSTM/GRU cells, nn.MultiheadAttention, and matmul/bmm/scaled-dot-product attention called inside
a module's forward. Bias additions, normalisation and activations are not MACs; they are reported apart
as ``bias_adds`` so the total can be compared with ptflops, which adds them (tests/test_profile.py).
FLOPs are quoted as 2 x MACs.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from ocrlite.errors import ConfigError

if TYPE_CHECKING:
    from ocrlite.settings import LinePreprocess
    from ocrlite.stages import StageSpec

__all__ = [
    "LayerRow",
    "Profile",
    "count_macs",
    "measure_latency",
    "median_ms",
    "profile_model",
    "profile_config",
    "parse_input",
    "default_input",
    "plural",
]


@dataclass
class LayerRow:
    """One executed module: leaves always, containers only when they did matmuls of their own."""

    name: str
    type: str
    shape: str
    params: int
    macs: int


@dataclass
class Profile:
    """Totals for one network on one input (batch 1 unless the input says otherwise)."""

    title: str
    input_shape: tuple[int, ...]
    params: int
    trainable: int
    macs: int
    bias_adds: int
    weight_mb: float
    latency_ms: float | None = None
    runs: int = 0
    threads: int = 0
    rows: list[LayerRow] = field(default_factory=list)
    onnx: str | None = None  # what the stage runs instead of this torch net (backend: onnxruntime), as a line

    def totals(self) -> str:
        """The summary lines printed by ``ocrlite profile``."""
        lines = [
            f"{self.title}  input {'x'.join(map(str, self.input_shape))}",
            f"  params     {self.params:,} (trainable {self.trainable:,})",
            f"  MACs       {self.macs:,} ({self.macs / 1e9:.3f} G; FLOPs ~ 2 x MACs = {2 * self.macs / 1e9:.3f} G)",
            f"  weights    {self.weight_mb:.2f} MB (float32 parameters, MB = 2^20 bytes)",
        ]
        if self.latency_ms is not None:
            lines.append(f"  latency    {self.latency_ms:.2f} ms (CPU, median of {plural(self.runs, 'run')}, "
                         f"{plural(self.threads, 'thread')})")
        if self.onnx is not None:
            lines.append(f"  runs as    {self.onnx}")
        return "\n".join(lines)

    def table(self) -> str:
        """Per-layer table: name, type, output shape, params, MACs."""
        header = ("layer", "type", "output shape", "params", "MACs")
        body = [(r.name, r.type, r.shape, f"{r.params:,}", f"{r.macs:,}") for r in self.rows]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(5)]
        fmt = lambda row: "  ".join(  # noqa: E731
            c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
        )
        rule = "-" * len(fmt(header))
        return "\n".join([fmt(header), rule, *map(fmt, body), rule])


def plural(count: int, noun: str) -> str:
    """``count`` and ``noun``, an 's' added unless the count is 1: "1 thread", "4 threads"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- MAC rules per module type: (module, inputs, output) -> (MACs, bias adds) ---------------------


def _first_tensor(value: Any) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (list, tuple)) and value:
        return _first_tensor(value[0])
    return None


def _conv(m: nn.modules.conv._ConvNd, inputs: tuple, out: Tensor) -> tuple[int, int]:
    kernel = math.prod(m.kernel_size)
    bias = out.numel() if m.bias is not None else 0
    if m.transposed:  # every input element is scattered into out_channels/groups x kernel outputs
        return inputs[0].numel() * (m.out_channels // m.groups) * kernel, bias
    return out.numel() * (m.in_channels // m.groups) * kernel, bias


def _linear(m: nn.Linear, inputs: tuple, out: Tensor) -> tuple[int, int]:
    return out.numel() * m.in_features, out.numel() if m.bias is not None else 0


def _rnn(m: nn.RNNBase, inputs: tuple, out: Any) -> tuple[int, int]:
    x = inputs[0]
    steps = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]  # batch x time (or time if unbatched)
    gates = {"LSTM": 4, "GRU": 3}.get(m.mode, 1)
    directions = 2 if m.bidirectional else 1
    total = 0
    for layer in range(m.num_layers):
        width = m.input_size if layer == 0 else m.hidden_size * directions
        total += steps * directions * gates * m.hidden_size * (width + m.hidden_size)
    return total, 0


def _mha(m: nn.MultiheadAttention, inputs: tuple, out: Any) -> tuple[int, int]:
    q, k = inputs[0], inputs[1]
    batch_axis = 0 if m.batch_first else 1
    seq_axis = 1 - batch_axis
    n, lq, lk, e = q.shape[batch_axis], q.shape[seq_axis], k.shape[seq_axis], m.embed_dim
    projections = n * (lq * e * e + 2 * lk * e * m.kdim) + n * lq * e * e  # q, k, v in; out
    attention = 2 * n * lq * lk * e  # Q K^T and weights x V
    return projections + attention, 0


_RULES: dict[type, Callable[..., tuple[int, int]]] = {
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.Conv3d: _conv,
    nn.ConvTranspose1d: _conv,
    nn.ConvTranspose2d: _conv,
    nn.Linear: _linear,
    nn.LSTM: _rnn,
    nn.GRU: _rnn,
    nn.RNN: _rnn,
    nn.MultiheadAttention: _mha,
}


def _rule(module: nn.Module) -> Callable[..., tuple[int, int]] | None:
    for cls in type(module).__mro__:
        if cls in _RULES:
            return _RULES[cls]
    return None


class _MatmulCounter(TorchFunctionMode):
    """Adds the MACs of matmul-family calls and SDPA to the innermost running module."""

    _MATMULS = {torch.matmul, torch.mm, torch.bmm, torch.baddbmm, Tensor.matmul, Tensor.__matmul__, Tensor.bmm}

    def __init__(self, charge: Callable[[int], None]) -> None:
        super().__init__()
        self.charge = charge

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001  (torch's protocol)
        out = func(*args, **(kwargs or {}))
        if func in self._MATMULS and isinstance(out, Tensor):
            a = args[1] if func is torch.baddbmm else args[0]
            self.charge(out.numel() * a.shape[-1])
        elif func is F.scaled_dot_product_attention:
            q, k, v = args[:3]
            self.charge(math.prod(q.shape[:-1]) * k.shape[-2] * (q.shape[-1] + v.shape[-1]))
        return out


def _shape(value: Any) -> str:
    if isinstance(value, Tensor):
        return "x".join(map(str, value.shape))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shape(v) for v in value) + "]"
    return type(value).__name__


def count_macs(net: nn.Module, x: Tensor) -> tuple[int, int, list[LayerRow]]:
    """Run ``net(x)`` once under hooks; return (MACs, bias adds, per-layer rows in completion order)."""
    stack: list[str] = []
    own: dict[str, int] = {}
    rows: list[LayerRow] = []
    totals = [0, 0]
    modules = dict(net.named_modules())

    def charge(macs: int) -> None:
        if stack:
            own[stack[-1]] = own.get(stack[-1], 0) + macs
        totals[0] += macs

    def pre(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple) -> None:
            stack.append(name)
            own[name] = 0

        return hook

    def post(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple, out: Any) -> None:
            stack.pop()
            rule = _rule(module)
            macs, bias = rule(module, inputs, _first_tensor(out) if rule is not _rnn else out) if rule else (0, 0)
            totals[0] += macs
            totals[1] += bias
            macs += own.pop(name, 0)
            leaf = not any(True for _ in module.children()) or rule is not None
            if leaf or macs:
                params = sum(p.numel() for p in module.parameters(recurse=leaf))
                rows.append(LayerRow(name or "(model)", type(module).__name__, _shape(out), params, macs))

        return hook

    handles = []
    for name, module in modules.items():
        handles.append(module.register_forward_pre_hook(pre(name)))
        handles.append(module.register_forward_hook(post(name)))
    try:
        with torch.no_grad(), _MatmulCounter(charge):
            net(x)
    finally:
        for handle in handles:
            handle.remove()
    return totals[0], totals[1], rows


def median_ms(call: Callable[[], object], runs: int = 10, warmup: int = 2) -> float:
    """Median wall time of ``runs`` calls in ms, after ``warmup`` calls."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure_latency(
    net: nn.Module, x: Tensor, runs: int = 10, threads: int | None = None, warmup: int = 2
) -> tuple[float, int]:
    """Median wall time of ``runs`` forward passes in ms, after ``warmup`` passes; returns (ms, threads used)."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    used = torch.get_num_threads()
    try:
        with torch.inference_mode():
            return median_ms(lambda: net(x), runs, warmup), used
    finally:
        torch.set_num_threads(previous)


def profile_model(
    net: nn.Module,
    input_shape: Sequence[int],
    title: str = "model",
    runs: int = 10,
    threads: int | None = None,
) -> Profile:
    """Profile ``net`` in eval mode on zeros of ``input_shape`` (CxHxW gets a batch of 1); ``runs=0`` skips timing."""
    shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    net = net.eval()
    x = torch.zeros(shape)
    macs, bias_adds, rows = count_macs(net, x)
    params = sum(p.numel() for p in net.parameters())
    weight_mb = sum(p.numel() * p.element_size() for p in net.parameters()) / 2**20
    report = Profile(
        title=title,
        input_shape=shape,
        params=params,
        trainable=sum(p.numel() for p in net.parameters() if p.requires_grad),
        macs=macs,
        bias_adds=bias_adds,
        weight_mb=weight_mb,
        rows=rows,
    )
    if runs > 0:
        report.latency_ms, report.threads = measure_latency(net, x, runs, threads)
        report.runs = runs
    return report


def parse_input(text: str) -> tuple[int, ...]:
    """``"3x640x640"`` (CxHxW) or ``"2x3x32x320"`` (NxCxHxW) -> tuple of ints."""
    dims = tuple(map(int, text.lower().split("x"))) if re.fullmatch(r"[0-9]+(x[0-9]+){2,3}", text.lower()) else ()
    if not dims or min(dims) <= 0:
        raise ConfigError(f"--input must look like CxHxW or NxCxHxW with positive sizes, got {text!r}")
    return dims


def default_input(spec: StageSpec | None = None, plain: LinePreprocess | None = None) -> tuple[int, int, int]:
    """Input a net is profiled on when none is given. A stage's: the size its resolved ``spec`` (a ``StageSpec``: its
    YAML over its weights' manifest over the defaults) feeds its net (``StageSpec.input_size``; a recognizer's least
    width), 3x640x640 for a detector. A net of no stage kind (an ImageNet zoo net): its ``plain`` preprocess height
    x width (``stages.plain_preprocess``), 3x224x224 without one."""
    if spec is None:
        return (3, int(plain.height), int(plain.width)) if plain is not None else (3, 224, 224)
    height, width = spec.input_size()
    if height is None:
        return (3, 640, 640)
    return (3, height, width if width is not None else int(spec.pre.width))


def profile_config(
    config: str,
    overrides: Iterable[str] = (),
    input_shape: Sequence[int] | None = None,
    runs: int = 10,
    threads: int | None = None,
    stage: str | None = None,
) -> list[Profile]:
    """Profile every model in a stage config (one) or a pipeline config (det, cls, rec; only ``stage`` when given),
    weights not loaded. ``input_shape`` is one net's input, so on a pipeline it needs ``stage`` (each net otherwise
    gets its own size, ``default_input``). Every value is checked as the other commands check it, errors named by
    the same keys (``det.postprocess...``, ``pipeline...``, ``page...``)."""
    from ocrlite.config import load_yaml
    from ocrlite.files import find_config
    from ocrlite.models import build_model
    from ocrlite.stages import (
        STAGE_KINDS,
        load_pipeline_config,
        load_stage_config,
        pipeline_spec,
        plain_preprocess,
        resolve_stage,
        stage_kind,
        stage_overrides,
    )

    raw = load_yaml(find_config(config))
    overrides = list(overrides)
    if "model" in raw:
        kind = stage_kind(raw)
        if stage is not None and stage != kind:
            raise ConfigError(f"--stage {stage}: {config} is a {kind or 'single net'} stage config, not a {stage} one")
        stages = {config: (kind, load_stage_config(config, stage_overrides(kind, overrides, config)))}
    else:
        pipeline_spec(config, overrides)  # the pipeline and page sections are checked too
        pipeline = load_pipeline_config(config, overrides)
        kinds = [k for k in STAGE_KINDS if k in pipeline]
        _check_pipeline_stage(config, kinds, stage, input_shape)
        stages = {f"{config} [{k}]": (stage_kind(pipeline[k]), pipeline[k]) for k in kinds if stage in (None, k)}
    reports = []
    for title, (kind, section) in stages.items():
        if not section.get("model"):
            raise ConfigError(f"{title}: no model section to profile")
        # a det/cls/rec stage is resolved (and validated) like any other
        spec = resolve_stage(kind, section, kind) if kind else None
        plain = plain_preprocess(section, title) if spec is None else None  # its keys checked as a stage's
        net = build_model(spec.model if spec is not None else section["model"], f"{kind or title}.model")
        shape = tuple(input_shape) if input_shape else default_input(spec, plain)
        try:
            report = profile_model(net, shape, title, runs, threads)
        except (RuntimeError, ValueError) as exc:  # e.g. an input too small for the strides, or too tall
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{title}: forward pass failed on input {'x'.join(map(str, shape))}: {first}") from None
        if spec is not None and spec.backend == "onnxruntime":
            report.onnx = _onnx_line(spec, report, runs, threads)
        reports.append(report)
    return reports


def _check_pipeline_stage(config: str, kinds: Sequence[str], stage: str | None,
                          input_shape: Sequence[int] | None) -> None:
    """A ConfigError when ``stage`` is not one of the pipeline's ``kinds``, or when an ``input_shape`` would be
    given to all of its nets (a detector's page, a classifier's and a recognizer's lines) for want of a stage."""
    if stage is not None and stage not in kinds:
        raise ConfigError(f"--stage {stage}: the pipeline {config} has no {stage} stage")
    if stage is None and input_shape is not None:
        raise ConfigError(f"--input is one net's size and the pipeline {config} has {len(kinds)} ({', '.join(kinds)}); "
                          f"add --stage {'|'.join(kinds)} to profile one at that size, or leave --input out")


def _onnx_line(spec: Any, report: Profile, runs: int, threads: int | None) -> str:
    """What an onnxruntime stage runs instead of the fp32 torch net profiled above: its given ONNX file (size,
    and latency by onnxruntime on the same input), or the net's cached export (the same net)."""
    if spec.onnx is None:
        return "onnxruntime, on this net's cached ONNX export (the same net; the latency above is torch's)"
    from ocrlite.backends.onnxruntime import OnnxRunner

    path = spec.onnx
    line = f"{path.name} on onnxruntime: file {path.stat().st_size / 2**20:.2f} MB"
    if runs > 0:
        runner = OnnxRunner(path, threads=threads or torch.get_num_threads())
        x = np.zeros(report.input_shape, np.float32)
        try:
            ms = median_ms(lambda: runner(x), runs)
        except Exception as exc:  # onnxruntime's own error types, e.g. an input size the file does not take
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ConfigError(f"{report.title}: {path.name} failed on input "
                              f"{'x'.join(map(str, report.input_shape))}: {reason}") from None
        used = runner.threads or torch.get_num_threads()
        line += f", latency {ms:.2f} ms (median of {plural(runs, 'run')}, {plural(used, 'thread')})"
    return line + "; params and MACs above are this net's, weights and latency the fp32 torch net's"
