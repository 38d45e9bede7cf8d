"""Optional dependencies: the one check that they are installed, and the one-line hint that installs them.

Each check looks the packages up (``importlib.util.find_spec``) without importing them, so it is cheap enough
to run before a command writes anything. Which extra holds which package: pyproject's
``[project.optional-dependencies]``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.util import find_spec
from types import ModuleType

from ocrlite.errors import BackendError, OcrliteError, one_line

__all__ = ["debian", "extra", "import_extra", "missing", "require", "require_onnx"]


def extra(name: str) -> str:
    """pip's argument that installs ocrlite's optional extra ``name``, e.g. ``"ocrlite[onnx]"`` (quoted)."""
    return f'"ocrlite[{name}]"'


def debian(packages: str, what: str = "") -> str:
    """`` (Debian: apt-get install PACKAGES[, WHAT])``: the hint for what pip cannot install (fonts, binaries)."""
    return f" (Debian: apt-get install {packages}{', ' + what if what else ''})"


def missing(modules: Iterable[str]) -> list[str]:
    """Those of ``modules`` (top-level import names) that are not installed."""
    return [name for name in modules if find_spec(name) is None]


def require(purpose: str, modules: Iterable[str], install: str, error: type[Exception] = OcrliteError,
            what: str | None = None, note: str = "") -> None:
    """Raise ``error`` with one line, ``PURPOSE needs WHAT: pip install INSTALL`` + ``note``, when one of
    ``modules`` is not installed; ``what`` defaults to the missing modules' names."""
    absent = missing(modules)
    if absent:
        raise error(f"{purpose} needs {what or ' and '.join(absent)}: pip install {install}{note}") from None


def require_onnx(purpose: str, export: bool = True, load: bool = False) -> None:
    """A BackendError unless onnxruntime and, to ``export`` a net (``torch.onnx``, ``ocrlite.backends.export``),
    onnx are installed: both come with the ``onnx`` extra. With ``load``, each is also imported (``import_extra``),
    so that one installed but broken is said here too: for tools about to use them (quantize, a QAT run's export),
    not for a backend whose warm cache may never import onnx (0.3 s)."""
    modules = ("onnx", "onnxruntime") if export else ("onnxruntime",)
    require(purpose, modules, extra("onnx"), BackendError)
    for module in modules if load else ():
        import_extra(module, purpose)


def import_extra(module: str, purpose: str, name: str = "onnx", error: type[Exception] = BackendError) -> ModuleType:
    """``module``, imported: ``require``'s line when it is absent, and one line saying to reinstall the extra
    ``name`` when it is installed but fails to import (a wheel built for another Python, numpy or CPU)."""
    require(purpose, (module,), extra(name), error)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise error(one_line(f"{purpose} cannot import {module} ({exc}): reinstall it: "
                             f"pip install --force-reinstall {extra(name)}")) from None
