"""The process's thread count for the nets: one setting for the torch and the onnxruntime backends.

``set_threads`` (the CLI's ``--threads``, a batch worker's share, the OCRmyPDF plugin's) records the count and
hands it to torch only where torch is loaded or a net is built (``torch_threads``), so a process that runs only
onnxruntime sessions on cached exports never imports torch. Without a count set here, torch's own setting
stands (a caller may have set it with ``torch.set_num_threads``), and where torch is not loaded each backend
takes its default: one thread per core.
"""

from __future__ import annotations

import sys

__all__ = ["set_threads", "thread_count", "torch_threads"]

_count: int | None = None


def set_threads(count: int) -> None:
    """Run every net built or run after this on ``count`` intra-op threads."""
    global _count
    _count = count
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)


def thread_count() -> int | None:
    """The count set with ``set_threads``, else torch's where torch is loaded, else None (the backend's default)."""
    if _count is not None:
        return _count
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None


def torch_threads() -> int:
    """Give torch the count set with ``set_threads`` (if any) and return torch's thread count; imports torch."""
    import torch

    if _count is not None and torch.get_num_threads() != _count:
        torch.set_num_threads(_count)
    return int(torch.get_num_threads())
