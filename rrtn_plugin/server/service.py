"""What the server does, without gRPC: models loaded once, sessions of clips, restores on them.

A :class:`RestoreService` holds the models (loaded once, shared by all sessions), one
:class:`WorkCache` with the server's memory budget, and the open sessions. Each
:class:`ServedSession` couples an engine :class:`ClipSession` with the clip's colour handling
(:class:`FramePipeline`) and the frames it was given. A session restores frames either from
files the server reads and writes itself (the path transport, confined to configured root
folders by :mod:`.confine`) or from frames sent to it (the bytes transport), in which case it
first says which frames it needs: those it lacks or whose content hash changed. Both run the one
restore loop, :func:`rrtn_plugin.frames.restore.restore_frames`, that the CLI's jobs run.

Memory is charged before it is taken: a session's plan and each frame's bytes count against
the host budget (:mod:`.bounds`), and a frame's header is checked before its pixels are
decoded. The cache is keyed by content, so a closed session's work stays (within the budgets,
least recently used first out) for the next session that asks for the same frames and settings.
Closing a session stops its running restore at the next step; :meth:`RestoreService.cancel_all`
stops every one (the server's drain).

Errors are RRTNErrors whose kind maps to a gRPC status in the servicer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio
import torch

from rrtn_plugin.atomic import remove_stale_temporaries
from rrtn_plugin.color import ColorMode, load_config, resolve_colorspace
from rrtn_plugin.engine import ClipSession, RestoreOptions, WorkCache
from rrtn_plugin.engine.device import available_memory, resolve_device
from rrtn_plugin.engine.memory import default_budget
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.image import ImageInfo, read_pixels
from rrtn_plugin.frames.image_bytes import read_image_bytes
from rrtn_plugin.frames.pipeline import FramePipeline, RenderedFrame
from rrtn_plugin.frames.plan import check_target
from rrtn_plugin.frames.restore import restore_frames
from rrtn_plugin.frames.sequence import FramePattern, parse_pattern
from rrtn_plugin.model import RRTN
from rrtn_plugin.progress import Progress
from rrtn_plugin.server.bounds import (
    MAX_CHANNELS,
    check_clip,
    check_text,
    frame_bytes,
    session_fixed_bytes,
)
from rrtn_plugin.server.confine import ConfinedFolder, Roots, shown

log = logging.getLogger("rrtn_plugin.server")


@dataclass
class ServedModel:
    """A model the server offers: the first-pass network and, optionally, a later-pass one."""

    name: str
    first: RRTN
    second: RRTN | None = None
    description: str = ""
    max_passes: int = RestoreOptions.max_passes
    """Recursion passes when a client does not ask for a number (1 for the bundled model)."""


@dataclass(frozen=True)
class ServiceLimits:
    """Resource limits of a server.

    Attributes:
        memory_budget: bytes for cached work on the device (0: 80 % of what is free at start).
        host_budget: bytes of host memory for sessions' plans, frames and cached work moved off
            the device (0: 50 % of available RAM).
        max_sessions: sessions open at once.
        idle_timeout: seconds after which an unused session is closed.
        path_roots: folders the path transport may read and write; none disables it.
        max_restores: Restore calls running at once (0: twice ``max_sessions``); more are
            refused at once (RESOURCE_EXHAUSTED) instead of waiting for a thread.
        stream_idle_timeout: seconds a Restore call may wait on its client (for its next
            message, or to take the next reply) before the server ends it.
        share_work: keep a closed session's cached work for later sessions (within the budgets).
    """

    memory_budget: int = 0
    host_budget: int = 0
    max_sessions: int = 16
    idle_timeout: float = 1800.0
    path_roots: tuple[Path, ...] = ()
    max_restores: int = 0
    stream_idle_timeout: float = 60.0
    share_work: bool = True

    @property
    def restore_slots(self) -> int:
        return self.max_restores or 2 * self.max_sessions


@dataclass
class SessionSpec:
    """What OpenSession asks for."""

    first_frame: int
    last_frame: int
    width: int
    height: int
    name: str = ""
    model: str = ""
    options: RestoreOptions = field(default_factory=RestoreOptions)
    aovs: tuple[Aov, ...] = ()
    color_mode: ColorMode = ColorMode.KEEP_CHROMA
    input_colorspace: str | None = None


@dataclass
class RawFrame:
    """Pixels sent as raw planes: (H, W, C) float32 and the channel names."""

    pixels: np.ndarray
    channels: tuple[str, ...]


@dataclass
class Summary:
    """What one restore request did."""

    frames: list[int]
    written: list[str]
    pass_psnr: list[float]
    windows_computed: int
    windows_cached: int
    seconds: float
    nonfinite_frames: list[int]


class ServedSession:
    """One open session: the engine's clip session, its colour pipeline, its given frames."""

    def __init__(
        self,
        session_id: str,
        spec: SessionSpec,
        model: ServedModel,
        engine: ClipSession,
        *,
        ocio_config: str | None = None,
        fixed_bytes: int = 0,
    ) -> None:
        self.id = session_id
        self.ocio_config = ocio_config
        self.spec = spec
        self.model = model
        self.engine = engine
        self.fixed_bytes = fixed_bytes
        """Host bytes of the session's plan, charged when it opened."""
        self.lock = threading.Lock()
        self.pipeline: FramePipeline | None = None
        self.channels: tuple[str, ...] | None = None
        self.given: dict[int, tuple[str, bytes | RawFrame]] = {}
        self.file_stamps: dict[int, tuple[str, int, int, int, int]] = {}
        self.nonfinite: set[int] = set()
        self.busy = False
        self.closed = threading.Event()
        """Set when the session is closed: a restore running on it stops at its next step."""
        self.on_idle: Callable[[], None] | None = None

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Hold the session for one request (requests on one session run one at a time)."""
        with self.lock:
            if self.closed.is_set():
                raise RRTNError(f"session {self.id} was closed", kind=ErrorKind.NOT_FOUND)
            self.busy = True
            try:
                yield
            except RRTNError as exc:
                if exc.kind is ErrorKind.CANCELLED and self.closed.is_set():
                    raise RRTNError(
                        f"session {self.id} was closed: its restore stopped",
                        kind=ErrorKind.CANCELLED,
                    ) from None
                raise
            finally:
                self.busy = False
                self.engine.last_used = time.monotonic()
                if self.closed.is_set() and self.on_idle is not None:
                    self.on_idle()  # closed while it ran: let go of what the run added

    def should_stop(self, other: Callable[[], bool]) -> Callable[[], bool]:
        """``other``, or the session being closed."""
        return lambda: self.closed.is_set() or other()

    def given_bytes(self) -> int:
        """Host bytes the session holds: the frames sent and their network inputs."""
        total = 0
        for _, data in self.given.values():
            total += data.pixels.nbytes if isinstance(data, RawFrame) else len(data)
        return total + self.engine.held_bytes()

    def held_bytes(self) -> int:
        """What the session is charged in the host budget: its plan and its frames."""
        return self.fixed_bytes + self.given_bytes()

    def header_check(
        self, frame: int, take: Callable[[int], None] | None = None
    ) -> Callable[[ImageInfo], None]:
        """A check of a frame's header before its pixels are decoded: the session's size, at
        most :data:`MAX_CHANNELS` channels, and (``take``) room for the decoded bytes."""

        def check(info: ImageInfo) -> None:
            if (info.width, info.height) != (self.spec.width, self.spec.height):
                raise RRTNError(
                    f"frame {frame} is {info.width}x{info.height}, the session's clip is "
                    f"{self.spec.width}x{self.spec.height}"
                )
            if not 1 <= len(info.channels) <= MAX_CHANNELS:
                raise RRTNError(
                    f"frame {frame} has {len(info.channels)} channels (at most {MAX_CHANNELS})"
                )
            if take is not None:
                take(frame_bytes(info.width, info.height, len(info.channels)))

        return check

    def take_pixels(self, frame: int, channels: tuple[str, ...], pixels: np.ndarray) -> None:
        """Give the session a frame's decoded pixels (checked against the clip)."""
        height, width = pixels.shape[:2]
        if (width, height) != (self.spec.width, self.spec.height):
            raise RRTNError(
                f"frame {frame} is {width}x{height}, the session's clip is "
                f"{self.spec.width}x{self.spec.height}"
            )
        if self.channels is None:
            self.pipeline = FramePipeline(
                channels,
                input_colorspace=self.spec.input_colorspace,
                ocio_config=self.ocio_config,
                color_mode=self.spec.color_mode,
                aovs=self.spec.aovs,
            )
            self.channels = channels
        elif set(channels) != set(self.channels):
            raise RRTNError(
                f"frame {frame} has channels {', '.join(map(shown, channels[:8]))}, the "
                f"session's frames have {', '.join(map(shown, self.channels[:8]))}"
            )
        luma, nonfinite = self.frame_pipeline().network_input(pixels)
        self.engine.put_frame(frame, luma)
        (self.nonfinite.add if nonfinite else self.nonfinite.discard)(frame)

    def frame_pipeline(self) -> FramePipeline:
        """The clip's colour handling and AOVs, made when the session was given a frame."""
        if self.pipeline is None:
            raise RRTNError(
                f"session {self.id} has not been given any frames yet: send or read them first",
                kind=ErrorKind.NOT_FOUND,
            )
        return self.pipeline


