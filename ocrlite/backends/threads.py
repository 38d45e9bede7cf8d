"""The process's thread count for the nets: one setting for the torch and the onnxruntime backends.

``set_threads`` (the CLI's ``--threads``, a batch worker's share, the OCRmyPDF plugin's) sets torch's thread
count where torch is loaded, and otherwise keeps the count until a net is built (``torch_threads``), so a process
that runs only onnxruntime sessions on cached exports never imports torch. Once torch has the count, torch's own
setting is the one setting (``torch.set_num_threads`` changes it, as before); where torch is not loaded and no
count was set, each backend takes its default: one thread per core.
"""

from __future__ import annotations

import sys

__all__ = ["set_threads", "thread_count", "torch_threads"]

_pending: int | None = None  # a count set before torch was loaded, not yet given to torch


def set_threads(count: int) -> None:
    """Run the nets built or run after this on ``count`` intra-op threads."""
    global _pending
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)
        _pending = None
    else:
        _pending = count


def thread_count() -> int | None:
    """The count set with ``set_threads`` and not yet given to torch, else torch's where torch is loaded, else
    None (the backend's default)."""
    if _pending is not None:
        return _pending
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def torch_threads() -> int:
    """Give torch a count set with ``set_threads`` before torch was loaded, and return torch's thread count;
    imports torch."""
    global _pending
    import torch

    if _pending is not None:
        torch.set_num_threads(_pending)
        _pending = None
    return int(torch.get_num_threads())
