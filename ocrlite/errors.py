"""Typed errors raised by the library; the CLI (and ``exit_on_error``, the scripts) turns each into one line on
stderr."""

from __future__ import annotations

import sys
from typing import Callable

__all__ = ["OcrliteError", "ImageReadError", "ConfigError", "WeightsError", "BackendError", "one_line",
           "error_reason", "exit_on_error"]


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


def one_line(text: str) -> str:
    """``text`` on one line: its lines (a library's message of several, a file name holding a newline) joined
    by spaces, blank ones dropped."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def error_reason(exc: Exception) -> str:
    """One line saying why ``exc`` happened: an ``OcrliteError``'s own message, else its type and message
    (``one_line``, so a per-file report stays one line per file)."""
    return one_line(str(exc) if isinstance(exc, OcrliteError) else f"unexpected {type(exc).__name__}: {exc}")


def exit_on_error(main: Callable[[], object], prog: str) -> None:
    """Run a script's ``main`` and exit with its return code when it returns an int (else 0). An ``OcrliteError``
    ends it with one line on stderr, ``PROG: error: ...``, exit 2; Ctrl-C with ``PROG: interrupted``, exit 130."""
    try:
        code = main()
    except OcrliteError as exc:
        print(f"{prog}: error: {error_reason(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)
