"""A clip's plan: the padded size, the windows, the tiles and the flow resolution it runs with.

:func:`plan_clip` decides, once per session, everything about a clip that does not depend on
its frames' content: frames padded to sizes the network takes (:mod:`.geometry`), a clip of
fewer than 3 frames extended by temporal reflection, the window length and tile size that fit
the memory budget (:mod:`.memory`), the windows on the grid of frame numbers (:mod:`.windows`),
the tiles, how many tiles a GPU runs at once, and RAFT's resolution and batch (:mod:`.flows`).
A :class:`ClipPlan` works in 0-based indices of the (extended) clip.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace

import torch

from rrtn_plugin.engine.flows import flow_size, raft_pair_bytes
from rrtn_plugin.engine.geometry import Tile, padded_size, plan_tiles, reflect_indices
from rrtn_plugin.engine.memory import default_budget, plan_schedule, tiles_at_once
from rrtn_plugin.engine.windows import Window, covering, mask_neighbours, plan_windows
from rrtn_plugin.model.flow import RAFT_MIN_SIDE
from rrtn_plugin.options import RestoreOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipPlan:
    """How a clip of ``height`` × ``width`` frames runs; frames are 0-based indices.

    Attributes:
        first_frame: the frame number of index 0 (windows lie on a grid of frame numbers).
        num_frames: frames in the clip.
        height, width: the frames' size.
        padded_height, padded_width: the size the network sees (mirror padding).
        extended: frames in the clip the network sees (at least 3, by temporal reflection).
        source: for each of those, the index of the given frame it is.
        budget: the memory budget, bytes.
        window_length, window_overlap: the windows' length and overlap.
        windows: [start, stop) of every window, in order.
        tiles: the tiles the network runs on (one: the whole frame).
        tiles_at_once: tiles the network takes in one batch (more than 1 on a GPU only).
        flow_size: (h, w) RAFT runs at.
        flow_batch: frame pairs RAFT takes in one batch.
        params: what a window's output depends on besides its frames, masks and network.
    """

    first_frame: int
    num_frames: int
    height: int
    width: int
    padded_height: int
    padded_width: int
    extended: int
    source: tuple[int, ...]
    budget: int
    window_length: int
    window_overlap: int
    windows: tuple[Window, ...]
    tiles: tuple[Tile, ...]
    tiles_at_once: int
    flow_size: tuple[int, int]
    flow_batch: int
    params: tuple[int, int, str, int, tuple[tuple[int, int, int, int], ...]]

    def covering(self, frames: Iterable[int]) -> list[Window]:
        """The windows that contain at least one of ``frames``."""
        return covering(self.windows, frames)

    def neighbours(self, frame: int) -> tuple[int, int]:
        """(next, previous) frames a frame's mask compares with; the reference's at the ends."""
        return mask_neighbours(frame, first=0, last=self.extended - 1)

    def pairs_of(self, windows: Iterable[Window]) -> set[tuple[int, int]]:
        """The frame pairs whose flows the masks of ``windows``' frames need."""
        pairs = set()
        for s, e in windows:
            for v in range(s, e):
                nxt, prev = self.neighbours(v)
                pairs |= {(v, nxt), (v, prev)}
        return pairs

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (…, Hp, Wp) without the padding: (…, H, W)."""
        return x[..., : self.height, : self.width]

    def shot(self, start: int, stop: int) -> ClipPlan:
        """The plan of frames [start, stop) restored as a clip of their own (a shot): the same
        frame size, tiles and flow resolution; the windows on the same grid of frame numbers,
        clipped to the shot; a shot of fewer than 3 frames extended by temporal reflection.
        Indices of the result are the shot's (0: frame ``start``)."""
        if not 0 <= start < stop <= self.num_frames:
            raise ValueError(f"shot [{start}, {stop}) is not in a clip of {self.num_frames}")
        if (start, stop) == (0, self.num_frames):
            return self
        frames = stop - start
        extended = max(frames, 3)
        first = self.first_frame + start
        windows = plan_windows(
            first, first + extended, length=self.window_length, overlap=self.window_overlap
        )
        return replace(
            self,
            first_frame=first,
            num_frames=frames,
            extended=extended,
            source=tuple(reflect_indices(frames, extended).tolist()),
            windows=tuple((s - first, e - first) for s, e in windows),
        )


def plan_clip(
    options: RestoreOptions,
    *,
    device: torch.device,
    first_frame: int,
    num_frames: int,
    height: int,
    width: int,
    multiple: int,
) -> ClipPlan:
    """The plan of the clip ``first_frame`` … ``first_frame + num_frames − 1`` of ``height`` ×
    ``width`` frames under ``options`` on ``device``, for a network that takes sides that are
    multiples of ``multiple``. Logs a warning when the memory budget shortens the windows.

    Raises:
        RRTNError (OUT_OF_MEMORY): nothing fits the budget.
    """
    hp = padded_size(height, multiple=multiple, minimum=RAFT_MIN_SIDE)
    wp = padded_size(width, multiple=multiple, minimum=RAFT_MIN_SIDE)
    extended = max(num_frames, 3)
    budget = options.memory_budget or default_budget(device)
    schedule = plan_schedule(
        options, frames=extended, height=hp, width=wp, budget=budget, multiple=multiple
    )
    longest = min(options.window, extended)
    if schedule.window < longest:
        log.warning(
            "%d-frame windows of %dx%d do not fit the %.3g GiB memory budget: "
            "using %d-frame windows",
            longest,
            width,
            height,
            budget / 2**30,
            schedule.window,
        )
    windows = tuple(
        (s - first_frame, e - first_frame)
        for s, e in plan_windows(
            first_frame,
            first_frame + extended,
            length=schedule.window,
            overlap=schedule.overlap,
        )
    )
    tiles = tuple(plan_tiles(hp, wp, tile=schedule.tile, overlap=options.tile_overlap))
    # A GPU runs as many tiles at once as fit; a CPU gains nothing from it (its kernels are
    # busy with one tile) and would only hold more memory.
    at_once = 1
    if len(tiles) > 1 and device.type == "cuda":
        at_once = min(
            len(tiles),
            tiles_at_once(
                min(schedule.window, extended),
                tiles[0].height,
                tiles[0].width,
                height=hp,
                width=wp,
                budget=budget,
            ),
        )
    flow_hw = flow_size(hp, wp, options.flow_max_pixels)
    return ClipPlan(
        first_frame=first_frame,
        num_frames=num_frames,
        height=height,
        width=width,
        padded_height=hp,
        padded_width=wp,
        extended=extended,
        source=tuple(reflect_indices(num_frames, extended).tolist()),
        budget=budget,
        window_length=schedule.window,
        window_overlap=schedule.overlap,
        windows=windows,
        tiles=tiles,
        tiles_at_once=at_once,
        flow_size=flow_hw,
        flow_batch=max(1, (budget // 4) // raft_pair_bytes(*flow_hw)),
        params=(
            hp,
            wp,
            options.precision,
            options.tile_overlap,
            tuple((t.top, t.left, t.height, t.width) for t in tiles),
        ),
    )
