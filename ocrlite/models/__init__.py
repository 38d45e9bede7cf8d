"""Network definitions; importing this package registers every backbone, neck and head."""

from . import heads, mobilenet_v3, necks, pp_lcnet, pp_lcnet_v3, rep_mixer, svtr  # noqa: F401  (registration side effects)
from . import (  # noqa: F401  (the backbone zoo and its ImageNet head)
    classifier,
    crnn_vgg,
    mobilenet_v1,
    mobilenet_v2,
    pp_lcnet_imagenet,
    shufflenet_v2,
    squeezenet,
)
from .model import OCRModel, build_model

__all__ = ["OCRModel", "build_model"]
