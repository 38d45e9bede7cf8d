"""OCRModel: backbone -> optional neck -> head, assembled from a config dict with channels threaded through."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.registry import build

__all__ = ["OCRModel", "build_model"]


class OCRModel(nn.Module):
    """A registered backbone, neck (or none) and head; ``forward`` returns the head's tensor."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        unknown = sorted(set(cfg) - {"backbone", "neck", "head"})
        if unknown or "backbone" not in cfg or "head" not in cfg:
            raise ConfigError(f"model needs keys backbone, head and optional neck; got {sorted(cfg)}")
        self.backbone = build("backbone", cfg["backbone"])
        channels = self.backbone.out_channels
        self.neck = build("neck", cfg["neck"], in_channels=channels) if cfg.get("neck") else nn.Identity()
        channels = getattr(self.neck, "out_channels", channels)
        self.head = build("head", cfg["head"], in_channels=channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.neck(self.backbone(x)))

    def forward_train(self, x: Tensor) -> Tensor:
        """Training outputs: the head's ``forward_train`` when it has one (DB threshold maps), else ``forward``."""
        features = self.neck(self.backbone(x))
        return getattr(self.head, "forward_train", self.head)(features)


def build_model(cfg: dict[str, Any]) -> OCRModel:
    """Build an OCRModel from ``{"backbone": {...}, "neck": {...} | None, "head": {...}}``."""
    return OCRModel(cfg)
