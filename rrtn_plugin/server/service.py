"""What the server does, without gRPC: models loaded once, sessions of clips, restores on them.

A :class:`RestoreService` holds the models (loaded once, shared by all sessions), one
:class:`WorkCache` with the server's memory budget, and the open sessions. Each
:class:`ServedSession` couples an engine :class:`ClipSession` with the clip's colour handling
(:class:`FramePipeline`) and the frames it was given. A session restores frames either from
files the server reads and writes itself (the path transport, confined to configured root
folders) or from frames sent to it (the bytes transport), in which case it first says which
frames it needs: those it lacks or whose content hash changed.

Errors are RRTNErrors whose kind maps to a gRPC status in the servicer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import torch

from rrtn_plugin.color import ColorMode, load_config, resolve_colorspace
from rrtn_plugin.engine import ClipSession, Progress, RestoreOptions, WorkCache
from rrtn_plugin.engine.device import available_memory, resolve_device
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.image import ImageInfo, read_pixels
from rrtn_plugin.frames.image_bytes import read_image_bytes
from rrtn_plugin.frames.pipeline import FramePipeline, RenderedFrame
from rrtn_plugin.frames.plan import check_target
from rrtn_plugin.frames.restore import frame_result
from rrtn_plugin.frames.sequence import parse_pattern
from rrtn_plugin.model import RRTN

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
        host_budget: bytes of host memory for sessions' frames and cached work moved off the
            device (0: 50 % of available RAM).
        max_sessions: sessions open at once.
        idle_timeout: seconds after which an unused session is closed.
        path_roots: folders the path transport may read and write; none disables it.
    """

    memory_budget: int = 0
    host_budget: int = 0
    max_sessions: int = 16
    idle_timeout: float = 1800.0
    path_roots: tuple[Path, ...] = ()


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
    ) -> None:
        self.id = session_id
        self.ocio_config = ocio_config
        self.spec = spec
        self.model = model
        self.engine = engine
        self.lock = threading.Lock()
        self.pipeline: FramePipeline | None = None
        self.channels: tuple[str, ...] | None = None
        self.given: dict[int, tuple[str, bytes | RawFrame]] = {}
        self.file_stamps: dict[int, tuple[str, int, int]] = {}
        self.nonfinite: set[int] = set()
        self.busy = False

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Hold the session for one request (requests on one session run one at a time)."""
        with self.lock:
            self.busy = True
            try:
                yield
            finally:
                self.busy = False
                self.engine.last_used = time.monotonic()

    def given_bytes(self) -> int:
        total = 0
        for _, data in self.given.values():
            total += data.pixels.nbytes if isinstance(data, RawFrame) else len(data)
        return total + self.engine.held_bytes()

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
                f"frame {frame} has channels {', '.join(channels)}, the session's "
                f"frames have {', '.join(self.channels)}"
            )
        assert self.pipeline is not None
        luma, nonfinite = self.pipeline.network_input(pixels)
        self.engine.put_frame(frame, luma)
        (self.nonfinite.add if nonfinite else self.nonfinite.discard)(frame)


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
        self.memory_budget = self.limits.memory_budget or int(0.8 * available_memory(self.device))
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
        for model in models:
            for network in (model.first, model.second):
                if network is not None:
                    network.to(self.device).eval()

    # -- sessions ----------------------------------------------------------------------------

    def open(self, spec: SessionSpec) -> ServedSession:
        """Start a session; RRTNError (INVALID_INPUT, NOT_FOUND, OUT_OF_MEMORY) if it can't."""
        model = self.models.get(spec.model or self.default_model)
        if model is None:
            raise RRTNError(
                f"no model '{spec.model}' (this server has {', '.join(self.models)})",
                kind=ErrorKind.NOT_FOUND,
            )
        if spec.last_frame < spec.first_frame:
            raise RRTNError(
                f"last_frame {spec.last_frame} is before first_frame {spec.first_frame}"
            )
        if spec.width < 1 or spec.height < 1:
            raise RRTNError(f"width and height must be positive, got {spec.width}x{spec.height}")
        if spec.options.device not in ("auto", str(self.device)):
            raise RRTNError(
                f"this server computes on {self.device}; the device cannot be chosen per session"
            )
        if spec.input_colorspace:
            resolve_colorspace(load_config(self.ocio_config), spec.input_colorspace)
        self.reap_idle()
        with self._lock:
            if len(self._sessions) >= self.limits.max_sessions:
                raise RRTNError(
                    f"the server already has {len(self._sessions)} sessions open "
                    f"(its limit): close one first",
                    kind=ErrorKind.OUT_OF_MEMORY,
                )
            session_id = uuid.uuid4().hex
            options = replace(
                spec.options, device=str(self.device), memory_budget=self.memory_budget
            )
            engine = ClipSession(
                first_frame=spec.first_frame,
                num_frames=spec.last_frame - spec.first_frame + 1,
                height=spec.height,
                width=spec.width,
                first=model.first,
                second=model.second,
                options=options,
                cache=self.cache,
                owner=session_id,
                compute_lock=self.compute_lock,
            )
            session = ServedSession(session_id, spec, model, engine, ocio_config=self.ocio_config)
            self._sessions[session_id] = session
        log.info(
            "opened session %s '%s': frames %d-%d, %dx%d, model %s",
            session_id,
            spec.name,
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
                f"no session '{session_id}' (closed, timed out, or never opened)",
                kind=ErrorKind.NOT_FOUND,
            )
        return session

    def close(self, session_id: str) -> None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            raise RRTNError(f"no session '{session_id}'", kind=ErrorKind.NOT_FOUND)
        self.cache.release(session_id)
        log.info("closed session %s", session_id)

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
                self._sessions.pop(session_id, None)
            self.cache.release(session_id)
            log.info("closed idle session %s", session_id)
        return stale

    # -- the path transport ------------------------------------------------------------------

    def confine(self, text: str) -> str:
        """``text`` (a path or pattern) with its folder resolved, if inside a path root."""
        if not self.limits.path_roots:
            raise RRTNError(
                "this server does not read or write files (start it with --root)",
                kind=ErrorKind.PERMISSION_DENIED,
            )
        path = Path(text)
        folder = path.parent.resolve()
        for root in self.limits.path_roots:
            if folder == root.resolve() or folder.is_relative_to(root.resolve()):
                return str(folder / path.name)
        raise RRTNError(
            f"{text} is outside the folders this server may use "
            f"({', '.join(map(str, self.limits.path_roots))})",
            kind=ErrorKind.PERMISSION_DENIED,
        )

    def restore_paths(
        self,
        session: ServedSession,
        frames: list[int],
        *,
        source: str,
        target: str,
        progress: Callable[[Progress], None],
        should_stop: Callable[[], bool],
    ) -> Summary:
        """Read the frames the request needs from ``source``, restore, write to ``target``."""
        started = time.perf_counter()
        inp = parse_pattern(self.confine(source), must_exist=True)
        out = parse_pattern(self.confine(target))
        check_target(out, inp)
        with session.in_use():
            self._check_frames(session, frames)
            needed = session.engine.needed_frames(frames)
            for i, frame in enumerate(needed):
                _stop_if(should_stop)
                progress(Progress(0, "read", i, len(needed), frame=frame))
                self._read_file(session, frame, inp.path(frame))
            result = session.engine.restore(
                frames,
                keep_motion=Aov.MOTION in session.spec.aovs,
                progress=progress,
                should_stop=should_stop,
            )
            out.path(frames[0]).parent.mkdir(parents=True, exist_ok=True)
            written: list[str] = []
            for i, frame in enumerate(frames):
                _stop_if(should_stop)
                progress(Progress(0, "write", i, len(frames), frame=frame))
                info, pixels = read_pixels(inp.path(frame))
                assert session.pipeline is not None
                rendered = session.pipeline.render(info, pixels, frame_result(result, frame))
                written += [str(p) for p in session.pipeline.write(rendered, out, frame)]
            progress(Progress(0, "write", len(frames), len(frames)))
        return Summary(
            frames,
            written,
            result.pass_psnr,
            result.windows_computed,
            result.windows_cached,
            time.perf_counter() - started,
            sorted(session.nonfinite & set(needed)),
        )

    def _read_file(self, session: ServedSession, frame: int, path: Path) -> None:
        """Read a frame's file unless it is unchanged since the session last read it."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise RRTNError(f"missing frame: {path}", kind=ErrorKind.NOT_FOUND) from None
        stamp = (str(path), stat.st_mtime_ns, stat.st_size)
        if session.file_stamps.get(frame) == stamp and session.engine.frame_key(frame):
            return
        info, pixels = read_pixels(path)
        session.take_pixels(frame, info.channels, pixels)
        session.file_stamps[frame] = stamp

    # -- the bytes transport -----------------------------------------------------------------

    def frames_needed(
        self, session: ServedSession, frames: list[int], hashes: Mapping[int, str]
    ) -> list[int]:
        """Frames the client must send: needed ones the session lacks or holds changed."""
        self._check_frames(session, frames)
        with session.lock:
            return self._frames_needed(session, frames, hashes)

    @staticmethod
    def _frames_needed(
        session: ServedSession, frames: list[int], hashes: Mapping[int, str]
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
        if isinstance(data, RawFrame):
            expected = (session.spec.height, session.spec.width, len(data.channels))
            if data.pixels.shape != expected:
                raise RRTNError(
                    f"frame {frame}: raw data is {data.pixels.shape}, expected "
                    f"{expected} (height, width, channels) float32"
                )
            session.take_pixels(frame, data.channels, data.pixels)
        else:
            info, pixels = read_image_bytes(data)
            session.take_pixels(frame, info.channels, pixels)
        held = sum(s.given_bytes() for s in self.sessions()) + len(
            data if isinstance(data, bytes) else data.pixels.data
        )
        if held > self.host_budget:
            raise RRTNError(
                f"the server's memory budget for frames "
                f"({self.host_budget / 2**30:.1f} GiB) is used up: close sessions "
                "or send fewer frames",
                kind=ErrorKind.OUT_OF_MEMORY,
            )
        session.given[frame] = (content_hash, data)

    def restore_given(
        self,
        session: ServedSession,
        frames: list[int],
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
            result = session.engine.restore(
                frames,
                keep_motion=Aov.MOTION in session.spec.aovs,
                progress=progress,
                should_stop=should_stop,
            )
            assert session.pipeline is not None
            for i, frame in enumerate(frames):
                _stop_if(should_stop)
                progress(Progress(0, "write", i, len(frames), frame=frame))
                info, pixels = self._given_pixels(session, frame)
                rendered = session.pipeline.render(info, pixels, frame_result(result, frame))
                if raw_reply:
                    yield frame, "", _raw_reply(rendered)
                    continue
                yield frame, "", session.pipeline.encode_exr(rendered, with_aovs=not aov_files)
                if aov_files:
                    for layer, data in session.pipeline.encode_aov_files(rendered).items():
                        yield frame, layer, data
            progress(Progress(0, "write", len(frames), len(frames)))
        yield Summary(
            frames,
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
        return read_image_bytes(data)

    # -- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _check_frames(session: ServedSession, frames: list[int]) -> None:
        if not frames:
            raise RRTNError("no frames asked for")
        outside = [f for f in frames if f not in session.engine.frame_numbers]
        if outside:
            raise RRTNError(
                f"frames {outside[0]}-{outside[-1]} are outside the session's clip "
                f"{session.spec.first_frame}-{session.spec.last_frame}"
            )


def _stop_if(should_stop: Callable[[], bool]) -> None:
    if should_stop():
        raise RRTNError("restore cancelled", kind=ErrorKind.CANCELLED)


def _raw_reply(frame: RenderedFrame) -> RawFrame:
    channels = tuple(frame.info.channels) + tuple(frame.aov_names)
    pixels = np.concatenate([frame.pixels, frame.aov_planes], axis=2).astype(np.float32)
    return RawFrame(np.ascontiguousarray(pixels), channels)


def colorspace_names(ocio_config: str | None) -> list[str]:
    """The colour spaces of the config the server uses, for hosts' menus."""
    config = load_config(ocio_config)
    return [cs.getName() for cs in config.getColorSpaces()]


def describe_models(models: Iterable[ServedModel]) -> list[dict[str, object]]:
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