class RestoreService:
    """Models, the shared cache, and the open sessions of one server."""

    def __init__(
        self,
        models: list[ServedModel],
        *,
        device: str = "auto",
        limits: ServiceLimits | None = None,
        ocio_config: str | None = None,
    ) -> None:
        if not models:
            raise RRTNError("a server needs at least one model")
        self.models = {m.name: m for m in models}
        self.default_model = models[0].name
        self.device = resolve_device(device)
        self.limits = limits or ServiceLimits()
        self.roots = Roots(self.limits.path_roots)
        self.memory_budget = self.limits.memory_budget or default_budget(self.device)
        self.host_budget = self.limits.host_budget or int(
            0.5 * available_memory(torch.device("cpu"))
        )
        two_tier = self.device.type != "cpu"
        self.cache = WorkCache(
            device=self.device,
            device_budget=self.memory_budget // 2,
            host_budget=self.host_budget // 2 if two_tier else 0,
        )
        self.compute_lock = threading.Lock()
        self.ocio_config = ocio_config
        self._sessions: dict[str, ServedSession] = {}
        self._lock = threading.Lock()
        self._transient = 0
        """Host bytes taken for the moment: frames being received or decoded."""
        for model in models:
            for network in (model.first, model.second):
                if network is not None:
                    network.to(self.device).eval()

    # -- memory ------------------------------------------------------------------------------

    def held_bytes(self) -> int:
        """Host bytes charged to the budget: every session's plan and frames, and the frames
        being received or decoded."""
        return sum(s.held_bytes() for s in self.sessions()) + self._transient

    def room(self, nbytes: int, what: str) -> None:
        """RRTNError (OUT_OF_MEMORY) unless ``nbytes`` more fit the host budget."""
        held = self.held_bytes()
        if held + nbytes > self.host_budget:
            raise self._refusal(nbytes, held, what)

    @contextlib.contextmanager
    def reserve(self, what: str) -> Iterator[Callable[[int], None]]:
        """Take bytes of the host budget as the work learns what it needs: the context gives
        ``take(n)``, which takes ``n`` bytes or raises RRTNError (OUT_OF_MEMORY); everything
        taken is given back when the context ends."""
        taken = 0

        def take(nbytes: int) -> None:
            nonlocal taken
            with self._lock:
                held = sum(s.held_bytes() for s in self._sessions.values()) + self._transient
                if held + nbytes > self.host_budget:
                    raise self._refusal(nbytes, held, what)
                self._transient += nbytes
                taken += nbytes

        try:
            yield take
        finally:
            with self._lock:
                self._transient -= taken

    def _refusal(self, nbytes: int, held: int, what: str) -> RRTNError:
        return RRTNError(
            f"{what} needs {_size(nbytes)}, and the server's host memory budget "
            f"({_size(self.host_budget)}) has {_size(max(0, self.host_budget - held))} left: "
            "close sessions, send fewer frames, or give the server a larger --host-budget",
            kind=ErrorKind.OUT_OF_MEMORY,
        )

    # -- sessions ----------------------------------------------------------------------------

    def open(self, spec: SessionSpec) -> ServedSession:
        """Start a session; RRTNError (INVALID_INPUT, NOT_FOUND, OUT_OF_MEMORY) if it can't."""
        check_text(spec.name, "name")
        check_text(spec.model, "options.model")
        model = self.models.get(spec.model or self.default_model)
        if model is None:
            raise RRTNError(
                f"no model {shown(spec.model)} (this server has {', '.join(self.models)})",
                kind=ErrorKind.NOT_FOUND,
            )
        check_clip(spec.first_frame, spec.last_frame, spec.width, spec.height)
        spec.options.check()
        if spec.options.device not in ("auto", str(self.device)):
            raise RRTNError(
                f"this server computes on {self.device}; the device cannot be chosen per session"
            )
        if spec.input_colorspace:
            check_text(spec.input_colorspace, "options.input_colorspace")
            resolve_colorspace(load_config(self.ocio_config), spec.input_colorspace)
        self.reap_idle()
        frames = spec.last_frame - spec.first_frame + 1
        fixed = session_fixed_bytes(frames, spec.width, spec.height)
        with self._lock:
            if len(self._sessions) >= self.limits.max_sessions:
                raise RRTNError(
                    f"the server already has {len(self._sessions)} sessions open "
                    f"(its limit): close one first",
                    kind=ErrorKind.OUT_OF_MEMORY,
                )
            held = sum(s.held_bytes() for s in self._sessions.values()) + self._transient
            if held + fixed > self.host_budget:
                raise self._refusal(
                    fixed, held, f"a session of {frames} frames of {spec.width}x{spec.height}"
                )
            session_id = uuid.uuid4().hex
            options = replace(
                spec.options, device=str(self.device), memory_budget=self.memory_budget
            )
            engine = ClipSession(
                first_frame=spec.first_frame,
                num_frames=frames,
                height=spec.height,
                width=spec.width,
                first=model.first,
                second=model.second,
                options=options,
                cache=self.cache,
                owner=session_id,
                compute_lock=self.compute_lock,
            )
            session = ServedSession(
                session_id, spec, model, engine, ocio_config=self.ocio_config, fixed_bytes=fixed
            )
            session.on_idle = lambda: self._release(session_id)
            self._sessions[session_id] = session
        log.info(
            "opened session %s %s: frames %d-%d, %dx%d, model %s",
            session_id,
            shown(spec.name),
            spec.first_frame,
            spec.last_frame,
            spec.width,
            spec.height,
            model.name,
        )
        return session

    def get(self, session_id: str) -> ServedSession:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise RRTNError(
                f"no session {shown(session_id, 40)} (closed, timed out, or never opened)",
                kind=ErrorKind.NOT_FOUND,
            )
        return session

    def close(self, session_id: str) -> None:
        """Close a session: a restore running on it stops at its next step; its cached work
        stays for other sessions (``share_work``) or is dropped."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            raise RRTNError(f"no session {shown(session_id, 40)}", kind=ErrorKind.NOT_FOUND)
        session.closed.set()
        self._release(session_id)
        log.info("closed session %s%s", session_id, " (a restore was running)" * session.busy)

    def _release(self, session_id: str) -> None:
        self.cache.release(session_id, keep=self.limits.share_work)

    def sessions(self) -> list[ServedSession]:
        with self._lock:
            return list(self._sessions.values())

    def reap_idle(self) -> list[str]:
        """Close sessions unused for longer than the idle timeout; returns their ids."""
        now = time.monotonic()
        stale = [
            s.id
            for s in self.sessions()
            if not s.busy and now - s.engine.last_used > self.limits.idle_timeout
        ]
        for session_id in stale:
            with self._lock:
                session = self._sessions.pop(session_id, None)
            if session is not None:
                session.closed.set()
            self._release(session_id)
            log.info("closed idle session %s", session_id)
        return stale

    def cancel_all(self) -> None:
        """Stop every running restore at its next step (the server is draining)."""
        for session in self.sessions():
            if session.busy:
                session.closed.set()

    def wait_idle(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for every session to be free; whether they are."""
        deadline = time.monotonic() + seconds
        while any(s.busy for s in self.sessions()):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # -- the path transport ------------------------------------------------------------------

    def confine(self, text: str) -> str:
        """``text`` (a path or pattern) fully resolved, if inside a path root (RRTNError,
        PERMISSION_DENIED, if not)."""
        return str(self.roots.resolve(text, "path")[1])

    def restore_paths(
        self,
        session: ServedSession,
        frames: Sequence[int],
        *,
        source: str,
        target: str,
        progress: Callable[[Progress], None],
        should_stop: Callable[[], bool],
    ) -> Summary:
        """Read the frames the request needs from ``source``, restore, write to ``target``.

        Both are confined to the roots (:mod:`.confine`); the output folder is checked before
        any work, made when the first frame is written, and cleared of temporary files that
        writers killed on this machine left there.
        """
        started = time.perf_counter()
        self._check_frames(session, frames)
        stop = session.should_stop(should_stop)
        out_folder_text = os.path.dirname(target)
        _, out_real = self.roots.resolve(target, "the output")
        self.roots.check_writable(out_folder_text, "the output folder")
        with contextlib.ExitStack() as stack:
            source_folder, source_name = self._source(source)
            folder = stack.enter_context(self.roots.folder(source_folder, "the input folder"))
            inp = _pattern_in(folder, source_name)
            real_inp = replace(inp, directory=str(folder.real))
            out = parse_pattern(out_real)
            check_target(out, real_inp)
            with session.in_use():
                restored = restore_frames(
                    session.engine,
                    frames,
                    pipeline=session.frame_pipeline,
                    pixels=lambda frame: self._file_pixels(session, folder, inp, frame),
                    read=session.engine.needed_frames(frames),
                    give=lambda frame: self._read_file(session, folder, inp, frame),
                    keep_motion=Aov.MOTION in session.spec.aovs,
                    progress=progress,
                    should_stop=stop,
                )
                with self.roots.folder(out_folder_text, "the output folder", create=True) as dest:
                    for stale in remove_stale_temporaries(dest.path):
                        log.info("removed a killed writer's temporary file %s", stale.name)
                    try:
                        written = restored.write(replace(out, directory=str(dest.path)))
                    except OSError as exc:
                        name = dest.real_path(Path(exc.filename or ""))
                        raise RRTNError(f"cannot write {name}: {exc.strerror}") from None
                    except RRTNError as exc:
                        text = str(exc).replace(str(dest.path), str(dest.real))
                        raise RRTNError(text, kind=exc.kind) from None
                    written_real = [str(dest.real_path(p)) for p in written]
        result = restored.result
        return Summary(
            list(frames),
            written_real,
            result.pass_psnr,
            result.windows_computed,
            result.windows_cached,
            time.perf_counter() - started,
            restored.nonfinite,
        )

    def _source(self, source: str) -> tuple[str, str]:
        """(folder, name pattern) of the input: a folder holding one sequence gives itself and
        no name."""
        _, real = self.roots.resolve(source, "the input")
        if real.is_dir():
            return source, ""
        return os.path.split(source)

    @staticmethod
    def _file_pixels(
        session: ServedSession,
        folder: ConfinedFolder,
        inp: FramePattern,
        frame: int,
        take: Callable[[int], None] | None = None,
    ) -> tuple[ImageInfo, np.ndarray]:
        """A frame's header and pixels, opened without following symlinks out of the roots,
        its header checked (and its decoded size taken with ``take``) before its pixels are
        decoded."""
        name = inp.path(frame).name
        with folder.open_file(name) as path:
            try:
                info, pixels = read_pixels(path, check=session.header_check(frame, take))
            except RRTNError as exc:
                raise RRTNError(
                    str(exc).replace(str(path), str(folder.real / name)), kind=exc.kind
                ) from None
        info.path = folder.real / name
        return info, pixels

    def _read_file(
        self, session: ServedSession, folder: ConfinedFolder, inp: FramePattern, frame: int
    ) -> bool:
        """Read a frame's file unless it is unchanged since the session last read it; whether
        the frame has NaN or infinite pixels."""
        name = inp.path(frame).name
        with folder.open_file(name) as path:
            stat = os.stat(path)
        stamp = (str(folder.real / name), stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if session.file_stamps.get(frame) != stamp or not session.engine.frame_key(frame):
            with self.reserve(f"reading frame {frame}") as take:
                info, pixels = self._file_pixels(session, folder, inp, frame, take)
                session.take_pixels(frame, info.channels, pixels)
            session.file_stamps[frame] = stamp
        return frame in session.nonfinite

    # -- the bytes transport -----------------------------------------------------------------

    def frames_needed(
        self, session: ServedSession, frames: Sequence[int], hashes: Mapping[int, str]
    ) -> list[int]:
        """Frames the client must send: needed ones the session lacks or holds changed."""
        self._check_frames(session, frames)
        with session.lock:
            return self._frames_needed(session, frames, hashes)

    @staticmethod
    def _frames_needed(
        session: ServedSession, frames: Sequence[int], hashes: Mapping[int, str]
    ) -> list[int]:
        needed = session.engine.needed_frames(frames)
        unavailable = [f for f in needed if f not in session.given and f not in hashes]
        if hashes and unavailable:
            raise RRTNError(
                f"restoring {frames[0]}-{frames[-1]} needs frames "
                f"{unavailable[0]}-{unavailable[-1]} of the clip, which the client "
                "does not have",
                kind=ErrorKind.NOT_FOUND,
            )
        return [
            f
            for f in needed
            if f not in session.given or (f in hashes and hashes[f] != session.given[f][0])
        ]

    def accept_frame(
        self, session: ServedSession, frame: int, content_hash: str, data: bytes | RawFrame
    ) -> None:
        """Take one sent frame (file bytes or raw planes); waits while the session is busy."""
        with session.lock:
            self._accept_frame(session, frame, content_hash, data)

    def _accept_frame(
        self, session: ServedSession, frame: int, content_hash: str, data: bytes | RawFrame
    ) -> None:
        if frame not in session.engine.frame_numbers:
            raise RRTNError(
                f"frame {frame} is outside the session's clip "
                f"{session.spec.first_frame}-{session.spec.last_frame}"
            )
        width, height = session.spec.width, session.spec.height
        if isinstance(data, RawFrame):
            expected = (height, width, len(data.channels))
            if data.pixels.shape != expected:
                raise RRTNError(
                    f"frame {frame}: raw data is {data.pixels.shape}, expected "
                    f"{expected} (height, width, channels) float32"
                )
            self.room(frame_bytes(width, height, 0), f"frame {frame}")
            session.take_pixels(frame, data.channels, data.pixels)
        else:
            self.room(len(data) + frame_bytes(width, height, 0), f"frame {frame}")
            with self.reserve(f"decoding frame {frame}") as take:
                info, pixels = read_image_bytes(data, check=session.header_check(frame, take))
                session.take_pixels(frame, info.channels, pixels)
        session.given[frame] = (content_hash, data)

    def restore_given(
        self,
        session: ServedSession,
        frames: Sequence[int],
        *,
        progress: Callable[[Progress], None],
        should_stop: Callable[[], bool],
        raw_reply: bool,
        aov_files: bool = False,
    ) -> Iterator[tuple[int, str, bytes | RawFrame] | Summary]:
        """Restore frames from sent ones; yields (frame, layer, reply) items, then the summary.

        Replies are EXR bytes (picture and AOV channels; with ``aov_files`` the picture alone
        under layer "" and each AOV's own file under its name), or raw planes with
        ``raw_reply``.
        """
        started = time.perf_counter()
        with session.in_use():
            missing = [f for f in session.engine.needed_frames(frames) if f not in session.given]
            if missing:
                raise RRTNError(
                    f"frames {missing[:10]} were asked for but not sent",
                    kind=ErrorKind.INVALID_INPUT,
                )
            restored = restore_frames(
                session.engine,
                frames,
                pipeline=session.frame_pipeline,
                pixels=lambda frame: self._given_pixels(session, frame),
                keep_motion=Aov.MOTION in session.spec.aovs,
                progress=progress,
                should_stop=session.should_stop(should_stop),
            )
            pipeline = restored.pipeline
            for frame, rendered in restored.rendered:
                if raw_reply:
                    yield frame, "", _raw_reply(rendered)
                    continue
                yield frame, "", pipeline.encode_exr(rendered, with_aovs=not aov_files)
                if aov_files:
                    for layer, data in pipeline.encode_aov_files(rendered).items():
                        yield frame, layer, data
        result = restored.result
        yield Summary(
            list(frames),
            [],
            result.pass_psnr,
            result.windows_computed,
            result.windows_cached,
            time.perf_counter() - started,
            sorted(session.nonfinite & set(frames)),
        )

    @staticmethod
    def _given_pixels(session: ServedSession, frame: int) -> tuple[ImageInfo, np.ndarray]:
        _, data = session.given[frame]
        if isinstance(data, RawFrame):
            spec = oiio.ImageSpec(
                session.spec.width, session.spec.height, len(data.channels), "float"
            )
            spec.channelnames = data.channels
            info = ImageInfo(
                Path(f"frame {frame}"),
                session.spec.width,
                session.spec.height,
                data.channels,
                "float",
                32,
                spec,
            )
            return info, data.pixels
        return read_image_bytes(data, check=session.header_check(frame))

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _check_frames(session: ServedSession, frames: Sequence[int]) -> None:
        if not frames:
            raise RRTNError("no frames asked for")
        first, last = min(frames[0], frames[-1]), max(frames[0], frames[-1])
        if first < session.spec.first_frame or last > session.spec.last_frame:
            raise RRTNError(
                f"frames {frames[0]}-{frames[-1]} are outside the session's clip "
                f"{session.spec.first_frame}-{session.spec.last_frame}"
            )


def _pattern_in(folder: ConfinedFolder, name: str) -> FramePattern:
    """The input sequence ``name`` (empty: the one sequence the folder holds) in ``folder``,
    named through its descriptor."""
    text = str(folder.path / name) if name else str(folder.path)
    try:
        return parse_pattern(text, must_exist=True)
    except RRTNError as exc:
        text = str(exc).replace(str(folder.path), str(folder.real))
        raise RRTNError(text, kind=exc.kind) from None


def _size(nbytes: int) -> str:
    """Bytes for messages: ``1.5 GiB``, ``12.3 MiB`` (three significant figures)."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"
    return f"{nbytes} bytes"


def _raw_reply(frame: RenderedFrame) -> RawFrame:
    channels = tuple(frame.info.channels) + tuple(frame.aov_names)
    pixels = np.concatenate([frame.pixels, frame.aov_planes], axis=2).astype(np.float32)
    return RawFrame(np.ascontiguousarray(pixels), channels)


def colorspace_names(ocio_config: str | None) -> list[str]:
    """The colour spaces of the config the server uses, for hosts' menus."""
    config = load_config(ocio_config)
    return [cs.getName() for cs in config.getColorSpaces()]


def describe_models(models: Iterable[ServedModel]) -> list[dict[str, Any]]:
    """Each model's name, description, second-pass network, input channels and parameters."""
    return [
        {
            "name": m.name,
            "description": m.description,
            "has_second_pass_model": m.second is not None,
            "input_channels": m.first.config.in_channels,
            "parameters": sum(p.numel() for p in m.first.parameters()),
        }
        for m in models
    ]
