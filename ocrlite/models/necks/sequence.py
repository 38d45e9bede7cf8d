"""The recogniser's sequence necks: feature map [N, C, 1, W] -> sequence [N, W, C']."""

from __future__ import annotations

from torch import Tensor, nn

from ocrlite.errors import ConfigError
from ocrlite.registry import register

__all__ = ["SequenceEncoder", "im2seq"]


def im2seq(x: Tensor) -> Tensor:
    """[N, C, 1, W] feature map -> [N, W, C] sequence (the height must already be 1)."""
    if x.shape[2] != 1:
        raise ValueError(f"im2seq needs a feature map of height 1, got {tuple(x.shape)}")
    return x.squeeze(2).transpose(1, 2)


class _Reshape(nn.Module):
    """Sequence = feature columns, no mixing."""

    def __init__(self, in_channels: int, hidden_size: int) -> None:
        super().__init__()
        self.out_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        return im2seq(x)


class _BiLSTM(nn.Module):
    """Two-layer bidirectional LSTM over all columns (padding included, like the reference export)."""

    def __init__(self, in_channels: int, hidden_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_channels, hidden_size, num_layers=2, bidirectional=True, batch_first=True)
        self.out_channels = 2 * hidden_size

    def forward(self, x: Tensor) -> Tensor:
        return self.lstm(im2seq(x))[0]


# Each encoder maps the backbone's [N, C, H, W] map to [N, T, C']; map-level encoders (e.g. SVTR) fit here too.
_ENCODERS: dict[str, type[nn.Module]] = {"reshape": _Reshape, "rnn": _BiLSTM}


@register("neck")
class SequenceEncoder(nn.Module):
    """Recogniser neck: turns the backbone map into a [N, T, C] sequence with the chosen ``encoder_type``."""

    output_layout = "sequence"  # [N, T, C] for a CTC head (OCRModel checks the wiring)

    def __init__(self, in_channels: int, encoder_type: str = "rnn", hidden_size: int = 64) -> None:
        super().__init__()
        if encoder_type not in _ENCODERS:
            raise ConfigError(f"unknown encoder_type {encoder_type!r}; choose one of {sorted(_ENCODERS)}")
        self.encoder = _ENCODERS[encoder_type](in_channels, hidden_size)
        self.out_channels = int(self.encoder.out_channels)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        return self.encoder(x)
