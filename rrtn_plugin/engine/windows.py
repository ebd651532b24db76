"""Temporal windows: which frames each network run sees, and how overlapping results combine.

Windows lie on a grid anchored at frame 0: window k spans frames [k·s, k·s + length) with
s = length − overlap, clipped to the clip, and a window that lies inside another is dropped.
Every clip therefore runs the reference driver's schedule (windows every s frames, the last
ending on the clip's last frame, more than ``overlap`` frames long), and two clips that share
frames share their interior windows exactly — so a session can widen its range, or another
session can reuse cached work, recomputing only the windows at the edges.

A frame covered by several windows is their weighted average, each window weighted by the
frame's distance (in frames, from 1) to the window's nearer end: a frame near a window's edge,
where that window saw little context on one side, is taken mostly from the window in which it
sits deeper, and the weights change gradually from frame to frame, so no seam shows in time.
"""

from __future__ import annotations

import torch


def plan_windows(start: int, stop: int, *, length: int,
                 overlap: int) -> list[tuple[int, int]]:
    """[start, stop) ranges, in frame numbers, of the windows covering frames [start, stop)."""
    if length < 3:
        raise ValueError(f"window length must be at least 3 frames, got {length}")
    if not 0 <= overlap < length:
        raise ValueError(f"window overlap must be in [0, {length}), got {overlap}")
    if stop <= start:
        raise ValueError(f"empty frame range [{start}, {stop})")
    step = length - overlap
    windows = []
    k = (start - length) // step + 1  # the first grid window that reaches past ``start``
    while k * step < stop:
        lo, hi = max(start, k * step), min(stop, k * step + length)
        if hi > lo and (lo, hi) not in windows:
            windows.append((lo, hi))
        k += 1
    return [w for w in windows
            if not any(o != w and o[0] <= w[0] and w[1] <= o[1] for o in windows)]


def window_weights(length: int) -> torch.Tensor:
    """(length,) weights of a window's frames: distance to the nearer end, 1 at both ends."""
    pos = torch.arange(length)
    return torch.minimum(pos + 1, length - pos).float()
