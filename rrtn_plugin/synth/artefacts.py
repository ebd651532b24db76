"""Rendering the structured damage of one frame: dust and dirt specks, hairs, line scratches.

Each artefact is drawn as coverage (alpha in [0, 1]) and the value the film takes under it
(dark dirt near black, bright dust near white). :class:`DamageLayer` collects them for one frame
and composites over the frame; its coverage is the ground-truth damage mask.

Shapes: frames and layers are (H, W) float32 tensors.
"""

from __future__ import annotations

import math

import torch

from rrtn_plugin.synth.params import uniform


class DamageLayer:
    """Coverage and target value of the artefacts on one (H, W) frame, drawn in order."""

    def __init__(self, height: int, width: int) -> None:
        self.alpha = torch.zeros(height, width)
        self.value = torch.zeros(height, width)

    def draw(self, top: int, left: int, alpha: torch.Tensor, value: float) -> None:
        """Lay ``alpha`` (h, w) of one artefact with value ``value`` at (top, left), clipped."""
        h, w = alpha.shape
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + h, self.alpha.shape[0]), min(left + w, self.alpha.shape[1])
        if y0 >= y1 or x0 >= x1:
            return
        a = alpha[y0 - top : y1 - top, x0 - left : x1 - left]
        old_a, old_v = self.alpha[y0:y1, x0:x1], self.value[y0:y1, x0:x1]
        new_a = a + old_a * (1 - a)
        # Premultiplied "over": the new artefact covers what was drawn before.
        blended = (value * a + old_v * old_a * (1 - a)) / new_a.clamp_min(1e-6)
        self.alpha[y0:y1, x0:x1] = new_a
        self.value[y0:y1, x0:x1] = blended

    def composite(self, frame: torch.Tensor) -> torch.Tensor:
        """The (H, W) frame with the artefacts over it."""
        return frame * (1 - self.alpha) + self.value * self.alpha


def _dirt_value(generator: torch.Generator, bright_fraction: float) -> float:
    """Dark dirt sits near black, bright dust near white."""
    if uniform(generator) < bright_fraction:
        return uniform(generator, 0.85, 1.0)
    return uniform(generator, 0.0, 0.15)


def draw_specks(
    layer: DamageLayer,
    count: int,
    *,
    max_radius: float,
    bright_fraction: float,
    generator: torch.Generator,
) -> None:
    """Dust and dirt: irregular blobs, mostly 0.5–2 px across, a few blotches up to
    ``max_radius``, each dark or bright, some not fully opaque."""
    height, width = layer.alpha.shape
    for _ in range(count):
        radius = 0.5 + max(max_radius - 0.5, 0.0) * uniform(generator) ** 4
        aspect = uniform(generator, 1.0, 2.5)
        angle = uniform(generator, 0, math.pi)
        reach = math.ceil(radius * aspect) + 2
        cy, cx = uniform(generator, 0, height), uniform(generator, 0, width)
        top, left = math.floor(cy) - reach, math.floor(cx) - reach
        ys = torch.arange(top, top + 2 * reach + 1, dtype=torch.float32) + 0.5 - cy
        xs = torch.arange(left, left + 2 * reach + 1, dtype=torch.float32) + 0.5 - cx
        dy, dx = ys.view(-1, 1), xs.view(1, -1)
        along = dx * math.cos(angle) + dy * math.sin(angle)
        across = (dy * math.cos(angle) - dx * math.sin(angle)) * aspect
        theta = torch.atan2(across, along)
        ragged = torch.ones_like(theta)
        for harmonic in (2, 3, 5):
            ragged = ragged + uniform(generator, 0, 0.25) * torch.cos(
                harmonic * theta + uniform(generator, 0, 2 * math.pi)
            )
        edge = radius * ragged - torch.sqrt(along**2 + across**2)
        alpha = (edge + 0.5).clamp(0, 1) * uniform(generator, 0.6, 1.0)
        layer.draw(top, left, alpha, _dirt_value(generator, bright_fraction))


