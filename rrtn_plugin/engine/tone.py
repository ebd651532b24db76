"""The tone guard: a restored clip keeps the input's own low-frequency tone.

A restoration network may remove flicker (frame-to-frame changes of brightness) but must not
re-grade the shot: darken it, lift it or bend its contrast over large areas (issue 17: a model
trained to undo fading darkened every shot of real film by 0.065). The guard is a stage after
the network that holds whatever model is loaded to that rule.

Method. Frames are (T, H, W) luminance in the network's display-referred [0, 1] encoding.

1. The low-frequency part of a frame (:func:`tone_grid`) is a robust mean of its pixels in
   blocks of about ``1 / blocks`` of the frame's short side (the mean of the values clipped to
   the block's median ± ``spread``), smoothed across neighbouring blocks (binomial 1-2-1
   filter). Robust: dust, blotches, hairs and scratches cover a small part of a block and
   barely move it (each pixel by at most ``spread``), while a change of tone moves all of it;
   a mean, not the median itself, so that the clip's mean level is what is held.
2. The network's tone change is the low-frequency part of ``input − output``, per frame, and
   it is undone frame by frame: the output's low-frequency tone is the input's in every frame
   (``keep``: the tone as shot, flicker included). The network removes damage; tone is not its
   to change. Undone frame by frame, not smoothed in time: a smoothed correction leaves the
   network's frame-to-frame tone wobble in and smears the tone of anything that moves (a dark
   coat crossing a block darkens it for the frames around).
3. With ``deflicker`` (the default of the engine's options) each frame is then shifted as a
   whole so that its overall level (:func:`frame_level`, a robust mean of the whole frame) is
   the input's overall level smoothed in time (:func:`smooth_in_time`: a local straight-line
   fit with Gaussian weights of ``sigma_frames`` frames whose slope is kept only where the
   frames show one, never across a shot boundary):
   flicker, a change of exposure of the whole frame, is evened out while the clip's level and
   its fades stay. A real change of light within
   a shot (a lamp lit) is smoothed over ``sigma_frames`` too: use ``keep`` there.

Measured on the real films of ../shared with the bundled model (12 frames, 128×160, three damage
draws each): frame-by-frame tone with a levelled overall level scored 29.4–30.5 dB where levelling
each block's tone in time (the first version of this guard) scored 28.4–30.5, and 1.1–2.9 dB
more on pixels moving faster than 4 px/frame, which the block version left worse than the
damaged input.

The correction is computed on the block grid and upsampled bilinearly, so it is smooth at the
scale of the blocks and costs little at any frame size. Output values are not clamped (the
engine's results are not either).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rrtn_plugin.errors import RRTNError

Segments = Sequence[tuple[int, int]]
"""[start, stop) frame ranges (shots) that smoothing in time never crosses."""


@dataclass(frozen=True)
class ToneGuard:
    """Settings of :func:`guard_tone`.

    Attributes:
        blocks: blocks across the frame's short side (8: blocks of 46 px on a 368-px frame).
            More blocks follow local tone more closely but let big repaired blotches pull the
            correction; fewer hold only the overall level.
        sigma_frames: with ``deflicker``, the Gaussian sigma in frames over which the overall
            level is smoothed (0: no smoothing, the input's flicker stays).
        deflicker: shift every frame so that its overall level is the input's overall level
            smoothed in time; otherwise the tone is the input's frame by frame.
        spread: how far from its block's median a value counts in the block's mean (display
            units): a repaired speck moves it by at most this times the speck's share.
    """

    blocks: int = 8
    sigma_frames: float = 3.0
    deflicker: bool = False
    spread: float = 0.05

    def __post_init__(self) -> None:
        if self.blocks < 1:
            raise RRTNError(f"tone guard blocks must be ≥ 1, got {self.blocks}")
        if not self.spread > 0:
            raise RRTNError(f"tone guard spread must be > 0, got {self.spread}")
        if not (self.sigma_frames >= 0 and math.isfinite(self.sigma_frames)):
            raise RRTNError(f"tone guard sigma_frames must be ≥ 0, got {self.sigma_frames}")


def guard_tone(
    inp: torch.Tensor,
    out: torch.Tensor,
    *,
    segments: Segments | None = None,
    guard: ToneGuard | None = None,
) -> torch.Tensor:
    """``out`` with its low-frequency tone matched to ``inp``'s (see the module's method).

    Args:
        inp: (T, H, W) the network's input, display-referred [0, 1].
        out: (T, H, W) the network's output for it.
        segments: the clip's shots as [start, stop) ranges covering 0…T (None: one shot);
            deflicker's smoothing in time never crosses them, so a cut or a flash frame keeps
            its own level.
        guard: the settings (None: :class:`ToneGuard` defaults).

    Returns:
        (T, H, W) float32: ``out`` plus a smooth correction.
    """
    g = guard or ToneGuard()
    _check_clip(inp, "input")
    if out.shape != inp.shape:
        raise RRTNError(
            f"tone guard: output {tuple(out.shape)} and input {tuple(inp.shape)} differ"
        )
    x, y = inp.float(), out.float()
    ranges = check_segments(segments, inp.shape[0])
    change = tone_grid(x - y, blocks=g.blocks, spread=g.spread)
    kept = y + upsample_grid(change, inp.shape[-2:], blocks=g.blocks)
    if not g.deflicker:
        return kept
    level = smooth_in_time(frame_level(x, spread=g.spread), g.sigma_frames, ranges)
    return kept + (level - frame_level(kept, spread=g.spread)).view(-1, 1, 1)


def guard_reach(guard: ToneGuard) -> int:
    """How many frames on each side of a frame the guard reads: with ``deflicker``, the level
    smoothing's (:func:`time_reach`); none otherwise (the tone is matched frame by frame)."""
    return time_reach(guard.sigma_frames) if guard.deflicker else 0


