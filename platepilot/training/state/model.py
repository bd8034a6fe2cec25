"""StateNet: a small plain CNN for whole-plate crops; logits per class (postal codes + unknown).

Four stride-2 stages from a (3, 64, 128) input to a 4 x 8 grid, then average and max pooling side by
side: the average sees the plate's colours and layout, the max the strongest local cue (a state
name, a logo). About 0.3 M parameters and 25 M multiply-adds per crop at 64 x 128.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from platepilot.training.detector.model import conv_bn

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
