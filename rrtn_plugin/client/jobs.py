"""One restore as a host asks for it, and the record that says it is done.

:class:`RestoreJob`: the input sequence, the frames wanted, the context around them (handles),
the frame size, the settings and the identity of the input's content. Its
:meth:`~RestoreJob.key` names the result's folder under the host's result root
(:mod:`.results`), so a job asked again with nothing changed finds its result there
(:func:`finished_result`, from the record :func:`write_record` leaves) and does no work.
:func:`rendered_job` is the job for frames a host rendered into a folder itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rrtn_plugin.atomic import atomic_output
from rrtn_plugin.client.library import frame_path
from rrtn_plugin.client.results import digest, sequence_in, slug
from rrtn_plugin.client.sequences import exr_size, files_identity, rendered_sequence
from rrtn_plugin.client.settings import HostSettings
from rrtn_plugin.errors import RRTNError

RECORD = "rrtn_job.json"
"""The file in a job's folder that says the job finished, and with what."""
FARM_RECORD = "rrtn_farm.json"
"""The file in a job's folder that says a farm job bundle was written to restore it."""


@dataclass(frozen=True)
class RestoreJob:
    """Restore frames ``first``–``last`` of the sequence ``input`` (``####`` or ``%04d``).

    ``context_first``–``context_last`` are the frames ``input`` holds (the range with its
    handles), all sent as temporal context; only ``first``–``last`` are written. ``identity``
    changes whenever the input's pixels may have (file stamps, the host's graph). An empty
    ``input`` means the host renders it to :meth:`rendered_input`.
    ``aov_files`` asks for each AOV as its own grey EXR sequence instead of as channels.
    """

    name: str
    input: str
    first: int
    last: int
    context_first: int
    context_last: int
    width: int
    height: int
    settings: HostSettings
    identity: str
    aov_files: bool = False

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise RRTNError(f"the last frame {self.last} is before the first {self.first}")
        if not self.context_first <= self.first or not self.last <= self.context_last:
            raise RRTNError(
                f"frames {self.first}-{self.last} are not inside the input's "
                f"frames {self.context_first}-{self.context_last}"
            )
        if self.width <= 0 or self.height <= 0:
            raise RRTNError(f"the input has no pixels ({self.width}x{self.height})")

    @classmethod
    def with_handles(
        cls,
        *,
        first: int,
        last: int,
        handles: int,
        available: tuple[int, int] | None = None,
        **fields: object,
    ) -> RestoreJob:
        """A job whose context is ``handles`` frames either side, within ``available``."""
        if handles < 0:
            raise RRTNError(f"handles must be 0 or more, not {handles}")
        if last < first:
            raise RRTNError(f"the last frame {last} is before the first {first}")
        low, high = available if available is not None else (first - handles, last + handles)
        if not low <= first <= last <= high:
            raise RRTNError(f"frames {first}-{last} are not all in the input's range {low}-{high}")
        return cls(
            first=first,
            last=last,
            context_first=max(low, first - handles),
            context_last=min(high, last + handles),
            **fields,  # type: ignore[arg-type]
        )

    def key(self) -> str:
        """A digest of everything that decides the result."""
        return digest(
            {
                "identity": self.identity,
                "frames": [self.first, self.last],
                "context": [self.context_first, self.context_last],
                "size": [self.width, self.height],
                "aov_files": self.aov_files,
                **self.settings.result_fields(),
            }
        )

    def folder(self, cache_root: Path) -> Path:
        """Where this job's result is written: one folder per key."""
        return Path(cache_root) / f"{slug(self.name)}-{self.key()}"

    def rendered_input(self, cache_root: Path) -> str:
        """Where a host renders the input when ``input`` is empty (removed once restored)."""
        return str(self.folder(cache_root) / "input" / f"{slug(self.name)}.####.exr")

    def output_pattern(self, cache_root: Path) -> str:
        """Where the restored frames are written (``####``, at least four digits)."""
        return sequence_in(self.folder(cache_root), self.name, self.last)

    def aov_output(self, cache_root: Path) -> str | None:
        """With ``aov_files``, where each AOV is written (``{aov}`` names it: a folder per
        AOV, one sequence in each); else None."""
        if not self.aov_files:
            return None
        return sequence_in(self.folder(cache_root) / "{aov}", self.name, self.last, suffix="_{aov}")