def time_reach(sigma: float) -> int:
    """How many frames on each side :func:`smooth_in_time` reads at ``sigma`` (its Gaussian,
    cut at 3 sigma)."""
    return max(1, math.ceil(3 * sigma)) if sigma > 0 else 0


def block_side(height: int, width: int, blocks: int) -> int:
    """Side in px of the blocks for a frame of this size: ``blocks`` across the short side."""
    return max(1, math.ceil(min(height, width) / blocks))


def tone_grid(frames: torch.Tensor, *, blocks: int = 8, spread: float = 0.05) -> torch.Tensor:
    """(T, gh, gw): per-block robust means of (T, H, W) ``frames``, smoothed over the grid.

    A block's robust mean is the mean of its values clipped to its median ± ``spread``. Blocks
    are :func:`block_side` px square; the last row and column of blocks extend past the frame
    by replicating its edge. The grid is then filtered by a 1-2-1 binomial in each direction
    (edges replicated).
    """
    t, h, w = frames.shape
    side = block_side(h, w, blocks)
    gh, gw = math.ceil(h / side), math.ceil(w / side)
    x = F.pad(frames.unsqueeze(1), (0, gw * side - w, 0, gh * side - h), mode="replicate")
    x = x.view(t, gh, side, gw, side).permute(0, 1, 3, 2, 4).reshape(t, gh, gw, side * side)
    median = x.median(dim=-1, keepdim=True).values
    grid = torch.clamp(x, median - spread, median + spread).mean(dim=-1).unsqueeze(1)
    taps = torch.tensor([0.25, 0.5, 0.25], dtype=grid.dtype)
    grid = F.conv2d(F.pad(grid, (1, 1, 0, 0), mode="replicate"), taps.view(1, 1, 1, 3))
    grid = F.conv2d(F.pad(grid, (0, 0, 1, 1), mode="replicate"), taps.view(1, 1, 3, 1))
    return grid[:, 0]


def frame_level(frames: torch.Tensor, *, spread: float = 0.05) -> torch.Tensor:
    """(T,): each (T, H, W) frame's overall level, the mean of its values clipped to its median
    ± ``spread`` (specks and blotches barely move it; shifting a frame shifts it exactly)."""
    x = frames.flatten(1)
    median = x.median(dim=1, keepdim=True).values
    return torch.clamp(x, median - spread, median + spread).mean(dim=1)


def upsample_grid(
    grid: torch.Tensor, size: tuple[int, int] | torch.Size, *, blocks: int = 8
) -> torch.Tensor:
    """(T, H, W): a (T, gh, gw) grid from :func:`tone_grid` (same ``blocks``) interpolated
    bilinearly to the frame, each value at its block's centre (constant beyond the outer
    centres)."""
    h, w = int(size[0]), int(size[1])
    side = block_side(h, w, blocks)
    gh, gw = grid.shape[-2:]
    up = F.interpolate(
        grid.unsqueeze(1), size=(gh * side, gw * side), mode="bilinear", align_corners=False
    )
    return up[:, 0, :h, :w]


