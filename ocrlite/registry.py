"""Name -> class registries for backbones, necks and heads, filled by a decorator."""

from __future__ import annotations

import inspect
from typing import Any, Callable, TypeVar

from torch import nn

from ocrlite.errors import ConfigError

__all__ = ["BACKBONES", "NECKS", "HEADS", "register", "build"]

T = TypeVar("T", bound=type[nn.Module])

BACKBONES: dict[str, type[nn.Module]] = {}
NECKS: dict[str, type[nn.Module]] = {}
HEADS: dict[str, type[nn.Module]] = {}

_KINDS = {"backbone": BACKBONES, "neck": NECKS, "head": HEADS}


def register(kind: str) -> Callable[[T], T]:
    """Class decorator adding a module to the registry of ``kind`` under its class name."""
    table = _KINDS[kind]

    def add(cls: T) -> T:
        if cls.__name__ in table:
            raise ValueError(f"duplicate {kind} name {cls.__name__!r}")
        table[cls.__name__] = cls
        return cls

    return add


def build(kind: str, cfg: dict[str, Any], **wired: Any) -> nn.Module:
    """Build a registered module from ``{"name": ..., **kwargs}`` plus wired-in arguments.

    Unknown names and unknown keyword arguments raise ConfigError listing what is allowed; so do values the
    module rejects (TypeError, ValueError), with the module's own message.
    """
    table = _KINDS[kind]
    if not isinstance(cfg, dict):
        raise ConfigError(f"{kind}: expected a mapping with a name, got {cfg!r}")
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if name not in table:
        raise ConfigError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(table))}")
    cls = table[name]
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(cfg) - set(allowed) - set(wired))
    if unknown:
        choices = ", ".join(p for p in allowed if p not in wired)
        raise ConfigError(f"{kind} {name}: unknown key(s) {', '.join(unknown)}; allowed: {choices}")
    try:
        return cls(**wired, **cfg)
    except (TypeError, ValueError) as exc:  # a value of the wrong type or range for this module
        raise ConfigError(f"{kind} {name}: cannot build with {cfg}: {exc}") from None
