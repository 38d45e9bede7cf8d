"""Backbones of the shipped models: MobileNetV3, PP-LCNet (v1 'Enhance' and v3) and PP-OCRv6's RepMixerNet."""

from ocrlite.models.backbones import mobilenet_v3, pp_lcnet, pp_lcnet_v3, rep_mixer  # noqa: F401  (registration)
