"""Measuring restoration quality: damaged/clean pairs, a classical baseline, a results table,
and the same on real old film.

:func:`held_out_clips` films the held-out stills (never used in training) with a synthetic
camera and damages them; :func:`sequence_pair` reads a user's damaged and clean sequences.
:func:`evaluate` runs each method on each clip and scores it with :mod:`.quality`:
PSNR, SSIM, warp error (temporal flicker), and the precision and recall of the pixels the method
changed by more than ``CHANGED`` against the true damage mask.

The methods compared by ``rrtn-plugin evaluate``: the damaged input itself, a motion-compensated
temporal median (:func:`temporal_median`, the classical dust-busting filter), and the model run
through the clip engine (windows, padding, recursion) as in production.

Real film (:func:`real_film_report`): the two public-domain films of ``../shared/clips``
(:func:`shared_clips_folder`; absent elsewhere, and then skipped with a reason), cropped small,
damaged by :class:`FilmDamage` (an evaluation-only damage model the training never used) in
several draws, plus the films with no damage (the output's mean and median shift and warp
error against the input's), a clip with a cut and one with a flash (:func:`real_film_cases`).
Each method is scored against the film itself (:func:`evaluate_real_film`); the tables come
from :func:`format_real_film` and a before/after strip image from :func:`write_strip`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np
import torch

from rrtn_plugin.atomic import atomic_output
from rrtn_plugin.color import LUMA_WEIGHTS
from rrtn_plugin.engine import RestoreOptions, restore_clip
from rrtn_plugin.errors import ErrorKind, RRTNError
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
    frame_level_spread,
    inside_frame,
    level_matched_psnr,
    mask_scores,
    masked_psnr,
    psnr,
    ssim,
    warp_error,
)

CHANGED = 0.1
"""A method "repaired" a pixel when it changed it by more than this (display-referred units)."""
FAST_MOTION = 4.0
"""Pixels moving faster than this (px/frame, along the reference's motion to the next frame)
are scored on their own in the real-film evaluation: where alignment fails, a recurrent
restorer ghosts."""


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
    *,
    frames: int = 12,
    height: int = 128,
    width: int = 160,
    per_still: int = 4,
    seed: int = 0,
    reference: str = "target",
) -> list[EvalClip]:
    """Damaged/clean clips filmed off the held-out stills; the same seed gives the same clips.

    With ``reference`` ``target`` (the default) the clean clip is the damage's target
    (:attr:`~rrtn_plugin.synth.DamagedClip.target`): the filmed still with the print's own fade
    and softness, so a method is not rewarded for re-grading the shot (undoing the fade), only
    for removing damage and flicker. ``clean``: the filmed still itself, as measured before
    issue 17 (which rewarded undoing the fade).
    """
    if reference not in ("target", "clean"):
        raise RRTNError(f"reference must be 'target' or 'clean', got {reference!r}")
    clips: list[EvalClip] = []
    for name in HELD_OUT_STILLS:
        for k in range(per_still):
            generator = torch.Generator().manual_seed(seed * 1000 + 17 * k + len(clips))
            clean = camera_clip(
                load_still(name), frames=frames, height=height, width=width, generator=generator
            )
            damaged = degrade_clip(clean, generator=generator)
            truth = damaged.target if reference == "target" else clean
            clips.append(EvalClip(f"{name}-{k}", truth, damaged.frames, damaged.mask))
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


# --- Real film ---------------------------------------------------------------------------------

REAL_FILMS = ("a_trip_down_market_street_before_the_fire", "the_great_train_robbery")
"""The real old-film clips of ``../shared/clips`` (368×480 PNG frames), in this order."""
SHORT_NAMES = {
    "a_trip_down_market_street_before_the_fire": "market street",
    "the_great_train_robbery": "train robbery",
}


def shared_clips_folder() -> Path | None:
    """``$RRTN_SHARED/clips`` or ``../shared/clips`` beside the checkout, if it holds the real
    films; None otherwise (callers skip the real-film evaluation and say why)."""
    root = os.environ.get("RRTN_SHARED")
    shared = Path(root) if root else Path(__file__).resolve().parents[3] / "shared"
    folder = shared / "clips"
    if all((folder / name).is_dir() for name in REAL_FILMS):
        return folder
    return None


def load_real_film(
    folder: Path,
    name: str,
    *,
    frames: int = 12,
    height: int = 128,
    width: int = 160,
    start: int = 0,
) -> torch.Tensor:
    """(frames, height, width) luminance in [0, 1] of a real clip: frames ``start``… of
    ``folder/name/*.png``, cropped at the frame's centre (8-bit sRGB PNG: display-referred)."""
    paths = sorted((folder / name).glob("*.png"))[start : start + frames]
    if len(paths) < frames:
        raise RRTNError(
            f"{folder / name}: {len(paths)} PNG frames from {start}, need {frames}",
            kind=ErrorKind.NOT_FOUND,
        )
    weights = torch.from_numpy(LUMA_WEIGHTS).float()
    out = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise RRTNError(f"{path}: cannot read", kind=ErrorKind.INVALID_INPUT)
        h, w = bgr.shape[:2]
        if h < height or w < width:
            raise RRTNError(f"{path}: {w}x{h} is smaller than the {width}x{height} crop")
        top, left = (h - height) // 2, (w - width) // 2
        rgb = torch.from_numpy(np.ascontiguousarray(bgr[top : top + height, left : left + width]))
        out.append(rgb.flip(-1).float().div(255) @ weights)
    return torch.stack(out).clamp(0, 1)


@dataclass
class FilmDamage:
    """A film-damage model written for evaluation only, unlike :mod:`rrtn_plugin.synth` (which
    trains the model) in every drawing, so that scores measure damage the model never saw.

    Per frame: round dust specks (1–3 px, dark or bright), soft elliptic blotches (4–10 px),
    a brightness offset drawn independently per frame (flicker), Gaussian grain; through the
    clip: one vertical scratch that drifts sideways. Intensities in display-referred units.
    """

    specks: int = 12
    blotches: int = 2
    flicker: float = 0.03
    grain: float = 0.025
    scratch: bool = True

    def apply(self, clip: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(damaged (T, H, W) in [0, 1], mask (T, H, W) bool of specks, blotches, scratch)."""
        t, h, w = clip.shape
        rng = np.random.default_rng(seed)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        out = clip.numpy().astype(np.float32).copy()
        mask = np.zeros((t, h, w), bool)
        x0, drift = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(-0.8, 0.8)
        scratch_value = rng.choice([0.05, 0.95])
        for i in range(t):
            cover = np.zeros((h, w), np.float32)
            value = np.zeros((h, w), np.float32)
            spots = [(rng.uniform(0.6, 1.6),) * 2 for _ in range(rng.poisson(self.specks))]
            spots += [
                (rng.uniform(2, 5), rng.uniform(2, 5)) for _ in range(rng.poisson(self.blotches))
            ]
            for ry, rx in spots:
                cy, cx = rng.uniform(0, h), rng.uniform(0, w)
                d = np.sqrt(((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2)
                a = np.clip((1 - d) * min(ry, rx) + 0.5, 0, 1)
                v = rng.uniform(0.0, 0.12) if rng.random() < 0.6 else rng.uniform(0.85, 1.0)
                cover, value = np.maximum(cover, a), np.where(a > cover, v, value)
            if self.scratch:
                x = x0 + drift * i + rng.normal(0, 0.3)
                a = np.clip(1.2 - np.abs(xs - x), 0, 1) * rng.uniform(0.5, 0.9)
                cover, value = np.maximum(cover, a), np.where(a >= cover, scratch_value, value)
            frame = out[i] + rng.normal(0, self.flicker)
            frame = frame * (1 - cover) + value * cover
            out[i] = frame + rng.normal(0, self.grain, (h, w))
            mask[i] = cover > 0.25
        return torch.from_numpy(np.clip(out, 0, 1)), torch.from_numpy(mask)


@dataclass
class FilmCase:
    """One real-film test: ``reference`` (the film as it is) and what the methods get.

    Attributes:
        name: shown in the tables (clip, damage draw), unique.
        kind: ``damaged`` (a smooth shot), ``cut`` (two films joined), ``flash`` (one
            over-exposed frame inside a shot) or ``none`` (the film with no damage added).
        reference, damaged: (T, H, W) in [0, 1].
        mask: (T, H, W) bool, the added damage (None for ``none``).
    """

    name: str
    kind: str
    reference: torch.Tensor
    damaged: torch.Tensor
    mask: torch.Tensor | None = None


def real_film_cases(
    folder: Path,
    *,
    frames: int = 12,
    height: int = 128,
    width: int = 160,
    draws: int = 3,
    seed: int = 0,
    damage: FilmDamage | None = None,
) -> list[FilmCase]:
    """The real-film test set: per film ``draws`` damage draws on a smooth shot, the film with
    no damage, and (when ``draws`` > 0) one clip with a cut (the first half of one film, the
    second of the other, damaged) and one with a flash (a frame in the middle over-exposed in
    the reference too, then damaged)."""
    model = damage or FilmDamage()
    films = {
        name: load_real_film(folder, name, frames=frames, height=height, width=width)
        for name in REAL_FILMS
    }
    cases = []
    for k, (name, film) in enumerate(films.items()):
        short = SHORT_NAMES[name]
        for d in range(draws):
            damaged, mask = model.apply(film, seed=seed * 1000 + 100 * k + d)
            cases.append(FilmCase(f"{short}, draw {d}", "damaged", film, damaged, mask))
        cases.append(FilmCase(f"{short}, no damage", "none", film, film))
    if draws > 0:
        a, b = films.values()
        half = frames // 2
        joined = torch.cat([a[:half], b[half:]])
        damaged, mask = model.apply(joined, seed=seed * 1000 + 900)
        cases.append(FilmCase("cut (market street | train robbery)", "cut", joined, damaged, mask))
        flashed = b.clone()
        flashed[half] = 0.35 + 0.65 * flashed[half]
        damaged, mask = model.apply(flashed, seed=seed * 1000 + 901)
        cases.append(
            FilmCase(f"flash (train robbery, frame {half})", "flash", flashed, damaged, mask)
        )
    return cases


@dataclass
class FilmScore:
    """A method's result on one :class:`FilmCase`.

    Attributes:
        psnr: dB against the reference.
        psnr_level: dB against the reference with each frame's level matched first
            (:func:`~rrtn_plugin.training.quality.level_matched_psnr`): removing the film's
            own flicker is not counted against the method.
        psnr_fast: dB over the pixels moving faster than :data:`FAST_MOTION` (:func:`fast_pixels`).
        fast_share: the share of the case's pixels that are (the same for every method).
        tone_shift, median_shift: mean and median of the output minus those of the input.
        warp_error: of the output along the reference's motion (:func:`warp_error`).
        frames: the output (kept for strips).
    """

    psnr: float
    psnr_level: float
    psnr_fast: float
    fast_share: float
    tone_shift: float
    median_shift: float
    warp_error: float
    frames: torch.Tensor


def fast_pixels(motion: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
    """(T, H, W) bool: pixels of frames 0…T−2 moving faster than :data:`FAST_MOTION` along
    ``motion`` ((T−1, 2, H, W), :func:`~rrtn_plugin.training.quality.clip_motion`); none in the
    last frame, whose motion is not known."""
    fast = torch.zeros(shape, dtype=torch.bool)
    fast[:-1] = motion.norm(dim=1) > FAST_MOTION
    return fast


def evaluate_real_film(
    cases: Sequence[FilmCase], methods: dict[str, Method]
) -> dict[str, dict[str, FilmScore]]:
    """Every method on every case: ``{case name: {method name: FilmScore}}``."""
    scores: dict[str, dict[str, FilmScore]] = {}
    for case in cases:
        motion = clip_motion(case.reference) if case.reference.shape[0] > 1 else None
        fast = fast_pixels(motion, case.reference.shape) if motion is not None else None
        row = {}
        for name, method in methods.items():
            out = method(case.damaged).frames.clamp(0, 1)
            row[name] = FilmScore(
                psnr=psnr(out, case.reference),
                psnr_level=level_matched_psnr(out, case.reference),
                psnr_fast=masked_psnr(out, case.reference, fast) if fast is not None else math.nan,
                fast_share=float(fast.float().mean()) if fast is not None else math.nan,
                tone_shift=float(out.mean() - case.damaged.mean()),
                median_shift=float(out.median() - case.damaged.median()),
                warp_error=warp_error(out, motion) if motion is not None else math.nan,
                frames=out,
            )
        scores[case.name] = row
    return scores


def format_real_film(
    cases: Sequence[FilmCase], scores: dict[str, dict[str, FilmScore]], *, baseline: str
) -> str:
    """Markdown tables of :func:`evaluate_real_film`'s scores.

    First, PSNR in dB per damaged case (smooth shots, cut, flash): the first method's (the
    damaged input) as is, every other method's with its gain over the first and over the
    method named ``baseline`` (the temporal median). Then the same with each frame's level
    matched (``psnr_level``), beside the reference's own flicker (smooth shots); then over
    the fast-moving pixels only (``psnr_fast``), beside their share. Then, per no-damage case
    and method, the mean and median shift of the output from the input and its warp error."""
    methods = list(next(iter(scores.values())))
    damaged = [c for c in cases if c.kind != "none"]

    def psnr_rows(
        measure: Callable[[FilmScore], float],
        extra: tuple[str, Callable[[FilmCase], str]] | None = None,
    ) -> list[str]:
        lines = [
            "| clip |" + (f" {extra[0]} |" if extra else "") + " " + " | ".join(methods) + " |",
            "|---|" + ("---:|" if extra else "") + "---:|" * len(methods),
        ]
        for case in damaged:
            row = {m: measure(scores[case.name][m]) for m in methods}
            first = row[methods[0]]
            cells = [extra[1](case)] if extra else []
            cells.append(f"{first:.2f}")
            for m in methods[1:]:
                cells.append(
                    f"{row[m]:.2f} ({row[m] - first:+.2f} / {row[m] - row[baseline]:+.2f})"
                )
            lines.append(f"| {case.name} | " + " | ".join(cells) + " |")
        return lines

    def flicker(case: FilmCase) -> str:  # a cut or a flash changes the level by design
        return f"{frame_level_spread(case.reference):.4f}" if case.kind == "damaged" else "–"

    def fast_share(case: FilmCase) -> str:
        return f"{100 * scores[case.name][methods[0]].fast_share:.0f} %"

    fast = (f"pixels > {FAST_MOTION:g} px/frame", fast_share)
    lines = psnr_rows(lambda s: s.psnr)
    lines += ["", *psnr_rows(lambda s: s.psnr_level, ("reference's flicker", flicker))]
    lines += ["", *psnr_rows(lambda s: s.psnr_fast, fast)]
    lines += [
        "",
        "| clip, no damage | method | mean shift | median shift | warp error ×100 |",
        "|---|---|---:|---:|---:|",
    ]
    for case in (c for c in cases if c.kind == "none"):
        for m in methods:
            s = scores[case.name][m]
            lines.append(
                f"| {case.name} | {m} | {s.tone_shift:+.4f} | {s.median_shift:+.4f} | "
                f"{100 * s.warp_error:.2f} |"
            )
    return "\n".join(lines)


def write_strip(
    path: str | Path,
    case: FilmCase,
    scores: dict[str, FilmScore],
    *,
    frame: int | None = None,
    methods: Sequence[str] | None = None,
    scale: int = 2,
) -> Path:
    """Write a before/after strip PNG: one frame of ``case`` as each method left it, then the
    reference, side by side, each labelled with the method's name and PSNR (8-bit grey, each
    tile enlarged ``scale`` times by pixel repetition). Returns the path.

    Args:
        frame: which frame (None: the middle one).
        methods: which of ``scores`` and in what order (None: all).
    """
    t = case.reference.shape[0]
    i = t // 2 if frame is None else frame
    if not 0 <= i < t:
        raise RRTNError(f"frame {i} is outside the case's {t} frames")
    names = list(methods) if methods is not None else list(scores)
    tiles = [(f"{n} {scores[n].psnr:.1f} dB", scores[n].frames[i]) for n in names]
    tiles.append(("reference", case.reference[i]))
    images = []
    for label, image in tiles:
        pixels = (image.clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        pixels = np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)
        header = np.full((22, pixels.shape[1]), 255, np.uint8)
        text = label.replace("±", "+-").encode("ascii", "replace").decode()  # Hershey: ASCII
        cv2.putText(header, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 0, 1, cv2.LINE_AA)
        images.append(np.concatenate([header, pixels]))
        images.append(np.full((images[-1].shape[0], 4), 255, np.uint8))
    strip = np.concatenate(images[:-1], axis=1)
    ok, data = cv2.imencode(".png", strip)
    if not ok:
        raise RRTNError(f"{path}: OpenCV could not encode the strip")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target) as tmp:
        tmp.write_bytes(data.tobytes())
    return target


@dataclass
class RealFilmReport:
    """What :func:`real_film_report` measured: the cases, every method's scores, a table."""

    cases: list[FilmCase]
    scores: dict[str, dict[str, FilmScore]]
    table: str


def no_damage_strip(strip: Path) -> Path:
    """Where :func:`real_film_report` writes the strip of a film with no damage added:
    ``NAME-no-damage.png`` beside ``strip``."""
    return strip.with_name(f"{strip.stem}-no-damage{strip.suffix}")


def real_film_report(
    first: RRTN,
    second: RRTN | None,
    options: RestoreOptions,
    *,
    folder: Path | None = None,
    frames: int = 12,
    height: int = 128,
    width: int = 160,
    draws: int = 3,
    seed: int = 0,
    strip: Path | None = None,
) -> RealFilmReport:
    """The real-film evaluation in one call (what ``rrtn-plugin evaluate --real-film`` runs).

    Methods: the damaged input, the temporal median ±1 (DIS), and the model through the clip
    engine three ways: the network alone (no shot detection, no tone guard), with ``options``
    as given (by default: shots, the tone guard, the full mode) and with those in the defects
    mode. Cases: :func:`real_film_cases` from ``folder`` (None: :func:`shared_clips_folder`).
    With ``strip``, a before/after strip of the first damaged case is written there, and one
    of the first film with no damage added beside it (:func:`no_damage_strip`).

    Raises:
        RRTNError (NOT_FOUND) when the real films are not there; the message says where it
        looked, so a caller can print it as the reason for skipping.
    """
    where = folder or shared_clips_folder()
    if where is None:
        raise RRTNError(
            "the real-film clips are not available: ../shared/clips (or $RRTN_SHARED/clips) "
            f"with {', '.join(REAL_FILMS)} is absent; skipping the real-film evaluation",
            kind=ErrorKind.NOT_FOUND,
        )
    cases = real_film_cases(
        where, frames=frames, height=height, width=width, draws=draws, seed=seed
    )
    median = "temporal median ±1 (DIS)"
    alone = replace(options, cuts=False, tone_guard="off", repair_mode="full", repair_strength=1.0)
    shots = "shots" if options.cuts else "no shots"
    methods: dict[str, Method] = {
        "damaged input": identity_method,
        median: median_method(1),
        "RRTN network alone": model_method(first, second, alone),
        f"RRTN ({shots}, tone {options.tone_guard}, {options.repair_mode})": model_method(
            first, second, options
        ),
    }
    if options.repair_mode != "defects":
        defects = replace(options, repair_mode="defects")
        methods[f"RRTN ({shots}, tone {options.tone_guard}, defects)"] = model_method(
            first, second, defects
        )
    scores = evaluate_real_film(cases, methods)
    if strip is not None:
        for kind, path in (("damaged", strip), ("none", no_damage_strip(strip))):
            case = next((c for c in cases if c.kind == kind), None)
            if case is not None:
                write_strip(path, case, scores[case.name])
    return RealFilmReport(cases, scores, format_real_film(cases, scores, baseline=median))
