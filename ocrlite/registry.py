"""Name -> class registries for backbones, necks and heads, filled by a decorator, and the one checked builder."""

from __future__ import annotations

import collections.abc
import inspect
import math
import re
import types
import typing
import warnings
from typing import Any, Callable, TypeVar

from torch import nn

from ocrlite.errors import ConfigError
from ocrlite.settings import coerce, describe

__all__ = ["BACKBONES", "NECKS", "HEADS", "register", "block_class", "block_arguments", "build"]

T = TypeVar("T", bound=type[nn.Module])

BACKBONES: dict[str, type[nn.Module]] = {}
NECKS: dict[str, type[nn.Module]] = {}
HEADS: dict[str, type[nn.Module]] = {}

_KINDS = {"backbone": BACKBONES, "neck": NECKS, "head": HEADS}

# Range rules by argument name, the same for every block: sizes (channels, dims, kernel sizes, heads, widths,
# scales, ratios, strides, class counts) are positive, kernel sizes odd (every block pads them "same"),
# a depth is a count, a dropout a probability below 1. An item of a list follows its list's rule.
_POSITIVE = re.compile(r"(.+_)?(channels|dims|size|heads|scale|ratio|stride|classes|num)")
_RULES: list[tuple[Callable[[str], bool], Callable[[float], bool], str]] = [
    (lambda key: _POSITIVE.fullmatch(key) is not None, lambda x: x > 0, "must be positive"),
    (lambda key: key.endswith("kernel_size"), lambda x: x % 2 == 1, "must be odd"),
    (lambda key: key == "depth", lambda x: x >= 0, "must be 0 or more"),
    (lambda key: key == "dropout", lambda x: 0 <= x < 1, "must be in [0, 1)"),
]


def register(kind: str) -> Callable[[T], T]:
    """Class decorator adding a module to the registry of ``kind`` under its class name."""
    table = _KINDS[kind]

    def add(cls: T) -> T:
        if cls.__name__ in table:
            raise ValueError(f"duplicate {kind} name {cls.__name__!r}")
        table[cls.__name__] = cls
        return cls

    return add


def block_class(kind: str, cfg: Any, section: str | None = None) -> tuple[str, type[nn.Module]]:
    """The registered name and class ``cfg`` (``{"name": ..., **kwargs}``) asks for, else a ConfigError that
    names ``section`` (default: ``kind``) and lists the registered names."""
    section = section or kind
    table = _KINDS[kind]
    if not isinstance(cfg, dict):
        raise ConfigError(f"{section}: expected a mapping with a name, got {cfg!r}")
    name = cfg.get("name")
    if "name" not in cfg:  # e.g. misspelt: ``{nme: RSEFPN}`` was "unknown neck None"
        raise ConfigError(f"{section}: no name given (keys: {', '.join(map(str, cfg)) or 'none'}); add name: one of "
                          f"{', '.join(sorted(table))}")
    if not isinstance(name, str) or name not in table:
        where = "" if section == kind else f"{section}: "
        raise ConfigError(f"{where}unknown {kind} {name!r}; choose one of: {', '.join(sorted(table))}")
    return name, table[name]


def block_arguments(kind: str, cfg: Any, section: str | None = None) -> dict[str, Any]:
    """``cfg`` (``{"name": ..., **kwargs}``) with the constructor's default of every argument it leaves out: the
    block as ``build`` makes it (wired-in arguments aside). An unknown name is ``block_class``'s ConfigError."""
    _, cls = block_class(kind, cfg, section)
    parameters = inspect.signature(cls.__init__).parameters.values()
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    return {**defaults, **cfg}


