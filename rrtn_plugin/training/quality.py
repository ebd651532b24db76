"""Quality measures of a restored clip against its clean original.

All clips are (T, H, W) float32 display-referred luminance in [0, 1].

- :func:`psnr` and :func:`ssim` (Gaussian-window SSIM of Wang et al. 2004), per frame, averaged;
- :func:`level_matched_psnr`: PSNR with each frame's mean level first matched to the clean
  frame's, so removing flicker that the clean clip itself has is not counted as an error;
- :func:`frame_level_spread`: how much a clip's own frame levels flicker;
- :func:`masked_psnr`: PSNR over chosen pixels only (e.g. the fast-moving ones);
- :func:`warp_error`: temporal flicker, the mean absolute difference between each frame and the
  next frame motion-compensated onto it, with motion taken from the clean clip;
- :func:`mask_scores`: precision and recall of a detected damage mask against the true one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rrtn_plugin.model.flow import DISFlow
from rrtn_plugin.model.warp import flow_warp


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(
            f"expected two (T, H, W) clips of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _decibels(mse: float) -> float:
    """PSNR in dB of a mean squared error at peak 1 (inf for none)."""
    return math.inf if mse == 0 else -10 * math.log10(mse)


def psnr(result: torch.Tensor, clean: torch.Tensor) -> float:
    """Mean over frames of PSNR in dB (values clamped to [0, 1], peak 1)."""
    _check_pair(result, clean)
    mse = ((result.clamp(0, 1).double() - clean.clamp(0, 1).double()) ** 2).flatten(1).mean(1)
    per_frame = [_decibels(float(m)) for m in mse]
    return sum(per_frame) / len(per_frame)


def level_matched_psnr(result: torch.Tensor, clean: torch.Tensor) -> float:
    """:func:`psnr` after shifting each result frame by its mean difference from the clean one.

    On real film the "clean" reference is the film as it survives, with its own flicker; a
    restorer is meant to remove flicker, which plain PSNR counts against it. This measure leaves
    out each frame's overall level and keeps everything else (dust, scratches, grain, detail,
    local tone).
    """
    _check_pair(result, clean)
    r = result.clamp(0, 1).double()
    c = clean.clamp(0, 1).double()
    shifted = r - (r - c).mean(dim=(1, 2), keepdim=True)
    return psnr(shifted, c)


def masked_psnr(result: torch.Tensor, clean: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR in dB of the pixels where (T, H, W) bool ``mask`` is set, as one group (NaN when
    none is set; values clamped to [0, 1], peak 1)."""
    _check_pair(result, clean)
    if mask.shape != result.shape:
        raise ValueError(f"mask must be {tuple(result.shape)}, got {tuple(mask.shape)}")
    if not bool(mask.any()):
        return math.nan
    diff = result.clamp(0, 1).double() - clean.clamp(0, 1).double()
    return _decibels(float((diff[mask] ** 2).mean()))


def frame_level_spread(clip: torch.Tensor) -> float:
    """Standard deviation over frames of each (T, H, W) frame's mean: a clip's own flicker."""
    if clip.ndim != 3:
        raise ValueError(f"expected a (T, H, W) clip, got {tuple(clip.shape)}")
    return float(clip.double().mean(dim=(1, 2)).std(unbiased=False))


def ssim(result: torch.Tensor, clean: torch.Tensor, *, sigma: float = 1.5) -> float:
    """Mean SSIM over frames and pixels (11×11 Gaussian window, K1 0.01, K2 0.03, peak 1)."""
    _check_pair(result, clean)
    radius = 5
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(taps**2) / (2 * sigma**2))
    g = (g / g.sum()).float()

    def blur(x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, g.view(1, 1, 1, -1))
        return F.conv2d(x, g.view(1, 1, -1, 1))

    x = result.clamp(0, 1).unsqueeze(1).float()
    y = clean.clamp(0, 1).unsqueeze(1).float()
    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def clip_motion(clean: torch.Tensor) -> torch.Tensor:
    """(T−1, 2, H, W) flows ``[t]`` on frame t's grid that warp frame t+1 onto it (DIS)."""
    frames = clean.unsqueeze(1) * 2 - 1
    flows: torch.Tensor = DISFlow()(frames[:-1], frames[1:])
    return flows


def warp_error(clip: torch.Tensor, motion: torch.Tensor) -> float:
    """Mean |frame t − frame t+1 warped onto t| over pixels whose match lies inside the frame.

    ``motion`` comes from :func:`clip_motion` on the clean clip, so every result is compared
    along the same trajectories; the clean clip's own value is the floor.
    """
    if clip.shape[0] < 2:
        raise ValueError("the warp error needs at least 2 frames")
    t, h, w = clip.shape
    if motion.shape != (t - 1, 2, h, w):
        raise ValueError(f"motion must be {(t - 1, 2, h, w)}, got {tuple(motion.shape)}")
    x = clip.clamp(0, 1).unsqueeze(1)
    warped = flow_warp(x[1:], motion)
    inside = inside_frame(motion)
    diff = (x[:-1, 0] - warped[:, 0]).abs()
    return float(diff[inside].mean())


def inside_frame(flow: torch.Tensor) -> torch.Tensor:
    """(..., H, W) bool: pixels whose match under the (..., 2, H, W) flow lies in the frame."""
    h, w = flow.shape[-2:]
    ys = torch.arange(h).view(h, 1) + flow[..., 1, :, :]
    xs = torch.arange(w).view(1, w) + flow[..., 0, :, :]
    return (ys >= 0) & (ys <= h - 1) & (xs >= 0) & (xs <= w - 1)


@dataclass(frozen=True)
class MaskScores:
    precision: float
    recall: float


def mask_scores(detected: torch.Tensor, truth: torch.Tensor) -> MaskScores:
    """Precision and recall of boolean ``detected`` against boolean ``truth`` (same shape)."""
    if detected.shape != truth.shape:
        raise ValueError(f"masks differ in shape: {tuple(detected.shape)} vs {tuple(truth.shape)}")
    hits = float((detected & truth).sum())
    found, actual = float(detected.sum()), float(truth.sum())
    return MaskScores(
        precision=hits / found if found else math.nan, recall=hits / actual if actual else math.nan
    )
