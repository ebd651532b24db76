"""Modulated deformable 3×3 convolution (DCNv2) written with ``grid_sample``.

The same arithmetic as :func:`torchvision.ops.deform_conv2d` (bilinear sampling with zeros
outside the image, offsets as (dy, dx) per kernel point and offset group, modulation per point),
expressed as a batched ``grid_sample`` plus a matrix product, a band of output rows at a time so
that the sampled columns stay small (:data:`BAND_PIXELS`). On CPU it is several times faster
than torchvision's kernel forward, and more still backward, so the network uses it on CPU; other
devices keep torchvision's kernel (:class:`~rrtn_plugin.model.kernels.Kernels`; figures in
``bench/training.py`` and ``bench/speed.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BAND_PIXELS = 1 << 14
"""Output pixels per band: the sampling grid and the sampled columns of a band take C·k²·4 bytes
per pixel each (18 MiB for RRTN's 32 channels) whatever the frame size, small enough for glibc to
reuse (:func:`rrtn_plugin.engine.device.tune_host_allocator`)."""


def sampled_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mask: torch.Tensor,
) -> torch.Tensor:
    """Modulated deformable convolution, kernel k×k, stride 1, padding k // 2, dilation 1.

    Args:
        x: (N, C, H, W) input.
        offset: (N, 2·G·k², H, W); for offset group g and kernel point p = i·k + j, channels
            ``2(g·k² + p)`` and ``2(g·k² + p) + 1`` hold the (dy, dx) displacement.
        weight: (C_out, C, k, k); bias: (C_out,) or None.
        mask: (N, G·k², H, W) modulation of each sampled point.

    Returns:
        (N, C_out, H, W).

    Raises:
        ValueError: shapes that do not fit together.
    """
    n, c, h, w = x.shape
    c_out, c_in, kh, kw = weight.shape
    points = kh * kw
    if c_in != c or kh != kw or kh % 2 == 0:
        raise ValueError(
            f"weight {tuple(weight.shape)} does not fit input {tuple(x.shape)} "
            "as an odd square kernel"
        )
    groups = offset.shape[1] // (2 * points)
    if offset.shape != (n, 2 * groups * points, h, w) or c % groups:
        raise ValueError(f"offset {tuple(offset.shape)} does not fit input {tuple(x.shape)}")
    if mask.shape != (n, groups * points, h, w):
        raise ValueError(f"mask must be {(n, groups * points, h, w)}, got {tuple(mask.shape)}")
    radius = kh // 2
    taps = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    # grid_sample takes (x, y) pairs that index (W, H); sampling the transposed input lets the
    # grid be built straight from the (dy, dx) offsets, in one pass without reordering them.
    source = x.reshape(n * groups, c // groups, h, w).transpose(2, 3)
    delta = offset.view(n, groups, points, 2, h, w).permute(0, 1, 2, 4, 5, 3)
    modulation = mask.view(n, groups, 1, points, h, w)
    kernel = weight.reshape(c_out, c * points)
    # align_corners=True: -1 and 1 are the first and last pixel centres.
    scale = torch.tensor([2.0 / max(h - 1, 1), 2.0 / max(w - 1, 1)], dtype=x.dtype, device=x.device)
    tap_y = taps.repeat_interleave(kw).view(points, 1, 1)
    grid_x = torch.arange(w, dtype=x.dtype, device=x.device).view(1, w) + taps.repeat(kh).view(
        points, 1, 1
    )
    rows = max(1, BAND_PIXELS // max(n * w, 1))
    bands = []
    for top in range(0, h, rows):
        bottom = min(top + rows, h)
        grid_y = torch.arange(top, bottom, dtype=x.dtype, device=x.device).view(-1, 1) + tap_y
        # torch.broadcast_tensors is unannotated in torch.
        pair = torch.broadcast_tensors(grid_y, grid_x)  # type: ignore[no-untyped-call]
        base = torch.stack(pair, dim=-1) * scale - 1.0
        grid = torch.addcmul(base, delta[:, :, :, top:bottom], scale)
        sampled = F.grid_sample(
            source,
            grid.view(n * groups, points * (bottom - top), w, 2),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=True,
        )
        sampled = sampled.view(n, groups, c // groups, points, bottom - top, w)
        columns = (sampled * modulation[..., top:bottom, :]).reshape(n, c * points, -1)
        bands.append(torch.matmul(kernel, columns).view(n, c_out, bottom - top, w))
    out = bands[0] if len(bands) == 1 else torch.cat(bands, dim=2)
    return out if bias is None else out + bias.view(1, c_out, 1, 1)
