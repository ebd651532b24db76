"""Clean footage for training, evaluation and the demo, from what is installed offline.

Still photographs shipped inside scikit-image (``skimage/data``) are turned into clips by a
synthetic camera: a pan with a slow zoom and a little gate weave. The stills are split once, by
name, into a training set and a held-out set that no bundled model has seen.

Clips are (T, H, W) float32 luminance in [0, 1], display-referred (the stills are sRGB-coded).
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F

from rrtn_plugin.color import LUMA_WEIGHTS
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.image import read_pixels
from rrtn_plugin.synth.params import uniform

TRAINING_STILLS = (
    "astronaut",
    "camera",
    "moon",
    "coins",
    "hubble_deep_field",
    "retina",
    "motorcycle_left",
    "brick",
    "grass",
    "gravel",
    "cell",
    "ihc",
    "page",
    "text",
    "clock_motion",
    "color",
    "logo",
    "microaneurysms",
)
HELD_OUT_STILLS = ("chelsea", "coffee", "rocket")
"""Never used in training: the evaluation and the demo run on these."""


def still_path(name: str) -> Path:
    """Path of a still shipped with scikit-image."""
    folder = resources.files("skimage") / "data"
    for suffix in (".png", ".jpg"):
        candidate = Path(str(folder / f"{name}{suffix}"))
        if candidate.is_file():
            return candidate
    raise RRTNError(
        f"still '{name}' not found in {folder} (is scikit-image installed?)",
        kind=ErrorKind.NOT_FOUND,
    )


@lru_cache(maxsize=32)
def load_still(name: str) -> torch.Tensor:
    """(H, W) float32 luminance in [0, 1] of a scikit-image still."""
    info, pixels = read_pixels(still_path(name))
    pixels = torch.from_numpy(pixels).float()
    if len(info.channels) >= 3:
        return pixels[..., :3] @ torch.from_numpy(LUMA_WEIGHTS).float()
    return pixels[..., 0]


def camera_clip(
    still: torch.Tensor,
    *,
    frames: int,
    height: int,
    width: int,
    generator: torch.Generator,
    max_speed: float = 2.5,
    max_zoom: float = 0.01,
    weave: float = 0.3,
    scale_range: tuple[float, float] = (0.5, 1.0),
) -> torch.Tensor:
    """A (frames, height, width) clip filmed off ``still`` (H, W) by a moving camera.

    The view starts at a random place and scale (``scale_range``: output pixels per still pixel),
    pans at up to ``max_speed`` px/frame, zooms by up to ``max_zoom`` per frame, and shakes by
    ``weave`` px (gate weave). Views that leave the still are pulled back inside.
    """
    if min(frames, height, width) < 1:
        raise ValueError(f"frames, height and width must be ≥ 1, got {frames}, {height}, {width}")

    sh, sw = still.shape
    scale = uniform(generator, *scale_range)
    scale = max(scale, height / sh * 1.02, width / sw * 1.02)
    # Pre-shrink so sampling at `scale` does not alias.
    image = still[None, None]
    if scale < 1:
        image = F.interpolate(
            image, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False
        )
    ih, iw = image.shape[-2:]
    angle = uniform(generator, 0, 2 * math.pi)
    speed = uniform(generator, 0, max_speed)
    velocity = (speed * math.cos(angle), speed * math.sin(angle))
    zoom = uniform(generator, -max_zoom, max_zoom)
    cy = uniform(generator, height / 2, ih - height / 2)
    cx = uniform(generator, width / 2, iw - width / 2)
    ys = torch.arange(height, dtype=torch.float32) - (height - 1) / 2
    xs = torch.arange(width, dtype=torch.float32) - (width - 1) / 2
    out = []
    for t in range(frames):
        z = (1 + zoom) ** t
        half_h, half_w = (height - 1) / 2 / z, (width - 1) / 2 / z
        py = min(
            max(cy + velocity[1] * t + weave * float(torch.randn((), generator=generator)), half_h),
            ih - 1 - half_h,
        )
        px = min(
            max(cx + velocity[0] * t + weave * float(torch.randn((), generator=generator)), half_w),
            iw - 1 - half_w,
        )
        gy = (py + ys / z) / (ih - 1) * 2 - 1
        gx = (px + xs / z) / (iw - 1) * 2 - 1
        grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]
        out.append(
            F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)[
                0, 0
            ]
        )
    return torch.stack(out).clamp(0, 1)
