"""Typed errors raised by the library; the CLI turns each into one line on stderr."""

__all__ = ["OcrliteError", "ImageReadError", "ConfigError", "WeightsError", "BackendError", "error_reason"]


class OcrliteError(Exception):
    """Base class of every error ocrlite raises on purpose."""


class ImageReadError(OcrliteError):
    """An input file could not be read as an image (missing, empty, corrupt, too large)."""


class ConfigError(OcrliteError):
    """A YAML config or an override names an unknown key, component or value."""


class WeightsError(OcrliteError):
    """A weights file is missing, fails its checksum or does not match the net's keys."""


class BackendError(OcrliteError):
    """A stage's backend cannot run here (e.g. onnxruntime is not installed)."""


def error_reason(exc: Exception) -> str:
    """One line saying why ``exc`` happened: an ``OcrliteError``'s own message, else its type and message.

    A message of several lines (onnxruntime's, numpy's) is joined into one, blank lines dropped, so a
    per-file report stays one line per file."""
    text = str(exc) if isinstance(exc, OcrliteError) else f"unexpected {type(exc).__name__}: {exc}"
    return " ".join(part.strip() for part in text.splitlines() if part.strip())
