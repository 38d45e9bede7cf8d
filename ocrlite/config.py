"""YAML configs: safe loading, schema checks, dotted overrides and stage resolution.

A *stage* config (det/cls/rec) has the keys ``model``, ``weights``, ``preprocess`` and
``postprocess``. A *pipeline* config has ``det``, ``cls`` and ``rec`` (each a stage config
file name or an inline stage mapping) and an optional ``pipeline`` section.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import ConfigError

__all__ = [
    "STAGE_KEYS",
    "PIPELINE_KEYS",
    "DEFAULT_PIPELINE",
    "load_yaml",
    "apply_overrides",
    "resolve_config_path",
    "load_stage_config",
    "load_pipeline_config",
    "check_keys",
]

STAGE_KEYS = ("model", "weights", "preprocess", "postprocess", "train")
PIPELINE_KEYS = ("det", "cls", "rec", "pipeline")
DEFAULT_PIPELINE = "ocr_ppocr_v2.yaml"


def check_keys(section: str, given: Iterable[str], allowed: Iterable[str]) -> None:
    """Raise ConfigError naming the first unknown key and listing the allowed ones."""
    allowed = list(allowed)
    unknown = [k for k in given if k not in allowed]
    if unknown:
        raise ConfigError(
            f"{section}: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}"
        )


def resolve_config_path(name: str | Path, relative_to: Path | None = None) -> Path:
    """Find a config file: as given, next to ``relative_to``, or among the shipped configs."""
    path = Path(name)
    candidates = [path]
    if relative_to is not None and not path.is_absolute():
        candidates.append(relative_to / path)
    shipped = resources.files("ocrlite.configs")
    if not path.is_absolute() and len(path.parts) > 1:  # e.g. zoo/mobilenet_v2_det.yaml
        candidates.append(Path(str(shipped.joinpath(*path.parts))))
    candidates.append(Path(str(shipped.joinpath(path.name))))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"config file not found: {name}")


def load_yaml(path: Path) -> dict[str, Any]:
    """Load a YAML mapping with ``yaml.safe_load``; anything else is a ConfigError."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot read config {path}: {first_line}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    return data


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``cfg`` with ``a.b.c=value`` overrides applied.

    Every section on the path must exist (a typo there is an error); the leaf may be new,
    because each section is validated against its schema when it is used. The value is
    parsed as YAML, so numbers, booleans and lists keep their types.
    """
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        dotted, sep, raw = item.partition("=")
        if not sep or not dotted:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        *parents, leaf = dotted.split(".")
        node: Any = cfg
        for depth, key in enumerate(parents):
            child = node.get(key) if isinstance(node, dict) else None
            if child is None and isinstance(node, dict) and key in node:
                child = node[key] = {}
            if not isinstance(child, dict):
                where = ".".join(parents[:depth]) or "config"
                allowed = ", ".join(k for k in node if not k.startswith("_"))
                raise ConfigError(f"override {dotted}: {where} has no section {key!r}; allowed: {allowed}")
            node = child
        node[leaf] = _parse_value(raw)
    return cfg


def _stage_from(value: Any, relative_to: Path | None, section: str) -> dict[str, Any]:
    if isinstance(value, (str, Path)):
        path = resolve_config_path(value, relative_to)
        stage = load_yaml(path)
        stage["_dir"] = str(path.parent)
    elif isinstance(value, dict):
        stage = dict(value)
        stage["_dir"] = str(relative_to) if relative_to else None
    else:
        raise ConfigError(f"{section}: expected a config file name or a mapping")
    check_keys(section, [k for k in stage if k != "_dir"], STAGE_KEYS)
    for key in STAGE_KEYS:
        stage.setdefault(key, {} if key != "weights" else None)
    return stage


def load_stage_config(name: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Load one stage config (det, cls or rec) with overrides such as ``postprocess.box_thresh=0.5``."""
    path = resolve_config_path(name)
    stage = _stage_from(str(path), None, path.name)
    return apply_overrides(stage, overrides)


def load_pipeline_config(
    name: str | Path | None = None, overrides: Iterable[str] = ()
) -> dict[str, Any]:
    """Load a pipeline config; each of det/cls/rec becomes a full stage mapping.

    Overrides address the resolved tree, e.g. ``det.postprocess.box_thresh=0.5``
    or ``pipeline.drop_score=0.3``.
    """
    path = resolve_config_path(name or DEFAULT_PIPELINE)
    raw = load_yaml(path)
    check_keys(path.name, raw, PIPELINE_KEYS)
    missing = [k for k in ("det", "rec") if k not in raw]
    if missing:
        raise ConfigError(f"{path.name}: missing section {missing[0]!r}")
    cfg: dict[str, Any] = {"pipeline": dict(raw.get("pipeline") or {})}
    for stage in ("det", "cls", "rec"):
        if raw.get(stage) is not None:
            cfg[stage] = _stage_from(raw[stage], path.parent, f"{path.name}: {stage}")
    return apply_overrides(cfg, overrides)
