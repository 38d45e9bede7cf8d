"""OCRModel: backbone -> optional neck -> head, assembled from a config dict with channels threaded through."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from ocrlite.backends.threads import torch_threads
from ocrlite.errors import ConfigError
from ocrlite.registry import block_class, build

__all__ = ["OCRModel", "build_model"]

# What flows between blocks. A block takes what its ``in_channels`` annotation says (a list of ints: "maps";
# an int: "map") unless it sets ``input_layouts``; it gives "maps" when its ``out_channels`` is a list,
# else "map", unless it sets ``output_layout`` (the sequence necks: "sequence").
_LAYOUTS = {
    "maps": "a list of feature maps (a backbone in det mode)",
    "map": "one feature map [N, C, H, W]",
    "sequence": "a sequence [N, T, C]",
}
_HINTS = {  # what to change, by (layout given, layout needed)
    ("map", "maps"): "; is the backbone in det mode?",
    ("maps", "map"): "; a det backbone's maps need a neck to merge them (e.g. DBFPN)",
    ("map", "sequence"): "; a neck (e.g. SequenceEncoder) turns the map into a sequence",
}


class OCRModel(nn.Module):
    """A registered backbone, neck (or none) and head; ``forward`` returns the head's tensor.

    Blocks that cannot connect (a det neck after a rec-mode backbone, a head that needs one map after a
    det backbone without a neck, a CTC head without a sequence neck) are one-line ConfigErrors at build time
    naming ``section`` (e.g. ``det.model``; a stage passes its own), as are bad arguments of each block.
    """

    def __init__(self, cfg: dict[str, Any], section: str = "model") -> None:
        super().__init__()
        if not isinstance(cfg, dict):
            raise ConfigError(f"{section}: expected a mapping with backbone, head and optional neck, got {cfg!r}")
        unknown = sorted(set(cfg) - {"backbone", "neck", "head"})
        if unknown or "backbone" not in cfg or "head" not in cfg:
            raise ConfigError(f"{section} needs keys backbone, head and optional neck; got {sorted(cfg)}")
        self.backbone = build("backbone", cfg["backbone"], section=f"{section}.backbone")
        before = f"{section}.backbone {cfg['backbone']['name']}"
        channels = self.backbone.out_channels
        if cfg.get("neck"):
            _check_connects("neck", cfg["neck"], f"{section}.neck", before, self.backbone)
            self.neck: nn.Module = build("neck", cfg["neck"], section=f"{section}.neck", in_channels=channels)
            before = f"{section}.neck {cfg['neck']['name']}"
            channels = self.neck.out_channels
            source = self.neck
        else:
            self.neck = nn.Identity()
            source = self.backbone
        _check_connects("head", cfg["head"], f"{section}.head", before, source)
        self.head = build("head", cfg["head"], section=f"{section}.head", in_channels=channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.neck(self.backbone(x)))

    def forward_train(self, x: Tensor) -> Tensor:
        """Training outputs: the head's ``forward_train`` when it has one (DB threshold maps), else ``forward``."""
        features = self.neck(self.backbone(x))
        return getattr(self.head, "forward_train", self.head)(features)


def build_model(cfg: dict[str, Any], section: str = "model") -> OCRModel:
    """Build an OCRModel from ``{"backbone": {...}, "neck": {...} | None, "head": {...}}``; errors name
    ``section`` (e.g. ``rec.model``). The net runs on the thread count set with ``ocrlite.backends.threads``."""
    torch_threads()
    return OCRModel(cfg, section)


def _check_connects(kind: str, cfg: Any, section: str, before: str, source: nn.Module) -> None:
    """ConfigError unless the ``kind`` block ``cfg`` asks for takes what ``source`` (called ``before``) gives."""
    name, cls = block_class(kind, cfg, section)
    takes = _input_layouts(cls)
    gives = _output_layout(source)
    if gives in takes:
        return
    channels: Any = source.out_channels
    given = _LAYOUTS[gives] if gives != "maps" else f"{len(channels)} feature maps"
    wanted = " or ".join(_LAYOUTS[layout] for layout in takes)
    raise ConfigError(f"{section} {name}: takes {wanted}, but {before} gives {given} ({channels} channels)"
                      f"{_HINTS.get((gives, takes[0]), '')}")


def _input_layouts(cls: type) -> tuple[str, ...]:
    declared = getattr(cls, "input_layouts", None)
    if declared is not None:
        return tuple(declared)
    try:
        kind = typing.get_type_hints(cls.__init__).get("in_channels", int)  # type: ignore[misc]
    except Exception:  # annotations that cannot be evaluated: assume anything connects
        return tuple(_LAYOUTS)
    options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else (kind,)
    layouts = ["maps" if typing.get_origin(option) in (list, tuple, Sequence) else "map" for option in options]
    return tuple(dict.fromkeys(layouts))


def _output_layout(module: nn.Module) -> str:
    declared = getattr(module, "output_layout", None)
    if declared is not None:
        return str(declared)
    return "maps" if isinstance(getattr(module, "out_channels", None), (list, tuple)) else "map"

