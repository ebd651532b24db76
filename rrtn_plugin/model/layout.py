"""Memory layout of the feature maps that RRTN's convolutions take.

The layout is :meth:`Kernels.conv_layout <rrtn_plugin.model.kernels.Kernels.conv_layout>`: by
default channels-last (NHWC) on CPU, where oneDNN's convolutions take that layout as it is while
channels-first maps are reordered on the way in and out, and PyTorch's default elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

import torch

from rrtn_plugin.model.kernels import Kernels


def for_convolution(x: torch.Tensor, *, kernels: Kernels | None = None) -> torch.Tensor:
    """``x`` (N, C, H, W) in ``kernels``' convolution layout for its device (default
    :class:`Kernels`); no copy when it already is."""
    return x.contiguous(memory_format=(kernels or Kernels()).conv_layout(x.device))


def cat_for_convolution(
    maps: Sequence[torch.Tensor], *, kernels: Kernels | None = None
) -> torch.Tensor:
    """(N, Cᵢ, H, W) maps concatenated along channels, in ``kernels``' convolution layout
    (default :class:`Kernels`).

    Without autograd the maps are written straight into the layout: one copy, where a
    concatenation followed by a reorder to channels-last costs several times as much.
    """
    first = maps[0]
    layout = (kernels or Kernels()).conv_layout(first.device)
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
