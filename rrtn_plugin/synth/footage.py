"""Clean footage for training, evaluation and the demo, from what is installed offline.

Still photographs shipped inside scikit-image (``skimage/data``) are turned into clips by a
synthetic camera: a pan with a slow zoom and a little gate weave (:func:`camera_clip`). The
stills are split once, by name, into a training set and a held-out set that no bundled model
has seen.

Training footage (:func:`training_clip`) is more varied than a filmed still, because old film
is: objects move on their own over the camera's view (:func:`add_sprites`: patches of other
stills with soft edges, each on its own path, occluding and uncovering the background), every
clip is exposed with a look drawn from :data:`LOOKS` (normal, dark, low-key, low-contrast,
high-key; :class:`Exposure`), and some clips carry the stock's own fine grain. All of these are
the picture, not damage: they are in the clean target, so a network learns to keep them.

Clips are (T, H, W) float32 luminance in [0, 1], display-referred (the stills are sRGB-coded).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F

from rrtn_plugin.color import LUMA_WEIGHTS
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.image import read_pixels
from rrtn_plugin.synth.damage import grain_noise
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
    "chessboard_GRAY",
    "horse",
    "motorcycle_right",
    "phantom",
)
"""Every still photograph or drawing in ``skimage/data`` except the held-out ones (the two
chessboards are one picture; only the grey one is used)."""
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
    image = torch.from_numpy(pixels).float()
    if len(info.channels) >= 3:
        return image[..., :3] @ torch.from_numpy(LUMA_WEIGHTS).float()
    return image[..., 0]


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


LOOKS = ("normal", "dark", "low-key", "low-contrast", "high-key")
"""Exposures a training clip is given, with equal chance (see :func:`draw_exposure`)."""


@dataclass(frozen=True)
class Exposure:
    """A clip's tone: ``black + (white − black) · x ** gamma`` for x in [0, 1].

    Attributes:
        black: the level of the still's black.
        white: the level of the still's white (> black).
        gamma: > 1 sinks the mid-tones (low-key), < 1 lifts them (high-key).
    """

    black: float
    white: float
    gamma: float

    def __post_init__(self) -> None:
        if not 0 <= self.black < self.white <= 1 or self.gamma <= 0:
            raise ValueError(
                f"need 0 ≤ black < white ≤ 1 and gamma > 0, got {self.black}, {self.white}, "
                f"{self.gamma}"
            )

    def apply(self, clip: torch.Tensor) -> torch.Tensor:
        """``clip`` (any shape, in [0, 1]) with this tone."""
        return self.black + (self.white - self.black) * clip.clamp(0, 1) ** self.gamma


def draw_exposure(generator: torch.Generator, look: str | None = None) -> Exposure:
    """A tone for one clip, of ``look`` (one of :data:`LOOKS`; None: drawn with equal chance).

    dark: under-exposed, white at 0.25–0.6; low-key: deep mid-tones (gamma 1.6–2.8) under
    bright highlights; low-contrast: a flat print between 0.15–0.35 and 0.55–0.8; high-key:
    lifted blacks (0.2–0.45) and mid-tones (gamma 0.5–0.85); normal: close to the still.
    """
    if look is None:
        look = LOOKS[int(torch.randint(len(LOOKS), (), generator=generator))]

    def draw(low: float, high: float) -> float:
        return uniform(generator, low, high)

    ranges = {
        "normal": ((0.0, 0.05), (0.9, 1.0), (0.85, 1.2)),
        "dark": ((0.0, 0.05), (0.25, 0.6), (1.0, 1.6)),
        "low-key": ((0.0, 0.03), (0.8, 1.0), (1.6, 2.8)),
        "low-contrast": ((0.15, 0.35), (0.55, 0.8), (0.8, 1.25)),
        "high-key": ((0.2, 0.45), (0.95, 1.0), (0.5, 0.85)),
    }
    if look not in ranges:
        raise ValueError(f"look must be one of {LOOKS}, got {look!r}")
    black, white, gamma = ranges[look]
    return Exposure(black=draw(*black), white=draw(*white), gamma=draw(*gamma))


def add_sprites(
    clip: torch.Tensor,
    *,
    count: int,
    generator: torch.Generator,
    stills: Sequence[str] = TRAINING_STILLS,
    max_speed: float = 4.0,
) -> torch.Tensor:
    """``clip`` (T, H, W) with ``count`` objects moving over it on their own.

    Each object is a patch of a still drawn from ``stills`` (20–60 % of the frame's sides,
    resampled from up to 3× its size) inside a soft, irregular outline; it enters at a random
    place and moves in a straight line at up to ``max_speed`` px/frame in any direction,
    independently of the camera, so it occludes and uncovers the background.
    """
    t, h, w = clip.shape
    out = clip.clone()
    for _ in range(count):
        still = load_still(stills[int(torch.randint(len(stills), (), generator=generator))])
        sh = max(4, int(h * uniform(generator, 0.2, 0.6)))
        sw = max(4, int(w * uniform(generator, 0.2, 0.6)))
        zoom = uniform(generator, 1.0, 3.0)
        ch = min(still.shape[0], max(sh, int(sh * zoom)))
        cw = min(still.shape[1], max(sw, int(sw * zoom)))
        top = int(torch.randint(still.shape[0] - ch + 1, (), generator=generator))
        left = int(torch.randint(still.shape[1] - cw + 1, (), generator=generator))
        patch = F.interpolate(
            still[None, None, top : top + ch, left : left + cw],
            size=(sh, sw),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )[0, 0]
        alpha = _blob(sh, sw, generator)
        cy, cx = uniform(generator, 0, h), uniform(generator, 0, w)
        angle, speed = uniform(generator, 0, 2 * math.pi), uniform(generator, 0.5, max_speed)
        vy, vx = speed * math.sin(angle), speed * math.cos(angle)
        sprite = torch.stack([patch * alpha, alpha])[None]  # premultiplied value, coverage
        for i in range(t):
            ys = torch.arange(h, dtype=torch.float32) - (cy + vy * i - sh / 2)
            xs = torch.arange(w, dtype=torch.float32) - (cx + vx * i - sw / 2)
            gy, gx = (2 * ys + 1) / sh - 1, (2 * xs + 1) / sw - 1
            grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)[None]
            value, cover = F.grid_sample(
                sprite, grid, mode="bilinear", padding_mode="zeros", align_corners=False
            )[0]
            out[i] = out[i] * (1 - cover) + value
    return out


def _blob(height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """(height, width) coverage in [0, 1]: an irregular ellipse filling the box, 1 px soft."""
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    dy, dx = ys.view(-1, 1), xs.view(1, -1)
    theta = torch.atan2(dy, dx)
    radius = torch.ones(())
    for harmonic in (2, 3, 4):
        radius = radius + uniform(generator, 0, 0.12) * torch.cos(
            harmonic * theta + uniform(generator, 0, 2 * math.pi)
        )
    edge = (0.85 * radius - torch.sqrt(dx**2 + dy**2)) * min(height, width) / 2
    return (edge + 0.5).clamp(0, 1)


def training_clip(
    generator: torch.Generator,
    *,
    frames: int,
    height: int,
    width: int,
    stills: Sequence[str] = TRAINING_STILLS,
) -> torch.Tensor:
    """A varied clean (frames, height, width) clip to train on, all drawn from ``generator``.

    A still filmed by :func:`camera_clip`; with chance 0.6, 1–3 objects moving on their own
    (:func:`add_sprites`); a look from :data:`LOOKS` (:func:`draw_exposure`); with chance 0.3,
    the stock's own grain (clumped, 0.005–0.02 at mid-grey, as in the damage model).
    """
    name = stills[int(torch.randint(len(stills), (), generator=generator))]
    clip = camera_clip(
        load_still(name), frames=frames, height=height, width=width, generator=generator
    )
    if uniform(generator) < 0.6:
        count = 1 + int(torch.randint(3, (), generator=generator))
        clip = add_sprites(clip, count=count, generator=generator, stills=stills)
    clip = draw_exposure(generator).apply(clip)
    if uniform(generator) < 0.3:
        strength = uniform(generator, 0.005, 0.02)
        clip = clip + strength * grain_noise(clip.unsqueeze(1), generator)[:, 0]
    return clip.clamp(0, 1)
