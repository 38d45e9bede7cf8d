"""Converted weights for ocrlite's optional model presets; data only, found by ``ocrlite.runtime``."""
