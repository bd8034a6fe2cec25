"""BlurNet: a small CNN that reads a motion smear's length and angle from a grey window.

The smear is in the edges' profiles, a few pixels wide, so the first layers keep full resolution
and the receptive field (23 px after two strides) covers the longest smear learnt; a global average
over the window then pools the evidence of every stroke, so any window size works.
"""

from __future__ import annotations

import torch
from torch import nn

from platepilot.training.blur import WIDTHS

STRIDES = (1, 1, 2, 1, 2, 1, 1)


class BlurNet(nn.Module):
    """(N, 1, H, W) in [-1, 1] -> (N, 3): length in pixels, cos and sin of twice the angle."""

    def __init__(self, widths: tuple[int, ...] = WIDTHS) -> None:
        super().__init__()
        if len(widths) != len(STRIDES):
            raise ValueError(f"BlurNet takes {len(STRIDES)} layer widths, got {len(widths)}")
        layers: list[nn.Module] = []
        channels = 1
        for width, stride in zip(widths, STRIDES, strict=True):
            conv = nn.Conv2d(channels, width, 3, stride, 1, bias=False)
            layers += [conv, nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))
