"""YAML configs: safe loading and dotted ``--set`` overrides.

A *stage* config (det/cls/rec) has the keys ``model``, ``weights``, ``preprocess``, ``postprocess``
(and optionally ``backend`` and ``train``). A *pipeline* config has ``det``, ``cls`` and ``rec`` (each a
stage config file name or an inline stage mapping) and an optional ``pipeline`` section. Resolving
and validating them is ``ocrlite.stages``' job.
"""

from __future__ import annotations

import copy
import difflib
import re
import typing
from pathlib import Path
from typing import Any, Callable, Collection, Iterable

import yaml

from ocrlite.errors import ConfigError

__all__ = ["load_yaml", "override_strings", "apply_overrides"]


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``1e-5`` and ``3E+2`` as floats (YAML 1.2; PyYAML's 1.1 rules
    need a dot, so ``lr: 1e-5`` would silently become a string), and refuses a key given twice in one
    mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *base`` merges may repeat keys on purpose
                continue
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(path: Path) -> dict[str, Any]:
    """Load a YAML mapping (safe loading); anything else is a ConfigError."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.MarkedYAMLError as exc:  # what is wrong and where, not PyYAML's "while scanning ..." context
        line = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark is not None else ""
        raise ConfigError(f"cannot read config {path}: {exc.problem or exc.context}{line}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot read config {path}: {first_line}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    return data


def _parse_value(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


# A stage's files, by key under the stage (with or without its det./cls./rec./page. prefix), and whether a bare name
# is a file name the stage looks up itself (shipped weights and charsets) rather than a path.
_FILE_KEYS = {"weights": True, "postprocess.charset": True, "onnx": False}


def _from_working_folder(dotted: str, value: Any) -> Any:
    """A stage's file path given in an override (``--set rec.onnx=./rec.onnx``) is a path from the working folder, as
    a path typed on a command line is, not from the folder of the config it overrides: made absolute. A bare name
    of shipped weights or a shipped charset stays a name."""
    first, _, rest = dotted.partition(".")
    key = rest if first in ("det", "cls", "rec", "page") else dotted
    if key not in _FILE_KEYS or not isinstance(value, str) or not value or Path(value).is_absolute():
        return value
    if _FILE_KEYS[key] and len(Path(value).parts) == 1 and not value.startswith("."):
        return value
    return str(Path(value).absolute())


def override_strings(overrides: Iterable[str]) -> list[str]:
    """``overrides`` as a list of strings: one string in place of the list, or an item that is not a string (a
    Python caller's slip), is a TypeError naming it."""
    wanted = "overrides must be a list of 'section.key=value' strings"
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, Iterable):
        raise TypeError(f"{wanted}, got {type(overrides).__name__}"
                        + ("; put a single one in a list" if isinstance(overrides, str) else ""))
    listed = list(overrides)
    for item in listed:
        if not isinstance(item, str):
            raise TypeError(f"{wanted}, got the item {item!r} ({type(item).__name__})")
    return listed


def apply_overrides(cfg: dict[str, Any], overrides: Iterable[str],
                    sections: Callable[[tuple[str, ...]], Collection[str]] | None = None) -> dict[str, Any]:
    """Return a copy of ``cfg`` with ``a.b.c=value`` overrides applied.

    Every section on the path must exist (a typo there is an error, with the closest name), except one that
    ``sections(path)`` names, the optional sections the schema knows under the section at ``path`` (e.g.
    ``("train",)``): it is made empty (``train.distill.teacher=X`` on a config without ``distill:``). The leaf
    may be new, because each section is validated against its schema when it is used. The value is
    parsed as YAML, so numbers, booleans and lists keep their types; a stage's file path is from the working
    folder (``_from_working_folder``). A mapping read from a file (``_file``) keeps the overrides applied to it
    in ``_overrides``, so that an error about a value says whether the file or an override gave it.
    """
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        dotted, sep, raw = item.partition("=")
        if not sep or "" in dotted.split("."):  # ``=1``, ``a..b=1``, ``a.b.=1``: a key with no name
            raise ConfigError(f"override {item!r} must look like section.key=value")
        *parents, leaf = dotted.split(".")
        node: dict[str, Any] = cfg
        for depth, key in enumerate(parents):
            child = node.get(key)
            if child is None and key in node:  # ``key:`` with no value: an empty section
                child = node[key] = {}
            known = sections(tuple(parents[:depth])) if sections is not None and child is None else ()
            if key in known:  # absent, and a section the schema knows: made
                child = node[key] = {}
            if not isinstance(child, dict):
                if key in node:
                    raise ConfigError(f"override {dotted}: {'.'.join(parents[:depth + 1])} is a value, not a section")
                names = list(dict.fromkeys([*(k for k in node if not k.startswith("_")), *known]))
                close = difflib.get_close_matches(key, names, n=1)
                hint = f" did you mean {'.'.join([*parents[:depth], close[0]])}?" if close else ""
                raise ConfigError(f"override {dotted}: {'.'.join(parents[:depth]) or 'config'} has no section "
                                  f"{key!r};{hint} allowed: {', '.join(names)}")
            node = child
        node[leaf] = _from_working_folder(dotted, _parse_value(raw))
        if "_file" in cfg:
            cfg["_overrides"] = [*cfg.get("_overrides", []), item]
    return cfg
