"""Damaging a whole clip: fading and flicker of the stock, structured damage on the film, then
the blur, grain and compression of printing, scanning and transfer.

What a restorer should give back is not the clean clip but :attr:`DamagedClip.target`: the clean
clip with the print's look that is the same in every frame (its fade and its softness). Only
what changes from frame to frame or sits on the film is damage: flicker around the clip's own
level (its clip mean is zero), dust, dirt, hairs, scratches, grain, the per-frame wobble of the
blur and compression. A network trained towards ``target`` learns to remove damage, not to
re-grade the picture (issue 17: fading undone on every dark shot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from rrtn_plugin.synth.artefacts import DamageLayer, LineScratch, draw_hairs, draw_specks
from rrtn_plugin.synth.params import DamageParams, sample_damage

MASK_THRESHOLD = 0.25
"""Coverage above which a pixel counts as damaged in the ground-truth mask."""


@dataclass
class DamagedClip:
    """A damaged clip and what was done to it.

    Attributes:
        frames: (T, H, W) or (T, H, W, C) float32 in [0, 1], display-referred.
        mask: (T, H, W) bool, pixels under dust, dirt, hairs or scratches.
        params: the clip's damage parameters.
        target: like ``frames``: the clean clip with the print's own look (fade, blur at the
            clip's sigma), without any damage: what restoration should return.
    """

    frames: torch.Tensor
    mask: torch.Tensor
    params: DamageParams
    target: torch.Tensor


def degrade_clip(
    clean: torch.Tensor,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    params: DamageParams | None = None,
) -> DamagedClip:
    """Damage a clean clip the way old film is damaged.

    Args:
        clean: (T, H, W) luminance or (T, H, W, C) colour, display-referred [0, 1].
        seed, generator: the randomness (give one; the same seed gives the same damage).
        params: the clip's damage; drawn with :func:`sample_damage` when not given.

    Colour clips get the same damage on every channel (the film's damage is not coloured).
    The result's ``target`` keeps the clip's tone (fade) and softness (blur): only damage is
    what a restorer should remove.
    """
    if clean.ndim not in (3, 4) or min(clean.shape[:3]) < 1:
        raise ValueError(f"expected a (T, H, W) or (T, H, W, C) clip, got {tuple(clean.shape)}")
    if (seed is None) == (generator is None):
        raise ValueError("give exactly one of seed and generator")
    gen = generator if seed is None else torch.Generator().manual_seed(seed)
    assert gen is not None  # exactly one of the two was given
    p = params if params is not None else sample_damage(gen)
    frames = clean.float().cpu()
    if frames.ndim == 3:
        frames = frames.unsqueeze(-1)
    t, h, w, _ = frames.shape
    x = frames.permute(0, 3, 1, 2).contiguous()  # (T, C, H, W)

    x = 1 - (1 - x) * p.fade  # faded dyes: blacks rise, the clear base stays white
    target = torch.stack([gaussian_blur(frame, p.blur) for frame in x]).clamp(0, 1)
    # Flicker moves frames around the clip's own level: zero mean over the clip.
    offsets = _correlated_noise(t, p.flicker, p.flicker_correlation, gen)
    gains = _correlated_noise(t, p.contrast_flicker, p.flicker_correlation, gen)
    offsets, gains = offsets - offsets.mean(), 1 + gains - gains.mean()
    x = (x - 0.5) * gains.view(t, 1, 1, 1) + 0.5 + offsets.view(t, 1, 1, 1)

    scratches = [
        LineScratch(h, w, drift=p.scratch_drift, generator=gen) for _ in range(p.scratches)
    ]
    megapixels = h * w / 1e6
    masks = []
    for i in range(t):
        layer = DamageLayer(h, w)
        draw_specks(
            layer,
            _poisson(p.dust_per_mpx * megapixels, gen),
            max_radius=p.dust_max_radius,
            bright_fraction=p.bright_dust,
            generator=gen,
        )
        draw_hairs(layer, _poisson(p.hairs_per_frame, gen), generator=gen)
        for scratch in scratches:
            scratch.draw(layer)
        x[i] = layer.composite(x[i])
        masks.append(layer.alpha > MASK_THRESHOLD)

    for i in range(t):
        sigma = p.blur * (1 + 0.2 * (2 * float(torch.rand((), generator=gen)) - 1))
        x[i] = gaussian_blur(x[i], sigma)
    x = x + p.grain * grain_noise(x, gen)
    x = x.clamp(0, 1)
    if p.jpeg_quality:
        x = _jpeg(x, p.jpeg_quality)

    out, target = x.permute(0, 2, 3, 1), target.permute(0, 2, 3, 1)
    if clean.ndim == 3:
        out, target = out[..., 0], target[..., 0]
    return DamagedClip(
        frames=out.contiguous(), mask=torch.stack(masks), params=p, target=target.contiguous()
    )


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C, H, W) blurred by a Gaussian of ``sigma`` px (edges replicated); sigma < 0.1: as is."""
    if sigma < 0.1:
        return image
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = image.shape[0]
    x = F.pad(image.unsqueeze(0), (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)
    return x[0]


def grain_noise(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Film grain for (T, C, H, W): clumped (slightly blurred) monochrome noise of unit
    strength at mid-grey, weaker in deep shadows and highlights."""
    t, _, h, w = x.shape
    noise = torch.randn(t, 1, h, w, generator=gen)
    noise = torch.stack([gaussian_blur(n, 0.6) for n in noise])
    noise = noise / noise.std().clamp_min(1e-6)
    level = x.clamp(0, 1)
    return noise * (0.3 + 2.8 * level * (1 - level))


def _correlated_noise(
    frames: int, std: float, correlation: float, gen: torch.Generator
) -> torch.Tensor:
    """(frames,) Gaussian values of standard deviation ``std``, each frame's carrying
    ``correlation`` of the previous one's (a first-order autoregression)."""
    values = torch.randn(frames, generator=gen)
    for i in range(1, frames):
        values[i] = correlation * values[i - 1] + math.sqrt(1 - correlation**2) * values[i]
    return std * values


def _poisson(mean: float, gen: torch.Generator) -> int:
    return int(torch.poisson(torch.tensor([mean], dtype=torch.float32), generator=gen).item())


def _jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """(T, C, H, W) in [0, 1] through 8-bit JPEG at ``quality`` and back."""
    out = torch.empty_like(x)
    for i, frame in enumerate(x):
        codes = (frame.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        if codes.shape[2] == 3:
            codes = codes[..., ::-1]
        ok, data = cv2.imencode(
            ".jpg", np.ascontiguousarray(codes), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if not ok:
            raise RuntimeError("OpenCV could not encode JPEG")
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        if decoded is None:
            raise RuntimeError("OpenCV could not decode the JPEG it encoded")
        decoded = decoded.reshape(codes.shape)
        if decoded.shape[2] == 3:
            decoded = decoded[..., ::-1]
        out[i] = torch.from_numpy(decoded.astype(np.float32) / 255).permute(2, 0, 1)
    return out
