"""PlateNet: a MobileNet-style backbone, a small feature pyramid up to stride 4, and CenterNet heads.

Depthwise-separable blocks keep a 640x360 frame near 0.3 GMACs, so it runs in a few tens of
milliseconds on two CPU cores. The heads predict, per stride-4 cell, a plate-centre heatmap, the
centre's offset inside the cell and the plate's log width and height in input pixels (see
`platepilot.detect.platenet`, which reads the exported output).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

WIDTHS = (16, 32, 64, 96, 128)  # channels at strides 2, 4, 8, 16, 32
NECK = 48
STUDENT_WIDTHS = (16, 32, 64, 128)  # channels at strides 2, 4, 8, 16


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def separable(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1."""
    return nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin), conv_bn(cin, cout, 1))


class PlateNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = WIDTHS, neck: int = NECK) -> None:
        super().__init__()
        w2, w4, w8, w16, w32 = widths
        self.stem = conv_bn(3, w2, 3, 2)
        self.stage4 = nn.Sequential(separable(w2, w4, 2), separable(w4, w4))
        self.stage8 = nn.Sequential(separable(w4, w8, 2), separable(w8, w8))
        self.stage16 = nn.Sequential(separable(w8, w16, 2), separable(w16, w16), separable(w16, w16))
        self.stage32 = nn.Sequential(separable(w16, w32, 2), separable(w32, w32), separable(w32, w32))
        self.lateral = nn.ModuleList(conv_bn(c, neck, 1) for c in (w4, w8, w16, w32))
        self.smooth = nn.ModuleList(separable(neck, neck) for _ in range(3))
        heat_out = nn.Conv2d(neck, 1, 1)
        nn.init.constant_(cast(torch.Tensor, heat_out.bias), -math.log((1 - 0.01) / 0.01))  # start near "no plate"
        self.heat = nn.Sequential(separable(neck, neck), heat_out)
        self.geometry = nn.Sequential(separable(neck, neck), nn.Conv2d(neck, 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised RGB, H and W multiples of 32 -> (N, 5, H/4, W/4)."""
        c4 = self.stage4(self.stem(x))
        c8 = self.stage8(c4)
        c16 = self.stage16(c8)
        c32 = self.stage32(c16)
        p = self.lateral[3](c32)
        for level, (feature, smooth) in enumerate(zip((c16, c8, c4), self.smooth, strict=True)):
            p = smooth(self.lateral[2 - level](feature) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        return _maps(self.heat(p), self.geometry(p))


class PlateHead(nn.Module):
    """CenterNet heads at stride 8 on the frozen PP-OCR backbone's stride-8 and stride-16 features,
    with one stride-32 level of its own for context (a plate on a car, not a sign on a wall)."""

    def __init__(self, s8: int = 96, s16: int = 192, neck: int = 64) -> None:
        super().__init__()
        self.down32 = separable(s16, neck * 2, 2)
        self.lateral = nn.ModuleList(conv_bn(c, neck, 1) for c in (s8, s16, neck * 2))
        self.smooth = nn.ModuleList(separable(neck, neck) for _ in range(2))
        heat_out = nn.Conv2d(neck, 1, 1)
        nn.init.constant_(cast(torch.Tensor, heat_out.bias), -math.log((1 - 0.01) / 0.01))
        self.heat = nn.Sequential(separable(neck, neck), heat_out)
        self.geometry = nn.Sequential(separable(neck, neck), nn.Conv2d(neck, 4, 1))

    def forward(self, s8: torch.Tensor, s16: torch.Tensor) -> torch.Tensor:
        """Backbone features at strides 8 and 16 -> (N, 5, H/8, W/8), laid out as PlateNet's output."""
        p = self.lateral[2](self.down32(s16))
        p = self.smooth[0](self.lateral[1](s16) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        p = self.smooth[1](self.lateral[0](s8) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        return _maps(self.heat(p), self.geometry(p))


class PretrainedPlateNet(nn.Module):
    """PlateHead on a frozen backbone run outside torch (`OrtBackbone`); only the head has weights here."""

    def __init__(self, backbone: Callable[[torch.Tensor], list[torch.Tensor]], head: PlateHead | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head or PlateHead()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            s8, s16 = self.backbone(x)
        return self.head(s8, s16)


class Residual(nn.Module):
    """x + separable(x): a block that can start as (nearly) the identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = separable(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def residual_stage(cin: int, cout: int, blocks: int) -> nn.Sequential:
    """A stride-2 separable convolution to `cout` channels, then `blocks` residual blocks."""
    return nn.Sequential(separable(cin, cout, 2), *(Residual(cout) for _ in range(blocks)))


class StudentPlateNet(nn.Module):
    """A small torch-native backbone taught to give the PP-OCR backbone's stride-8 and stride-16 features
    (`platepilot detector train --arch student`), under the same PlateHead: about a sixth of the frozen
    backbone's time on a 640x384 input, because its high-resolution stages are narrow and shallow."""

    def __init__(self, widths: tuple[int, ...] = STUDENT_WIDTHS, s8: int = 96, s16: int = 192) -> None:
        super().__init__()
        w2, w4, w8, w16 = widths
        self.stem = conv_bn(3, w2, 3, 2)
        self.stage4, self.stage8, self.stage16 = (
            residual_stage(w2, w4, 1),
            residual_stage(w4, w8, 3),
            residual_stage(w8, w16, 5),
        )
        self.to_s8, self.to_s16 = nn.Conv2d(w8, s8, 1), nn.Conv2d(w16, s16, 1)
        self.head = PlateHead(s8, s16)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) input as the PP-OCR backbone takes it -> its stand-ins for (s8, s16)."""
        c8 = self.stage8(self.stage4(self.stem(x)))
        return self.to_s8(c8), self.to_s16(self.stage16(c8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(*self.features(x))


DetectorNet = PlateNet | PretrainedPlateNet | StudentPlateNet


def _maps(heat_logits: torch.Tensor, geometry: torch.Tensor) -> torch.Tensor:
    """Heat logits (N, 1, h, w) and raw geometry (N, 4, h, w) -> the detector's (N, 5, h, w) output."""
    return torch.cat([torch.sigmoid(heat_logits), torch.sigmoid(geometry[:, :2]), geometry[:, 2:]], dim=1)
