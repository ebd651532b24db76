"""Which frames a job reads and writes, checked on disk before any work starts.

:func:`plan_frames` turns a request (frames and handles) into the frames to read and to write,
naming any that are missing (and refusing ranges given backwards); :func:`check_headers` reads
every header and names the first frame whose size or channels differ; :func:`check_target`
refuses outputs that cannot be written (a folder under a file, one not writable) or would
overwrite the input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.image import WRITERS, ImageInfo, read_info
from rrtn_plugin.frames.sequence import FramePattern


@dataclass(frozen=True)
class FramePlan:
    """Which frames are read (with handles) and which are written."""

    read: list[int]
    write: list[int]


def plan_frames(pattern: FramePattern, requested: list[int] | None, handles: int) -> FramePlan:
    """Check the requested frames exist and add handles that exist.

    Raises:
        RRTNError: no frames, a gap in the range, or a missing frame (named).
    """
    if handles < 0:
        raise RRTNError(f"handles must be ≥ 0, got {handles}")
    if requested and list(requested) != sorted(set(requested)):
        low, high = min(requested), max(requested)
        raise RRTNError(
            f"frames {requested[0]}-{requested[-1]} are not in ascending order (or repeat "
            f"one): give them as {low}-{high}"
        )
    on_disk = set(pattern.frames_on_disk())
    frames = requested or list(pattern.frames_in_name) or sorted(on_disk)
    if not frames:
        raise RRTNError(f"no frames found for {pattern.display()}", kind=ErrorKind.NOT_FOUND)
    frames = sorted(set(frames))
    if frames != list(range(frames[0], frames[-1] + 1)):
        raise RRTNError(
            f"frames must form one contiguous range, got {frames[0]}-{frames[-1]} with gaps"
        )
    missing = [f for f in frames if f not in on_disk]
    if missing:
        shown = ", ".join(str(pattern.path(f)) for f in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise RRTNError(f"missing frame(s): {shown}{more}", kind=ErrorKind.NOT_FOUND)
    before = list(range(frames[0] - 1, frames[0] - handles - 1, -1))
    after = list(range(frames[-1] + 1, frames[-1] + handles + 1))
    read = _existing_run(before, on_disk)[::-1] + frames + _existing_run(after, on_disk)
    return FramePlan(read=read, write=frames)


def _existing_run(frames: list[int], on_disk: set[int]) -> list[int]:
    run = []
    for f in frames:
        if f not in on_disk:
            break
        run.append(f)
    return run


def check_headers(pattern: FramePattern, frames: list[int]) -> list[ImageInfo]:
    """Every frame's header; all must share resolution and channels (first mismatch named)."""
    infos = [read_info(pattern.path(f)) for f in frames]
    first = infos[0]
    for info in infos[1:]:
        if (info.width, info.height) != (first.width, first.height):
            raise RRTNError(
                f"{info.path} is {info.width}x{info.height}, but {first.path} is "
                f"{first.width}x{first.height}"
            )
        if set(info.channels) != set(first.channels):
            raise RRTNError(
                f"{info.path} has channels {', '.join(info.channels)}, but "
                f"{first.path} has {', '.join(first.channels)}"
            )
    return infos


def check_target(out: FramePattern, inp: FramePattern) -> None:
    """RRTNError unless frames can be written to ``out`` without touching ``inp``'s: a format
    we write, not the input's files, and a folder that is one, or can be made, and may be
    written in (checked before any work, so that the work is not lost at the end)."""
    if out.format not in WRITERS:
        raise RRTNError(f"cannot write .{out.format} files: use .{', .'.join(sorted(WRITERS))}")
    probe = 1001
    if Path(out.path(probe)).resolve() == Path(inp.path(probe)).resolve():
        raise RRTNError(f"output {out.display()} would overwrite the input frames")
    folder = Path(out.directory).absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RRTNError(f"cannot make the output folder {folder}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "write in the output folder" if existing == folder else "make the output folder"
        raise RRTNError(
            f"cannot {what} {folder}: {existing} is not writable",
            kind=ErrorKind.PERMISSION_DENIED,
        )