def draw_hairs(layer: DamageLayer, count: int, *, generator: torch.Generator) -> None:
    """Hairs and fibres: thin curved strands, 10 px to half the frame long, mostly dark."""
    height, width = layer.alpha.shape
    for _ in range(count):
        length = uniform(generator, 10, max(12.0, 0.5 * min(height, width)))
        angle = uniform(generator, 0, 2 * math.pi)
        bend = uniform(generator, -0.5, 0.5) * length
        start = torch.tensor([uniform(generator, 0, height), uniform(generator, 0, width)])
        direction = torch.tensor([math.sin(angle), math.cos(angle)])
        normal = torch.tensor([direction[1], -direction[0]])
        s = torch.linspace(0, 1, max(8, int(length))).view(-1, 1)
        points = start + s * length * direction + (4 * s * (1 - s)) * bend * normal
        thickness = uniform(generator, 0.6, 1.6)
        top = int(points[:, 0].min()) - 3
        left = int(points[:, 1].min()) - 3
        h = int(points[:, 0].max()) - top + 4
        w = int(points[:, 1].max()) - left + 4
        ys = torch.arange(top, top + h, dtype=torch.float32) + 0.5
        xs = torch.arange(left, left + w, dtype=torch.float32) + 0.5
        dist = torch.sqrt(
            (ys.view(1, -1, 1) - points[:, 0].view(-1, 1, 1)) ** 2
            + (xs.view(1, 1, -1) - points[:, 1].view(-1, 1, 1)) ** 2
        ).amin(0)
        alpha = (thickness / 2 + 0.5 - dist).clamp(0, 1) * uniform(generator, 0.7, 1.0)
        layer.draw(top, left, alpha, _dirt_value(generator, 0.2))


class LineScratch:
    """A vertical scratch that persists through the clip and wanders sideways.

    Its position follows a random walk with a slow drift; its strength changes per frame and
    along its length (it fades in and out, and now and then skips frames).
    """

    def __init__(
        self, height: int, width: int, *, drift: float, generator: torch.Generator
    ) -> None:
        self.height = height
        self.x = uniform(generator, 0, width)
        self.velocity = uniform(generator, -1, 1) * drift
        self.drift = drift
        self.width = uniform(generator, 0.7, 2.5)
        self.value = _dirt_value(generator, 0.6)
        self.strength = uniform(generator, 0.4, 1.0)
        self.top = int(uniform(generator, -0.3, 0.4) * height)
        self.bottom = int(uniform(generator, 0.6, 1.3) * height)
        self.generator = generator

    def draw(self, layer: DamageLayer) -> None:
        """Draw this frame's scratch and move it on to the next frame."""
        g = self.generator
        self.x += self.velocity + self.drift * float(torch.randn((), generator=g))
        if uniform(g) < 0.08:
            return
        top, bottom = max(self.top, 0), min(self.bottom, self.height)
        if bottom <= top:
            return
        ys = torch.arange(top, bottom, dtype=torch.float32)
        knots = torch.rand(max(2, (bottom - top) // 32 + 2), generator=g)
        along = torch.nn.functional.interpolate(
            knots.view(1, 1, -1), size=bottom - top, mode="linear", align_corners=True
        )[0, 0]
        opacity = (0.5 + along).clamp(0, 1) * self.strength * uniform(g, 0.6, 1.0)
        wobble = uniform(g, 0, 0.8) * torch.sin(ys / uniform(g, 20, 80) + uniform(g, 0, 6.3))
        left = math.floor(self.x - self.width) - 2
        xs = torch.arange(left, left + math.ceil(2 * self.width) + 5, dtype=torch.float32) + 0.5
        dist = (xs.view(1, -1) - self.x - wobble.view(-1, 1)).abs()
        alpha = (self.width / 2 + 0.5 - dist).clamp(0, 1) * opacity.view(-1, 1)
        layer.draw(top, left, alpha, self.value)
