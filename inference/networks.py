"""Torch architectures for the shipped segmentation models (torch-only module, imported lazily).

``UNet2D`` is a plain 2D U-Net: ``depth`` poolings (input H and W must be divisible by
``2 ** depth``), two 3x3 conv + norm + ReLU per block, skip connections by concatenation, and
a 1x1 head producing ``num_classes`` logits per pixel.

Module names are stable because ``model.json`` refers to them (Grad-CAM target layer):
``encoder.0`` … ``encoder.{depth-1}``, ``bottleneck``, ``up.0`` … ``up.{depth-1}``,
``decoder.0`` … ``decoder.{depth-1}`` (``decoder.{depth-1}`` is the last, full-resolution decoder
block) and ``head``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["UNet2D", "build_network", "count_parameters", "ARCHITECTURES"]


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "group":
        return nn.GroupNorm(max(1, min(8, ch // 4)), ch)
    raise ValueError(f"norm must be 'batch' or 'group', got {kind!r}")


class ConvBlock(nn.Sequential):
    """Two (3x3 conv → norm → ReLU) layers."""

    def __init__(self, cin: int, cout: int, norm: str) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            _norm(norm, cout),
            nn.ReLU(inplace=True),
        )


class Up(nn.Module):
    """×2 upsampling that halves the channels: ConvTranspose2d, or bilinear resize + 1x1 conv."""

    def __init__(self, cin: int, cout: int, mode: str) -> None:
        super().__init__()
        if mode == "transpose":
            self.op: nn.Module = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        elif mode == "bilinear":
            self.op = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(cin, cout, 1),
            )
        elif mode == "nearest":
            self.op = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 1))
        else:
            raise ValueError(f"up must be 'transpose', 'bilinear' or 'nearest', got {mode!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class UNet2D(nn.Module):
    """2D U-Net.

    Parameters
    ----------
    in_channels : int
        Input channels (1 for 2D, 3 for 2.5D: slices z-1, z, z+1).
    num_classes : int
        Output logit channels (background included).
    base : int
        Channels of the first block; level ``i`` has ``base * 2**i`` channels.
    depth : int
        Number of poolings; H and W of the input must be divisible by ``2 ** depth``.
    norm : {"batch", "group"}
        Normalisation layer (BatchNorm folds into the convolution at export).
    up : {"transpose", "bilinear", "nearest"}
        Decoder upsampling.

    Input ``[N, in_channels, H, W]`` float32, output logits ``[N, num_classes, H, W]``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 4,
        base: int = 16,
        depth: int = 4,
        norm: str = "batch",
        up: str = "transpose",
    ) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 2 or base < 1 or not 1 <= depth <= 6:
            raise ValueError(
                f"UNet2D: need in_channels >= 1, num_classes >= 2, base >= 1, 1 <= depth <= 6; got "
                f"{in_channels}, {num_classes}, {base}, {depth}"
            )
        self.config = {
            "in_channels": in_channels, "num_classes": num_classes, "base": base,
            "depth": depth, "norm": norm, "up": up,
        }
        self.depth = depth
        chs = [base * 2**i for i in range(depth + 1)]
        self.encoder = nn.ModuleList()
        cin = in_channels
        for i in range(depth):
            self.encoder.append(ConvBlock(cin, chs[i], norm))
            cin = chs[i]
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = ConvBlock(chs[depth - 1], chs[depth], norm)
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for i in range(depth):  # decoder.0 is the coarsest, decoder.{depth-1} full resolution
            lvl = depth - 1 - i
            self.up.append(Up(chs[lvl + 1], chs[lvl], up))
            self.decoder.append(ConvBlock(2 * chs[lvl], chs[lvl], norm))
        self.head = nn.Conv2d(chs[0], num_classes, 1)

    @property
    def divisible_by(self) -> int:
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for enc in self.encoder:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.decoder, reversed(skips), strict=True):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)


ARCHITECTURES: dict[str, type[nn.Module]] = {"UNet2D": UNet2D}


def build_network(architecture: str, args: dict[str, Any]) -> nn.Module:
    """Instantiate ``architecture`` (a key of :data:`ARCHITECTURES`) with keyword ``args``."""
    try:
        cls = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}") from None
    return cls(**args)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