def build(kind: str, cfg: dict[str, Any], *, section: str | None = None, **wired: Any) -> nn.Module:
    """Build a registered module from ``{"name": ..., **kwargs}`` plus wired-in arguments (``in_channels``).

    Every error is a one-line ConfigError starting with ``section`` (e.g. ``det.model.neck``; default: ``kind``)
    and the block's name: an unknown name or key; a value that does not fit the constructor's annotation
    (bool, int, float, str, lists of them, optional), is not finite, or breaks the range rule of its name
    (sizes positive, kernel sizes odd, ...); and whatever the constructor raises, including a layer left
    with no channels (named, instead of torch's zero-size warning).
    """
    name, cls = block_class(kind, cfg, section)
    prefix = f"{section or kind} {name}"
    args = {key: value for key, value in cfg.items() if key != "name"}
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    clash = sorted(set(args) & set(wired))
    if clash:
        raise ConfigError(f"{prefix}: {clash[0]} is set by the block before this one; remove it")
    unknown = sorted(str(key) for key in set(args) - set(allowed))
    if unknown:
        choices = ", ".join(p for p in allowed if p not in wired) or "none (it takes no arguments)"
        raise ConfigError(f"{prefix}: unknown key(s) {', '.join(unknown)}; allowed: {choices}")
    hints = _hints(cls)
    for key, value in args.items():
        try:
            _check_type(key, value, hints.get(key, Any))
            _check_numbers(key, value)
        except ConfigError as exc:
            raise ConfigError(f"{prefix}: cannot build with {exc}") from None
    return _construct(cls, prefix, args, wired)


def _construct(cls: type[nn.Module], prefix: str, args: dict[str, Any], wired: dict[str, Any]) -> nn.Module:
    """``cls(**wired, **args)`` with any failure as a one-line ConfigError; a layer left with no channels too."""
    try:
        with warnings.catch_warnings():  # a zero size: found below, with the layer's name, instead of a warning
            warnings.filterwarnings("ignore", "Initializing zero-element tensors", UserWarning)
            module = cls(**wired, **args)
    except ConfigError as exc:  # the module's own check: says what is wrong, not where
        raise ConfigError(f"{prefix}: {exc}") from None
    except Exception as exc:  # TypeError, ValueError, RuntimeError, IndexError, ...: a value torch cannot build
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{prefix}: cannot build with {args}: {reason}") from None
    for where, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.numel() == 0 and tensor.dim() > 0:
            raise ConfigError(f"{prefix}: cannot build with {args}: layer {where} would have no channels "
                              f"(shape {tuple(tensor.shape)}); a size or scale is too small")
    return module


def _hints(cls: type) -> dict[str, Any]:
    """The constructor's evaluated annotations; none when they cannot be evaluated (nothing is then checked)."""
    try:
        return typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:
        return {}


def _check_type(key: str, value: Any, kind: Any) -> None:
    """ConfigError ``key: ...`` unless ``value`` fits annotation ``kind`` (one it can check; else anything goes)."""
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return
        errors = []
        for option in options:
            try:
                return _check_type(key, value, option)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"{key}: expected {' or '.join(describe(o) for o in options)}, got {value!r}")
    if kind is dict or origin in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return
    if kind is type(None) and value is not None:
        raise ConfigError(f"{key}: expected nothing (null), got {value!r}")
    plain = _plain(kind)
    if plain is not None:
        coerce(key, value, plain)


def _plain(kind: Any) -> Any:
    """``kind`` as an annotation ``settings.coerce`` checks (scalars, lists and tuples of them; a Sequence is
    a list), or None when it is something else (Any, a mapping, a list of lists): left to the module."""
    if kind in (bool, int, float, str):
        return kind
    origin = typing.get_origin(kind)
    if origin in (list, tuple, collections.abc.Sequence):
        items = typing.get_args(kind)
        if not items or (len(items) > 1 and items[1] is not Ellipsis and len(set(items)) > 1):
            return None
        item = _plain(items[0])
        if item is None:
            return None
        return tuple[item, ...] if origin is tuple else list[item]  # type: ignore[valid-type]
    return None


def _check_numbers(key: str, value: Any) -> None:
    """Every number in ``value`` (nested lists too) finite; ``key``'s range rule on ``value`` or its items."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if isinstance(item, (list, tuple)):
            _check_numbers(key, item)
            continue
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            continue
        if not math.isfinite(item):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        for applies, holds, rule in _RULES:
            if applies(key) and not holds(item):
                raise ConfigError(f"{key}: {value!r} {rule}" if item is value else f"{key}: {value!r}: {item!r} {rule}")
