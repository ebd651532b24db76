"""Running a :class:`~.jobs.RestoreJob` on its server, the way a host's UI can wait for it.

:func:`run_job` does the job (session, send, receive, record) unless its result is there
already; :class:`JobThread` runs it in a worker thread that a host's UI loop polls for
progress (:class:`JobProgress`) and can cancel; :func:`job_steps` is the same as steps for
:class:`~.steps.Steps`.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path

from rrtn_plugin.client.jobs import JobResult, RestoreJob, finished_result, write_record
from rrtn_plugin.client.library import Cancel, Client, ServerError
from rrtn_plugin.client.settings import user_error
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.progress import Progress

STAGES = {
    "read": "Reading frames",
    "flow": "Optical flow",
    "restore": "Restoring",
    "write": "Writing frames",
}


@dataclass(frozen=True)
class JobProgress:
    """How far a job is: ``fraction`` of the current stage, and a line for the user."""

    fraction: float
    text: str

    @classmethod
    def of(cls, event: Progress) -> JobProgress:
        stage = STAGES.get(event.stage, event.stage)
        if event.pass_number:
            stage = f"{stage} (pass {event.pass_number})"
        fraction = event.done / event.total if event.total else 0.0
        return cls(fraction, f"{stage}: {event.done}/{event.total}")


def run_job(
    job: RestoreJob,
    cache_root: Path,
    *,
    progress: Callable[[JobProgress], None] | None = None,
    cancel: Cancel | None = None,
) -> JobResult:
    """Restore ``job`` through its server into its folder, unless that holds it already.

    Raises :class:`RRTNError` with a message for the user (kind CANCELLED when cancelled).
    """
    done = finished_result(job, cache_root)
    if done is not None:
        return done
    aov_output = job.aov_output(cache_root)
    settings = job.settings
    started = time.perf_counter()
    try:
        with Client(settings.server, token=settings.token or None) as client:
            session = client.open_session(
                first_frame=job.context_first,
                last_frame=job.context_last,
                width=job.width,
                height=job.height,
                name=job.name,
                model=settings.model,
                aovs=settings.aovs,
                input_colorspace=settings.input_colorspace,
                max_passes=settings.passes or None,
                cuts=settings.cuts,
                tone_guard=settings.tone_guard,
                repair_mode=settings.repair_mode,
                repair_strength=settings.repair_strength,
            )
            try:
                summary = session.restore_files(
                    job.first,
                    job.last,
                    input=job.input or job.rendered_input(cache_root),
                    output=job.output_pattern(cache_root),
                    aov_output=aov_output,
                    progress=None if progress is None else lambda e: progress(JobProgress.of(e)),
                    cancel=cancel,
                )
            finally:
                with contextlib.suppress(ServerError):  # a server that is gone freed it
                    session.close()
    except ServerError as exc:
        raise user_error(exc, settings.server) from None
    except FileNotFoundError as exc:
        raise RRTNError(str(exc), kind=ErrorKind.NOT_FOUND) from None
    result = write_record(
        job,
        cache_root,
        aov_patterns=(
            {aov: aov_output.replace("{aov}", aov) for aov in settings.aovs} if aov_output else {}
        ),
        seconds=time.perf_counter() - started,
        pass_psnr=tuple(summary.pass_psnr),
        nonfinite_frames=tuple(summary.nonfinite_frames),
    )
    if not job.input:
        shutil.rmtree(Path(job.rendered_input(cache_root)).parent, ignore_errors=True)
    return result


class JobThread:
    """:func:`run_job` in a worker thread; a host's UI loop polls :attr:`progress`,
    :meth:`finished`, then :attr:`result` or :attr:`error`; :meth:`cancel` stops it."""

    def __init__(self, job: RestoreJob, cache_root: Path) -> None:
        self.job, self.cache_root = job, cache_root
        self.progress = JobProgress(0.0, "Connecting")
        self.result: JobResult | None = None
        self.error: RRTNError | None = None
        self._cancel = Cancel()
        self._thread = threading.Thread(target=self._run, name="rrtn-host-job", daemon=True)

    def start(self) -> JobThread:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.cancel()

    def finished(self, wait: float = 0.0) -> bool:
        """Whether the job ended (waiting up to ``wait`` seconds for it)."""
        self._thread.join(wait)
        return not self._thread.is_alive()

    def outcome(self) -> JobResult:
        """The result of the ended job, or its error raised."""
        if self.result is None:
            raise self.error or RRTNError("the restore ended without a result")
        return self.result

    def _run(self) -> None:
        try:
            self.result = run_job(
                self.job, self.cache_root, cancel=self._cancel, progress=self._progress
            )
        except RRTNError as exc:
            self.error = exc
        except Exception as exc:  # handed to the host's thread, which shows it
            self.error = RRTNError(f"{type(exc).__name__}: {exc}")

    def _progress(self, progress: JobProgress) -> None:
        self.progress = progress


def job_steps(
    job: RestoreJob,
    cache_root: Path,
    cancelled: Callable[[], bool],
    *,
    interval: float = 0.5,
) -> Generator[str, None, JobResult]:
    """``job`` as steps (:class:`~.steps.Steps`): the finished identical result at once, else
    the job in a worker thread, yielding its progress every ``interval`` seconds until it
    ends; ``cancelled()`` cancels it. Returns the result; raises the job's error."""
    done = finished_result(job, cache_root)
    if done is not None:
        return done
    thread = JobThread(job, cache_root).start()
    while not thread.finished(interval):
        if cancelled():
            thread.cancel()
        yield thread.progress.text
    return thread.outcome()
