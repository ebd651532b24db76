"""Memory layout of the feature maps that RRTN's convolutions take.

On CPU the network's maps are laid out channels-last (NHWC): oneDNN's convolutions take that
layout as it is, while channels-first maps are reordered on the way in and out. Measured on
RRTN's layers at 128×160 (2 cores, AVX-512), channels-last is 1.1–1.3× as fast for RAFT's
refinement convolutions and 1.5–2.6× for the full-resolution ones with few channels. Other
devices keep PyTorch's default layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

import torch

CHANNELS_LAST_ON_CPU = True
"""Whether CPU maps are laid out channels-last (``bench/speed.py`` turns it off to compare)."""


def conv_layout(device: torch.device) -> torch.memory_format:
    """The layout of feature maps on ``device``: channels-last on CPU, the default elsewhere."""
    if device.type == "cpu" and CHANNELS_LAST_ON_CPU:
        return torch.channels_last
    return torch.contiguous_format


def for_convolution(x: torch.Tensor) -> torch.Tensor:
    """``x`` (N, C, H, W) in :func:`conv_layout` for its device (no copy when it already is)."""
    return x.contiguous(memory_format=conv_layout(x.device))


def cat_for_convolution(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """(N, Cᵢ, H, W) maps concatenated along channels, in :func:`conv_layout`.

    Without autograd the maps are written straight into the layout: one copy, where a
    concatenation followed by a reorder to channels-last costs about four times as much (an
    80-channel map at 128×160: 0.4 against 1.6 ms).
    """
    first = maps[0]
    layout = conv_layout(first.device)
    if torch.is_grad_enabled() and any(m.requires_grad for m in maps):
        return torch.cat(list(maps), dim=1).contiguous(memory_format=layout)
    n, _, h, w = first.shape
    dtype = reduce(torch.promote_types, (m.dtype for m in maps))
    out = torch.empty(
        n,
        sum(m.shape[1] for m in maps),
        h,
        w,
        dtype=dtype,
        device=first.device,
        memory_format=layout,
    )
    return torch.cat(list(maps), dim=1, out=out)
