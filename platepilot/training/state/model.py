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
from platepilot.training.detector.model import STUDENT_WIDTHS, conv_bn, residual_stage
from platepilot.training.state.backbones import FeatureHead

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


FEATURE_CHANNELS = 192  # the PP-OCR det backbone's stride-16 map, which the student learns to give


class StudentStateNet(nn.Module):
    """A fast state classifier (`platepilot state train --teacher`): depthwise-separable stages to
    stride 16, projected to stand in for the PP-OCR det backbone's stride-16 map (it is taught to give
    that map, and the teacher's scores), then the fine-tuned model's kind of head. About a sixth of
    that model's time at 128 x 224."""

    def __init__(self, num_classes: int, height: int, width: int, widths: tuple[int, ...] = STUDENT_WIDTHS) -> None:
        super().__init__()
        if height % 32 or width % 32:
            raise PlatepilotError(f"a student needs an input whose sides are multiples of 32, not {height} x {width}")
        w2, w4, w8, w16 = widths
        self.stages = nn.Sequential(
            conv_bn(3, w2, 3, 2),
            residual_stage(w2, w4, 1),
            residual_stage(w4, w8, 2),
            residual_stage(w8, w16, 2),
            nn.Conv2d(w16, FEATURE_CHANNELS, 1),
        )
        shape = (FEATURE_CHANNELS, height // 16, width // 16)
        self.head = FeatureHead([shape], num_classes, reduce=96, hidden=512, grid=(height // 32, width // 32))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised as the card says -> the stand-in stride-16 map."""
        out: torch.Tensor = self.stages(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised as the card says -> (N, num_classes) logits."""
        return self.head(self.features(x))
