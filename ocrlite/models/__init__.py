"""Networks: backbones, necks and heads by registered name, assembled by ``OCRModel``.

Importing this package registers every building block: ``backbones/`` (the shipped models'
feature extractors), ``necks/`` (DB pyramids, sequence encoders), ``heads/`` (DB, direction, CTC)
and ``zoo/`` (the lightweight-backbone reference builds of the source articles).
"""

from ocrlite.models import backbones, heads, necks, zoo  # noqa: F401  (registration side effects)
from ocrlite.models.model import OCRModel, build_model

__all__ = ["OCRModel", "build_model"]
