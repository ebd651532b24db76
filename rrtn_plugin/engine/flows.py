"""Optical flow for the engine: RAFT at a capped resolution, scaled back to the frame.

RAFT's correlation volume grows with the square of the pixel count (a 2K frame needs ~10 GB),
so flow is estimated on frames downscaled to about ``max_pixels`` and the flow field is
upsampled and scaled back to the frame's size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from rrtn_plugin.model import RRTN
from rrtn_plugin.model.flow import RAFT_MIN_SIDE, RAFT_MULTIPLE


def flow_size(height: int, width: int, max_pixels: int | None) -> tuple[int, int]:
    """The size RAFT runs at for a padded (height, width) frame: about ``max_pixels`` at most,
    multiples of 8, at least 128 a side, never larger than the frame."""
    scale = 1.0
    if max_pixels is not None and height * width > max_pixels:
        scale = math.sqrt(max_pixels / (height * width))

    def side(n: int) -> int:
        return min(n, max(RAFT_MIN_SIDE, round(n * scale / RAFT_MULTIPLE) * RAFT_MULTIPLE))

    return side(height), side(width)


def raft_pair_bytes(height: int, width: int) -> int:
    """Working memory of one RAFT pair at (height, width): the correlation pyramid dominates."""
    cells = (height // 8) * (width // 8)
    return int(cells * cells * 4 * 1.34) + height * width * 800


def estimate_flows(
    model: RRTN, frames: torch.Tensor, pairs: Sequence[tuple[int, int]], *, size: tuple[int, int]
) -> torch.Tensor:
    """(P, 2, H, W) flows, estimated at ``size``: for each pair (a, b), the flow on frame a's
    grid that warps frame b onto it. Each frame is resized and encoded once for all its pairs.

    Args:
        model: supplies the flow network.
        frames: (T, C, H, W) frames in [-1, 1].
        pairs: (a, b) indices into ``frames``.
        size: (h, w) the flow network runs at, from :func:`flow_size`.
    """
    height, width = frames.shape[-2:]
    if size == (height, width):
        return model.estimate_pair_flows(frames, pairs).float()
    small = F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=True)
    flow = F.interpolate(
        model.estimate_pair_flows(small, pairs).float(),
        size=(height, width),
        mode="bilinear",
        align_corners=False,
    )
    scale = torch.tensor([width / size[1], height / size[0]], device=flow.device)
    return flow * scale.view(1, 2, 1, 1)
