"""Temporal windows: which frames each network run sees, and how overlapping results combine.

A clip longer than one window is covered by the fewest windows of at most ``length`` frames
that overlap by at least ``overlap``; all windows get the same length and are spread evenly, so
none is a short tail with little context (the reference's last window can be a few frames). The
network runs over about T + (n − 1)·overlap frames, as with the reference's schedule (equal
lengths round up by at most one frame per window).

A frame covered by several windows is their weighted average, each window weighted by the
frame's distance (in frames, from 1) to the window's nearer end: a frame near a window's edge,
where that window saw little context on one side, is taken mostly from the window in which it
sits deeper, and the weights change gradually from frame to frame, so no seam shows in time.
"""

from __future__ import annotations

import math

import torch


def plan_windows(num_frames: int, *, length: int, overlap: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of the windows covering ``num_frames`` frames."""
    if length < 3:
        raise ValueError(f"window length must be at least 3 frames, got {length}")
    if not 0 <= overlap < length:
        raise ValueError(f"window overlap must be in [0, {length}), got {overlap}")
    if num_frames <= length:
        return [(0, num_frames)]
    count = math.ceil((num_frames - overlap) / (length - overlap))
    size = math.ceil((num_frames + (count - 1) * overlap) / count)
    starts = [round(k * (num_frames - size) / (count - 1)) for k in range(count)]
    return [(start, start + size) for start in starts]


def window_weights(length: int) -> torch.Tensor:
    """(length,) weights of a window's frames: distance to the nearer end, 1 at both ends."""
    pos = torch.arange(length)
    return torch.minimum(pos + 1, length - pos).float()
