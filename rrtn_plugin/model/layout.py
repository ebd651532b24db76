"""Memory layout of the feature maps that RRTN's convolutions take.

On CPU the network's maps are laid out channels-last (NHWC): oneDNN's convolutions take that
layout as it is, while channels-first maps are reordered on the way in and out. Measured on
RRTN's layers at 128×160 (2 cores, AVX-512), channels-last is 1.1–1.3× as fast for RAFT's
refinement convolutions and 1.5–2.6× for the full-resolution ones with few channels. Other
devices keep PyTorch's default layout.
"""

from __future__ import annotations

import torch


def conv_layout(device: torch.device) -> torch.memory_format:
    """The layout of feature maps on ``device``: channels-last on CPU, the default elsewhere."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def for_convolution(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) in :func:`conv_layout` for its device (no copy when it already is)."""
    return x.contiguous(memory_format=conv_layout(x.device))
