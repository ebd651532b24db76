"""The one restore loop, and the restore job built on it: a sequence in, restored frames out.

:func:`restore_frames` is the loop every restore runs (the jobs here, and both of the server's
transports): it gives a :class:`ClipSession` of the engine the frames it reads, restores the
requested ones, and renders each (the network's change applied to the frame's own pixels, with
its AOVs) for the caller to write as files or encode as replies. It reports "read" and "write"
progress by frame and, when cancelled, stops before the next frame.

:func:`restore_sequence` is a job on files: :mod:`.plan` finds and checks every frame (before
any work starts), :class:`FramePipeline` turns each into the network's luminance, the loop
restores them, and each is written atomically with its AOVs. Handles are extra frames read on
both sides for temporal context and never written. A job's settings are :class:`JobSettings`
(:mod:`.settings`, re-exported here).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rrtn_plugin.atomic import remove_stale_temporaries
from rrtn_plugin.engine import ClipSession, RestoreOptions, SessionResult
from rrtn_plugin.engine.clip import one_call_cache
from rrtn_plugin.engine.windows import frames_read
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.image import ImageInfo, read_info, read_pixels
from rrtn_plugin.frames.pipeline import FramePipeline, FrameResult, RenderedFrame
from rrtn_plugin.frames.plan import FramePlan, check_headers, check_target, plan_frames
from rrtn_plugin.frames.record import (
    JobRecord,
    check_record,
    read_record,
    record_path,
    remove_record,
    settings_digest,
    write_record,
)
from rrtn_plugin.frames.sequence import FramePattern, parse_pattern
from rrtn_plugin.frames.settings import JobSettings as JobSettings
from rrtn_plugin.model import RRTN
from rrtn_plugin.progress import Progress, check_cancel

log = logging.getLogger("rrtn_plugin")


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


Pixels = Callable[[int], tuple[ImageInfo, np.ndarray]]
"""A frame's original pixels by frame number: its header and (H, W, C) float32 planes."""


@dataclass
class RestoredFrames:
    """What :func:`restore_frames` gives once the engine has run.

    Attributes:
        frames: the requested frames, in order.
        result: the engine's result for them.
        pipeline: the clip's colour handling and AOVs, which writes and encodes the frames.
        rendered: each requested frame as (number, rendered frame), in order, rendered as it
            is taken; a cancelled restore raises RRTNError (CANCELLED) before the next one.
        nonfinite: the frames given to the session that have NaN or infinite pixels.
    """

    frames: Sequence[int]
    result: SessionResult
    pipeline: FramePipeline
    rendered: Iterator[tuple[int, RenderedFrame]]
    nonfinite: list[int]

    def write(self, out: FramePattern) -> list[Path]:
        """Write every rendered frame (atomically, with its AOVs) to ``out``; the files."""
        out.path(self.frames[0]).parent.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for frame, rendered in self.rendered:
            written += self.pipeline.write(rendered, out, frame)
        return written


