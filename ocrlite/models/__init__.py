"""Network definitions; importing this package registers every backbone, neck and head."""

from . import heads, mobilenet_v3, necks, pp_lcnet  # noqa: F401  (registration side effects)
from .model import OCRModel, build_model

__all__ = ["OCRModel", "build_model"]
