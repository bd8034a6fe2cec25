"""The CRNN: a small CNN over a (C, 32, 128) crop, a BiLSTM along the width, a linear CTC head.

The graph takes normalised tensors and returns logits (T, N, classes) with class 0 the blank;
resizing, normalisation and decoding live in `platepilot.ocr` so serving shares them exactly.
"""

from __future__ import annotations

from typing import Any

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    from platepilot.errors import missing_extra

    raise missing_extra("torch", "train") from exc


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class CRNN(nn.Module):
    """Input (N, C, H, W) -> logits (T=W/4, N, num_classes)."""

    def __init__(self, in_channels: int, num_classes: int, height: int, channels: list[int], hidden: int) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = channels
        self.features = nn.Sequential(
            *_block(in_channels, c1), nn.MaxPool2d(2),  # H/2, W/2
            *_block(c1, c2), nn.MaxPool2d(2),  # H/4, W/4
            *_block(c2, c3), *_block(c3, c4), nn.MaxPool2d((2, 1)),  # H/8
            *_block(c4, c5), nn.MaxPool2d((2, 1)),  # H/16
        )  # fmt: skip
        self.collapse = nn.Conv2d(c5, c5, (height // 16, 1))
        self.rnn = nn.LSTM(c5, hidden, bidirectional=True, batch_first=False)
        self.head = nn.Linear(2 * hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.collapse(self.features(x)))  # (N, C, 1, T)
        seq = f.squeeze(2).permute(2, 0, 1)  # (T, N, C)
        out, _ = self.rnn(seq)
        return self.head(out)


def build_model(in_channels: int, num_classes: int, height: int, arch: dict[str, Any]) -> CRNN:
    return CRNN(in_channels, num_classes, height, list(arch["channels"]), int(arch["hidden"]))
