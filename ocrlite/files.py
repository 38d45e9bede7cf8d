"""The one place ocrlite looks files up: configs, weights (+ manifests) and charsets.

Search order for a name that is not an absolute path: the folder of the config that names it,
then the shipped package data (``ocrlite/configs``, ``ocrlite/weights``), then the optional
``ocrlite-models`` weights package. A weights name that starts with ``./`` or ``../`` is a path from the
config's folder and is looked up there only (an exported model names its own file so, never a shipped one).
Nothing is ever downloaded.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ocrlite.errors import ConfigError, WeightsError
from ocrlite.extras import missing

__all__ = [
    "MODELS_HINT", "find_config", "shipped_config", "find_weights", "find_charset", "extra_installed", "weights_roots",
]

# Where the later presets' weights are: every message that says they are missing ends with this.
MODELS_HINT = ("the optional ocrlite-models package, shipped in the ocrlite source tree "
               "(from the clone's root: pip install ./ocrlite-models)")


def extra_installed() -> bool:
    """Whether the optional ``ocrlite-models`` weights package is installed."""
    return not missing(("ocrlite_models",))


def _package_dir(package: str) -> Path:
    return Path(str(resources.files(package)))


def weights_roots(config_dir: Path | None = None) -> list[Path]:
    """Folders searched for weights and charsets, in order."""
    roots = [config_dir] if config_dir is not None else []
    roots.append(_package_dir("ocrlite.weights"))
    if extra_installed():
        roots.append(_package_dir("ocrlite_models"))
    return roots


def _first_file(name: str | Path, roots: list[Path]) -> tuple[Path | None, list[Path]]:
    path = Path(name)
    candidates = [path] if path.is_absolute() else [root / path for root in roots]
    return next((c for c in candidates if c.is_file()), None), candidates


def shipped_config(name: str) -> Path:
    """The shipped config ``name`` (a default or a preset's), never a file of that name in the working folder."""
    return _package_dir("ocrlite.configs").joinpath(*Path(name).parts)


def find_config(name: str | Path, relative_to: Path | None = None) -> Path:
    """A config file: next to ``relative_to`` (the config that names it), as given, or among the shipped configs
    (``zoo/x.yaml`` too: the path under the shipped folder, never another file of the same name)."""
    path = Path(name)
    candidates = [path]
    if not path.is_absolute():
        if relative_to is not None:
            candidates.insert(0, relative_to / path)
        candidates.append(shipped_config(str(path)))
    found = next((c for c in candidates if c.is_file()), None)
    folder = next((c for c in candidates if c.is_dir()), None) if found is None and str(name) else None
    if folder is not None:  # a folder (not "": no name at all)
        where = "" if folder == path else f" ({folder})"
        raise ConfigError(f"config {name} is a directory{where}, not a config file; give the path of a .yaml file")
    if found is None:
        from ocrlite.presets import PRESETS

        hint = "; that is a preset's name: give it as the model (OCR(model=...), --model)"
        hint = hint if str(name) in PRESETS else ""
        raise ConfigError(f"config file not found: {name}{hint}")
    return found


def find_weights(name: str, config_dir: Path | None = None) -> tuple[Path, Path]:
    """``<name>.safetensors`` and its JSON manifest path (the manifest may be absent). A ``./`` or ``../`` name
    is found from ``config_dir`` (the working folder without one) only."""
    stem = Path(name).name.removesuffix(".safetensors")
    parent = Path(name).parent
    own = name.startswith(("./", "../"))  # the config's own file
    if parent.is_absolute() or own:
        roots = [(config_dir or Path()) / parent]
    else:
        roots = [r / parent for r in weights_roots(config_dir)]
    for root in roots:
        tensors = root / f"{stem}.safetensors"
        if tensors.is_file():
            return tensors, root / f"{stem}.json"
    hint = f" (the optional presets' weights are in {MODELS_HINT})" if not (own or extra_installed()) else ""
    raise WeightsError(f"weights {name!r} not found in {', '.join(map(str, roots))}{hint}")


def find_charset(name: str, weights_dir: Path | None, config_dir: Path | None) -> Path:
    """A charset file: absolute, beside the weights, beside the config, or in the weights packages."""
    roots = [d for d in (weights_dir, config_dir) if d is not None] + weights_roots()
    found, candidates = _first_file(name, list(dict.fromkeys(roots)))
    if found is None:
        raise ConfigError(f"charset {name!r} not found in {', '.join(str(c.parent) for c in candidates)}")
    return found