def rendered_job(
    folder: Path,
    *,
    name: str,
    first: int,
    last: int,
    low: int,
    high: int,
    settings: HostSettings,
) -> RestoreJob:
    """The job restoring frames ``first``–``last`` of a host's render of frames
    ``low``–``high``, which left one EXR sequence in ``folder`` whose file numbers may start
    elsewhere (the job counts in file numbers: ``job.first - first`` is the offset). The
    input's identity is the files' content (a render writes new files each time); each AOV
    comes as its own sequence."""
    pattern, number = rendered_sequence(folder, high - low + 1)
    width, height = exr_size(frame_path(pattern, number))
    offset = number - low
    return RestoreJob(
        name=name,
        input=pattern,
        first=first + offset,
        last=last + offset,
        context_first=low + offset,
        context_last=high + offset,
        width=width,  # the render's size, whatever the host's settings say
        height=height,
        settings=settings,
        aov_files=True,
        identity=files_identity(pattern, range(low + offset, high + offset + 1), by_content=True),
    )


@dataclass(frozen=True)
class JobResult:
    """Where a job's restored frames are: ``pattern`` (``####``) and one pattern per AOV file."""

    folder: Path
    pattern: str
    aov_patterns: dict[str, str]
    first: int
    last: int
    seconds: float
    pass_psnr: tuple[float, ...]
    nonfinite_frames: tuple[int, ...]
    reused: bool = False

    def path(self, frame: int) -> Path:
        return frame_path(self.pattern, frame)


def write_record(
    job: RestoreJob,
    cache_root: Path,
    name: str = RECORD,
    *,
    aov_patterns: dict[str, str] | None = None,
    seconds: float = 0.0,
    pass_psnr: tuple[float, ...] = (),
    nonfinite_frames: tuple[int, ...] = (),
    **extra: object,
) -> JobResult:
    """Record in the job's folder (as ``name``) that its frames are, or will be, there."""
    record = {
        "key": job.key(),
        "name": job.name,
        "first": job.first,
        "last": job.last,
        "pattern": job.output_pattern(cache_root),
        "aov_patterns": aov_patterns or {},
        "seconds": seconds,
        "pass_psnr": list(pass_psnr),
        "nonfinite_frames": list(nonfinite_frames),
        "settings": job.settings.result_fields(),
        **extra,
    }
    folder = job.folder(cache_root)
    with atomic_output(folder / name) as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    return _result_from_record(record, folder, reused=False)


def finished_result(job: RestoreJob, cache_root: Path) -> JobResult | None:
    """The result of an identical job already finished in ``cache_root``, if its files remain."""
    folder = job.folder(cache_root)
    saved: dict[str, Any] | None = None
    for name in (RECORD, FARM_RECORD):  # a farm's tasks write the frames but no record
        try:
            saved = json.loads((folder / name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            continue
        break
    if saved is None or saved.get("key") != job.key():
        return None
    result = _result_from_record(saved, folder, reused=True)
    patterns = [result.pattern, *result.aov_patterns.values()]
    if all(frame_path(p, f).is_file() for p in patterns for f in range(job.first, job.last + 1)):
        return result
    return None


def _result_from_record(record: dict[str, Any], folder: Path, *, reused: bool) -> JobResult:
    return JobResult(
        folder,
        record["pattern"],
        dict(record["aov_patterns"]),
        record["first"],
        record["last"],
        record["seconds"],
        tuple(record["pass_psnr"]),
        tuple(record["nonfinite_frames"]),
        reused,
    )
