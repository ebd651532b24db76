"""AOVs: what the restoration saw and did, as named image channels beside the picture.

- ``mask``: RRTN's noise mask, the damage it saw (frame-value units), channel ``rrtn_mask.Y``.
- ``repair``: |output − input| of the luminance in the network's encoding, ``rrtn_repair.Y``.
- ``motion``: optical flow in pixels as Nuke names motion vectors: ``forward.u/v`` (to the next
  frame) and ``backward.u/v`` (to the previous one), u to the right and v up (Nuke's and
  Blender's y axis), zero where there is no neighbour.

In EXR these channels sit beside R, G, B, A in the same part. Nuke lists them as ``rrtn_mask.Y``,
``forward.u`` …; Blender's Image node shows sockets ``rrtn_mask`` and ``rrtn_repair`` (values)
and ``forward``, ``backward`` (vectors).
"""

from __future__ import annotations

import enum

import numpy as np

from rrtn_plugin.errors import RRTNError


class Aov(enum.Enum):
    MASK = "mask"
    REPAIR = "repair"
    MOTION = "motion"


CHANNELS: dict[Aov, tuple[str, ...]] = {
    Aov.MASK: ("rrtn_mask.Y",),
    Aov.REPAIR: ("rrtn_repair.Y",),
    Aov.MOTION: ("forward.u", "forward.v", "backward.u", "backward.v"),
}


def parse_aovs(text: str) -> tuple[Aov, ...]:
    """``"mask,repair"`` → (Aov.MASK, Aov.REPAIR); empty text → no AOVs."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    try:
        aovs = tuple(Aov(n) for n in names)
    except ValueError:
        bad = next(n for n in names if n not in {a.value for a in Aov})
        raise RRTNError(
            f"unknown AOV '{bad}' (choose from {', '.join(a.value for a in Aov)})"
        ) from None
    return tuple(dict.fromkeys(aovs))


def aov_planes(
    aovs: tuple[Aov, ...],
    *,
    mask: np.ndarray,
    repair: np.ndarray,
    forward: np.ndarray | None = None,
    backward: np.ndarray | None = None,
) -> tuple[list[str], np.ndarray]:
    """Channel names and (H, W, K) float32 planes of the chosen AOVs of one frame.

    Args:
        mask, repair: (H, W).
        forward, backward: (2, H, W) flow to the next / previous frame, (x, y) with y down.
    """
    names: list[str] = []
    planes: list[np.ndarray] = []
    for aov in aovs:
        names += CHANNELS[aov]
        if aov is Aov.MASK:
            planes.append(mask)
        elif aov is Aov.REPAIR:
            planes.append(repair)
        else:
            if forward is None or backward is None:
                raise ValueError("the motion AOV needs forward and backward flow")
            planes += [forward[0], -forward[1], backward[0], -backward[1]]
    height, width = mask.shape
    stack = np.stack(planes, axis=2) if planes else np.zeros((height, width, 0))
    return names, stack.astype(np.float32)
