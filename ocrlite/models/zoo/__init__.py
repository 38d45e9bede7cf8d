"""The backbone zoo: lightweight ImageNet-style backbones in det/rec modes, built from the source articles' tables.

They train (every parameter gets a gradient) but ship no converted weights.
"""

from ocrlite.models.zoo import (  # noqa: F401  (registration)
    classifier,
    crnn_vgg,
    mobilenet_v1,
    mobilenet_v2,
    pp_lcnet_imagenet,
    shufflenet_v2,
    squeezenet,
)
