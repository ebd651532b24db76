"""Measuring restoration quality: damaged/clean pairs, a classical baseline, a results table.

:func:`held_out_clips` films the held-out stills (never used in training) with a synthetic
camera and damages them; :func:`sequence_pair` reads a user's damaged and clean sequences.
:func:`evaluate` runs each method on each clip and scores it with :mod:`.quality`:
PSNR, SSIM, warp error (temporal flicker), and the precision and recall of the pixels the method
changed by more than ``CHANGED`` against the true damage mask.

The methods compared by ``rrtn-plugin evaluate``: the damaged input itself, a motion-compensated
temporal median (:func:`temporal_median`, the classical dust-busting filter), and the model run
through the clip engine (windows, padding, recursion) as in production.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import torch

from rrtn_plugin.engine import RestoreOptions, restore_clip
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.frames.image import read_pixels
from rrtn_plugin.frames.pipeline import FramePipeline
from rrtn_plugin.frames.plan import check_headers
from rrtn_plugin.frames.sequence import FramePattern
from rrtn_plugin.model import RRTN
from rrtn_plugin.model.flow import DISFlow
from rrtn_plugin.model.warp import flow_warp
from rrtn_plugin.synth import degrade_clip
from rrtn_plugin.synth.footage import HELD_OUT_STILLS, camera_clip, load_still
from rrtn_plugin.training.quality import (
    MaskScores,
    clip_motion,
    inside_frame,
    mask_scores,
    psnr,
    ssim,
    warp_error,
)

CHANGED = 0.1
"""A method "repaired" a pixel when it changed it by more than this (display-referred units)."""


@dataclass
class EvalClip:
    """(T, H, W) clean and damaged luminance in [0, 1]; ``mask`` (T, H, W) bool or None."""

    name: str
    clean: torch.Tensor
    damaged: torch.Tensor
    mask: torch.Tensor | None = None

    @cached_property
    def motion(self) -> torch.Tensor | None:
        """The clean clip's motion (:func:`clip_motion`), estimated once; None for one frame."""
        return clip_motion(self.clean) if self.clean.shape[0] > 1 else None


@dataclass
class MethodOutput:
    frames: torch.Tensor
    detected: torch.Tensor | None = None
    """(T, H, W) bool: where the method itself says damage is (e.g. RRTN's noise mask)."""


Method = Callable[[torch.Tensor], MethodOutput]


@dataclass
class Row:
    """Scores of one method averaged over clips (precision/recall pooled over all pixels)."""

    method: str
    psnr: float
    ssim: float
    warp_error: float
    precision: float
    recall: float
    seconds: float
    mask_precision: float = math.nan
    mask_recall: float = math.nan
    """Of the method's own damage mask (``MethodOutput.detected``), where it has one."""


def held_out_clips(
    *, frames: int = 12, height: int = 128, width: int = 160, per_still: int = 4, seed: int = 0
) -> list[EvalClip]:
    """Damaged/clean clips filmed off the held-out stills; the same seed gives the same clips."""
    clips = []
    for name in HELD_OUT_STILLS:
        for k in range(per_still):
            generator = torch.Generator().manual_seed(seed * 1000 + 17 * k + len(clips))
            clean = camera_clip(
                load_still(name), frames=frames, height=height, width=width, generator=generator
            )
            damaged = degrade_clip(clean, generator=generator)
            clips.append(EvalClip(f"{name}-{k}", clean, damaged.frames, damaged.mask))
    return clips


def sequence_pair(
    damaged: FramePattern,
    clean: FramePattern,
    *,
    mask: FramePattern | None = None,
    input_colorspace: str | None = None,
) -> EvalClip:
    """A damaged and a clean sequence (same frame numbers and size) as an :class:`EvalClip`.

    ``mask``: frames whose first channel is > 0.5 where the damage is (optional).
    """
    numbers = damaged.frames_on_disk()
    missing = sorted(set(numbers) - set(clean.frames_on_disk()))
    if not numbers or missing:
        raise RRTNError(
            f"{clean.display()}: frames {missing[:5]} of {damaged.display()} missing"
            if numbers
            else f"{damaged.display()}: no frames on disk"
        )
    info = check_headers(damaged, numbers)[0]
    check_headers(clean, numbers)
    pipeline = FramePipeline(info.channels, input_colorspace=input_colorspace)

    truth = None
    if mask is not None:
        truth = torch.stack(
            [torch.from_numpy(read_pixels(mask.path(n))[1][..., 0]) > 0.5 for n in numbers]
        )
    pair = EvalClip(
        damaged.display(),
        pipeline.read_clip(clean, numbers),
        pipeline.read_clip(damaged, numbers),
        truth,
    )
    if pair.clean.shape != pair.damaged.shape:
        raise RRTNError(f"{damaged.display()} and {clean.display()} differ in frame size")
    return pair


