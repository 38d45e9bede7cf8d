"""Heads: DB probability (and training threshold) maps, the direction classifier, the CTC projection."""

from ocrlite.models.heads import cls, ctc, db  # noqa: F401  (registration)
