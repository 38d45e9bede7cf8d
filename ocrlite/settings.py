"""Typed, validated settings of each stage and of the pipeline, and the one rule that merges them.

A setting's value comes from, lowest to highest precedence: the dataclass default < the weights'
manifest < the YAML config < ``--set`` overrides (already applied to the YAML mapping). Every value
is checked when the settings are built: its type, its allowed choices and its range. A bad value is
a one-line ``ConfigError`` naming the key and what is allowed.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ocrlite.errors import ConfigError

__all__ = [
    "setting",
    "build_settings",
    "coerce",
    "describe",
    "check_keys",
    "range_error",
    "DetPreprocess",
    "LinePreprocess",
    "RecPreprocess",
    "ClsPostprocess",
    "RecPostprocess",
    "PipelineSettings",
]

S = TypeVar("S")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


def setting(
    default: Any,
    *,
    choices: tuple[Any, ...] | None = None,
    low: float | None = None,
    high: float | None = None,
    length: int | None = None,
    distinct: bool = False,
) -> Any:
    """A dataclass field with its validation rules (choices, inclusive range, sequence length, items all
    different)."""
    rules = {"choices": choices, "low": low, "high": high, "length": length, "distinct": distinct}
    return field(default=default, metadata=rules)


def check_keys(section: str, given: typing.Iterable[str], allowed: typing.Iterable[str],
               places: typing.Callable[[str], list[str]] | None = None) -> None:
    """Raise ConfigError naming the first unknown key and listing the allowed ones; ``places`` gives the full
    keys it may have been meant as (elsewhere in the config), asked as "did you mean"."""
    allowed = list(allowed)
    unknown = [k for k in given if k not in allowed]
    if unknown:
        meant = places(unknown[0]) if places is not None else []
        hint = f" did you mean {' or '.join(meant)}?" if meant else ""
        raise ConfigError(f"{section}: unknown key {unknown[0]!r};{hint} allowed: {', '.join(allowed)}")


def range_error(key: str, value: Any, allowed: str) -> ConfigError:
    """The one wording of a value outside its range: ``key: value is out of range; allowed: ...``."""
    return ConfigError(f"{key}: {value!r} is out of range; allowed: {allowed}")


def describe(kind: Any) -> str:
    """How an error names the annotated type ``kind``, in config words: "true or false", "an integer", "null"..."""
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null",
             dict: "a mapping"}
    origin = typing.get_origin(kind)
    if kind in names or origin in names:
        return names[kind if kind in names else origin]
    if origin in (list, tuple, collections.abc.Sequence):
        return "a list"
    return getattr(kind, "__name__", str(kind))


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", str(kind))


def coerce(key: str, value: Any, kind: Any) -> Any:
    """``value`` as an instance of the annotated type ``kind``, or a ConfigError."""
    origin = typing.get_origin(kind)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(key, value, option)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {' or '.join(describe(o) for o in options)}, got {value!r}")
    if origin in (tuple, list):
        item = typing.get_args(kind)[0]
        if item is str and isinstance(value, str):
            return origin([value])  # a lone string is a one-item list of strings
        wrong = ConfigError(f"{key}: expected a list of {_type_name(item)}, got {value!r}")
        if not isinstance(value, (list, tuple)):
            raise wrong
        try:
            return origin(coerce(key, v, item) for v in value)
        except ConfigError:
            raise wrong from None
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"settings field {key} has an unsupported type {kind!r}")


def _check_rules(key: str, value: Any, rules: typing.Mapping[str, Any]) -> None:
    choices, low, high, length = rules.get("choices"), rules.get("low"), rules.get("high"), rules.get("length")
    items = value if isinstance(value, (tuple, list)) else (value,)  # a list's rules hold for each of its items
    if choices is not None and any(item not in choices for item in items):
        names = ", ".join("''" if choice == "" else str(choice) for choice in choices)
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of: {names}")
    if length is not None and len(value) != length:
        raise ConfigError(f"{key}: expected {length} values, got {len(value)}")
    if rules.get("distinct") and len(set(items)) != len(items):
        raise ConfigError(f"{key}: {value!r} names a value twice; each must be different")
    for number in items:
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            if (low is not None and number < low) or (high is not None and number > high):
                raise range_error(key, value, f"{'' if low is None else low}..{'' if high is None else high}")


def build_settings(cls: type[S], section: str, *sources: typing.Mapping[str, Any] | None,
                   places: typing.Callable[[str], list[str]] | None = None) -> S:
    """Merge ``sources`` (later wins; None is empty) into dataclass ``cls`` and validate every value.

    A source that is not a mapping, unknown keys (``places``: where else such a key is, as ``check_keys`` takes
    it), wrong types, values outside ``choices`` or the range are ConfigErrors that name ``section`` or
    ``section.key``; the dataclass's ``__post_init__`` then checks what involves more than one field.
    """
    merged: dict[str, Any] = {}
    for source in sources:
        if source is None:
            continue
        if not isinstance(source, typing.Mapping):
            raise ConfigError(f"{section} must be a mapping, got {source!r}")
        merged.update(source)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    check_keys(section, merged, fields, places)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in merged.items():
        key = f"{section}.{name}"
        coerced = coerce(key, value, hints[name])
        _check_rules(key, coerced, fields[name].metadata)
        values[name] = coerced
    return cls(**values)


@dataclass(frozen=True)
class DetPreprocess:
    """Detector input: resize under a side limit to multiples of 32, then normalise."""

    limit_side_len: int = setting(960, low=32, high=8192)
    limit_type: str = setting("max", choices=("max", "min"))
    mean: tuple[float, ...] = setting(IMAGENET_MEAN, length=3)
    std: tuple[float, ...] = setting(IMAGENET_STD, length=3, low=1e-6)


@dataclass(frozen=True)
class LinePreprocess:
    """Text-line input (classifier and recognizer): fixed height, keep ratio, right-pad."""

    height: int = setting(48, low=8, high=512)
    width: int = setting(192, low=8, high=8192)
    mean: tuple[float, ...] = setting(HALF, length=3)
    std: tuple[float, ...] = setting(HALF, length=3, low=1e-6)


@dataclass(frozen=True)
class RecPreprocess(LinePreprocess):
    """Recognizer input: text lines, read ``batch_size`` at a time (the classifier's batches cannot change its
    results, so it has no such setting)."""

    batch_size: int = setting(6, low=1, high=4096)


@dataclass(frozen=True)
class ClsPostprocess:
    """Classifier decision: labels of the two outputs and the flip threshold."""

    labels: tuple[int, ...] = setting((0, 180), length=2, choices=(0, 180), distinct=True)
    thresh: float = setting(0.9, low=0.0, high=1.0)


@dataclass(frozen=True)
class RecPostprocess:
    """Recognizer decoding: the charset file (beside the weights or config) and the space switch."""

    charset: str = setting("ppocr_keys_v1.txt")
    use_space_char: bool = setting(True)


@dataclass(frozen=True)
class PagePreprocess:
    """Page orientation classifier inputs, ``crop`` x ``crop`` squares of the page, one or more ``views``:
    ``centre`` (short side resized to ``resize_short``, centre cut: how the model was trained), ``padded``
    (the whole page padded white to a square) and ``tiles`` (three squares along the long side: start,
    middle, end)."""

    views: tuple[str, ...] = setting(("padded", "tiles"), choices=("centre", "padded", "tiles"))
    resize_short: int = setting(256, low=8, high=8192)
    crop: int = setting(224, low=8, high=8192)
    mean: tuple[float, ...] = setting(IMAGENET_MEAN, length=3)
    std: tuple[float, ...] = setting(IMAGENET_STD, length=3, low=1e-6)


@dataclass(frozen=True)
class PagePostprocess:
    """Page orientation decision: the clockwise angle of each output and the fused probability (classifier and
    text lines, ``ocrlite.page``) needed to turn a page; below ``recheck`` the recognizer reads the
    ``read_lines`` longest lines as given and turned 180 degrees (votes weighted by ``read_weight``), and if
    the page is still in doubt, the page turned a quarter is detected and read too (``recheck: 0``: never)."""

    labels: tuple[int, ...] = setting((0, 90, 180, 270), length=4, choices=(0, 90, 180, 270), distinct=True)
    thresh: float = setting(0.3, low=0.0, high=1.0)
    recheck: float = setting(0.9, low=0.0, high=1.0)
    read_lines: int = setting(4, low=1, high=100)
    read_weight: float = setting(1.0, low=0.0, high=100.0)


@dataclass(frozen=True)
class PipelineSettings:
    """Pipeline switches: use the direction classifier (unset: when the pipeline has a cls stage) and check each
    line it turns by reading it both ways (``verify_flips``: the more confident reading is kept), drop
    low-scoring lines, turn pages upright (0/90/180/270) and level small tilts first (``ocrlite.page``)."""

    use_cls: bool | None = setting(None)
    verify_flips: bool = setting(True)
    drop_score: float = setting(0.5, low=0.0, high=1.0)
    page_orientation: bool = setting(False)
    deskew: bool = setting(False)
