"""Restoring a whole clip in one call: :func:`restore_clip`, a one-request :class:`ClipSession`.

It takes a (T, H, W) luminance clip in the network's display-referred [0, 1] encoding (colour
spaces and files are handled before this) and returns the restored clip with its noise mask,
optional motion, and the PSNR of every pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rrtn_plugin.engine.cache import WorkCache
from rrtn_plugin.engine.device import resolve_device
from rrtn_plugin.engine.memory import default_budget
from rrtn_plugin.engine.session import ClipSession
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.model import RRTN
from rrtn_plugin.options import RestoreOptions
from rrtn_plugin.progress import Progress

CACHE_SHARE = 0.25
"""Part of the memory budget a one-call restore keeps for the flows and masks windows share."""


@dataclass
class ClipResult:
    """What :func:`restore_clip` returns; CPU float32 tensors.

    Attributes:
        frames: (T, H, W) restored clip in [0, 1] encoding (not clamped).
        noise_mask: (T, H, W) the first pass's noise mask, in the same units as frame values
            (|difference| of frame values): the damage RRTN saw.
        motion_forward, motion_backward: (T, 2, H, W) first-pass motion in pixels (x, y with y
            down) to the next / previous frame, zero where there is none; with ``keep_motion``.
        pass_psnr: PSNR(pass input, pass output) in dB on 8-bit frames, one per pass run.
        flow_pairs: RAFT pair estimations per pass.
        windows: the [start, stop) frame windows of the schedule.
        tiles: tiles per frame.
        seconds: wall time.
    """

    frames: torch.Tensor
    noise_mask: torch.Tensor
    pass_psnr: list[float]
    flow_pairs: list[int]
    windows: list[tuple[int, int]]
    tiles: int
    seconds: float
    motion_forward: torch.Tensor | None = None
    motion_backward: torch.Tensor | None = None


def restore_clip(
    clip: torch.Tensor | np.ndarray,
    *,
    first: RRTN,
    second: RRTN | None = None,
    options: RestoreOptions | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    first_frame: int = 0,
) -> ClipResult:
    """Restore a clip of any length and frame size.

    Args:
        clip: (T, H, W) luminance in the network's [0, 1] encoding, T ≥ 1, finite values.
        first: network for the first pass.
        second: network for later passes (default: ``first``).
        options: scheduling; see :class:`RestoreOptions`.
        progress: called as work advances.
        should_stop: polled between steps (every frame of every branch); returning True stops
            the work with RRTNError(kind=CANCELLED).
        first_frame: the frame number of ``clip[0]`` (windows lie on a grid of frame numbers).

    How it works: see :class:`ClipSession`. Frames are mirror-padded to multiples of 16 (at
    least 128) and clips shorter than 3 frames are extended by temporal reflection; flows are
    computed once per frame pair and pass; windows are cross-faded; frames too large for the
    memory budget are cut into cross-faded tiles. Pass 1 uses ``first``; further passes use
    ``second`` while the last pass's PSNR is below ``stop_psnr``.
    """
    opts = options or RestoreOptions()
    opts.check()
    started = time.perf_counter()
    frames = _as_clip(clip)
    n, h, w = frames.shape
    session = ClipSession(
        first_frame=first_frame,
        num_frames=n,
        height=h,
        width=w,
        first=first,
        second=second,
        options=opts,
        cache=one_call_cache(opts),
        owner="clip",
    )
    for t in range(n):
        session.put_frame(first_frame + t, frames[t])
    numbers = list(session.frame_numbers)
    result = session.restore(
        numbers, keep_motion=opts.keep_motion, progress=progress, should_stop=should_stop
    )
    clip_result = ClipResult(
        frames=torch.stack([result.frames[f] for f in numbers]),
        noise_mask=torch.stack([result.masks[f] for f in numbers]),
        pass_psnr=result.pass_psnr,
        flow_pairs=result.flow_pairs,
        windows=[(s + first_frame, e + first_frame) for s, e in session.windows],
        tiles=len(session.tiles),
        seconds=0.0,
    )
    if result.motion_forward is not None and result.motion_backward is not None:
        clip_result.motion_forward = torch.stack([result.motion_forward[f] for f in numbers])
        clip_result.motion_backward = torch.stack([result.motion_backward[f] for f in numbers])
    clip_result.seconds = time.perf_counter() - started
    return clip_result


def one_call_cache(options: RestoreOptions) -> WorkCache:
    """A cache for one call's windows to share flows and masks: a part of the memory budget."""
    device = resolve_device(options.device)
    budget = options.memory_budget or default_budget(device)
    return WorkCache(device=device, device_budget=int(CACHE_SHARE * budget))


def _as_clip(clip: torch.Tensor | np.ndarray) -> torch.Tensor:
    frames = torch.as_tensor(np.asarray(clip) if not isinstance(clip, torch.Tensor) else clip)
    if frames.ndim != 3 or min(frames.shape) < 1:
        raise RRTNError(f"expected a (T, H, W) clip with T, H, W ≥ 1, got {tuple(frames.shape)}")
    if not frames.is_floating_point():
        raise RRTNError(f"expected float frames in [0, 1], got {frames.dtype}")
    frames = frames.detach().to("cpu", torch.float32)
    bad = ~torch.isfinite(frames)
    if bad.any():
        which = sorted({int(i) for i in bad.flatten(1).any(dim=1).nonzero().flatten()})
        raise RRTNError(
            f"clip has NaN or infinite values in frame(s) {which[:10]}; replace "
            "them before restoring (the network would spread them)"
        )
    return frames
