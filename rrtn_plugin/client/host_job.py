"""A restore as the host adapters run it: what was asked, where its result lives, the call.

The Nuke, Blender and Resolve adapters differ only in how frames leave the host and how the
result comes back in. Everything else is here, on top of :mod:`.library`, and like it
needs only grpcio, protobuf and numpy (hosts bring their own Python):

- :class:`HostSettings`: the user's choices (server, model, passes, AOVs, input colour space);
  the server and token default to ``$RRTN_SERVER`` and ``$RRTN_TOKEN``.
- :class:`RestoreJob`: one restore: the input sequence, the frames wanted, the context around
  them (handles), the frame size, the settings and the identity of the input's content. Its
  :meth:`~RestoreJob.key` names the result's folder under the cache root, so a job asked again
  with nothing changed finds its result there and does no work.
- :func:`run_job` does the job (session, send, receive, record); :class:`JobThread` runs it in
  a worker thread that a host's UI loop polls for progress and can cancel.
- :func:`server_choices`: the models, colour spaces and AOVs a server offers, for host menus.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import grpc

from rrtn_plugin.atomic import atomic_output
from rrtn_plugin.client.library import (
    DEFAULT_ADDRESS,
    Cancel,
    Client,
    Progress,
    ServerError,
    frame_path,
)
from rrtn_plugin.errors import ErrorKind, RRTNError

RECORD = "rrtn_job.json"
"""The file in a job's folder that says the job finished, and with what."""

STAGES = {
    "read": "Reading frames",
    "flow": "Optical flow",
    "restore": "Restoring",
    "write": "Writing frames",
}


def default_cache_root() -> Path:
    """``$RRTN_CACHE``, else the user's cache folder (``~/.cache/rrtn-plugin`` on Linux)."""
    if os.environ.get("RRTN_CACHE"):
        return Path(os.environ["RRTN_CACHE"])
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "rrtn-plugin"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "rrtn-plugin"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rrtn-plugin"


