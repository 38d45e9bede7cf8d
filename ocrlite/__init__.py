"""ocrlite: fast, lightweight end-to-end OCR (DBNet + direction classifier + CRNN/CTC).

The public names are imported on first use, so ``import ocrlite`` (and ``ocrlite --help``)
does not pay for importing torch. Importing it bounds torch's oneDNN kernel cache
(``ocrlite.backends.kernel_cache``) before any inference.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ocrlite.backends.kernel_cache import bound_kernel_cache

if TYPE_CHECKING:  # type checkers see the real names (``X as X``: re-exported); at run time ``__getattr__`` imports
    from ocrlite.api import OCR as OCR
    from ocrlite.errors import BackendError as BackendError
    from ocrlite.errors import ConfigError as ConfigError
    from ocrlite.errors import ImageReadError as ImageReadError
    from ocrlite.errors import OcrliteError as OcrliteError
    from ocrlite.errors import WeightsError as WeightsError
    from ocrlite.io.images import read_image as read_image
    from ocrlite.predictors import TextClassifier as TextClassifier
    from ocrlite.predictors import TextDetector as TextDetector
    from ocrlite.predictors import TextRecognizer as TextRecognizer
    from ocrlite.results import DocumentPage as DocumentPage
    from ocrlite.results import PageResult as PageResult
    from ocrlite.results import TextBox as TextBox
    from ocrlite.results import TextLine as TextLine
    from ocrlite.results import TextWord as TextWord
    from ocrlite.stages import StageSpec as StageSpec

bound_kernel_cache()

__version__ = "0.1.0"

_EXPORTS = {
    "OCR": "api",
    "TextDetector": "predictors",
    "TextClassifier": "predictors",
    "TextRecognizer": "predictors",
    "PageResult": "results",
    "DocumentPage": "results",
    "TextBox": "results",
    "TextLine": "results",
    "read_image": "io.images",
    "TextWord": "results",
    "StageSpec": "stages",
    "OcrliteError": "errors",
    "ImageReadError": "errors",
    "ConfigError": "errors",
    "WeightsError": "errors",
    "BackendError": "errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ocrlite' has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names and the public ones imported on first use, which ``dir()`` and an editor's completion
    would otherwise not show (PEP 562)."""
    return sorted({*globals(), *_EXPORTS})
