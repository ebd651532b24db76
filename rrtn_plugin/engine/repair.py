"""Repair modes: how much of the network's output replaces the input, and where.

- ``full``: the network's output everywhere (it removes damage, flicker and added grain).
- ``defects``: the output only where the damage mask says, with a feathered edge; every other
  pixel is the input's, bit for bit, so the film's grain and detail there are untouched.
- ``strength`` mixes either result with the input: 0 gives the input, 1 the mode's result.

Pure tensor functions on frames of any leading shape (..., H, W), float, in the network's
display-referred [0, 1] encoding; the masks have the frames' shape.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rrtn_plugin.errors import RRTNError

MODES = ("full", "defects")
NOISE_THRESHOLD = 0.1
"""Noise-mask value (|difference| of frame values against both motion-compensated
neighbours) above which :func:`damage_mask` calls a pixel damaged."""


def damage_mask(
    noise_mask: torch.Tensor,
    *,
    threshold: float = NOISE_THRESHOLD,
    inp: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    changed: float | None = None,
) -> torch.Tensor:
    """Boolean (..., H, W) mask of damaged pixels for the ``defects`` mode.

    Args:
        noise_mask: (..., H, W) the network's noise mask (RRTN's residual indicator).
        threshold: noise-mask value above which a pixel is damaged.
        inp, out, changed: with all three, pixels the network changed by more than
            ``changed`` count as damaged too (damage that persists between frames, such as a
            line scratch, leaves no residual against its neighbours).
    """
    mask = noise_mask > threshold
    if changed is not None:
        if inp is None or out is None:
            raise RRTNError("damage_mask: give inp and out with changed")
        mask = mask | ((out - inp).abs() > changed)
    return mask


def feathered(mask: torch.Tensor, *, grow: int = 1, feather: float = 2.0) -> torch.Tensor:
    """(..., H, W) float weights in [0, 1] from a boolean (or [0, 1]) ``mask``.

    The mask is grown by ``grow`` px (a square neighbourhood); the grown area gets weight 1
    and its edge fades out over about ``feather`` px (a Gaussian of sigma ``feather / 2``,
    doubled and clipped, cut at 3 sigma). Pixels farther than ``grow + ceil(1.5 · feather)``
    px from the mask get exactly 0.
    """
    if grow < 0 or not (feather >= 0 and math.isfinite(feather)):
        raise RRTNError(f"grow must be ≥ 0 and feather ≥ 0, got {grow} and {feather}")
    shape = mask.shape
    x = mask.float().clamp(0, 1).reshape(-1, 1, *shape[-2:])
    if grow:
        x = F.max_pool2d(x, 2 * grow + 1, stride=1, padding=grow)
    sigma = feather / 2
    if sigma >= 0.1:
        radius = max(1, math.ceil(3 * sigma))
        taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-(taps**2) / (2 * sigma**2))
        kernel = kernel / kernel.sum()
        soft = F.pad(x, (radius, radius, radius, radius), mode="replicate")
        soft = F.conv2d(soft, kernel.view(1, 1, 1, -1))
        soft = F.conv2d(soft, kernel.view(1, 1, -1, 1))
        # exact zeros where no masked pixel is in reach (the convolution leaves rounding dust)
        reach = F.max_pool2d((x > 0).float(), 2 * radius + 1, stride=1, padding=radius)
        x = torch.maximum(x, (2 * soft).clamp(0, 1) * reach)
    return x.reshape(shape)


def repair(
    inp: torch.Tensor,
    out: torch.Tensor,
    *,
    mode: str = "full",
    mask: torch.Tensor | None = None,
    strength: float = 1.0,
    grow: int = 1,
    feather: float = 2.0,
) -> torch.Tensor:
    """The repaired frames: ``out`` blended into ``inp`` by ``mode`` and ``strength``.

    Args:
        inp: (..., H, W) the network's input.
        out: (..., H, W) its output.
        mode: ``full`` or ``defects`` (see the module docs).
        mask: (..., H, W) bool, damaged pixels (``defects`` only; :func:`damage_mask`).
        strength: in [0, 1]; the weight of the mode's result against the input.
        grow, feather: the mask's growth and soft edge in px (:func:`feathered`).

    Returns:
        ``out`` itself for ``full`` at strength 1, ``inp`` itself at strength 0; otherwise a
        new tensor that equals ``inp`` bit for bit wherever its weight is 0 and ``out``
        wherever it is 1.
    """
    if mode not in MODES:
        raise RRTNError(f"repair mode must be one of {MODES}, got {mode!r}")
    if not 0 <= strength <= 1:
        raise RRTNError(f"repair strength must be in [0, 1], got {strength}")
    if inp.shape != out.shape:
        raise RRTNError(f"repair: input {tuple(inp.shape)} and output {tuple(out.shape)} differ")
    if strength == 0:
        return inp
    if mode == "full":
        return out if strength == 1 else torch.lerp(inp, out, strength)
    if mask is None or mask.shape != inp.shape:
        raise RRTNError(
            f"defects mode needs a damage mask of the frames' shape {tuple(inp.shape)}, got "
            f"{None if mask is None else tuple(mask.shape)}"
        )
    weight = feathered(mask, grow=grow, feather=feather).to(out.dtype) * strength
    return torch.where(weight > 0, torch.lerp(inp, out, weight), inp)
