"""Shot boundaries: cuts and single-frame flashes, found from the frames' luminance.

Restoration aligns and propagates features between neighbouring frames; across a cut (two
different shots joined) or a flash (one frame unlike both its neighbours: an over-exposed
frame, a light flash, a splice frame) that drags one picture into another (issue 17: a ghost of
the previous shot, a clip 9 dB worse than its input). The engine restores each
:meth:`Shots.segments` range on its own; this module only finds them.

Method. Each frame is reduced to a signature (:func:`frame_signature`): its mean level and a
24 × 32 block-average thumbnail with the mean removed and unit norm. Two frames' *difference* is
1 − the normalised correlation of their thumbnails: invariant to brightness and contrast flicker,
barely moved by dust, grain or scratches (averaged away in the thumbnail), small for camera and
object motion within a shot (measured on two real films, 368×480: at most 0.18 between
neighbours, damaged or not), and near 1 between unrelated pictures (0.82 across the two films
joined). Their *level step* is the difference of their mean levels (display-referred units;
real film flickers by up to 0.065 between neighbours).

A *jump of light* is a level step above ``flash_level`` and above ``level_spread`` times the
robust spread of the clip's own steps over ``spread_frames`` frames around it (so heavy flicker
raises the bar).

Every decision is local: whether a shot starts at frame t depends only on the frames within
:func:`shot_reach` of it, so a session that holds part of a clip, a farm chunk and a run over the
whole clip find the same boundaries there (:func:`boundaries_between`).

- A frame that stands out from both neighbours (difference above ``cut_difference`` from each,
  or a level that departs from their mean by a jump of light measured against how all frames
  depart from theirs) while its neighbours are alike is a **flash**: a one-frame segment.
- Otherwise a pair with difference above ``cut_difference`` or a jump of light is a **cut** (a
  light that changes at once is smeared by alignment as a cut is; two flashed frames in a row
  become a short segment between two cuts); so is a pair whose difference is above
  ``soft_difference`` and ``soft_ratio`` times the median difference of the pairs around it,
  when the change lasts (a cut between two similar framings of one scene; one odd frame, such
  as a frame that jumped in the gate, is neither).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rrtn_plugin.errors import RRTNError

THUMBNAIL = (24, 32)
"""Size of the frame thumbnails compared, (height, width)."""


@dataclass(frozen=True)
class CutRules:
    """Thresholds of :func:`find_shots`; the defaults hold on real old film (module docs).

    Attributes:
        cut_difference: a pair this different (1 − correlation of thumbnails) is a cut.
        soft_difference, soft_ratio, context: a pair above ``soft_difference`` and more than
            ``soft_ratio`` × the median difference of the ``context`` pairs on each side is a
            cut too.
        flash_level, level_spread: a level step between neighbours above ``flash_level``
            and above ``level_spread`` robust standard deviations of the clip's steps is a jump
            of light (:func:`jump_level`), a cut. Real film flickers by up to 0.065 between
            neighbours.
        flash_spread: a frame whose level stands out from the mean of its neighbours' by
            more than ``flash_level`` and this many robust standard deviations of how the other
            frames (not it, not its neighbours) stand out, while its neighbours agree, is a
            flash.
        spread_frames: the clip's flicker (the robust spreads above) is measured over this
            many frames on each side (moved inwards at the clip's ends).
    """

    cut_difference: float = 0.5
    soft_difference: float = 0.35
    soft_ratio: float = 6.0
    context: int = 4
    flash_level: float = 0.12
    level_spread: float = 4.0
    flash_spread: float = 4.0
    spread_frames: int = 16


@dataclass(frozen=True)
class Shots:
    """Where a clip of ``frames`` frames breaks.

    Attributes:
        frames: the clip's length.
        cuts: indices t where a new shot starts (1 ≤ t < frames), ascending.
        flashes: indices of single frames unlike both neighbours, ascending.
    """

    frames: int
    cuts: tuple[int, ...] = ()
    flashes: tuple[int, ...] = ()

    @property
    def boundaries(self) -> list[int]:
        """Indices where a segment starts, 0 excluded: the cuts, each flash and the frame
        after it."""
        starts = set(self.cuts)
        for f in self.flashes:
            starts.update((f, f + 1))
        return sorted(b for b in starts if 0 < b < self.frames)

    def segments(self) -> list[tuple[int, int]]:
        """[start, stop) ranges that restoration never aligns or propagates across; a flash is
        a range of its own."""
        edges = [0, *self.boundaries, self.frames]
        return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


@dataclass(frozen=True)
class Signatures:
    """Per-frame signatures of a clip: ``thumbnails`` (T, 24, 32), zero mean and unit norm
    each, and ``levels`` (T,) mean luminance."""

    thumbnails: torch.Tensor
    levels: torch.Tensor


def frame_signature(frame: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The (24, 32) normalised thumbnail and mean level of one (H, W) luminance frame."""
    if frame.ndim != 2 or min(frame.shape) < 1:
        raise RRTNError(f"expected an (H, W) frame, got {tuple(frame.shape)}")
    x = frame.detach().float().cpu()
    thumb = F.adaptive_avg_pool2d(x[None, None], THUMBNAIL)[0, 0]
    thumb = thumb - thumb.mean()
    return thumb / thumb.norm().clamp_min(1e-6), float(x.mean())


def signatures(frames: torch.Tensor) -> Signatures:
    """:func:`frame_signature` of every frame of a (T, H, W) clip."""
    if frames.ndim != 3:
        raise RRTNError(f"expected a (T, H, W) clip, got {tuple(frames.shape)}")
    return signatures_of([frame_signature(f) for f in frames])


def signatures_of(parts: Sequence[tuple[torch.Tensor, float]]) -> Signatures:
    """The :class:`Signatures` of consecutive frames from their :func:`frame_signature`."""
    return Signatures(
        thumbnails=torch.stack([p[0] for p in parts]),
        levels=torch.tensor([p[1] for p in parts], dtype=torch.float32),
    )


def difference(sig: Signatures, a: int, b: int) -> float:
    """1 − correlation of frames ``a`` and ``b`` (0: same picture, ~1: unrelated)."""
    return 1.0 - float((sig.thumbnails[a] * sig.thumbnails[b]).sum())


def find_shots(sig: Signatures, rules: CutRules | None = None) -> Shots:
    """The cuts and flashes of a clip from its :class:`Signatures` (see the module docs)."""
    r = rules or CutRules()
    t = sig.levels.shape[0]
    if t < 2:
        return Shots(frames=t)
    diffs = [difference(sig, i, i + 1) for i in range(t - 1)]  # pair (i, i+1)
    levels = sig.levels
    steps = levels[1:] - levels[:-1]
    near = r.spread_frames

    def unlike(i: int) -> bool:
        """Pair (i, i+1) shows different pictures or a jump of light."""
        lo, hi = _around(i, near, len(steps))
        jump = jump_level(steps[lo:hi], r, r.level_spread)
        return diffs[i] > r.cut_difference or abs(float(steps[i])) > jump

    flashes = []
    if t >= 3:
        # how far each inner frame stands out from the mean of its two neighbours
        outlying = levels[1:-1] - (levels[:-2] + levels[2:]) / 2
        for f in range(1, t - 1):
            # the clip's own spread near it, without it and its neighbours (which it moves)
            lo, hi = _around(f - 1, near, len(outlying))
            others = torch.cat([outlying[lo : max(lo, f - 2)], outlying[f + 1 : hi]])
            bar = jump_level(others, r, r.flash_spread)
            stands_out = abs(float(outlying[f - 1])) > bar or (
                diffs[f - 1] > r.cut_difference and diffs[f] > r.cut_difference
            )
            alike = (
                difference(sig, f - 1, f + 1) <= r.cut_difference
                and abs(float(levels[f + 1] - levels[f - 1])) <= bar
            )
            if stands_out and alike:
                flashes.append(f)
    near_flash = {p for f in flashes for p in (f - 1, f)}

    cuts = []
    for i in range(t - 1):
        if i in near_flash:
            continue
        if unlike(i) or _soft_cut(sig, diffs, i, r):
            cuts.append(i + 1)
    return Shots(frames=t, cuts=tuple(cuts), flashes=tuple(flashes))


def _around(i: int, near: int, length: int) -> tuple[int, int]:
    """[lo, hi): the 2·``near`` + 1 values around value ``i`` of ``length``, moved inwards at
    either end so that every value is measured against as many others."""
    lo = max(0, min(i - near, length - (2 * near + 1)))
    return lo, min(length, lo + 2 * near + 1)


def shot_reach(rules: CutRules | None = None) -> int:
    """How far from a frame the frames lie that decide whether a shot starts there: the
    flicker measured around a pair or a flash, a flash's neighbours, a soft cut's context."""
    r = rules or CutRules()
    return max(2 * r.spread_frames, r.context) + 3


def boundaries_between(
    sig: Signatures, lo: int, hi: int, rules: CutRules | None = None
) -> list[int]:
    """The frames t with lo < t ≤ hi where a shot starts (:attr:`Shots.boundaries`), found
    from the signatures ``sig`` of a part of a clip that holds every frame within
    :func:`shot_reach` of lo…hi (or reaches the clip's end there): the same boundaries
    :func:`find_shots` finds there on the whole clip. Indices are ``sig``'s."""
    shots = find_shots(sig, rules)
    return [b for b in shots.boundaries if lo < b <= hi]


def jump_level(changes: torch.Tensor, rules: CutRules, spreads: float) -> float:
    """The level change above which it counts as a jump of light: ``flash_level``, or
    ``spreads`` robust standard deviations (1.4826 × the median absolute deviation) of the
    clip's own ``changes`` of that kind (its flicker), when that is more."""
    if changes.numel() < 3:
        return rules.flash_level
    spread = 1.4826 * float((changes - changes.median()).abs().median())
    return max(rules.flash_level, spreads * spread)


def _soft_cut(sig: Signatures, diffs: list[float], i: int, r: CutRules) -> bool:
    """Pair (i, i+1) differs by more than ``soft_difference`` and ``soft_ratio`` × the median
    of the pairs around it, and the change lasts: frames i−1 and i+1, and i and i+2, differ too
    (a single odd frame, such as a frame that jumped in the gate, is no cut)."""
    if diffs[i] <= r.soft_difference:
        return False
    around = diffs[max(0, i - r.context) : i] + diffs[i + 1 : i + 1 + r.context]
    around = [d for d in around if d <= r.cut_difference]  # other cuts are no baseline
    if not around or diffs[i] <= r.soft_ratio * float(torch.tensor(around).median()):
        return False
    t = sig.levels.shape[0]
    before = i == 0 or difference(sig, i - 1, i + 1) > r.soft_difference
    after = i + 2 >= t or difference(sig, i, i + 2) > r.soft_difference
    return before and after


def detect_shots(frames: torch.Tensor, rules: CutRules | None = None) -> Shots:
    """Cuts and flashes of a (T, H, W) luminance clip in [0, 1] (one call)."""
    return find_shots(signatures(frames), rules)
