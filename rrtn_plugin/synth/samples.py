"""Synthetic footage made on the fly, for the benchmarks and the tests.

A smooth random texture pans across the frame and one-frame dust specks (dark and bright) are
dropped on it: enough structure and motion for flow, and damage the noise mask can see. The
full film-damage model (scratches, hairs, flicker, grain) is :mod:`rrtn_plugin.synth`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def panning_clip(
    frames: int,
    height: int,
    width: int,
    *,
    seed: int = 0,
    speed: tuple[float, float] = (1.5, -1.0),
    specks: int = 3,
) -> torch.Tensor:
    """(T, H, W) float32 in [0, 1]: texture moving ``speed`` = (x, y) px/frame, with specks."""
    if min(frames, height, width) < 1:
        raise ValueError(f"frames, height and width must be ≥ 1, got {frames}, {height}, {width}")
    gen = torch.Generator().manual_seed(seed)
    margin = 8 + int(frames * max(abs(speed[0]), abs(speed[1]))) + 2
    base = torch.rand(1, 1, height // 4 + margin, width // 4 + margin, generator=gen)
    texture = F.interpolate(base, scale_factor=4, mode="bicubic", align_corners=False)[0, 0]
    texture = texture.clamp(0, 1)
    out = []
    for t in range(frames):
        top = round(t * speed[1]) + 2 * margin
        left = round(t * speed[0]) + 2 * margin
        frame = texture[top : top + height, left : left + width].clone()
        for _ in range(specks):
            y = int(torch.randint(0, max(1, height - 3), (1,), generator=gen))
            x = int(torch.randint(0, max(1, width - 3), (1,), generator=gen))
            frame[y : y + 3, x : x + 3] = 0.05 if torch.rand(1, generator=gen) < 0.5 else 0.95
        out.append(frame)
    return torch.stack(out).contiguous()
