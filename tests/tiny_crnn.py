"""The tiny CRNN that the training, distillation and slimming tests train (0.4 M parameters, no weights).

Importable from every test folder: pyproject.toml puts ``tests/`` on pytest's ``pythonpath``.
"""

from __future__ import annotations

import copy
from typing import Any

SYNTH_EN = {"task": "rec", "data": {"synth": "en"}, "augment": {"tia_prob": 0.0, "bda_prob": 0.0}}
"""A ``train`` section's start: synthetic English lines on the fly, no TIA/BDA."""


def tiny_crnn(train: dict[str, Any]) -> dict[str, Any]:
    """A rec stage config of the tiny CRNN (the card's charset, 32 x 64 input) with this ``train`` section."""
    return {
        "model": {"backbone": {"name": "MobileNetV1Enhance", "scale": 0.25},
                  "neck": {"name": "SequenceEncoder", "encoder_type": "rnn", "hidden_size": 8},
                  "head": {"name": "CTCHead", "out_channels": 6625, "mid_channels": 16}},
        "weights": None,
        "preprocess": {"height": 32, "width": 64},
        "postprocess": {"charset": "ppocr_keys_v1.txt", "use_space_char": True},
        "train": copy.deepcopy(train),
    }
