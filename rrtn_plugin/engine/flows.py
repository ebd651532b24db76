"""Optical flow and noise masks for a whole clip, each computed once and shared by all windows.

The reference recomputes RAFT for every window; here every ordered frame pair is estimated once
per recursion pass and kept until no later window can need it. Noise masks are built from each
frame's true neighbours in the clip (the reference's substitutes, frame 2 and frame T−3, are
used only at the clip's ends), so a frame's mask does not depend on where windows fall.

RAFT's correlation volume grows with the square of the pixel count, so flow is estimated on
frames downscaled to at most ``max_pixels`` and scaled back up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F

from rrtn_plugin.model import RRTN, residual_indicator
from rrtn_plugin.model.flow import RAFT_MIN_SIDE, RAFT_MULTIPLE
from rrtn_plugin.model.warp import flow_warp

Pair = tuple[int, int]


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


class ClipFlows:
    """Lazily computed flows and noise masks of one clip for one recursion pass.

    Args:
        model: supplies RAFT (``model.estimate_flow``).
        frames: (T, C, H, W) clip in [-1, 1], T ≥ 3, on any device (the host for long clips).
        device: where RAFT runs and the flows and masks are kept.
        max_pixels: flow-resolution cap (None: full resolution).
        batch_bytes: memory allowed for one batch of RAFT pairs.
        before_batch: called before each RAFT batch (progress, cancellation).
    """

    def __init__(self, model: RRTN, frames: torch.Tensor, *, device: torch.device,
                 max_pixels: int | None, batch_bytes: int,
                 before_batch: Callable[[int], None] | None = None) -> None:
        if frames.ndim != 4 or frames.shape[0] < 3:
            raise ValueError(f"expected (T ≥ 3, C, H, W) frames, got {tuple(frames.shape)}")
        self.model = model
        self.frames = frames
        self.device = device
        self.height, self.width = frames.shape[-2:]
        self.flow_height, self.flow_width = flow_size(self.height, self.width, max_pixels)
        per_pair = raft_pair_bytes(self.flow_height, self.flow_width)
        self.batch = max(1, batch_bytes // per_pair)
        self.before_batch = before_batch
        self.pairs_computed = 0
        self._flows: dict[Pair, torch.Tensor] = {}
        self._masks: dict[int, torch.Tensor] = {}

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]

    def neighbours(self, t: int) -> tuple[int, int]:
        """(next, previous) frames a frame's mask compares with; the reference's at the ends."""
        last = self.num_frames - 1
        return (t + 1 if t < last else last - 2), (t - 1 if t > 0 else 2)

    def flow(self, src: int, dst: int) -> torch.Tensor:
        """(2, H, W) flow on frame ``src``'s grid that warps frame ``dst`` onto it."""
        self.ensure([(src, dst)])
        return self._flows[(src, dst)]

    def adjacent_flows(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagation flows of frames [start, stop): forward and backward, (1, n−1, 2, H, W).

        ``forward[:, i]`` = flow(start+i+1 → start+i), ``backward[:, i]`` = flow(start+i →
        start+i+1), as :meth:`RRTN.restore` takes them.
        """
        pairs = [(t + 1, t) for t in range(start, stop - 1)]
        pairs += [(t, t + 1) for t in range(start, stop - 1)]
        self.ensure(pairs)
        forward = [self._flows[(t + 1, t)] for t in range(start, stop - 1)]
        backward = [self._flows[(t, t + 1)] for t in range(start, stop - 1)]
        empty = torch.zeros(0, 2, self.height, self.width, device=self.device)
        return ((torch.stack(forward) if forward else empty).unsqueeze(0),
                (torch.stack(backward) if backward else empty).unsqueeze(0))

    def masks(self, start: int, stop: int) -> torch.Tensor:
        """(1, n, 1, H, W) noise masks of frames [start, stop)."""
        todo = [t for t in range(start, stop) if t not in self._masks]
        self.ensure(pair for t in todo for pair in ((t, self.neighbours(t)[0]),
                                                     (t, self.neighbours(t)[1])))
        for t in todo:
            nxt, prev = self.neighbours(t)
            cur, after, before = self._frames([t, nxt, prev]).split(1)
            self._masks[t] = residual_indicator(
                cur,
                flow_warp(after, self._flows[(t, nxt)][None]),
                flow_warp(before, self._flows[(t, prev)][None]),
            )[0]
        return torch.stack([self._masks[t] for t in range(start, stop)]).unsqueeze(0)

    def ensure(self, pairs: Iterable[Pair]) -> None:
        """Compute the flows of ``pairs`` not yet known, in memory-bounded batches."""
        todo = list(dict.fromkeys(p for p in pairs if p not in self._flows))
        for i in range(0, len(todo), self.batch):
            chunk = todo[i:i + self.batch]
            if self.before_batch is not None:
                self.before_batch(len(chunk))
            src = self._frames([a for a, _ in chunk])
            dst = self._frames([b for _, b in chunk])
            for pair, flow in zip(chunk, self._estimate(src, dst), strict=True):
                self._flows[pair] = flow
            self.pairs_computed += len(chunk)

    def forget_before(self, frame: int) -> None:
        """Drop flows and masks that only frames before ``frame`` use."""
        self._flows = {p: f for p, f in self._flows.items() if max(p) >= frame}
        self._masks = {t: m for t, m in self._masks.items() if t >= frame}

    def _frames(self, indices: list[int]) -> torch.Tensor:
        return self.frames[indices].to(self.device, non_blocking=True)

    def _estimate(self, src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        size = (self.flow_height, self.flow_width)
        if size == (self.height, self.width):
            return self.model.estimate_flow(src, dst).float()
        small = self.model.estimate_flow(
            F.interpolate(src, size=size, mode="bilinear", align_corners=False, antialias=True),
            F.interpolate(dst, size=size, mode="bilinear", align_corners=False, antialias=True),
        ).float()
        flow = F.interpolate(small, size=(self.height, self.width), mode="bilinear",
                             align_corners=False)
        scale = torch.tensor([self.width / size[1], self.height / size[0]], device=flow.device)
        return flow * scale.view(1, 2, 1, 1)
