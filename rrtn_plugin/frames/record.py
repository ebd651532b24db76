"""A restore job's record beside its output, so that a retry writes what the first run would have.

A job's frames depend on more than its command line: the clip it read for context, the number
of passes its automatic stop chose (decided on all its frames), and the window and tiles its
memory budget allowed. A run killed part-way leaves whole frames only; the retry
(``--skip-existing``) restores the rest, and must restore them as that run did. So before a job
writes its first frame it records all of this in a small hidden file beside the output,
``.<name>rrtn-job.<first>-<last>.json``; a retry of the same job (same frames and settings,
checked by a digest) reads it and runs with the recorded context, passes, window, tiles and
budget. A finished job removes its record. A record from other settings is refused: the frames
already written would not match the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from rrtn_plugin.atomic import atomic_output
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.frames.sequence import FramePattern

VERSION = 1


@dataclass(frozen=True)
class JobRecord:
    """What a job's frames were made with, beyond its settings.

    Attributes:
        input: the input sequence (its pattern).
        frames: the first and last frame the job writes.
        read: the first and last frame of the clip it read for context.
        settings: a digest of everything else that decides the pixels (:func:`settings_digest`).
        passes: recursion passes run.
        window, overlap: the windows the engine ran (after fitting the memory budget).
        tile: the tile side the network ran on (0: whole frames).
        budget: the memory budget the engine planned with, bytes.
    """

    input: str
    frames: tuple[int, int]
    read: tuple[int, int]
    settings: str
    passes: int
    window: int
    overlap: int
    tile: int
    budget: int


def record_path(out: FramePattern, frames: tuple[int, int]) -> Path:
    """Where the record of a job writing ``frames`` to ``out`` lives (hidden, beside it)."""
    return Path(out.directory) / f".{out.basename}rrtn-job.{frames[0]}-{frames[1]}.json"


def settings_digest(*parts: object) -> str:
    """A digest of a job's settings (their ``repr``: dataclasses, names, fingerprints)."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def write_record(path: Path, record: JobRecord) -> None:
    """Write ``record`` to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps({"version": VERSION, **asdict(record)}, indent=1) + "\n")


def read_record(path: Path) -> JobRecord | None:
    """The record at ``path``; None when there is none (or it is not one this version wrote)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.pop("version", None) != VERSION:
        return None
    try:
        return JobRecord(
            input=str(data["input"]),
            frames=(int(data["frames"][0]), int(data["frames"][1])),
            read=(int(data["read"][0]), int(data["read"][1])),
            settings=str(data["settings"]),
            passes=int(data["passes"]),
            window=int(data["window"]),
            overlap=int(data["overlap"]),
            tile=int(data["tile"]),
            budget=int(data["budget"]),
        )
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def check_record(record: JobRecord, *, input: str, settings: str, path: Path) -> None:
    """RRTNError unless ``record`` is of the job being retried (same input and settings)."""
    if record.input != input or record.settings != settings:
        raise RRTNError(
            f"the frames already in the output were written by another job (other input or "
            f"settings, recorded in {path}): remove them (and the record) or write elsewhere, "
            "so that the sequence is not a mix of two"
        )


def remove_record(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
