"""Chunks: a frame range split for farm tasks, each with the context its frames need.

A chunk writes frames ``first``–``last`` and reads ``read_first``–``read_last``: every frame
that restoring its frames over the whole clip would read (the windows covering them, for every
pass, the noise mask's neighbours, the tone guard's and shot detection's reach; see
:func:`~rrtn_plugin.engine.windows.frames_read`).
Windows lie on a fixed grid of frame numbers, so the chunk's windows are the whole run's and a
chunked run gives the single run's frames. The chunks tile the range: every frame is written
by exactly one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from rrtn_plugin.engine.windows import frames_read
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.options import RestoreOptions


@dataclass(frozen=True)
class Chunk:
    """Frames ``first``–``last`` written, ``read_first``–``read_last`` read."""

    first: int
    last: int
    read_first: int
    read_last: int

    @property
    def frames(self) -> str:
        """The ``--frames`` value: ``1001-1050``."""
        return f"{self.first}-{self.last}"

    @property
    def handles(self) -> int:
        """Context frames read on the wider side."""
        return max(self.first - self.read_first, self.read_last - self.last)


def plan_chunks(
    first: int,
    last: int,
    *,
    size: int,
    available: tuple[int, int],
    options: RestoreOptions,
) -> list[Chunk]:
    """Split ``first``–``last`` into chunks of ``size`` frames (the last may be shorter).

    Args:
        available: the first and last frame of the media, which bound the context.
        options: the engine's settings the tasks will run with (window, passes, stages).
    """
    if size < 1:
        raise RRTNError(f"a chunk needs at least 1 frame, not {size}")
    if not available[0] <= first <= last <= available[1]:
        raise RRTNError(
            f"frames {first}-{last} are not all in the media's {available[0]}-{available[1]}"
        )
    chunks = []
    for start in range(first, last + 1, size):
        stop = min(start + size - 1, last)
        low, high = frames_read(start, stop, clip=available, options=options)
        chunks.append(Chunk(start, stop, low, high))
    return chunks
