"""Typed config sections: a mapping checked against a dataclass (unknown keys, wrong types)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from ..errors import ConfigError
from ..settings import check_keys

__all__ = ["from_mapping"]

T = TypeVar("T")


def _coerce(section: str, name: str, kind: Any, value: Any) -> Any:
    """``value`` as ``kind`` (bool, int, float, str or list[str]); anything else is a ConfigError."""
    where = f"{section}.{name}"
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where} must be a string, got {value!r}")
    if typing.get_origin(kind) is list:
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list) and all(isinstance(v, str) for v in items):
            return list(items)
        raise ConfigError(f"{where} must be a list of strings, got {value!r}")
    raise TypeError(f"unsupported setting type {kind!r}")  # pragma: no cover - a programming error


def from_mapping(cls: type[T], section: str, mapping: dict[str, Any] | None) -> T:
    """Build dataclass ``cls`` from ``mapping``: unknown keys and wrongly typed values are ConfigErrors."""
    mapping = mapping or {}
    if not isinstance(mapping, dict):
        raise ConfigError(f"{section} must be a mapping, got {mapping!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    check_keys(section, mapping, fields)
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(section, k, hints[k], v) for k, v in mapping.items()})
