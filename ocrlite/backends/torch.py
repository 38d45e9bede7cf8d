"""The PyTorch runner: our nets behind the ``ocrlite.backends.Runner`` interface."""

from __future__ import annotations

from typing import Callable, TypeVar

import numpy as np
import torch
from torch import nn

__all__ = ["TorchRunner"]

T = TypeVar("T")


class TorchRunner:
    """Run an ``nn.Module`` in inference mode; optionally softmax its logits on the last axis.

    CPU speed: the net and its NCHW inputs use the channels-last memory layout (oneDNN convs then skip a
    layout reorder per call; 2-3x faster on the depthwise-heavy PP-OCRv6 nets, same numbers up to float
    rounding), and denormal floats are flushed to zero while the net runs (converted Paddle weights and
    attention/GELU tails produce denormals, which are very slow on x86). Flushing is switched back off
    after each call. A net on a GPU (a model being trained there) gets its inputs moved to it and
    its outputs moved back.
    """

    def __init__(self, model: nn.Module, softmax: bool = False, channels_last: bool = True) -> None:
        self.model = model.eval()
        self.softmax = softmax
        self.channels_last = channels_last
        self.device = next(model.parameters()).device
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = self._run(batch, lambda y: y.softmax(dim=-1) if self.softmax else y)
        return out.contiguous().numpy()

    def top1(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best class per step and its probability (N x T each) of an N x T x C net, without the full softmax."""
        from ocrlite.backends.export import top1

        index, prob = self._run(batch, lambda y: top1(y, logits=self.softmax))
        return index.numpy(), prob.numpy()

    def _run(self, batch: np.ndarray, finish: Callable[[torch.Tensor], T]) -> T:
        """The net on ``batch`` (channels-last, denormals flushed, inference mode), then ``finish`` on its output."""
        x = torch.from_numpy(np.asarray(batch, dtype=np.float32)).to(self.device)  # any strides (see normalize)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        flushing = torch.set_flush_denormal(True)
        try:
            with torch.inference_mode():
                return finish(self.model(x).cpu())
        finally:
            if flushing:
                torch.set_flush_denormal(False)
