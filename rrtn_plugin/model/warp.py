"""Backward warping of images and feature maps by an optical-flow field."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def flow_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``x`` at each pixel's position displaced by ``flow``.

    Output pixel ``(y, x)`` is ``x`` sampled bilinearly at ``(y + flow_y, x + flow_x)``, with zeros
    outside the image and ``align_corners=True`` (pixel centres at integer coordinates), exactly
    as RRTN's reference does.

    Args:
        x: (N, C, H, W) image or features to sample from.
        flow: (N, 2, H, W) displacement in pixels; channel 0 is horizontal (x), 1 vertical (y).

    Returns:
        (N, C, H, W) warped ``x``.
    """
    if x.ndim != 4 or flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(
            f"expected x (N, C, H, W) and flow (N, 2, H, W), got {tuple(x.shape)} "
            f"and {tuple(flow.shape)}"
        )
    if x.shape[-2:] != flow.shape[-2:] or x.shape[0] != flow.shape[0]:
        raise ValueError(f"x {tuple(x.shape)} and flow {tuple(flow.shape)} disagree in N, H or W")
    _, _, h, w = x.shape
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device)
    grid_x = xs.view(1, 1, w) + flow[:, 0]
    grid_y = ys.view(1, h, 1) + flow[:, 1]
    grid = torch.stack(
        (2.0 * grid_x / max(w - 1, 1) - 1.0, 2.0 * grid_y / max(h - 1, 1) - 1.0), dim=3
    )
    return F.grid_sample(
        x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=True
    )
