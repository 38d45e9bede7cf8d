"""Write a slimmed stage so the stage layer loads it like any other: safetensors + manifest + configs.

``OUT/<name>.safetensors`` holds the weights (never a pickle), ``OUT/<name>.json`` the parent manifest
with the new file's SHA-256 and what was done (``slim``), ``OUT/<name>.yaml`` the stage config with the
net's explicit widths, and ``OUT/ocr.yaml`` a pipeline that uses it beside the parent's other stages.
The set is written whole into a temp folder in ``OUT`` first and then moved in (``staged``): a run that stops
while writing it leaves ``OUT``'s previous set as it was, not a mix of two runs.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml
from safetensors.torch import save as save_tensors
from torch import nn

from ocrlite.config import apply_overrides, load_yaml
from ocrlite.errors import ConfigError, OcrliteError
from ocrlite.files import find_charset, find_config, find_weights
from ocrlite.io.atomic import atomic_write_bytes, atomic_write_text
from ocrlite.stages import (
    DEFAULT_PIPELINE,
    PAGE_KIND,
    STAGE_KINDS,
    StageSpec,
    load_pipeline_config,
    load_stage_config,
    stage_kind,
    stage_overrides,
)
from ocrlite.weights import sha256_file

__all__ = ["check_outputs", "config_stage_kind", "is_stage_config", "portable_stage", "raw_stage", "save_onnx_stage",
           "save_stage", "staged", "write_pipeline"]

_COPIED = ("preprocess", "postprocess", "backend")  # raw stage sections the slimmed config keeps


def is_stage_config(config: str | Path) -> bool:
    """Whether ``config`` names a single-stage config (it has ``model``) rather than a pipeline."""
    return "model" in load_yaml(find_config(config))


def config_stage_kind(config: str | Path) -> str | None:
    """The stage kind of a single-stage config (from its head), None for a pipeline config."""
    raw = load_yaml(find_config(config))
    return stage_kind(raw) if "model" in raw else None


def raw_stage(kind: str, config: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The raw mapping of the ``kind`` stage of a stage or pipeline config, ``--set`` overrides applied (so a
    slimmed stage keeps the settings it was made and measured with)."""
    if is_stage_config(config):
        return load_stage_config(config, stage_overrides(kind, overrides, config))
    return dict(load_pipeline_config(config, overrides)[kind])


def check_outputs(out_dir: Path, names: Iterable[str], config: str | Path, raw: dict[str, Any],
                  spec: StageSpec) -> None:
    """A ConfigError when a file to be written into ``out_dir`` (``names``) is one the stage being slimmed is read
    from: the ``--config`` file, the stage's own config (``raw``'s ``_file``), its weights and their manifest, its
    ONNX file. Slimming into the parent's own folder would replace the model it slims."""
    reads = [find_config(config), raw.get("_file"), spec.weights, spec.onnx,
             spec.weights.with_suffix(".json") if spec.weights else None]
    taken = {Path(path).resolve() for path in reads if path}
    for name in names:
        if (out_dir / name).resolve() in taken:
            raise ConfigError(f"-o {out_dir}: {name} there is a file the {spec.kind} stage is read from, which this "
                              "run would replace; write into another folder")


@contextmanager
def staged(out_dir: Path, order: Iterable[str]) -> Iterator[Path]:
    """A temp folder in ``out_dir`` to write a set of files into; when the block ends without an error, the files
    named in ``order`` are moved into ``out_dir`` in that order (renames, the manifest last: weights its sha256 does
    not match are refused by the loader). On an error nothing in ``out_dir`` is replaced and the folder is removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".slim.", suffix=".part", dir=out_dir))
    try:
        yield folder
        for name in order:
            os.replace(folder / name, out_dir / name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def save_stage(
    out_dir: Path, name: str, net: nn.Module, model: dict[str, Any], raw: dict[str, Any],
    manifest: dict[str, Any], slim: dict[str, Any],
) -> Path:
    """Write ``name``.safetensors/.json/.yaml into ``out_dir`` (a ``staged`` folder: the stage config names its
    weights relative to itself); return the stage config's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    weights = out_dir / f"{name}.safetensors"
    atomic_write_bytes(weights, save_tensors(tensors))
    kept = {k: v for k, v in manifest.items() if k not in ("name", "file", "sha256", "config", "slim")}
    info = {"name": name, "file": weights.name, "sha256": sha256_file(weights), "config": f"{name}.yaml",
            **kept, "parent": manifest.get("name"), "slim": slim}
    atomic_write_text(out_dir / f"{name}.json", json.dumps(info, indent=2) + "\n")
    stage = {"model": model, "weights": f"./{name}", **{k: raw[k] for k in _COPIED if raw.get(k) is not None}}
    path = out_dir / f"{name}.yaml"
    atomic_write_text(path, f"# {slim.get('summary', 'slimmed stage')}\n" + yaml.safe_dump(stage, sort_keys=False))
    return path


