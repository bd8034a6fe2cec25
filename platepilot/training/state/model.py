"""StateNet: a small plain CNN for whole-plate crops; logits per class (postal codes + unknown).

Four stride-2 stages from a (3, 64, 128) input to a 4 x 8 grid, then average and max pooling side by
side: the average sees the plate's colours and layout, the max the strongest local cue (a state
name, a logo). About 0.3 M parameters and 25 M multiply-adds per crop at 64 x 128.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from platepilot.errors import PlatepilotError
from platepilot.training.detector.model import Residual, conv_bn, separable

WIDTHS = (24, 32, 64, 128)


class StateNet(nn.Module):
    def __init__(self, num_classes: int, widths: tuple[int, ...] = WIDTHS, dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn(3, widths[0], 3, 2)]
        for cin, cout in itertools.pairwise(widths):
            layers += [conv_bn(cin, cout, 3, 2), conv_bn(cout, cout)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * widths[-1], num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised RGB -> (N, num_classes) logits."""
        f = self.features(x)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return self.head(pooled)


STUDENT_WIDTHS = (16, 32, 64, 128)  # channels at strides 2, 4, 8, 16
GRID = (2, 7)  # rows x columns the student pools its stride-16 map to


class StudentStateNet(nn.Module):
    """A fast state classifier taught by a slower one (`platepilot state train --teacher`): depthwise-
    separable stages to stride 16, the map average-pooled to `grid` (the plate's layout: where the
    name, the art and the serial are) beside a global max, then an MLP. About 18 M multiply-adds per
    crop at 128 x 224, a tenth of the fine-tuned PP-OCR backbone's."""

    def __init__(
        self, num_classes: int, height: int, width: int, widths: tuple[int, ...] = STUDENT_WIDTHS, hidden: int = 256
    ) -> None:
        super().__init__()
        w2, w4, w8, w16 = widths
        self.features = nn.Sequential(
            conv_bn(3, w2, 3, 2),
            separable(w2, w4, 2), Residual(w4),
            separable(w4, w8, 2), Residual(w8), Residual(w8),
            separable(w8, w16, 2), Residual(w16), Residual(w16),
        )  # fmt: skip
        if (height // 16) % GRID[0] or (width // 16) % GRID[1] or height % 16 or width % 16:
            raise PlatepilotError(f"a student needs an input that pools to {GRID[0]} x {GRID[1]} at stride 16, "
                                  f"not {height} x {width} (for example 128 x 224)")  # fmt: skip
        self.grid = nn.AdaptiveAvgPool2d(GRID)
        self.head = nn.Sequential(
            nn.Dropout(0.2), nn.Linear(w16 * (GRID[0] * GRID[1] + 1), hidden), nn.ReLU(inplace=True), nn.Dropout(0.2),
            nn.Linear(hidden, num_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised as the card says -> (N, num_classes) logits."""
        f = self.features(x)
        return self.head(torch.cat([self.grid(f).flatten(1), f.amax(dim=(2, 3))], dim=1))
