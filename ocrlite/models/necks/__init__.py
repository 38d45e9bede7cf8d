"""Necks: DB feature pyramids for detection, sequence encoders (BiLSTM, SVTR, conv mixers) for recognition."""

from ocrlite.models.necks import conv_mixer, fpn, sequence, svtr  # noqa: F401  (registration)
