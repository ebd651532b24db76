"""A restore job: a frame sequence in, the restored sequence (and its AOVs) out.

The data path, in order: :mod:`io` finds and checks every frame (before any work starts),
:class:`FramePipeline` turns each into the network's luminance, a :class:`ClipSession` of the
engine restores the requested frames, and each is read again, given the network's change, and
written atomically with its AOVs. Handles are extra frames read on both sides for temporal
context and never written. The server runs the same steps for its path transport.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rrtn_plugin.atomic import remove_stale_temporaries
from rrtn_plugin.color import ColorMode
from rrtn_plugin.engine import ClipSession, Progress, RestoreOptions, SessionResult
from rrtn_plugin.engine.clip import one_call_cache
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.image import read_info, read_pixels
from rrtn_plugin.frames.pipeline import FramePipeline, FrameResult
from rrtn_plugin.frames.plan import check_headers, check_target, plan_frames
from rrtn_plugin.frames.sequence import parse_pattern
from rrtn_plugin.model import RRTN

log = logging.getLogger("rrtn_plugin")


@dataclass(frozen=True)
class JobSettings:
    """What a restore job does beyond the engine's scheduling.

    Attributes:
        frames: frames to write (contiguous); None: every frame of the input on disk.
        handles: frames read on each side for context (clamped to what exists), not written.
        input_colorspace: the frames' colour space; None: the config's ``scene_linear`` role.
        working_colorspace: the network's space; None: sRGB-encoded Rec.709 from the config.
        ocio_config: OpenColorIO config path or URI; None: ``$OCIO`` or the built-in one.
        color_mode: keep chroma, or write the restored luminance as monochrome.
        aovs: which AOVs to write.
        restore: the engine's options.
        skip_existing: leave frames whose files are already complete (an earlier run's, as a
            farm retry finds them) and restore only the rest.
    """

    frames: list[int] | None = None
    handles: int = 0
    input_colorspace: str | None = None
    working_colorspace: str | None = None
    ocio_config: str | None = None
    color_mode: ColorMode = ColorMode.KEEP_CHROMA
    aovs: tuple[Aov, ...] = ()
    restore: RestoreOptions = field(default_factory=RestoreOptions)
    skip_existing: bool = False


@dataclass
class JobReport:
    """What a job did."""

    written: list[Path]
    frames: list[int]
    read_frames: list[int]
    pass_psnr: list[float]
    nonfinite_frames: list[int]
    mask_coverage: float
    """Fraction of written pixels whose noise mask is above 0.05."""
    seconds: float
    skipped: list[int] = field(default_factory=list)
    """Frames left as they were (``skip_existing``)."""


def restore_sequence(
    source: str | Path,
    target: str | Path,
    *,
    first: RRTN,
    second: RRTN | None = None,
    settings: JobSettings | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> JobReport:
    """Restore the frames of ``source`` (a sequence pattern or folder) into ``target``.

    ``target`` is a pattern like ``out/shot.####.exr``; its extension picks the format. Frame
    numbers carry over. AOVs go into EXR outputs as extra channels, and beside other formats as
    a side-car EXR sequence ``<name>_rrtn_aovs.####.exr``.

    Raises:
        RRTNError: bad input (named) before any work starts; cancellation; out of memory.
    """
    job = settings or JobSettings()
    started = time.perf_counter()
    inp = parse_pattern(source, must_exist=True)
    out = parse_pattern(target)
    check_target(out, inp)
    plan = plan_frames(inp, job.frames, job.handles)
    infos = check_headers(inp, plan.read)
    pipeline = FramePipeline(
        infos[0].channels,
        input_colorspace=job.input_colorspace,
        working_colorspace=job.working_colorspace,
        ocio_config=job.ocio_config,
        color_mode=job.color_mode,
        aovs=job.aovs,
    )
    skipped: list[int] = []
    if job.skip_existing:
        for folder in {p.parent for p in pipeline.targets(out, plan.write[0])}:
            remove_stale_temporaries(folder)
        pending = [f for f in plan.write if not _complete(pipeline.targets(out, f))]
        skipped = [f for f in plan.write if f not in pending]
        if not pending:
            return JobReport(
                written=[],
                frames=[],
                read_frames=[],
                pass_psnr=[],
                nonfinite_frames=[],
                mask_coverage=0.0,
                skipped=skipped,
                seconds=time.perf_counter() - started,
            )
        # Windows lie on a fixed grid, so restoring the unfinished span gives the same frames.
        plan = plan_frames(inp, list(range(pending[0], pending[-1] + 1)), job.handles)
        skipped = [f for f in skipped if f not in plan.write]
    session = ClipSession(
        first_frame=plan.read[0],
        num_frames=len(plan.read),
        height=infos[0].height,
        width=infos[0].width,
        first=first,
        second=second,
        options=job.restore,
        owner="job",
        cache=one_call_cache(job.restore),
    )

    def report(stage: str, done: int, total: int) -> None:
        if should_stop is not None and should_stop():
            raise RRTNError("restore cancelled", kind=ErrorKind.CANCELLED)
        if progress is not None:
            progress(Progress(0, stage, done, total))

    nonfinite_frames = []
    for i, frame in enumerate(plan.read):
        report("read", i, len(plan.read))
        _, pixels = read_pixels(inp.path(frame))
        luma, nonfinite = pipeline.network_input(pixels)
        session.put_frame(frame, luma)
        if nonfinite:
            nonfinite_frames.append(frame)
    report("read", len(plan.read), len(plan.read))
    if nonfinite_frames:
        log.warning(
            "frame(s) %s have NaN or infinite pixels: restored around them, original values kept",
            ", ".join(map(str, nonfinite_frames)),
        )

    motion = job.restore.keep_motion or Aov.MOTION in job.aovs
    result = session.restore(
        plan.write, keep_motion=motion, progress=progress, should_stop=should_stop
    )

    out.path(plan.write[0]).parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for i, frame in enumerate(plan.write):
        report("write", i, len(plan.write))
        info, pixels = read_pixels(inp.path(frame))
        rendered = pipeline.render(info, pixels, frame_result(result, frame))
        written += pipeline.write(rendered, out, frame)
    report("write", len(plan.write), len(plan.write))
    coverage = sum(float((result.masks[f] > 0.05).float().mean()) for f in plan.write)
    return JobReport(
        written=written,
        frames=plan.write,
        read_frames=plan.read,
        pass_psnr=result.pass_psnr,
        nonfinite_frames=nonfinite_frames,
        mask_coverage=coverage / len(plan.write),
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )


def _complete(files: list[Path]) -> bool:
    """Whether every file exists with a readable header (outputs are renamed into place only
    once whole, so this is a finished frame)."""
    try:
        for path in files:
            read_info(path)
    except (RRTNError, OSError):
        return False
    return True


def frame_result(result: SessionResult, frame: int) -> FrameResult:
    """One frame's part of a session's result."""
    return FrameResult(
        restored=result.frames[frame],
        mask=result.masks[frame],
        motion_forward=None if result.motion_forward is None else result.motion_forward[frame],
        motion_backward=None if result.motion_backward is None else result.motion_backward[frame],
    )