def _stage_ref(value: Any, parent: Path, out_dir: Path) -> Any:
    """A pipeline entry that still resolves from ``out_dir``: shipped names stay, other files go absolute, and an
    inline stage mapping keeps the files it names (``portable_stage``)."""
    if isinstance(value, dict):
        return portable_stage({"_dir": str(parent), **value}, out_dir)
    if not isinstance(value, str):
        return value
    found = find_config(value, parent)
    shipped = Path(str(resources.files("ocrlite.configs")))
    return found.name if found.parent == shipped else str(found.resolve())


def _moved(name: str, find: Callable[[Path | None], Path], old_dir: Path | None, out_dir: Path) -> str:
    """File ``name`` as a config in ``out_dir`` names it: as given when ``find`` (a lookup from a config folder)
    finds the same file from ``out_dir`` as from ``old_dir``, else by its absolute path; a file the parent does
    not find is left as it was (the parent's own error)."""
    try:
        old = find(old_dir).resolve()
    except OcrliteError:
        return name
    try:
        return name if find(out_dir).resolve() == old else str(old)
    except OcrliteError:
        return str(old)


def portable_stage(raw: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Raw stage mapping ``raw`` (read from its ``_dir``) as a config written into ``out_dir`` writes it: the files
    it names (``weights``, ``onnx``, ``postprocess.charset``) as given where ``out_dir`` finds the same file by that
    name (a shipped name, a charset beside the weights), else by their absolute paths; ``_`` keys dropped."""
    old_dir = Path(raw["_dir"]) if raw.get("_dir") else None
    stage = {k: copy.deepcopy(v) for k, v in raw.items() if not k.startswith("_")}
    weights_dir = None
    if isinstance(stage.get("weights"), str):
        name = stage["weights"]
        stage["weights"] = _moved(name, lambda d: find_weights(name, d)[0].with_suffix(""), old_dir, out_dir)
        try:
            weights_dir = find_weights(name, old_dir)[0].parent  # where the charset is looked up first
        except OcrliteError:
            weights_dir = None
    if isinstance(stage.get("onnx"), str) and not Path(stage["onnx"]).is_absolute() and old_dir is not None:
        stage["onnx"] = str((old_dir / stage["onnx"]).resolve())
    post = stage.get("postprocess")
    if isinstance(post, dict) and isinstance(post.get("charset"), str):
        charset = post["charset"]
        post["charset"] = _moved(charset, lambda d: find_charset(charset, weights_dir, d), old_dir, out_dir)
    return stage


def write_pipeline(out_dir: Path, config: str | Path, replaced: dict[str, Path], overrides: Iterable[str] = (),
                   folder: Path | None = None) -> Path:
    """``out_dir/ocr.yaml``: the parent pipeline (the default one for a stage config) with stages replaced and
    its ``pipeline.`` overrides applied (the replaced stages carry theirs, ``raw_stage``). ``folder``: where the file
    is written when not ``out_dir`` itself (a ``staged`` folder; its files are named as ``out_dir`` finds them)."""
    source = find_config(DEFAULT_PIPELINE if is_stage_config(config) else config)
    raw = load_yaml(source)
    pipeline = {k: _stage_ref(raw[k], source.parent, out_dir) for k in (*STAGE_KINDS, PAGE_KIND)
                if raw.get(k) is not None}
    pipeline.update({kind: path.name for kind, path in replaced.items()})
    switches = [o for o in overrides if o.startswith("pipeline.")]
    if raw.get("pipeline") or switches:
        pipeline["pipeline"] = apply_overrides({"pipeline": raw.get("pipeline") or {}}, switches)["pipeline"]
    path = (folder or out_dir) / "ocr.yaml"
    atomic_write_text(path, f"# {source.name} with slimmed stages: {', '.join(replaced)}\n"
                      + yaml.safe_dump(pipeline, sort_keys=False))
    return path


def save_onnx_stage(out_dir: Path, kind: str, onnx_file: Path, weights: Path, raw: dict[str, Any], summary: str,
                    beside: bool = False) -> Path:
    """``out_dir/<kind>.yaml``: the parent stage on the onnxruntime backend running ``onnx_file``. ``beside``:
    ``weights`` lie in ``out_dir``'s parent and move with it (a QAT run's export), so they are named ``../``."""
    moved = portable_stage(raw, out_dir)
    stage = {"model": raw["model"], "weights": f"../{weights.stem}" if beside else moved["weights"],
             **{k: moved[k] for k in ("preprocess", "postprocess") if moved.get(k) is not None},
             "backend": "onnxruntime", "onnx": onnx_file.name}
    path = out_dir / f"{kind}.yaml"
    atomic_write_text(path, f"# {summary}\n" + yaml.safe_dump(stage, sort_keys=False))
    return path
