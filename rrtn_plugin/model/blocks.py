"""Convolutional building blocks of RRTN's feature extractor and reconstruction head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rrtn_plugin.model.kernels import Kernels
from rrtn_plugin.model.layout import for_convolution


class ResidualBlock(nn.Module):
    """conv3x3 → ReLU → conv3x3, plus the input (no normalisation).

    Shapes: (N, C, H, W) → (N, C, H, W).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class ConvResBlock(nn.Module):
    """conv3x3 (in → out channels) → LeakyReLU(0.1) → ``num_blocks`` residual blocks.

    Shapes: (N, in_channels, H, W) → (N, out_channels, H, W), laid out for convolution as its
    :class:`~rrtn_plugin.model.kernels.Kernels` say (:meth:`set_kernels`). The state-dict layout
    (``conv_resblock.0`` the conv, ``conv_resblock.2.<i>`` the blocks) is the official one.
    """

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int) -> None:
        super().__init__()
        self.conv_resblock = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1),
            nn.LeakyReLU(0.1),
            nn.Sequential(*(ResidualBlock(out_channels) for _ in range(num_blocks))),
        )
        self.kernels = Kernels()

    def set_kernels(self, kernels: Kernels) -> None:
        """Use ``kernels``' convolution layout from now on."""
        self.kernels = kernels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_resblock(for_convolution(x, kernels=self.kernels))


class ConvPixelShuffle(nn.Module):
    """conv3x3 to ``out_channels · scale²`` channels, then pixel shuffle by ``scale``.

    Shapes: (N, in_channels, H, W) → (N, out_channels, H·scale, W·scale). RRTN uses scale 1,
    where the shuffle is the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, *, scale: int = 1) -> None:
        super().__init__()
        self.scale = scale
        self.up_conv = nn.Conv2d(in_channels, out_channels * scale * scale, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.up_conv(x), self.scale)
