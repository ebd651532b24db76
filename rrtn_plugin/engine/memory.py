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
even that fits a shorter window (never with ``fixed_window``: farm chunks are planned for the
asked window). :func:`plan_schedule` applies this to a session's options; on a GPU,
:func:`tiles_at_once` says how many tiles the network can take as one batch. The budget, unless
given, is :func:`default_budget`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from rrtn_plugin.engine.device import available_memory
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.options import RestoreOptions

BUDGET_SHARE = 0.8
"""Part of a device's free memory the engine budgets for when no budget is given."""


def default_budget(device: torch.device) -> int:
    """The memory budget on ``device`` when none is given: :data:`BUDGET_SHARE` of its free
    memory (sessions, one-call restores and the server all use this)."""
    return int(BUDGET_SHARE * available_memory(device))


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


def network_budget(frames: int, height: int, width: int, *, budget: int) -> int:
    """What ``budget`` leaves for the network once a window of ``frames`` frames of ``height`` ×
    ``width`` is held at full size."""
    return budget - frames * height * width * WINDOW_BYTES_PER_PIXEL


def window_fits(frames: int, height: int, width: int, *, tile: int | None, budget: int) -> bool:
    """Whether a window of ``frames`` frames fits ``budget`` with the network on ``tile``-sided
    tiles (None: whole frames), the window itself held at full size."""
    tile_h, tile_w = (height, width) if tile is None else (min(tile, height), min(tile, width))
    return restorer_bytes(frames, tile_h, tile_w) <= network_budget(
        frames, height, width, budget=budget
    )


def plan_memory(
    frames: int,
    height: int,
    width: int,
    *,
    budget: int,
    multiple: int = 16,
    minimum_tile: int = 128,
    minimum_window: int = MIN_WINDOW,
) -> tuple[int, int | None]:
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
        for side in range(max(height, width) // multiple * multiple, minimum_tile - 1, -multiple):
            if window_fits(window, height, width, tile=side, budget=budget):
                return window, side
    raise RRTNError(
        f"a window of {min(frames, minimum_window)} frames of {width}x{height} needs more memory "
        f"than the {budget / 2**30:.3g} GiB budget even in {minimum_tile}px tiles: use a larger "
        "memory budget, a device with more memory, or restore at a lower resolution",
        kind=ErrorKind.OUT_OF_MEMORY,
    )


class Schedule(NamedTuple):
    """What a session runs: windows of ``window`` frames overlapping by ``overlap``, the network
    on tiles of side ``tile`` (None: whole frames)."""

    window: int
    overlap: int
    tile: int | None


def plan_schedule(
    options: RestoreOptions,
    *,
    frames: int,
    height: int,
    width: int,
    budget: int,
    multiple: int = 16,
) -> Schedule:
    """The window and tiles a clip of ``frames`` frames of ``height`` × ``width`` (padded) runs
    with under ``options`` and a memory ``budget``.

    A given ``options.tile`` is used as it is (0: whole frames). Otherwise :func:`plan_memory`
    chooses; a window it shortens keeps its overlap in proportion, and with
    ``options.fixed_window`` it may not shorten it.

    Raises:
        RRTNError (OUT_OF_MEMORY): nothing fits.
    """
    window, overlap = options.window, options.window_overlap
    if options.tile is not None:
        return Schedule(window, overlap, options.tile or None)
    longest = min(window, frames)
    try:
        fitted, tile = plan_memory(
            longest,
            height,
            width,
            budget=budget,
            multiple=multiple,
            minimum_window=longest if options.fixed_window else MIN_WINDOW,
        )
    except RRTNError as exc:
        if options.fixed_window:
            raise RRTNError(
                f"{exc}; the window is fixed (a farm task's chunks were planned for "
                f"it), so give this task more memory or plan the job with a shorter "
                f"--window",
                kind=exc.kind,
            ) from exc
        raise
    if fitted < longest:
        return Schedule(fitted, overlap * fitted // window, tile)
    return Schedule(window, overlap, tile)


def tiles_at_once(
    frames: int, tile_height: int, tile_width: int, *, height: int, width: int, budget: int
) -> int:
    """How many tiles of a ``frames``-frame window of ``height`` × ``width`` the network can take
    in one batch within ``budget`` (at least 1), the window itself held at full size."""
    left = network_budget(frames, height, width, budget=budget)
    return max(1, left // restorer_bytes(frames, tile_height, tile_width))
