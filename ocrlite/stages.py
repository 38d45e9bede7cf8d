"""The one stage-building layer: a config (path, preset name or mapping) + ``--set`` overrides -> a resolved spec.

A ``StageSpec`` holds everything needed to run one stage: the net's config, its weights file and
manifest, validated pre/post-processing settings, the charset (recognizer) and the backend. Every
entry point -- ``OCR``, the predictors, each CLI command, ``ocrlite profile``, the converter, the
trainer and the evaluation harness -- builds its stages here, so a setting has one place it comes
from (see ``ocrlite.settings`` for the precedence) and a bad value fails once, before any image is read.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, replace
from numbers import Real
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml

from ocrlite.charset import Charset
from ocrlite.config import apply_overrides, load_yaml, override_strings
from ocrlite.errors import BackendError, ConfigError, OcrliteError, WeightsError
from ocrlite.files import find_charset, find_config, find_weights, shipped_config
from ocrlite.postprocess import DBPostProcess
from ocrlite.settings import (
    ClsPostprocess,
    DetPreprocess,
    LinePreprocess,
    PagePostprocess,
    PagePreprocess,
    PipelineSettings,
    RecPostprocess,
    RecPreprocess,
    build_settings,
    check_keys,
)

__all__ = [
    "STAGE_KINDS",
    "STAGE_KEYS",
    "BACKENDS",
    "DEFAULT_PIPELINE",
    "DEFAULT_STAGE_CONFIGS",
    "PAGE_KIND",
    "PAGE_CONFIG",
    "StageSpec",
    "PipelineSpec",
    "stage_spec",
    "stage_kind",
    "resolve_stage",
    "plain_preprocess",
    "pipeline_spec",
    "stage_overrides",
    "override_source",
    "load_stage_config",
    "load_pipeline_config",
    "stage_sections",
    "weights_manifest",
    "resolved_sections",
]

STAGE_KINDS = ("det", "cls", "rec")
STAGE_KEYS = ("model", "weights", "preprocess", "postprocess", "backend", "train", "onnx")
PIPELINE_KEYS = ("det", "cls", "rec", "page", "pipeline")
BACKENDS = ("torch", "onnxruntime")
DEFAULT_PIPELINE = "ocr_ppocr_v2.yaml"
DEFAULT_STAGE_CONFIGS = {"det": "det_ppocrv3.yaml", "cls": "cls_ppocr_mobile_v2.yaml", "rec": "rec_ppocrv2.yaml"}
PAGE_KIND, PAGE_CONFIG = "page", "page_cls_pplcnet.yaml"  # the page orientation stage (ocrlite.page)

_Located = TypeVar("_Located", bound=OcrliteError)
_PRE = {"det": DetPreprocess, "cls": LinePreprocess, "rec": RecPreprocess, PAGE_KIND: PagePreprocess}
_POST: dict[str, type] = {"det": DBPostProcess, "cls": ClsPostprocess, "rec": RecPostprocess,
                          PAGE_KIND: PagePostprocess}
# What a stage's net returns when its manifest does not say: DB maps are probabilities already.
_DEFAULT_OUTPUTS = {"det": "probabilities", "cls": "logits", "rec": "logits", PAGE_KIND: "logits"}


@dataclass(frozen=True)
class StageSpec:
    """Everything needed to build and run one stage, resolved and validated."""

    kind: str
    model: dict[str, Any]
    weights: Path | None
    manifest: dict[str, Any]
    pre: Any  # DetPreprocess | LinePreprocess | RecPreprocess | PagePreprocess
    post: Any  # DBPostProcess | ClsPostprocess | RecPostprocess
    charset: Charset | None
    backend: str
    outputs: str  # "logits" or "probabilities"
    train: dict[str, Any]
    config_dir: Path | None
    onnx: Path | None = None  # a given ONNX file (e.g. int8 from ``ocrlite quantize``) for the onnxruntime backend

    def build_net(self, load_weights: bool = True) -> Any:
        """The stage's ``nn.Module`` in eval mode, with its weights loaded strictly (unless told not to); an input
        size it cannot take is a ConfigError (``check_input_size``)."""
        from ocrlite.models import build_model
        from ocrlite.weights import load_weights as load

        net = build_model(self.model, f"{self.kind}.model")
        if load_weights and self.weights is not None:
            try:
                load(net, self.weights, self.manifest.get("sha256"))
            except WeightsError:
                shapes = self._weight_shapes(self.weights)
                if shapes is not None:
                    self._check_class_count(net.state_dict(), shapes)  # a charset of another size: the usual reason
                    self._check_threshold_branch(net.state_dict(), shapes, self.weights.name)
                raise
        net.eval()
        self.check_input_size(net)
        return net

    def check_input_size(self, net: Any) -> None:
        """For a stage with a fixed input height (cls, rec, page), a ConfigError naming the preprocess setting and
        the nearest value that works when ``net`` (in eval mode) cannot take this stage's input (a recognizer's
        narrowest: ``preprocess.width`` wide): a too small line height leaves the classifier's MobileNetV3 or the
        recognizer's CRNN a feature map with no rows, a too large one the recognizer's more than the one it reads
        (torch's RuntimeError or im2seq's ValueError at the first crop). The net runs once to find out, unless
        the stage feeds it the size its weights' manifest gives."""
        height, width = self.input_size()
        if self.kind == "rec":
            width = int(self.pre.width)  # the least width a batch is padded to (preprocess.rec_batch_width)
        if height is None or width is None:
            return
        sizes = {"height": lambda n: (n, width), "width": lambda n: (height, n)} if self.kind != PAGE_KIND else \
            {"crop": lambda n: (n, n)}
        made = self.manifest.get("preprocess") or {}
        if made and all(made.get(key) == getattr(self.pre, key) for key in sizes):
            return  # the size the weights were made and checked at (their manifest's): no trial run at start-up
        if _takes(net, height, width):
            return
        bounds = {f.name: (f.metadata.get("low"), f.metadata.get("high")) for f in fields(self.pre)}
        for key, size in sizes.items():
            given = int(getattr(self.pre, key))
            low, high = bounds[key]
            nearest = _nearest(net, size, given, int(low or given), int(high or given))
            if nearest is not None:
                small = nearest > given
                raise ConfigError(f"{self.kind}.preprocess.{key}: {given} is too {'small' if small else 'large'} "
                                  f"for this net (its feature map {'runs out' if small else 'keeps too many rows'}); "
                                  f"the {'smallest' if small else 'largest'} that works is {nearest}")
        raise ConfigError(f"{self.kind}.preprocess: this net cannot take {height} x {width} inputs")

    @staticmethod
    def _weight_shapes(path: Path) -> dict[str, tuple[int, ...]] | None:
        """Each tensor's shape in a weights file, by name; None when it cannot be read (the loader said so)."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), "pt") as tensors:
                return {key: tuple(tensors.get_slice(key).get_shape()) for key in tensors.keys()}
        except Exception:  # safetensors' several error types: the file itself is bad, which the loader said
            return None

    def _check_threshold_branch(self, own: dict[str, Any], shapes: dict[str, tuple[int, ...]], name: str) -> None:
        """A WeightsError saying what to do when the weights ``name`` lack exactly the DB threshold branch that the
        net config builds (``with_threshold: true``, as a training config's head has it): inference never runs it."""
        missing = [key for key in own if key not in shapes and not key.endswith("num_batches_tracked")]
        if self.kind == "det" and missing and set(shapes) <= set(own) and all(
                key.startswith("head.thresh.") for key in missing):
            raise WeightsError(f"{name} has no DB threshold branch (head.thresh), which this det config builds "
                               "(model.head.with_threshold: true, as training configs do); inference does not run "
                               "it: set det.model.head.with_threshold=false")

    def _check_class_count(self, own: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> None:
        """A ConfigError naming the charset when the weights' CTC head has another class count than the charset
        gives (a head tensor that differs only in its first dimension, the net's being the charset's classes)."""
        if self.charset is None or self.weights is None:
            return
        classes = len(self.charset)
        for key, tensor in own.items():
            shape, theirs = tuple(tensor.shape), shapes.get(key)
            if (key.startswith("head.") and shape[:1] == (classes,) and theirs is not None and theirs != shape
                    and theirs[1:] == shape[1:]):
                space = " and a space" if self.post.use_space_char else ""
                raise ConfigError(
                    f"{self.kind}.postprocess.charset: {self.post.charset} gives {classes} classes (the CTC blank, "
                    f"{classes - 1 - bool(space)} characters{space}), but {self.weights.name} was trained with "
                    f"{theirs[0]} ({key} {theirs}); use its own charset (and use_space_char)")

    def input_size(self) -> tuple[int | None, int | None]:
        """The (height, width) this stage feeds its net, None where it varies (det pages, rec line widths)."""
        if self.kind == PAGE_KIND:
            return int(self.pre.crop), int(self.pre.crop)
        if self.kind == "det":
            return None, None
        return int(self.pre.height), int(self.pre.width) if self.kind == "cls" else None

    def build_runner(self, onednn: bool = True) -> Any:
        """A runner for this stage's backend. The onnxruntime backend runs this stage's cached ONNX export
        (same weights). The torch backend folds its net and (``onednn``, when this torch has the ops) runs it on oneDNN.
        With several torch threads, a torch recognizer reads its batches side by side (``backends.lanes``).
        A stage without weights (``weights: null``: a net to train) is a ConfigError: it would read random text."""
        from ocrlite.backends.threads import thread_count, torch_threads

        if self.weights is None and self.onnx is None:
            raise ConfigError(f"{self.kind}.weights: none given, and a net without trained weights reads nothing "
                              "useful; name a .safetensors file or shipped weights (or train it: ocrlite train)")

        softmax = self.kind != "det" and self.outputs == "logits"
        if self.backend == "onnxruntime":
            from ocrlite.backends.onnx_cache import cached_export
            from ocrlite.backends.onnxruntime import OnnxRunner, import_onnxruntime
            from ocrlite.extras import require_onnx

            require_onnx("the onnxruntime backend", export=self.onnx is None)  # one line before an export or a run
            import_onnxruntime()  # installed but broken: said before an export, not taken for a damaged export
            threads = thread_count()
            if self.onnx is not None:
                given = OnnxRunner(self.onnx, threads=threads)
                classes = {"det": 1, "cls": 2, PAGE_KIND: 4}.get(self.kind) or len(self.charset or ())
                one = self.kind == "det" or self.kind == "rec" and self.pre.batch_size == 1  # one image a call
                given.check_stage(self.kind, classes, self.outputs == "logits", self.input_size(), 1 if one else None)
                return given
            head = {"det": "raw", "cls": "probs", PAGE_KIND: "probs", "rec": "top1"}[self.kind]
            path = cached_export(self, head)
            try:
                return OnnxRunner(path, threads=threads)
            except BackendError as damaged:  # a cached export cut short or damaged (a full disk): export it again
                try:
                    return OnnxRunner(cached_export(self, head, again=True), threads=threads)
                except BackendError as exc:  # e.g. a read-only cache: both reasons, in one line
                    raise BackendError(f"{damaged}; exporting it again failed: {exc}") from None
        from ocrlite.backends.fold import fold_net
        from ocrlite.backends.lanes import LaneRunner
        from ocrlite.backends.onednn import onednn_available, use_onednn
        from ocrlite.backends.torch import TorchRunner

        net = self.build_net()
        fold_net(net)  # our own inference copy: BatchNorm and affine layers folded into the convs
        if onednn and onednn_available():
            use_onednn(net)  # its convs and linears on oneDNN, activations fused
        runner = TorchRunner(net, softmax=softmax)
        lanes = torch_threads() if self.kind == "rec" else 1
        return LaneRunner(runner, lanes) if lanes > 1 else runner


    def fingerprint(self) -> dict[str, Any]:
        """What of this stage changes what it reads, as JSON values: its net, weights and given ONNX file (by
        SHA-256), settings, charset and backend."""
        from ocrlite.weights import sha256_file

        weights = self.manifest.get("sha256") or (sha256_file(self.weights) if self.weights else None)
        chars = "\n".join(self.charset.chars) if self.charset is not None else None
        return {"model": self.model, "weights": weights, "onnx": sha256_file(self.onnx) if self.onnx else None,
                "pre": asdict(self.pre), "post": asdict(self.post), "outputs": self.outputs, "backend": self.backend,
                "charset": hashlib.sha256(chars.encode("utf-8")).hexdigest() if chars is not None else None}


def _takes(net: Any, height: int, width: int) -> bool:
    """Whether ``net`` (eval mode: no statistics change, no random draw) runs on a 3 x ``height`` x ``width``
    input."""
    import torch

    try:
        with torch.no_grad():
            net(torch.zeros(1, 3, height, width))
    except (RuntimeError, ValueError):
        return False
    return True


def _nearest(net: Any, size: Callable[[int], tuple[int, int]], given: int, low: int, high: int) -> int | None:
    """The value in ``low..high`` nearest ``given`` (which ``net`` does not take) whose input ``size(n)`` (height,
    width) ``net`` takes (``_takes``), the values it takes being one run (a classifier's: every one from the
    smallest up; a recognizer's: the heights its strides bring to one row), or None. It tries ``given`` doubled
    and halved again and again (the bounds last), then halves the gap between the first hit and the miss before
    it down to the run's edge."""
    last = {"up": given, "down": given}  # each way's last try, which net did not take
    while last["up"] < high or last["down"] > low:
        for way, miss in list(last.items()):
            n = min(miss * 2, high) if way == "up" else max(miss // 2, low)
            if n != miss and _takes(net, *size(n)):
                while abs(n - miss) > 1:
                    middle = (n + miss) // 2
                    n, miss = (middle, miss) if _takes(net, *size(middle)) else (n, middle)
                return n
            last[way] = n
    return None


@dataclass(frozen=True)
class PipelineSpec:
    """The three stages of a pipeline (``cls`` may be absent), its switches, and the page orientation stage
    that ``pipeline.page_orientation`` runs (the config's ``page:`` section, else the shipped one)."""

    settings: PipelineSettings
    det: StageSpec
    cls: StageSpec | None
    rec: StageSpec
    page: StageSpec

    def used(self) -> dict[str, StageSpec]:
        """The stages it runs, by kind: the line classifier only where it is used, the page classifier only with
        ``page_orientation``."""
        used = {"det": self.det, "rec": self.rec,
                "cls": self.cls if self.settings.use_cls or self.settings.page_orientation else None,
                PAGE_KIND: self.page if self.settings.page_orientation else None}
        return {kind: stage for kind, stage in used.items() if stage is not None}

    def fingerprint(self) -> dict[str, Any]:
        """What changes what this pipeline reads, as JSON values: its switches and the stages it runs
        (``used``, each ``StageSpec.fingerprint``)."""
        return {"pipeline": asdict(self.settings), **{kind: stage.fingerprint() for kind, stage in self.used().items()}}

    def check_backends(self) -> None:
        """A BackendError (one line with the install hint) when a stage it runs is on the onnxruntime backend and
        onnxruntime, or onnx to export a stage's net (one without its own ``onnx:`` file), is not installed: said
        before a run writes anything, not by each worker."""
        stages = [stage for stage in self.used().values() if stage.backend == "onnxruntime"]
        if stages:
            from ocrlite.extras import require_onnx

            require_onnx("the onnxruntime backend", export=any(stage.onnx is None for stage in stages))


def _read_stage(value: Any, within: Path | None, section: str) -> dict[str, Any]:
    """A stage's raw mapping (from a file name or an inline mapping; ``within``: the pipeline config naming it)
    with ``_dir`` set, and ``_file``, the file it was read from (for error messages)."""
    relative_to = within.parent if within else None
    if isinstance(value, (str, Path)):
        try:
            path = find_config(value, relative_to)
        except ConfigError as exc:
            if relative_to is None:
                raise
            raise ConfigError(f"{section}: {exc} (looked in {relative_to}, the working folder "
                              "and the shipped configs)") from None
        stage = load_yaml(path)
        stage["_dir"], stage["_file"] = str(path.parent), str(path)
    elif isinstance(value, dict):
        stage = copy.deepcopy(value)
        stage.setdefault("_dir", str(relative_to) if relative_to else None)
        stage.setdefault("_file", str(within) if within else None)
    else:
        raise ConfigError(f"{section}: expected a config file name or a mapping")
    return stage


def stage_sections(path: tuple[str, ...]) -> tuple[str, ...]:
    """The optional sections the schema knows under ``path`` of a stage mapping to train, which an override may
    make (``apply_overrides``): the stage's preprocess, postprocess and train, and the train sections of the
    tasks and wrappers (``train.distill``, ``train.qat``, ...)."""
    if path == ("train",):
        from ocrlite.train.trainer import TASK_KEYS

        return tuple(key for key in TASK_KEYS if key != "task")
    return (*_setting_sections(path), "train") if not path else ()


def _setting_sections(path: tuple[str, ...]) -> tuple[str, ...]:
    """``stage_sections`` of a stage that reads (no ``train``: reading never checks it, so it is not made)."""
    return ("preprocess", "postprocess") if not path else ()


def _pipeline_sections(path: tuple[str, ...]) -> tuple[str, ...]:
    """``_setting_sections`` within a pipeline tree's stages (``det.preprocess``)."""
    return _setting_sections(path[1:]) if path[:1] and path[0] in (*STAGE_KINDS, PAGE_KIND) else ()


def load_stage_config(name: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """One stage config's raw mapping with overrides such as ``postprocess.box_thresh=0.5`` applied."""
    return apply_overrides(_read_stage(name, None, str(name)), overrides, stage_sections)


def load_pipeline_config(name: str | Path | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """A pipeline config's raw mapping; each of det/cls/rec/page becomes a full stage mapping (``page``: the
    shipped page classifier when the config names none). A single stage's config stands for the default
    pipeline with that stage replaced.

    Overrides address the resolved tree, e.g. ``det.postprocess.box_thresh=0.5``, ``pipeline.drop_score=0.3``
    or ``page.postprocess.thresh=0.6``; with a single stage's config, its own keys may leave out the stage
    prefix (``postprocess.box_thresh=0.5``).
    """
    path = find_config(name) if name else shipped_config(DEFAULT_PIPELINE)
    raw = load_yaml(path)
    if "model" in raw:  # one stage's config (an ``ocrlite train`` export): the default pipeline with it
        kind = stage_kind(raw)
        if kind not in STAGE_KINDS:
            raise ConfigError(f"{path.name}: a single stage config without a det, cls or rec head; name it in a "
                              "pipeline config")
        stage, path = path, shipped_config(DEFAULT_PIPELINE)
        raw = {**load_yaml(path), kind: str(stage.resolve())}
        overrides = [o if o.split(".", 1)[0] in PIPELINE_KEYS else f"{kind}.{o}" for o in overrides]
    elif set(raw) & set(STAGE_KEYS) and not set(raw) & set(PIPELINE_KEYS):  # a stage config, its model: misspelt
        check_keys(path.name, raw, STAGE_KEYS)
        raise ConfigError(f"{path.name}: a stage config needs a 'model' section")
    check_keys(path.name, raw, PIPELINE_KEYS)
    missing = [k for k in ("det", "rec") if k not in raw]
    if missing:
        raise ConfigError(f"{path.name}: missing section {missing[0]!r}")
    cfg: dict[str, Any] = {"pipeline": dict(_section(raw, "pipeline", path.name))}
    for kind in STAGE_KINDS:
        if raw.get(kind) is not None:
            cfg[kind] = _read_stage(raw[kind], path, f"{path.name}: {kind}")
    cfg[PAGE_KIND] = _read_stage(raw.get(PAGE_KIND) or shipped_config(PAGE_CONFIG), path,
                                 f"{path.name}: {PAGE_KIND}")
    for item in overrides:
        cfg = _stage_named(apply_overrides(cfg, [item], _pipeline_sections), item)
    check_keys("--set", cfg, PIPELINE_KEYS)  # a top-level key the file does not have (backend=...) too
    return cfg


def _stage_named(cfg: dict[str, Any], item: str) -> dict[str, Any]:
    """``cfg`` with a stage that the override ``item`` set to a config file name (``--set rec=rec_ppocrv3.yaml``)
    read, as a pipeline file's ``rec:`` key names one: a path from the working folder, or a shipped config."""
    kind = item.partition("=")[0]
    if kind in (*STAGE_KINDS, PAGE_KIND) and isinstance(cfg.get(kind), str):
        try:
            cfg[kind] = _read_stage(cfg[kind], None, kind)
        except ConfigError as exc:
            raise ConfigError(f"{kind}: {exc} {override_source(item)}") from None
    return cfg


def override_source(item: str) -> str:
    """How an error about a value names the override ``item`` that gave it: ``(from the override 'KEY=VALUE')``."""
    return f"(from the override {item!r})"


def _places(key: str) -> list[str]:
    """The full keys of the pipeline tree's settings named ``key`` (``det.postprocess.box_thresh``), for a "did you
    mean" when ``key`` is given in a section that has no such setting."""
    tables: list[tuple[str, type]] = [("pipeline", PipelineSettings)]
    for kind in _PRE:
        tables += [(f"{kind}.preprocess", _PRE[kind]), (f"{kind}.postprocess", _POST[kind])]
    return [f"{section}.{key}" for section, cls in tables if key in {f.name for f in fields(cls)}]


def _section(stage: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = stage.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}.{key}: expected a mapping, got {value!r}")
    return value


def _located(exc: _Located, where: str, overrides: Iterable[str], file: str | None) -> _Located:
    """``exc`` (a ConfigError or WeightsError, kept so; a message starting with the key it is about, ``where.KEY:
    ...``) saying where the bad value came from: the last override that set the key (the one whose value is
    used), else the file the section was read from."""
    key, _, rest = str(exc).partition(": ")
    unknown = re.match(r"unknown key '([^']+)'", rest)  # check_keys: the key is the section's unknown one
    key = f"{key}.{unknown[1]}" if unknown else key
    for item in reversed(list(overrides)):
        dotted = item.partition("=")[0]
        if key in (dotted, f"{where}.{dotted}") or key.startswith((f"{dotted}.", f"{where}.{dotted}.")):
            return type(exc)(f"{exc} {override_source(item)}")
    return type(exc)(f"{exc} (in {file})") if file else exc


def resolve_stage(kind: str, stage: dict[str, Any], where: str, overrides: Iterable[str] = ()) -> StageSpec:
    """Validate a raw stage mapping and find its files; an error names the override (of ``overrides``, the ones
    applied to the tree ``stage`` is in) or the file the bad value came from."""
    try:
        return _resolve_stage(kind, stage, where)
    except (ConfigError, WeightsError) as exc:
        if not isinstance(stage, dict):  # set so by an override (``--set page=null``): it is named
            raise _located(exc, where, overrides, None) from None
        raise _located(exc, where, [*overrides, *stage.get("_overrides", [])], stage.get("_file")) from None


def _resolve_stage(kind: str, stage: dict[str, Any], where: str) -> StageSpec:
    if not isinstance(stage, dict):
        raise ConfigError(f"{where}: expected a stage mapping (model, weights, ...), got {stage!r}")
    check_keys(where, [k for k in stage if not k.startswith("_")], STAGE_KEYS, _places)
    config_dir = Path(stage["_dir"]) if stage.get("_dir") else None
    model = _section(stage, "model", where)
    if not model:
        raise ConfigError(f"{where}: missing section 'model'")
    weights, manifest = _weights(kind, stage, config_dir, where)
    backend = stage.get("backend", "torch")
    if backend not in BACKENDS:
        raise ConfigError(f"{where}.backend: {backend!r} is not allowed; choose one of: {', '.join(BACKENDS)}")
    pre, post = _settings(kind, stage, manifest, where)
    charset = None
    if kind == "rec":
        charset = _read_charset(post, weights.parent if weights else None, config_dir, f"{where}.postprocess.charset")
        model = _with_class_count(model, len(charset), where)
    outputs = manifest.get("outputs", _DEFAULT_OUTPUTS[kind])
    return StageSpec(kind, model, weights, manifest, pre, post, charset, backend, outputs,
                     _section(stage, "train", where), config_dir, _onnx_file(stage, backend, config_dir, where))


def _weights(kind: str, stage: dict[str, Any], config_dir: Path | None, where: str) -> tuple[Path | None,
                                                                                         dict[str, Any]]:
    """The stage's weights file (None for ``weights: null``) and its manifest ({} when it has none); a manifest
    made for another kind of stage is a ConfigError."""
    if not stage.get("weights"):
        return None, {}
    from ocrlite.weights import read_manifest

    try:
        weights, manifest_path = find_weights(str(stage["weights"]), config_dir)
    except WeightsError as exc:
        raise WeightsError(f"{where}.weights: {exc}") from None
    manifest = read_manifest(manifest_path) if manifest_path.is_file() else {}
    for part, table in (("preprocess", _PRE), ("postprocess", _POST)):  # weights made for another stage?
        build_settings(table[kind], f"{where}.weights: {manifest_path.name} {part}", manifest.get(part))
    return weights, manifest or {}


def _settings(kind: str, stage: dict[str, Any], manifest: dict[str, Any], where: str) -> tuple[Any, Any]:
    """The stage's preprocess and postprocess settings: its sections over its weights' ``manifest``, over the
    settings classes' defaults."""
    pre: Any = build_settings(_PRE[kind], f"{where}.preprocess", manifest.get("preprocess"),
                              _section(stage, "preprocess", where), places=_places)
    post: Any = build_settings(_POST[kind], f"{where}.postprocess", manifest.get("postprocess"),
                               _section(stage, "postprocess", where), places=_places)
    return pre, post


def weights_manifest(kind: str, stage: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a raw ``kind`` stage mapping's weights (found beside its ``_dir``); {} without one."""
    config_dir = Path(stage["_dir"]) if stage.get("_dir") else None
    return _weights(kind, stage, config_dir, kind)[1]


def resolved_sections(kind: str, stage: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """A raw ``kind`` stage mapping's ``model``, ``preprocess`` and ``postprocess`` as the stage runs them, every
    default filled in (each block's constructor's; the weights' ``manifest``, then the settings classes'), so
    that a default given and one left out are equal (``ocrlite train --resume`` compares them so). A bad value
    is the one-line ConfigError of resolving the stage."""
    import ocrlite.models  # noqa: F401  (registers the blocks)
    from ocrlite.registry import block_arguments

    pre, post = _settings(kind, stage, manifest, kind)
    model = {part: block_arguments(part, cfg, f"{kind}.model.{part}") if part in _BLOCKS and isinstance(cfg, dict)
             else cfg for part, cfg in _section(stage, "model", kind).items()}
    return {"model": model, "preprocess": asdict(pre), "postprocess": asdict(post)}


def plain_preprocess(stage: dict[str, Any], where: str) -> LinePreprocess | None:
    """A raw stage mapping whose head is of no stage kind (an ImageNet zoo net, which ``ocrlite profile`` builds):
    its keys checked as a stage's, and its ``preprocess``, a fixed height x width input, as ``LinePreprocess``
    (None without one). An error names the override or the file that gave the bad value, as ``resolve_stage``'s."""
    try:
        check_keys(where, [k for k in stage if not k.startswith("_")], STAGE_KEYS)
        section = _section(stage, "preprocess", where)
        return build_settings(LinePreprocess, f"{where}.preprocess", section) if section else None
    except ConfigError as exc:
        raise _located(exc, where, stage.get("_overrides", []), stage.get("_file")) from None


_BLOCKS = ("backbone", "neck", "head")  # the model sections that name a registered block


def _read_charset(post: RecPostprocess, weights_dir: Path | None, config_dir: Path | None, key: str) -> Charset:
    """The recognizer's charset file, read; a file not found or not UTF-8 text is a ConfigError naming ``key``."""
    try:
        path = find_charset(post.charset, weights_dir, config_dir)
    except ConfigError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    try:
        return Charset.from_file(path, use_space_char=post.use_space_char)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc}") from None


def _onnx_file(stage: dict[str, Any], backend: str, config_dir: Path | None, where: str) -> Path | None:
    """The stage's own ONNX file (``onnx:``, beside the config unless absolute); only with the onnxruntime backend."""
    name = stage.get("onnx")
    if name is None:
        return None
    if backend != "onnxruntime":
        raise ConfigError(f"{where}.onnx: a given ONNX file needs backend: onnxruntime (got {backend!r})")
    path = Path(str(name))
    path = path if path.is_absolute() or config_dir is None else config_dir / path
    if not path.is_file():
        raise ConfigError(f"{where}.onnx: file not found: {path}")
    return path


_HEAD_KINDS = {"DBHead": "det", "FusedDBHead": "det", "ClsHead": "cls", "CTCHead": "rec",
               "ConvClassifierHead": PAGE_KIND}


def stage_kind(stage: dict[str, Any]) -> str | None:
    """The stage kind a raw stage mapping's head implies (None for e.g. the zoo's ImageNet heads)."""
    head = (stage.get("model") or {}).get("head") or {}
    return _HEAD_KINDS.get(str(head.get("name"))) if isinstance(head, dict) else None


def _with_class_count(model: dict[str, Any], classes: int, where: str) -> dict[str, Any]:
    """The CTC head's class count comes from the charset (blank + characters [+ space])."""
    head = dict(model.get("head") or {})
    given = head.get("out_channels")
    if given is not None and given != classes:
        raise ConfigError(f"{where}.model.head.out_channels: {given} does not match the charset's {classes} classes")
    head["out_channels"] = classes
    return {**model, "head": head}


def stage_spec(
    kind: str, config: str | Path | dict[str, Any] | None = None, overrides: Iterable[str] = ()
) -> StageSpec:
    """Resolve one stage from a stage config file/mapping (default: the shipped one for ``kind``)."""
    if kind not in _PRE:
        raise ConfigError(f"unknown stage {kind!r}; choose one of: {', '.join(_PRE)}")
    source = config if config is not None else shipped_config({**DEFAULT_STAGE_CONFIGS, PAGE_KIND: PAGE_CONFIG}[kind])
    overrides = override_strings(overrides)
    raw = _read_stage(source, None, kind)
    if "model" not in raw and any(key in raw for key in PIPELINE_KEYS):
        given = source if isinstance(source, (str, Path)) else "the mapping given"
        raise ConfigError(f"{given} is a pipeline config; give a {kind} stage config here (or the pipeline config to "
                          "OCR(config=...), whose detector, line_classifier and recognizer are these predictors)")
    return resolve_stage(kind, apply_overrides(raw, overrides, _setting_sections), kind, overrides)


def pipeline_spec(
    config: str | Path | None = None, overrides: Iterable[str] = (), *, model: str | None = None,
    backend: str | None = None, use_cls: bool | None = None, drop_score: float | None = None,
) -> PipelineSpec:
    """Resolve a pipeline from a config file or a preset name (``model``), with overrides; ``backend`` (e.g.
    ``--backend onnxruntime``) sets every stage's ``backend:`` before the stages are checked; ``use_cls`` and
    ``drop_score``, when given, set ``pipeline.use_cls`` and ``pipeline.drop_score`` after the overrides. An argument
    of the wrong type is a TypeError."""
    for name, value, what in (("model", model, "a preset name"), ("backend", backend, "a backend name")):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be {what} (str) or None, got {type(value).__name__}")
    given, switches = override_strings(overrides), _switches(use_cls, drop_score)
    overrides = [*given, *switches]
    if model is not None:
        if config is not None:
            raise ConfigError("give either config or model, not both")
        from ocrlite.presets import get_preset

        config = get_preset(model).path
    cfg = load_pipeline_config(config, overrides)
    if backend is not None:
        if backend not in BACKENDS:
            raise ConfigError(f"backend {backend!r} is not allowed; choose one of: {', '.join(BACKENDS)}")
        for kind in (*STAGE_KINDS, PAGE_KIND):
            if isinstance(cfg.get(kind), dict):
                if backend != "onnxruntime" and cfg[kind].get("onnx") is not None:
                    own = Path(cfg[kind].get("_dir") or "") / str(cfg[kind]["onnx"])  # an absolute one as it is
                    raise ConfigError(f"backend {backend!r}: the {kind} stage runs its own ONNX file {own} "
                                      f"({kind}.onnx), which needs backend onnxruntime; leave the backend out, or "
                                      f"set {kind}.onnx=null to run its weights on {backend}")
                cfg[kind]["backend"] = backend
    try:
        settings = build_settings(PipelineSettings, "pipeline", _section(cfg, "pipeline", "config"), places=_places)
    except ConfigError as exc:
        if any(str(exc).startswith(f"{switch.partition('=')[0]}:") for switch in switches):
            raise  # a bad use_cls/drop_score argument: the message names it as it is
        raise _located(exc, "pipeline", given, str(find_config(config) if config else "")) from None
    # ``cls: null`` (in the file or by --set) means no direction classifier; det and rec are required
    try:
        stages = {kind: resolve_stage(kind, cfg[kind], kind, given) if cfg.get(kind) is not None else None
                  for kind in STAGE_KINDS}
    except WeightsError:
        if model is not None:  # a preset from the optional weights package: say so, naming the preset
            from ocrlite.presets import check_installed

            check_installed(model)
        raise
    det, rec = stages["det"], stages["rec"]
    if det is None or rec is None:
        null = ConfigError(f"{'det' if det is None else 'rec'}: a pipeline needs this stage; it cannot be null")
        raise _located(null, "pipeline", given, str(find_config(config) if config else ""))
    if settings.use_cls is None:
        settings = replace(settings, use_cls=stages["cls"] is not None)
    elif settings.use_cls and stages["cls"] is None:
        missing = ConfigError("pipeline.use_cls: true needs a cls stage, and this pipeline has none")
        if any(switch.startswith("pipeline.use_cls=") for switch in switches):
            raise missing  # the use_cls argument: the message names it as it is
        raise _cls_missing(missing, given, str(find_config(config) if config else ""))
    page = resolve_stage(PAGE_KIND, cfg[PAGE_KIND], PAGE_KIND, given)
    return PipelineSpec(settings, det, stages["cls"], rec, page)


def _cls_missing(missing: ConfigError, overrides: list[str], file: str) -> ConfigError:
    """``missing`` naming what asked for a cls stage the pipeline lacks: the override that set
    ``pipeline.use_cls``, else the one that set ``cls`` to null, else the config file."""
    located = _located(missing, "pipeline", overrides, None)
    if str(located) != str(missing):
        return located
    nulled = [item for item in overrides if item.partition("=")[0].strip() == "cls"]
    if nulled:
        return ConfigError(f"{missing} {override_source(nulled[-1])}")
    return _located(missing, "pipeline", (), file)


def _switches(use_cls: bool | None, drop_score: float | None) -> list[str]:
    """``pipeline.KEY=VALUE`` overrides for the keyword switches that were given (as YAML: ``drop_score=nan``
    stays a number for the settings' check); a value of the wrong type is a TypeError."""
    if use_cls is not None and not isinstance(use_cls, (bool, np.bool_)):
        raise TypeError(f"use_cls must be True, False or None, got {use_cls!r}")
    if drop_score is not None and (isinstance(drop_score, (bool, np.bool_)) or not isinstance(drop_score, Real)):
        raise TypeError(f"drop_score must be a number or None, got {drop_score!r}")
    # numpy's scalars (np.float32(0.3), np.True_) as Python's, which YAML can write
    values = {"use_cls": None if use_cls is None else bool(use_cls),
              "drop_score": None if drop_score is None else float(drop_score)}
    return [f"pipeline.{key}={yaml.safe_dump(value).splitlines()[0]}" for key, value in values.items()
            if value is not None]


def stage_overrides(kind: str | None, overrides: Iterable[str], config: str | Path) -> list[str]:
    """``--set`` keys for the single ``kind`` stage config ``config``: the pipeline-tree prefix (``det.``) is
    dropped; a key for another part of the tree (another stage, ``page``, ``pipeline``) is a ConfigError."""
    local = [o.removeprefix(f"{kind}.") if kind else o for o in overrides]
    foreign = [o for o in local if o.split(".", 1)[0] in (*STAGE_KINDS, PAGE_KIND, "pipeline")]
    if foreign:
        raise ConfigError(f"override {foreign[0]!r} does not apply to the {kind or 'single'} stage config {config}")
    return local


def command_stage(
    kind: str, config: str | Path | None = None, overrides: Iterable[str] = (), model: str | None = None
) -> StageSpec | None:
    """The ``kind`` stage a command works with: from a preset, a pipeline config, or a single stage config.

    ``--set`` keys address the pipeline tree (``det.postprocess.box_thresh=0.5``) on every command; with
    a single-stage config the stage prefix may be left out. None when the pipeline has no such stage.
    """
    overrides = list(overrides)
    if config is not None and model is None:
        raw = load_yaml(find_config(config))
        if "model" in raw:  # a stage config
            return stage_spec(kind, config, stage_overrides(kind, overrides, config))
    spec = pipeline_spec(config, overrides, model=model)
    stage: StageSpec | None = getattr(spec, kind)
    return stage