SLOPE_DOUBT = 4.0
"""How many times its own variance a fitted slope's square must exceed to be kept whole (see
:func:`smooth_in_time`)."""


def smooth_in_time(values: torch.Tensor, sigma: float, segments: Segments) -> torch.Tensor:
    """(T,) ``values`` smoothed over time: at each frame, a straight line fitted to the frames
    around it with Gaussian weights of ``sigma`` frames, its slope kept only as far as the
    frames show one.

    A line, not a plain weighted mean: a fade (a steady change of level) passes through
    unchanged, also at the ends of a shot, where a mean's one-sided window would hold the
    level back (a 12-frame fade-out to black came back 0.08 too bright in its last frame that
    way). But a line's slope fitted to flicker alone is noise, and near a shot's ends, where
    the window is one-sided, that noise is extrapolated (flicker of sd 0.02 on a steady 12-frame
    level: the last frame's value scattered 1.7 times as much as a mean's, all frames 1.2).
    So the slope ``b`` is shrunk by ``max(0, 1 − SLOPE_DOUBT · var(b) / b²)``
    (``var(b)`` from the fit's own residuals): a fade's slope, many standard errors from zero,
    stays whole; flicker's is dropped and the value is the weighted mean. Measured on 12-frame
    levels with flicker of sd 0.02: rms error 0.0091 (line) → 0.0072 (a mean: 0.0075) on a
    steady level, 0.0093 → 0.0095 on a fade-out (a mean: 0.031).

    Weights are cut at 3 sigma and never reach across a [start, stop) segment, so no value
    crosses a segment boundary and a one-frame segment keeps its own value. sigma 0: as is.
    Each frame's value is computed from the frames within reach of it alone, always in the same
    order, so a frame comes out bit for bit the same whatever else the clip holds beyond them
    (a request for a few frames equals a run over the whole clip).
    """
    if values.ndim != 1:
        raise RRTNError(f"smooth_in_time expects (T,) values, got {tuple(values.shape)}")
    if sigma <= 0:
        return values.clone()
    out = torch.empty_like(values)
    radius = time_reach(sigma)
    for start, stop in segments:
        for v in range(start, stop):
            lo, hi = max(start, v - radius), min(stop, v + radius + 1)
            out[v] = _local_level(values[lo:hi].double(), lo - v, sigma)
    return out


def _local_level(y: torch.Tensor, first: int, sigma: float) -> float:
    """The smoothed value at d = 0 of ``y`` sampled at d = first, first + 1, …: a weighted
    line fit with its slope shrunk by its significance."""
    d = torch.arange(first, first + y.shape[0], dtype=torch.float64)
    w = torch.exp(-(d**2) / (2 * sigma**2))
    s0, s1, s2 = w.sum(), (w * d).sum(), (w * d * d).sum()
    mean = (w * y).sum() / s0
    det = s0 * s2 - s1 * s1
    if det <= 1e-9:  # one frame
        return float(mean)
    slope = (s0 * (w * d * y).sum() - s1 * (w * y).sum()) / det
    residual = y - (mean + slope * (d - s1 / s0))
    n_eff = s0**2 / (w * w).sum()  # the weights' effective number of frames
    variance = (w * residual**2).sum() / s0 * n_eff / max(float(n_eff) - 2, 1e-3)
    slope_variance = variance * (((s0 * d - s1) * w / det) ** 2).sum()
    square = float(slope**2)
    keep = max(0.0, 1 - SLOPE_DOUBT * float(slope_variance) / square) if square > 0 else 0.0
    return float(mean - keep * slope * s1 / s0)


def check_segments(segments: Segments | None, frames: int) -> list[tuple[int, int]]:
    """``segments`` as a list, checked to cover 0…``frames`` in order without gaps."""
    if segments is None:
        return [(0, frames)]
    ranges = [(int(a), int(b)) for a, b in segments]
    position = 0
    for start, stop in ranges:
        if start != position or stop <= start:
            raise RRTNError(
                f"segments must cover frames 0…{frames} in order without gaps, got {ranges}"
            )
        position = stop
    if position != frames:
        raise RRTNError(f"segments must cover frames 0…{frames}, got {ranges}")
    return ranges


def _check_clip(clip: torch.Tensor, what: str) -> None:
    if clip.ndim != 3 or min(clip.shape) < 1:
        raise RRTNError(f"tone guard: expected a (T, H, W) {what}, got {tuple(clip.shape)}")
