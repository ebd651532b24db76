"""How much memory a window costs, and the window length and tile size that fit a budget.

The rule, from peak-RSS measurements of :meth:`RRTN.restore` on CPU (fp32, 2 threads, inference
mode, the engine's allocator settings; ``bench/memory.py``), for a window of T frames of H × W
pixels:

    restorer bytes ≈ H·W · (11 000 + 800·T)

The first term is the working set of one frame's propagation step (the Swin attention, the
deformable convolution's sampling grid and columns, in bands of rows, and the per-frame stages'
batches); the second the five 16-channel feature maps kept per frame plus the frame, mask, flows
and spatial features. Measured at 256² and 512² with 2–12 frames: 9.8–11.4 kB/px for the step,
740 B/px per frame; the rule is within −2 % to +14 % of each measurement. Small frames add
a fixed ~80 MB (128², 2 frames: 270 MB measured, 197 MB by the rule).

The engine keeps the whole window (frames, flows, masks, blend accumulators) at full frame size
and tiles only the network (:func:`plan_memory`): whole frames when they fit, else the largest
tile (a multiple of 16, at least 128) whose cost fits what the budget leaves, and only when not
even that fits a shorter window.
"""

from __future__ import annotations

from rrtn_plugin.errors import ErrorKind, RRTNError

STEP_BYTES_PER_PIXEL = 11_000
FRAME_BYTES_PER_PIXEL = 800
WINDOW_BYTES_PER_PIXEL = 4 + 4 + 16 + 8
"""Per frame of a window held at full size: frame, mask, two flows, blend accumulators."""


def restorer_bytes(frames: int, height: int, width: int) -> int:
    """Estimated peak memory of the network on a ``frames`` × ``height`` × ``width`` window."""
    return height * width * (STEP_BYTES_PER_PIXEL + FRAME_BYTES_PER_PIXEL * frames)


MIN_WINDOW = 6
"""Shortest window the engine shortens a window to for memory (the network needs 3 frames; with
fewer than 6 little of the temporal propagation is left)."""


def window_fits(frames: int, height: int, width: int, *, tile: int | None, budget: int) -> bool:
    """Whether a window of ``frames`` frames fits ``budget`` with the network on ``tile``-sided
    tiles (None: whole frames), the window itself held at full size."""
    left = budget - frames * height * width * WINDOW_BYTES_PER_PIXEL
    tile_h, tile_w = (height, width) if tile is None else (min(tile, height), min(tile, width))
    return restorer_bytes(frames, tile_h, tile_w) <= left


def plan_memory(frames: int, height: int, width: int, *, budget: int, multiple: int = 16,
                minimum_tile: int = 128,
                minimum_window: int = MIN_WINDOW) -> tuple[int, int | None]:
    """The window length and tile side that fit ``budget``: (window, tile or None for whole
    frames).

    The rule: keep the asked window length and whole frames if they fit; else tile, with the
    largest tile (a multiple of ``multiple``, at least ``minimum_tile``) that fits; only when
    not even the smallest tile fits, shorten the window, to the longest (at least
    ``minimum_window``) that fits with some tile, since context across frames is what the
    network restores from and tiles cost only their overlap.

    Raises:
        RRTNError (OUT_OF_MEMORY): nothing fits; the message gives advice.
    """
    for window in range(frames, min(frames, minimum_window) - 1, -1):
        if window_fits(window, height, width, tile=None, budget=budget):
            return window, None
        for side in range(max(height, width) // multiple * multiple, minimum_tile - 1,
                          -multiple):
            if window_fits(window, height, width, tile=side, budget=budget):
                return window, side
    raise RRTNError(
        f"a window of {min(frames, minimum_window)} frames of {width}x{height} needs more memory "
        f"than the {budget / 2**30:.1f} GiB budget even in {minimum_tile}px tiles: use a larger "
        "memory budget, a device with more memory, or restore at a lower resolution",
        kind=ErrorKind.OUT_OF_MEMORY)