@dataclass(frozen=True)
class HostSettings:
    """The choices a host offers. ``passes`` 0 and empty strings mean the server's defaults."""

    server: str = field(default_factory=lambda: os.environ.get("RRTN_SERVER", DEFAULT_ADDRESS))
    token: str = field(default_factory=lambda: os.environ.get("RRTN_TOKEN", ""), repr=False)
    model: str = ""
    passes: int = 0
    aovs: tuple[str, ...] = ("mask",)
    input_colorspace: str = ""

    def __post_init__(self) -> None:
        if not self.server.strip():
            raise RRTNError("no server address: give host:port, e.g. 127.0.0.1:50051")
        if self.passes < 0:
            raise RRTNError(f"passes must be 0 (the model's default) or more, not {self.passes}")

    def result_fields(self) -> dict[str, object]:
        """What changes the restored pixels (the server's address and token do not)."""
        return {
            "model": self.model,
            "passes": self.passes,
            "aovs": sorted(self.aovs),
            "input_colorspace": self.input_colorspace,
        }


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
            **fields,
        )  # type: ignore[arg-type]

    def key(self) -> str:
        """A digest of everything that decides the result."""
        described = {
            "identity": self.identity,
            "frames": [self.first, self.last],
            "context": [self.context_first, self.context_last],
            "size": [self.width, self.height],
            "aov_files": self.aov_files,
            **self.settings.result_fields(),
        }
        text = json.dumps(described, sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def folder(self, cache_root: Path) -> Path:
        """Where this job's result is written: one folder per key."""
        return Path(cache_root) / f"{_slug(self.name)}-{self.key()}"

    def rendered_input(self, cache_root: Path) -> str:
        """Where a host renders the input when ``input`` is empty (removed once restored)."""
        return str(self.folder(cache_root) / "input" / f"{_slug(self.name)}.####.exr")


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


def files_identity(pattern: str, frames: Iterable[int], *, by_content: bool = False) -> str:
    """Identity of a sequence's files: each one's name, size and modification time, or with
    ``by_content`` its bytes (for files a host renders afresh each time)."""
    digest = hashlib.blake2b(digest_size=16)
    for frame in frames:
        path = frame_path(pattern, frame)
        try:
            if by_content:
                digest.update(hashlib.blake2b(path.read_bytes(), digest_size=16).digest())
            else:
                stat = path.stat()
                digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            digest.update(f"{path}:missing\n".encode())
    return digest.hexdigest()


def exr_size(path: Path) -> tuple[int, int]:
    """Width and height of an EXR's data window, read from its header (no OpenImageIO: hosts'
    Pythons lack it, and Blender gives no size for multi-layer EXRs)."""
    with open(path, "rb") as file:
        if file.read(4) != b"\x76\x2f\x31\x01":
            raise RRTNError(f"{path} is not an OpenEXR file")
        file.read(4)  # version and flags
        while name := _read_cstring(file):
            kind = _read_cstring(file)
            (size,) = struct.unpack("<i", file.read(4))
            value = file.read(size)
            if name == "dataWindow" and kind == "box2i":
                x_min, y_min, x_max, y_max = struct.unpack("<4i", value)
                return x_max - x_min + 1, y_max - y_min + 1
    raise RRTNError(f"{path} has no dataWindow in its header")


def _read_cstring(file: BinaryIO) -> str:
    chars = bytearray()
    while (byte := file.read(1)) not in (b"", b"\0"):
        chars += byte
    return chars.decode("latin-1")


def finished_result(job: RestoreJob, cache_root: Path) -> JobResult | None:
    """The result of an identical job already finished in ``cache_root``, if its files remain."""
    record = job.folder(cache_root) / RECORD
    try:
        saved = json.loads(record.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if saved.get("key") != job.key():
        return None
    result = _result_from_record(saved, job.folder(cache_root), reused=True)
    patterns = [result.pattern, *result.aov_patterns.values()]
    if all(frame_path(p, f).is_file() for p in patterns for f in range(job.first, job.last + 1)):
        return result
    return None


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
    folder = job.folder(cache_root)
    stem = _slug(job.name)
    digits = max(4, len(str(abs(job.last))))
    pattern = str(folder / f"{stem}.{'#' * digits}.exr")
    aov_output = (
        str(folder / "{aov}" / f"{stem}_{{aov}}.{'#' * digits}.exr") if job.aov_files else None
    )  # a folder per AOV: one sequence in each
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
            )
            try:
                summary = session.restore_files(
                    job.first,
                    job.last,
                    input=job.input or job.rendered_input(cache_root),
                    output=pattern,
                    aov_output=aov_output,
                    progress=None if progress is None else lambda e: progress(JobProgress.of(e)),
                    cancel=cancel,
                )
            finally:
                with contextlib.suppress(ServerError):  # a server that is gone freed it
                    session.close()
    except ServerError as exc:
        raise _user_error(exc, settings.server) from None
    except FileNotFoundError as exc:
        raise RRTNError(str(exc), kind=ErrorKind.NOT_FOUND) from None
    aov_patterns = (
        {aov: aov_output.replace("{aov}", aov) for aov in settings.aovs} if aov_output else {}
    )
    record = {
        "key": job.key(),
        "name": job.name,
        "first": job.first,
        "last": job.last,
        "pattern": pattern,
        "aov_patterns": aov_patterns,
        "seconds": time.perf_counter() - started,
        "pass_psnr": list(summary.pass_psnr),
        "nonfinite_frames": list(summary.nonfinite_frames),
        "settings": job.settings.result_fields(),
    }
    with atomic_output(folder / RECORD) as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    if not job.input:
        shutil.rmtree(Path(job.rendered_input(cache_root)).parent, ignore_errors=True)
    return _result_from_record(record, folder, reused=False)


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


@dataclass(frozen=True)
class ServerChoices:
    """What a server offers, for a host's menus."""

    version: str
    device: str
    models: tuple[str, ...]
    colorspaces: tuple[str, ...]
    aovs: tuple[str, ...]


def server_choices(settings: HostSettings, *, timeout: float = 5.0) -> ServerChoices:
    """Ask the server for its models, colour spaces and AOVs."""
    try:
        with Client(settings.server, token=settings.token or None, timeout=timeout) as client:
            info = client.info()
    except ServerError as exc:
        raise _user_error(exc, settings.server) from None
    aovs = next((tuple(o.choices) for o in info.options if o.name == "aovs"), ())
    return ServerChoices(
        info.version, info.device, tuple(m.name for m in info.models), tuple(info.colorspaces), aovs
    )


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


def _user_error(exc: ServerError, server: str) -> RRTNError:
    if exc.code == grpc.StatusCode.UNAVAILABLE:
        return RRTNError(
            f"no rrtn-plugin server answers at {server}: start one with "
            "'rrtn-plugin serve' or check the server address",
            kind=ErrorKind.NOT_FOUND,
        )
    if exc.code == grpc.StatusCode.CANCELLED:
        return RRTNError("restore cancelled", kind=ErrorKind.CANCELLED)
    if exc.code == grpc.StatusCode.UNAUTHENTICATED:
        return RRTNError(
            f"the server at {server} refused the token: set the token "
            "(or $RRTN_TOKEN) to the one it was started with",
            kind=ErrorKind.PERMISSION_DENIED,
        )
    return RRTNError(f"the server at {server} says: {exc.message}")


def _slug(name: str) -> str:
    """A name safe in file names."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "rrtn"
