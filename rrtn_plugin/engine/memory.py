"""How much memory a window costs, and the tile size that makes it fit a budget.

The rule, from peak-RSS measurements of :meth:`RRTN.restore` on CPU (fp32, 2 threads; see
``bench/memory.py``), for a window of T frames of H × W pixels:

    restorer bytes ≈ H·W · (10 000 + 600·T)

The first term is the working set of one frame's step (the Swin attention and the deformable
convolution's columns dominate); the second holds the five 16-channel feature maps kept per
frame plus the frame, mask and flows. Measured: 9.1–11.7 kB/px for the step, ~500 B/px/frame.

The engine keeps the whole window (frames, flows, masks, blend accumulators) at full frame size
and tiles only the network: it uses the largest tile (a multiple of 16, at least 128) whose
cost fits what the budget leaves.
"""

from __future__ import annotations

from rrtn_plugin.errors import ErrorKind, RRTNError

STEP_BYTES_PER_PIXEL = 10_000
FRAME_BYTES_PER_PIXEL = 600
WINDOW_BYTES_PER_PIXEL = 4 + 4 + 16 + 8
"""Per frame of a window held at full size: frame, mask, two flows, blend accumulators."""


def restorer_bytes(frames: int, height: int, width: int) -> int:
    """Estimated peak memory of the network on a ``frames`` × ``height`` × ``width`` window."""
    return height * width * (STEP_BYTES_PER_PIXEL + FRAME_BYTES_PER_PIXEL * frames)


def choose_tile(frames: int, height: int, width: int, *, budget: int, multiple: int = 16,
                minimum: int = 128) -> int | None:
    """The tile side for the network on a window, or None when the whole frame fits ``budget``.

    Raises:
        RRTNError (OUT_OF_MEMORY): not even a ``minimum`` tile fits; the message gives advice.
    """
    left = budget - frames * height * width * WINDOW_BYTES_PER_PIXEL
    if restorer_bytes(frames, height, width) <= left:
        return None
    side = max(height, width)
    while side >= minimum:
        if restorer_bytes(frames, min(side, height), min(side, width)) <= left:
            return side
        side -= multiple
    raise RRTNError(
        f"a window of {frames} frames of {width}x{height} needs more memory than the "
        f"{budget / 2**30:.1f} GiB budget even in {minimum}px tiles: use a shorter window "
        "(--window), a larger memory budget, or a device with more memory",
        kind=ErrorKind.OUT_OF_MEMORY)
