"""Per-clip parameters of the film-damage model, and how they are drawn."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DamageParams:
    """How one clip is damaged. Intensities are in display-referred [0, 1] units.

    Attributes:
        dust_per_mpx: dust and dirt specks per frame per megapixel (Poisson mean).
        dust_max_radius: radius of the largest blotches, px (most specks are 0.5–2 px).
        bright_dust: fraction of specks that are bright (dust on a negative) rather than dark.
        hairs_per_frame: hairs and fibres per frame (Poisson mean).
        scratches: persistent vertical line scratches in the clip.
        scratch_drift: how far a scratch wanders sideways per frame, px (random walk step).
        flicker: standard deviation of the per-frame brightness offset (zero mean over the clip:
            flicker moves frames around the clip's own level, never the level itself).
        contrast_flicker: standard deviation of the per-frame contrast gain around 1 (its clip
            mean is 1).
        flicker_correlation: how much of one frame's flicker carries into the next (0: each
            frame independent; 0.5: slow drifts as well as frame-to-frame jumps).
        fade: contrast kept by the faded print: blacks rise to 1 − fade, white stays (1 = none).
            The same in every frame, so it is the print's look and stays in the target.
        grain: standard deviation of the film grain at mid-grey.
        blur: Gaussian blur sigma of the print/scan, px. The target keeps this softness; the
            ±20 % per-frame variation around it is damage.
        jpeg_quality: quality of the compression pass, or 0 for none.
    """

    dust_per_mpx: float = 800.0
    dust_max_radius: float = 6.0
    bright_dust: float = 0.4
    hairs_per_frame: float = 0.3
    scratches: int = 1
    scratch_drift: float = 0.3
    flicker: float = 0.02
    contrast_flicker: float = 0.03
    flicker_correlation: float = 0.5
    fade: float = 0.9
    grain: float = 0.03
    blur: float = 0.6
    jpeg_quality: int = 0

    def __post_init__(self) -> None:
        for name in (
            "dust_per_mpx",
            "dust_max_radius",
            "hairs_per_frame",
            "scratch_drift",
            "flicker",
            "contrast_flicker",
            "grain",
            "blur",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if not 0 <= self.bright_dust <= 1 or not 0 < self.fade <= 1:
            raise ValueError("bright_dust must be in [0, 1] and fade in (0, 1]")
        if not 0 <= self.flicker_correlation < 1:
            raise ValueError(
                f"flicker_correlation must be in [0, 1), got {self.flicker_correlation}"
            )
        if self.scratches < 0 or not 0 <= self.jpeg_quality <= 100:
            raise ValueError("scratches must be ≥ 0 and jpeg_quality in [0, 100]")


def uniform(generator: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    """One value drawn uniformly from [low, high) with ``generator``."""
    return low + (high - low) * float(torch.rand((), generator=generator))


def sample_damage(generator: torch.Generator) -> DamageParams:
    """Draw a clip's damage, from nearly clean to heavily worn film."""

    def draw(low: float, high: float) -> float:
        return uniform(generator, low, high)

    def log_uniform(low: float, high: float) -> float:
        return math.exp(draw(math.log(low), math.log(high)))

    return DamageParams(
        dust_per_mpx=log_uniform(100.0, 3000.0),
        dust_max_radius=draw(2.0, 10.0),
        bright_dust=draw(0.0, 1.0),
        hairs_per_frame=draw(0.0, 0.8),
        scratches=int(torch.randint(0, 4, (), generator=generator)),
        scratch_drift=draw(0.0, 0.8),
        flicker=draw(0.0, 0.05),
        contrast_flicker=draw(0.0, 0.06),
        flicker_correlation=draw(0.0, 0.8),
        fade=draw(0.8, 1.0),
        grain=draw(0.01, 0.06),
        blur=draw(0.0, 1.2),
        jpeg_quality=int(torch.randint(30, 96, (), generator=generator))
        if float(torch.rand((), generator=generator)) < 0.4
        else 0,
    )
