"""ocrlite: fast, lightweight end-to-end OCR (DBNet + direction classifier + CRNN/CTC)."""

from .api import OCR
from .errors import ConfigError, ImageReadError, OcrliteError, WeightsError
from .imageio import read_image
from .predictors import TextClassifier, TextDetector, TextRecognizer
from .results import PageResult, TextBox, TextLine

__version__ = "0.1.0"

__all__ = [
    "OCR",
    "TextDetector",
    "TextClassifier",
    "TextRecognizer",
    "PageResult",
    "TextBox",
    "TextLine",
    "read_image",
    "OcrliteError",
    "ImageReadError",
    "ConfigError",
    "WeightsError",
    "__version__",
]
