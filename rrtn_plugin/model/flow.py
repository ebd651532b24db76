"""Optical flow for RRTN: torchvision's RAFT-large, fed the way the reference feeds its RAFT."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.optical_flow import raft_large

RAFT_MIN_SIDE = 128
"""RAFT's coarsest correlation level is H/64 × W/64; below 128 px it degenerates (NaN flows)."""
RAFT_MULTIPLE = 8


def build_raft() -> nn.Module:
    """An untrained torchvision RAFT-large (weights come from the RRTN checkpoint)."""
    return raft_large(weights=None, progress=False)


def raft_input(lq: torch.Tensor) -> torch.Tensor:
    """Map RRTN's [-1, 1] grayscale or RGB frames to what RAFT saw in the reference.

    The reference multiplies by 255 and RAFT maps x → 2·x/255 − 1, so RAFT sees 2·lq − 1. The
    same arithmetic, in the same order, keeps flows bit-identical for inputs off the 8-bit grid.

    Shapes: (B, 1 or 3, H, W) → (B, 3, H, W).
    """
    if lq.shape[1] == 1:
        lq = lq.expand(-1, 3, -1, -1)
    elif lq.shape[1] != 3:
        raise ValueError(f"RAFT takes 1 or 3 channels, got {lq.shape[1]}")
    return 2 * ((lq * 255) / 255.0) - 1


@torch.no_grad()
def estimate_flow(raft: nn.Module, image1: torch.Tensor, image2: torch.Tensor, *,
                  num_updates: int = 24) -> torch.Tensor:
    """Flow on ``image1``'s grid such that warping ``image2`` by it reproduces ``image1``.

    Args:
        raft: torchvision RAFT in eval mode.
        image1, image2: (B, C, H, W) frames in RRTN's [-1, 1] encoding, C = 1 or 3;
            H and W multiples of 8 and at least 128.
        num_updates: RAFT's recurrent refinement steps (the reference uses 24).

    Returns:
        (B, 2, H, W) flow in pixels, channel 0 horizontal.
    """
    if image1.shape != image2.shape:
        raise ValueError(f"image shapes differ: {tuple(image1.shape)} vs {tuple(image2.shape)}")
    h, w = image1.shape[-2:]
    if min(h, w) < RAFT_MIN_SIDE or h % RAFT_MULTIPLE or w % RAFT_MULTIPLE:
        raise ValueError(f"RAFT needs H and W multiples of {RAFT_MULTIPLE} and at least "
                         f"{RAFT_MIN_SIDE}, got {h}x{w}")
    return raft(raft_input(image1), raft_input(image2), num_flow_updates=num_updates)[-1]