def temporal_median(damaged: torch.Tensor, *, radius: int = 1) -> torch.Tensor:
    """Motion-compensated temporal median of (T, H, W) frames.

    Each frame's neighbours within ``radius`` are warped onto it with DIS optical flow and the
    per-pixel median taken; where a neighbour's match falls outside its frame the frame's own
    pixel stands in. At the clip's ends the window shifts inward so it always holds
    2·radius + 1 frames (shorter clips use all their frames).
    """
    t = damaged.shape[0]
    size = min(2 * radius + 1, t)
    frames = damaged.unsqueeze(1) * 2 - 1
    dis = DISFlow()
    out = []
    for i in range(t):
        start = min(max(i - radius, 0), t - size)
        stack = [damaged[i]]
        for j in range(start, start + size):
            if j != i:
                flow = dis(frames[i : i + 1], frames[j : j + 1])
                warped = flow_warp(damaged[j][None, None], flow)[0, 0]
                stack.append(torch.where(inside_frame(flow[0]), warped, damaged[i]))
        out.append(torch.stack(stack).median(dim=0).values)
    return torch.stack(out)


def model_method(first: RRTN, second: RRTN | None, options: RestoreOptions) -> Method:
    """The model through the clip engine; its noise mask is what it says is damaged."""

    def run(damaged: torch.Tensor) -> MethodOutput:
        result = restore_clip(damaged, first=first, second=second, options=options)
        return MethodOutput(result.frames.clamp(0, 1), result.noise_mask > CHANGED)

    return run


def median_method(radius: int = 1) -> Method:
    def run(damaged: torch.Tensor) -> MethodOutput:
        return MethodOutput(temporal_median(damaged, radius=radius))

    return run


def evaluate(clips: Sequence[EvalClip], methods: dict[str, Method]) -> list[Row]:
    """Score every method on every clip; one :class:`Row` per method, in the given order."""
    if not clips:
        raise RRTNError("nothing to evaluate: no clips")
    rows = []
    for name, method in methods.items():
        scores: dict[str, list[float]] = {"psnr": [], "ssim": [], "warp": []}
        changed, detected, truth = [], [], []
        started = time.perf_counter()
        for clip in clips:
            motion = clip.motion
            output = method(clip.damaged)
            frames = output.frames
            scores["psnr"].append(psnr(frames, clip.clean))
            scores["ssim"].append(ssim(frames, clip.clean))
            scores["warp"].append(warp_error(frames, motion) if motion is not None else math.nan)
            if clip.mask is not None:
                changed.append(((frames - clip.damaged).abs() > CHANGED).flatten())
                truth.append(clip.mask.flatten())
                if output.detected is not None:
                    detected.append(output.detected.flatten())
        seconds = time.perf_counter() - started
        nan = MaskScores(math.nan, math.nan)
        repaired = mask_scores(torch.cat(changed), torch.cat(truth)) if truth else nan
        own = (
            mask_scores(torch.cat(detected), torch.cat(truth))
            if truth and len(detected) == len(truth)
            else nan
        )
        rows.append(
            Row(
                method=name,
                psnr=_mean(scores["psnr"]),
                ssim=_mean(scores["ssim"]),
                warp_error=_mean(scores["warp"]),
                precision=repaired.precision,
                recall=repaired.recall,
                seconds=seconds,
                mask_precision=own.precision,
                mask_recall=own.recall,
            )
        )
    return rows


def identity_method(damaged: torch.Tensor) -> MethodOutput:
    return MethodOutput(damaged)


def format_table(rows: Sequence[Row], clean_warp_error: float | None = None) -> str:
    """A Markdown table of the rows (and the clean clips' own warp error as the floor)."""
    lines = [
        "| method | PSNR dB | SSIM | warp error ×100 | repaired px precision / recall | "
        "own mask precision / recall | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.method} | {r.psnr:.2f} | {r.ssim:.4f} | {100 * r.warp_error:.2f} | "
            f"{_pct(r.precision)} / {_pct(r.recall)} | "
            f"{_pct(r.mask_precision)} / {_pct(r.mask_recall)} | {r.seconds:.1f} |"
        )
    if clean_warp_error is not None:
        lines.append(f"| clean clips (floor) | | | {100 * clean_warp_error:.2f} | | | |")
    return "\n".join(lines)


def clean_warp_error(clips: Sequence[EvalClip]) -> float:
    """The warp error of the clean clips themselves: what no restoration can go below."""
    return _mean([warp_error(c.clean, c.motion) for c in clips if c.motion is not None])


def _mean(values: Sequence[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return sum(known) / len(known) if known else math.nan


def _pct(value: float) -> str:
    return "–" if math.isnan(value) else f"{100 * value:.1f} %"
