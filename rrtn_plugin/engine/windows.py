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

Which frames a request reads follows from the windows: :func:`needed_frames` is the one rule,
used by sessions (:meth:`ClipSession.needed_frames`) and farm chunks (:func:`frames_read`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence

import torch

from rrtn_plugin.engine.cuts import shot_reach
from rrtn_plugin.engine.finish import tone_guard_of
from rrtn_plugin.engine.tone import guard_reach
from rrtn_plugin.options import RestoreOptions

Window = tuple[int, int]
"""[start, stop) frames of a window."""


def plan_windows(start: int, stop: int, *, length: int, overlap: int) -> list[Window]:
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
        if hi > lo:
            windows.append((lo, hi))
        k += 1
    # Only windows clipped at the clip's ends can lie inside another, which then shares their
    # start or their end: keep the longest of those with the same start and of the same end.
    longest_from = {lo: hi for lo, hi in windows}  # starts are ascending, ends too
    earliest_to = {hi: lo for lo, hi in reversed(windows)}
    return list(
        dict.fromkeys(
            w for w in windows if longest_from[w[0]] == w[1] and earliest_to[w[1]] == w[0]
        )
    )


def window_weights(length: int) -> torch.Tensor:
    """(length,) weights of a window's frames: distance to the nearer end, 1 at both ends."""
    pos = torch.arange(length)
    return torch.minimum(pos + 1, length - pos).float()


def covering(windows: Sequence[Window], frames: Iterable[int]) -> list[Window]:
    """The windows, in order, that contain at least one of ``frames``."""
    chosen = sorted(set(frames))
    found = []
    for start, stop in windows:
        i = bisect_left(chosen, start)
        if i < len(chosen) and chosen[i] < stop:
            found.append((start, stop))
    return found


def mask_neighbours(frame: int, *, first: int, last: int) -> tuple[int, int]:
    """(next, previous): the frames a frame's noise mask compares it with, in a clip of the
    frames ``first``–``last`` (3 or more). At the clip's ends, where a neighbour is missing, the
    reference's stand-ins: frame ``last − 2`` after the last, frame ``first + 2`` before the
    first."""
    return (frame + 1 if frame < last else last - 2), (frame - 1 if frame > first else first + 2)


def needed_frames(
    frames: Iterable[int],
    *,
    windows: Sequence[Window],
    clip: tuple[int, int],
    passes: int,
    around: int = 0,
    margin: int = 0,
) -> list[int]:
    """Every frame that restoring ``frames`` with ``passes`` recursion passes reads, sorted.

    The rule: the stages after the network (the tone guard) read the restored frames within
    ``around`` of each frame asked for; each pass, from the last back, needs the windows
    covering the frames it must produce, and each of their frames' noise masks its two
    neighbours (:func:`mask_neighbours`); the previous pass must then produce all those
    frames. Pass p of a window thus reaches one window (and a neighbour) further on each side
    than pass p − 1. Shot detection then looks ``margin`` frames further each way, to find
    the cuts among those frames (:func:`~rrtn_plugin.engine.cuts.shot_reach`). Cuts only ever
    shorten what a run reads, so the rule needs no frame's content.

    Args:
        frames: the frames asked for.
        windows: the clip's windows (:func:`plan_windows`), or at least all of them within
            ``passes`` windows and neighbours of ``frames``.
        clip: the clip's first and last frame; at least 3 frames (shorter clips are extended by
            temporal reflection first).
        passes: recursion passes, at least 1.
        around, margin: frames the stages and shot detection look at on each side
            (:func:`stage_reach`).
    """
    if clip[1] - clip[0] < 2:
        raise ValueError(f"the rule needs a clip of 3 frames or more, got {clip[0]}-{clip[1]}")
    wanted = widen(frames, around, clip)
    for _ in range(passes):
        reached: set[int] = set()
        for s, e in covering(windows, wanted):
            for v in range(s, e):
                reached |= {v, *mask_neighbours(v, first=clip[0], last=clip[1])}
        wanted = reached
    return sorted(widen(wanted, margin, clip))


def widen(frames: Iterable[int], by: int, clip: tuple[int, int]) -> set[int]:
    """``frames`` and every frame within ``by`` of one, inside ``clip`` (first, last)."""
    chosen = sorted(set(frames))
    if by <= 0 or not chosen:
        return set(chosen)
    out: set[int] = set()
    start = prev = chosen[0]
    for f in [*chosen[1:], None]:
        if f is not None and f - prev <= 2 * by + 1:
            prev = f
            continue
        out.update(range(max(clip[0], start - by), min(clip[1], prev + by) + 1))
        if f is not None:
            start = prev = f
    return out


def stage_reach(options: RestoreOptions) -> tuple[int, int]:
    """(around, margin) of :func:`needed_frames` under ``options``: the tone guard's reach in
    time (none when it is off or ``keep``) and shot detection's (none without ``cuts``)."""
    guard = tone_guard_of(options)
    around = guard_reach(guard) if guard is not None else 0
    return around, shot_reach() if options.cuts else 0


def frames_read(
    first: int, last: int, *, clip: tuple[int, int], options: RestoreOptions
) -> tuple[int, int]:
    """The frames (first and last, inclusive) that restoring ``first``–``last`` of the clip
    ``clip`` (its first and last frame) under ``options`` reads: :func:`needed_frames`, the
    rule :meth:`ClipSession.needed_frames` applies, on the windows near the range (a clip of
    fewer than 3 frames is read whole). A run that reads these frames restores them as a run
    over the whole clip does.
    """
    if not clip[0] <= first <= last <= clip[1]:
        raise ValueError(f"frames {first}-{last} are not in the clip {clip[0]}-{clip[1]}")
    if clip[1] - clip[0] < 2:
        return clip
    length, passes = options.window, options.max_passes
    around, margin = stage_reach(options)
    # Each pass reaches at most a window and a neighbour further, so the clip's windows beyond
    # that (and a window's margin) are never needed: plan only the part of the clip within it.
    reach = around + passes * (length + 1) + length
    part = (max(clip[0], first - reach), min(clip[1], last + reach))
    windows = plan_windows(part[0], part[1] + 1, length=length, overlap=options.window_overlap)
    needed = needed_frames(
        range(first, last + 1),
        windows=windows,
        clip=clip,
        passes=passes,
        around=around,
        margin=margin,
    )
    return needed[0], needed[-1]
