"""Named model presets (``--model NAME``): each is a pipeline config plus a description."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

__all__ = ["Preset", "PRESETS", "DEFAULT_PRESET", "get_preset"]


@dataclass(frozen=True)
class Preset:
    """A pipeline config under a short name, with what a user needs to choose it."""

    name: str
    config: str
    languages: str
    good_for: str


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "ppocr-v2", "ocr_ppocr_v2.yaml", "Chinese, English",
            "the reference design: PP-OCRv3 det + v2.0 direction cls + PP-OCRv2 CRNN rec; "
            "drops some spaces between English words",
        ),
    )
}
DEFAULT_PRESET = "ppocr-v2"


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is a ConfigError listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(PRESETS)}") from None
