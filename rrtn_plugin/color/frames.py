"""From a frame's pixels to the network's input, and the network's change back to the frame.

Luminance is luma on sRGB-encoded Rec.709 values with ITU-R BT.601 weights (0.299, 0.587,
0.114), exactly what the network was trained on (PIL's ``convert("L")``). The network sees a
copy clamped to [0, 1]; its change (output − clamped input) is added to every colour channel in
the working encoding (so chroma is kept) and carried back to the source space as a difference,
so an untouched pixel, including HDR highlights and negatives, comes back unchanged. Pixels
that are NaN or infinite are never shown to the network: it sees them filled from their
neighbours, and the original values are put back. Alpha and other channels are not touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F

from rrtn_plugin.color.modes import ColorMode
from rrtn_plugin.color.transform import Converter
from rrtn_plugin.errors import RRTNError

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class FrameColor:
    """Which channels of a frame carry its picture: R, G, B, or one grey channel."""

    indices: tuple[int, ...]

    @classmethod
    def of(cls, channels: Sequence[str]) -> FrameColor:
        names = list(channels)
        if all(c in names for c in ("R", "G", "B")):
            return cls(tuple(names.index(c) for c in ("R", "G", "B")))
        for grey in ("Y", "L", "R"):
            if grey in names:
                return cls((names.index(grey),))
        plain = [i for i, c in enumerate(names) if c != "A" and "." not in c]
        if len(plain) == 1:
            return cls((plain[0],))
        raise RRTNError(
            f"no picture channels: expected R, G, B or a single grey channel, got "
            f"{', '.join(names)}"
        )

    def rgb(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W, 3) picture of (H, W, C) pixels (a grey channel repeated)."""
        if len(self.indices) == 3:
            return pixels[..., list(self.indices)]
        return np.repeat(pixels[..., self.indices[0] : self.indices[0] + 1], 3, axis=2)


def fill_nonfinite(values: np.ndarray, bad: np.ndarray, *, radius: int = 2) -> np.ndarray:
    """(H, W) ``values`` with ``bad`` pixels replaced by the mean of nearby good ones.

    Grows inward from the good pixels (normalised box filtering), so holes of any size fill.
    """
    if not bad.any():
        return values
    if bad.all():
        return np.full_like(values, 0.5)
    good = torch.from_numpy((~bad).astype(np.float32))[None, None]
    known = torch.from_numpy(np.where(bad, 0.0, values).astype(np.float32))[None, None]
    filled = known.clone()
    size = 2 * radius + 1
    while bool((good == 0).any()):
        total = F.avg_pool2d(filled * good, size, 1, radius, count_include_pad=False)
        weight = F.avg_pool2d(good, size, 1, radius, count_include_pad=False)
        grow = (good == 0) & (weight > 0)
        filled = torch.where(grow, total / weight.clamp(min=1e-12), filled)
        good = torch.where(grow, torch.ones_like(good), good)
    return filled[0, 0].numpy()


def _encoded(
    pixels: np.ndarray, color: FrameColor, converter: Converter
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source RGB, its non-finite pixels, and the working encoding (bad pixels as 0)."""
    rgb = color.rgb(pixels).astype(np.float32)
    bad = cast(np.ndarray, ~np.isfinite(rgb).all(axis=2))  # (H, W): not a scalar
    encoded = converter.to_working(np.where(bad[..., None], 0.0, rgb))
    return rgb, bad, encoded


def network_input(
    pixels: np.ndarray, color: FrameColor, converter: Converter
) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) luminance in [0, 1] for the network, and the (H, W) mask of non-finite pixels."""
    _, bad, encoded = _encoded(pixels, color, converter)
    luma = fill_nonfinite(encoded @ LUMA_WEIGHTS, bad)
    return np.clip(luma, 0.0, 1.0).astype(np.float32), bad


def apply_change(
    pixels: np.ndarray,
    color: FrameColor,
    converter: Converter,
    restored: np.ndarray,
    *,
    mode: ColorMode = ColorMode.KEEP_CHROMA,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the network's restored luminance to a frame.

    Args:
        pixels: (H, W, C) the original frame, source colour space.
        color: where its picture channels are.
        converter: source ↔ working encoding.
        restored: (H, W) the network's output for this frame (working encoding).
        mode: keep chroma or write monochrome.

    Returns:
        The new (H, W, C) frame (other channels untouched, non-finite pixels as they were) and
        the (H, W) size of the change in the working encoding (the ``repair`` AOV).
    """
    rgb, bad, encoded = _encoded(pixels, color, converter)
    luma = fill_nonfinite(encoded @ LUMA_WEIGHTS, bad)
    change = np.where(bad, 0.0, restored - np.clip(luma, 0.0, 1.0)).astype(np.float32)
    if mode is ColorMode.KEEP_CHROMA:
        # Carried back as a difference: where the change is 0 the pixel stays bit-identical.
        target = encoded + change[..., None]
        new_rgb = rgb + (converter.from_working(target) - converter.from_working(encoded))
    else:
        new_rgb = converter.from_working(np.repeat((luma + change)[..., None], 3, axis=2))
    new_rgb[bad] = rgb[bad]
    out = pixels.copy()
    if len(color.indices) == 3:
        out[..., list(color.indices)] = new_rgb
    else:
        out[..., color.indices[0]] = new_rgb[..., 0]
    return out, np.abs(change)
