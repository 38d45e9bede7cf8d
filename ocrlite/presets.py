"""Named model presets (``--model NAME``): each is a pipeline config plus a description."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ocrlite.errors import ConfigError

__all__ = ["Preset", "PRESETS", "DEFAULT_PRESET", "get_preset", "PresetStatus", "preset_status", "check_installed"]


@dataclass(frozen=True)
class Preset:
    """A pipeline config under a short name, with what a user needs to choose it."""

    name: str
    config: str
    languages: str
    good_for: str

    @property
    def path(self) -> Path:
        """The shipped pipeline config (never a file of that name in the working folder)."""
        from ocrlite.files import shipped_config

        return shipped_config(self.config)


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "ppocr-v2", "ocr_ppocr_v2.yaml", "Chinese, English",
            "the reference design: PP-OCRv3 det + v2.0 direction cls + PP-OCRv2 CRNN rec; "
            "drops some spaces between English words",
        ),
        Preset(
            "ppocr-v2-en", "ocr_ppocr_v2_en.yaml", "English, Chinese",
            "the reference design with its PP-OCRv2 CRNN fine-tuned by ocrlite on synthetic English and Chinese "
            "lines (spaces, letter case); documents",
        ),
        Preset(
            "ppocr-v3", "ocr_ppocr_v3.yaml", "Chinese, English",
            "PP-OCRv3 det + v2.0 cls + PP-OCRv3 SVTR-LCNet rec (48 px lines); keeps spaces between words",
        ),
        Preset(
            "ppocr-v4", "ocr_ppocr_v4.yaml", "Chinese, English",
            "PP-OCRv4 det + v2.0 cls + PP-OCRv4 rec; mixed Chinese/English, scene text",
        ),
        Preset(
            "en-ppocr-v4", "ocr_en_ppocr_v4.yaml", "English",
            "English PP-OCRv3 det + v2.0 cls + English PP-OCRv4 rec; English documents and words",
        ),
        Preset(
            "ppocr-v5", "ocr_ppocr_v5.yaml", "Chinese, English, Japanese kana",
            "PP-OCRv5 mobile det + rec (18383 characters); mixed Chinese/English/Japanese documents and photos",
        ),
        Preset(
            "ppocr-v6-small", "ocr_ppocr_v6_small.yaml", "Chinese, English, Japanese kana, accented Latin",
            "PP-OCRv6 small det + rec (18708 characters); documents, scans and forms",
        ),
        Preset(
            "ppocr-v6-tiny", "ocr_ppocr_v6_tiny.yaml", "Chinese (6174 common), English, accented Latin",
            "PP-OCRv6 tiny det + rec (6904 characters); the smallest preset, for small devices",
        ),
    )
}
DEFAULT_PRESET = "ppocr-v2"


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is a ConfigError listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        config = str(name).lower().endswith((".yaml", ".yml"))  # the converse of files.find_config's hint
        hint = ("that is a config file: give it as the config (config=..., --config); the models" if config
                else "choose one of")
        raise ConfigError(f"unknown model {name!r}; {hint}: {', '.join(PRESETS)}") from None


@dataclass(frozen=True)
class PresetStatus:
    """Whether a preset's weights are all installed, and their total size in MB (of those found)."""

    installed: bool
    size_mb: float


def preset_status(preset: Preset) -> PresetStatus:
    """Look up the weights of every stage of ``preset`` (nothing is loaded)."""
    from ocrlite.errors import WeightsError
    from ocrlite.files import find_weights
    from ocrlite.stages import STAGE_KINDS, load_pipeline_config

    cfg = load_pipeline_config(preset.path)
    size, missing = 0, []
    for kind in STAGE_KINDS:
        if kind in cfg and cfg[kind].get("weights"):
            config_dir = Path(cfg[kind]["_dir"]) if cfg[kind].get("_dir") else None
            try:
                tensors, _ = find_weights(cfg[kind]["weights"], config_dir)
            except WeightsError:
                missing.append(cfg[kind]["weights"])
                continue
            size += tensors.stat().st_size
    return PresetStatus(not missing, round(size / 1e6, 1))


def check_installed(name: str) -> None:
    """A WeightsError naming the preset and where its weights are when they are missing because the optional
    ``ocrlite-models`` package is not installed (else nothing: a missing file says so itself)."""
    from ocrlite.errors import WeightsError
    from ocrlite.files import MODELS_HINT, extra_installed

    if not extra_installed() and not preset_status(get_preset(name)).installed:
        raise WeightsError(f"preset {name!r}: its weights are not installed; they are in {MODELS_HINT}")