def restore_frames(
    session: ClipSession,
    frames: Sequence[int],
    *,
    pipeline: Callable[[], FramePipeline],
    pixels: Pixels,
    read: Sequence[int] = (),
    give: Callable[[int], bool] | None = None,
    keep_motion: bool = False,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RestoredFrames:
    """The restore loop: give ``session`` the frames ``read``, restore ``frames``, render each.

    Args:
        session: the engine's session of the clip.
        frames: the frames to restore and render, in order.
        pipeline: the clip's :class:`FramePipeline`, asked for once the frames are given (the
            server makes it from the first frame a session is given).
        pixels: a frame's original pixels, to apply the network's change to.
        read: the frames to give the session before restoring (none: it holds them already).
        give: gives the session one frame of ``read`` and says whether it has NaN or infinite
            pixels; by default its ``pixels`` converted by the pipeline (the server skips
            files the session holds unchanged).
        keep_motion: also restore motion vectors (for the motion AOV).
        progress: "read" and "write" events by frame (pass 0), and the engine's own.
        should_stop: checked before each frame is given or rendered, and by the engine.

    Returns:
        The engine's result, and the frames rendered as they are taken.

    Raises:
        RRTNError: a frame the restore needs was not given (NOT_FOUND), cancelled (CANCELLED),
            out of memory, or what ``give`` raises.
    """

    def put(frame: int) -> bool:
        luma, nonfinite = pipeline().network_input(pixels(frame)[1])
        session.put_frame(frame, luma)
        return nonfinite

    give = give or put
    report = progress or (lambda event: None)
    nonfinite: list[int] = []
    for i, frame in enumerate(read):
        check_cancel(should_stop)
        report(Progress(0, "read", i, len(read), frame=frame))
        if give(frame):
            nonfinite.append(frame)
    if read:
        report(Progress(0, "read", len(read), len(read)))
    result = session.restore(
        frames, keep_motion=keep_motion, progress=progress, should_stop=should_stop
    )
    clip = pipeline()

    def rendered() -> Iterator[tuple[int, RenderedFrame]]:
        for i, frame in enumerate(frames):
            check_cancel(should_stop)
            report(Progress(0, "write", i, len(frames), frame=frame))
            info, original = pixels(frame)
            yield frame, clip.render(info, original, frame_result(result, frame))
        report(Progress(0, "write", len(frames), len(frames)))

    return RestoredFrames(frames, result, clip, rendered(), nonfinite)


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

    Temporary files that killed writers on this machine left in the output folders are
    removed. Before the first frame is written, the job's record (:mod:`.record`) is left
    beside the output; with ``skip_existing``, a retry restores the frames still missing with
    the recorded context, passes, windows and tiles, so it writes what the first run would
    have. A finished job removes its record.

    Raises:
        RRTNError: bad input (named) before any work starts; cancellation; out of memory; an
            output that cannot be written.
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
    for folder in {p.parent for p in pipeline.targets(out, plan.write[0])}:
        if folder.is_dir():
            for stale in remove_stale_temporaries(folder):
                log.info("removed %s, left by a writer that was killed", stale)
    span = (plan.write[0], plan.write[-1])
    record_file = record_path(out, span)
    digest = settings_digest(
        replace(job, frames=None, handles=0, skip_existing=False),
        (infos[0].width, infos[0].height, infos[0].channels),
        first.fingerprint(),
        None if second is None else second.fingerprint(),
    )
    clip = (plan.read[0], plan.read[-1])
    options = job.restore
    skipped: list[int] = []
    if job.skip_existing:
        pending = [f for f in plan.write if not _complete(pipeline.targets(out, f))]
        skipped = [f for f in plan.write if f not in pending]
        if not pending:
            remove_record(record_file)
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
        record = read_record(record_file) if skipped else None
        if record is not None:
            check_record(record, input=inp.display(), settings=digest, path=record_file)
            clip, options = record.read, _recorded(options, record)
        # Restore the unfinished span with the context the whole job's windows read there, in
        # the job's own clip, so that its windows are the first run's.
        low, high = frames_read(pending[0], pending[-1], clip=clip, options=options)
        write = list(range(pending[0], pending[-1] + 1))
        plan = FramePlan(read=list(range(low, high + 1)), write=write)
        skipped = [f for f in skipped if f not in write]
    session = ClipSession(
        first_frame=plan.read[0],
        num_frames=len(plan.read),
        height=infos[0].height,
        width=infos[0].width,
        first=first,
        second=second,
        options=options,
        owner="job",
        cache=one_call_cache(options),
    )
    restored = restore_frames(
        session,
        plan.write,
        pipeline=lambda: pipeline,
        pixels=lambda frame: read_pixels(inp.path(frame)),
        read=plan.read,
        keep_motion=options.keep_motion or Aov.MOTION in job.aovs,
        progress=progress,
        should_stop=should_stop,
    )
    if restored.nonfinite:
        log.warning(
            "frame(s) %s have NaN or infinite pixels: restored around them, original values kept",
            ", ".join(map(str, restored.nonfinite)),
        )
    try:
        out.path(plan.write[0]).parent.mkdir(parents=True, exist_ok=True)
        write_record(
            record_file,
            JobRecord(
                input=inp.display(),
                frames=span,
                read=clip,
                settings=digest,
                passes=len(restored.result.pass_psnr),
                window=session.window_length,
                overlap=session.window_overlap,
                tile=_tile_side(session),
                budget=session.plan.budget,
            ),
        )
        written = restored.write(out)
    except OSError as exc:
        raise RRTNError(
            f"cannot write the output {exc.filename or out.display()}: {exc.strerror}",
            kind=ErrorKind.PERMISSION_DENIED
            if isinstance(exc, PermissionError)
            else ErrorKind.INVALID_INPUT,
        ) from None
    remove_record(record_file)
    masks = restored.result.masks
    coverage = sum(float((masks[f] > 0.05).float().mean()) for f in plan.write)
    return JobReport(
        written=written,
        frames=plan.write,
        read_frames=plan.read,
        pass_psnr=restored.result.pass_psnr,
        nonfinite_frames=restored.nonfinite,
        mask_coverage=coverage / len(plan.write),
        skipped=skipped,
        seconds=time.perf_counter() - started,
    )


def _recorded(options: RestoreOptions, record: JobRecord) -> RestoreOptions:
    """``options`` as the recorded run ran them: its passes (every one: its automatic stop was
    decided on all its frames), windows, tiles and memory budget."""
    return replace(
        options,
        max_passes=record.passes,
        stop_psnr=math.inf,
        window=record.window,
        overlap=record.overlap,
        tile=record.tile,
        memory_budget=record.budget,
        fixed_window=True,
    )


def _tile_side(session: ClipSession) -> int:
    """The side of the tiles a session runs the network on (0: whole frames)."""
    tiles = session.tiles
    return 0 if len(tiles) <= 1 else max(max(t.height, t.width) for t in tiles)


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
