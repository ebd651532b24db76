"""``rrtn.v1.Restorer`` on top of :class:`RestoreService`: messages in, service calls, messages out.

Every call is parsed here from its bytes (a message that does not decode is INVALID_ARGUMENT,
not gRPC's INTERNAL), checked field by field against :mod:`.bounds` before anything is
allocated, logged as one structured line (:func:`log_call`: method, peer, status, seconds,
detail) and counted in the server's metrics. Errors map to gRPC statuses (:data:`STATUS`): bad
input → INVALID_ARGUMENT, unknown session or file → NOT_FOUND, over budget →
RESOURCE_EXHAUSTED, a path outside the roots → PERMISSION_DENIED, cancelled → CANCELLED. Anything
else is logged with its traceback and reported as INTERNAL; the server keeps running. Messages
echo no more than a few dozen characters of what a client sent.

Restore calls hold one of a fixed number of slots (more are refused at once), and may not wait
on their client for longer than ``stream_idle_timeout``, for its next message or for it to take
a reply (:class:`StreamWatch` cancels them), so idle clients cannot take the threads that the
other calls need. Long work runs in a worker thread so progress streams back while it advances;
a cancelled or disconnected call, one past its deadline, or one whose session is closed stops
that work at the next step.
"""

from __future__ import annotations

import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, cast

import grpc
from google.protobuf.message import DecodeError, Message

from rrtn_plugin import __version__
from rrtn_plugin.color import ColorMode
from rrtn_plugin.engine.device import check_precision
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.aovs import Aov, parse_aovs
from rrtn_plugin.frames.restore import JobSettings
from rrtn_plugin.options import OPTIONS, OptionSpec, RestoreOptions, options_from
from rrtn_plugin.progress import Progress, check_cancel
from rrtn_plugin.protocol.framing import (
    MAX_CHUNK_BYTES,
    MAX_MESSAGE_BYTES,
    FrameAssembler,
    frame_chunks,
    raw_payload,
    raw_pixels,
)
from rrtn_plugin.protocol.rrtn.v1 import restorer_pb2 as pb
from rrtn_plugin.protocol.rrtn.v1 import restorer_pb2_grpc as pb_grpc
from rrtn_plugin.server.bounds import (
    MAX_AOVS,
    MAX_CHANNELS,
    MAX_CLIP_FRAMES,
    MAX_FRAME_NUMBER,
    MAX_HASH_CHARS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_SIDE,
    check_frame_number,
    check_text,
)
from rrtn_plugin.server.confine import shown
from rrtn_plugin.server.metrics import ServerMetrics
from rrtn_plugin.server.service import (
    RawFrame,
    RestoreService,
    ServedSession,
    SessionSpec,
    Summary,
    colorspace_names,
    describe_models,
)

log = logging.getLogger("rrtn_plugin.server")

STATUS = {
    ErrorKind.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.OUT_OF_MEMORY: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.CANCELLED: grpc.StatusCode.CANCELLED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
}

MAX_DETAIL_CHARS = 1000
"""The longest status message (and log detail): gRPC sends it as metadata, which is bounded."""

SERVICE = pb.DESCRIPTOR.services_by_name["Restorer"]
MESSAGES: dict[str, tuple[type[Message], type[Message]]] = {
    m.name: (getattr(pb, m.input_type.name), getattr(pb, m.output_type.name))
    for m in SERVICE.methods
}
"""Each method's request and response classes."""


def log_call(
    method: str, peer: str, status: str, seconds: float, detail: str = "", **fields: Any
) -> None:
    """Log one finished (or refused) call as one line of ``key=value`` pairs; the values are
    also attached to the record as ``record.call`` for structured (JSON) log handlers."""
    call = {"method": method, "peer": peer, "status": status, "seconds": round(seconds, 3)}
    call.update({k: v for k, v in fields.items() if v is not None})
    if detail:
        call["detail"] = _clip(detail)
    text = " ".join(f"{k}={_logfmt(v)}" for k, v in call.items())
    level = logging.WARNING if status not in ("OK", "CANCELLED") else logging.INFO
    log.log(level, "%s", text, extra={"call": call})


def _logfmt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    if text and not any(c in text for c in ' "=\n'):
        return text
    return json.dumps(text)


def _clip(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 20] + f"… ({len(text)} characters)"


def handled(method: Callable[..., Any]) -> Callable[..., Any]:
    """Parse the call's request, log one line per call, count it, and turn RRTNError (and
    anything unexpected) into a status."""
    name = method.__name__
    request_type = MESSAGES[name][0]

    def finish(
        self: Servicer, context: grpc.ServicerContext, started: float, status: str, detail: str
    ) -> None:
        log_call(
            name,
            context.peer(),
            status,
            time.perf_counter() - started,
            detail,
            **getattr(context, "rrtn_fields", {}),
        )
        if self.metrics is not None:
            self.metrics.record_call(name, status)

    def fail(self: Servicer, context: grpc.ServicerContext, started: float, exc: Exception) -> None:
        watch = getattr(context, "rrtn_watch", None)
        if watch is not None and watch.expired:
            finish(self, context, started, "CANCELLED", watch.expired)
            context.abort(grpc.StatusCode.CANCELLED, watch.expired)
        if isinstance(exc, RRTNError):
            code = STATUS[exc.kind]
            remaining = context.time_remaining()
            if exc.kind is ErrorKind.CANCELLED and remaining is not None and remaining <= 0:
                code = grpc.StatusCode.DEADLINE_EXCEEDED  # the work stopped at the deadline
            finish(self, context, started, code.name, str(exc))
            context.abort(code, _clip(str(exc)))
        if isinstance(exc, grpc.RpcError) and not context.is_active():
            finish(self, context, started, "CANCELLED", "the client went away")
            context.abort(grpc.StatusCode.CANCELLED, "the client went away")
        log.exception("%s failed", name)
        finish(self, context, started, "INTERNAL", f"{type(exc).__name__}: {exc}")
        context.abort(
            grpc.StatusCode.INTERNAL, _clip(f"internal error: {type(exc).__name__}: {exc}")
        )

    @functools.wraps(method)
    def unary(self: Servicer, request: Any, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        try:
            response = method(self, _parse(request_type, request), context)
        except Exception as exc:  # mapped to a status: the server never crashes on input
            fail(self, context, started, exc)
        finish(self, context, started, "OK", "")
        return response

    @functools.wraps(method)
    def streaming(self: Servicer, requests: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        started = time.perf_counter()
        watch = self.watch.add(context)
        context.rrtn_watch = watch
        parsed = watch.requests(_parse(request_type, r) for r in requests)
        try:
            for reply in method(self, parsed, context):
                with watch.waiting("to take a reply"):
                    yield reply
        except GeneratorExit:
            finish(self, context, started, "CANCELLED", watch.expired or "the client went away")
            raise
        except Exception as exc:
            fail(self, context, started, exc)
        finally:
            self.watch.remove(watch)
        finish(self, context, started, "OK", "")

    return streaming if getattr(method, "streams", False) else unary


def streams(method: Callable[..., Any]) -> Callable[..., Any]:
    method.streams = True  # type: ignore[attr-defined]
    return method


def _parse(request_type: type[Message], data: Any) -> Any:
    """``data`` (the request's bytes) as a ``request_type`` message; INVALID_ARGUMENT if it
    is not one. Messages given already parsed pass through."""
    if not isinstance(data, bytes):
        return data
    message = request_type()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise RRTNError(
            f"the request ({len(data)} bytes) is not a valid {request_type.DESCRIPTOR.full_name} "
            f"message: {_clip(str(exc), 200)}"
        ) from None
    return message


class _Watched:
    """One streaming call: when it began waiting on its client, and whether it waited too
    long (``expired`` then says what for)."""

    def __init__(self, context: grpc.ServicerContext, timeout: float) -> None:
        self.context, self.timeout = context, timeout
        self.since: float | None = None
        self.what = ""
        self.expired = ""

    class _Waiting:
        def __init__(self, watched: _Watched, what: str) -> None:
            self.watched, self.what = watched, what

        def __enter__(self) -> None:
            self.watched.what, self.watched.since = self.what, time.monotonic()

        def __exit__(self, *exc: object) -> None:
            self.watched.since = None

    def waiting(self, what: str) -> _Watched._Waiting:
        """A context during which the call waits on its client for ``what``."""
        return _Watched._Waiting(self, what)

    def requests(self, requests: Iterator[Any]) -> Iterator[Any]:
        """The client's messages, each waited for under the watch."""
        while True:
            with self.waiting("for the client's next message"):
                request = next(requests, None)
            if request is None:
                return
            yield request


class StreamWatch:
    """Cancels streaming calls that wait on their client for longer than ``timeout`` seconds,
    checked every ``period`` seconds by one thread."""

    def __init__(self, timeout: float, period: float = 0.25) -> None:
        self.timeout, self.period = timeout, period
        self._calls: set[_Watched] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, context: grpc.ServicerContext) -> _Watched:
        watched = _Watched(context, self.timeout)
        with self._lock:
            self._calls.add(watched)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="rrtn-stream-watch", daemon=True
                )
                self._thread.start()
        return watched

    def remove(self, watched: _Watched) -> None:
        with self._lock:
            self._calls.discard(watched)

    def _run(self) -> None:
        while True:
            time.sleep(self.period)
            now = time.monotonic()
            with self._lock:
                calls = list(self._calls)
                if not calls:  # nothing to watch: the next call starts a new thread
                    self._thread = None
                    return
            for call in calls:
                since = call.since
                if since is not None and not call.expired and now - since > call.timeout:
                    call.expired = (
                        f"the client left the call waiting {call.what} for more than "
                        f"{call.timeout:g} s"
                    )
                    log.warning("ending a Restore call: %s", call.expired)
                    call.context.cancel()


class Servicer(pb_grpc.RestorerServicer):
    """The ``Restorer`` service.

    Args:
        service: what the calls run on.
        metrics: where calls, frames and stage times are counted (None: nowhere).
    """

    def __init__(self, service: RestoreService, metrics: ServerMetrics | None = None) -> None:
        self.service = service
        self.metrics = metrics
        self.watch = StreamWatch(service.limits.stream_idle_timeout)
        self.slots = threading.BoundedSemaphore(service.limits.restore_slots)

    @handled
    def GetServerInfo(
        self,
        request: pb.GetServerInfoRequest,
        context: grpc.ServicerContext,
    ) -> pb.ServerInfo:
        service = self.service
        served = service.models[service.default_model]

        def default(spec: OptionSpec) -> str:
            if spec.per_model:
                return str(served.max_passes)
            if spec.type is bool:
                return "true" if spec.default else "false"
            return "" if spec.default is None else str(spec.to_front(spec.default))

        def runs_here(precision: str) -> bool:
            try:
                check_precision(precision, service.device)
            except RRTNError:
                return False
            return True

        engine_options = [
            pb.OptionInfo(
                name=spec.name,
                type={int: "int", float: "float", bool: "bool", str: "string"}[spec.type],
                default=default(spec),
                # precision: only what this server's device runs
                choices=[c for c in spec.choices if spec.name != "precision" or runs_here(c)],
                minimum=spec.minimum or 0,
                maximum=spec.maximum or 0,
                help=spec.describe() + (f" (unset: {spec.unset})" if spec.unset else ""),
            )
            for spec in OPTIONS
            if spec.served
        ]
        return pb.ServerInfo(
            version=__version__,
            device=str(service.device),
            models=[pb.ModelInfo(**m) for m in describe_models(service.models.values())],
            options=[
                pb.OptionInfo(
                    name="model",
                    type="string",
                    default=service.default_model,
                    choices=list(service.models),
                    help="model to restore with",
                ),
                *engine_options,
                pb.OptionInfo(
                    name="aovs",
                    type="strings",
                    choices=[a.value for a in Aov],
                    help="extra channels: noise mask, repair amount, motion",
                ),
                pb.OptionInfo(
                    name="color_mode",
                    type="string",
                    default=JobSettings.color_mode.value,
                    choices=[m.value for m in ColorMode],
                    help="keep the frames' chroma around the restored luminance, or send the "
                    "restored luminance alone",
                ),
                pb.OptionInfo(
                    name="input_colorspace",
                    type="string",
                    default="scene_linear",
                    help="colour space of the frames sent",
                ),
            ],
            limits=pb.Limits(
                max_chunk_bytes=MAX_CHUNK_BYTES,
                max_message_bytes=MAX_MESSAGE_BYTES,
                memory_budget_bytes=service.memory_budget,
                max_sessions=service.limits.max_sessions,
                session_idle_timeout_seconds=service.limits.idle_timeout,
                path_transport=bool(service.limits.path_roots),
                path_roots=[str(r) for r in service.roots.roots],
                max_frame_number=MAX_FRAME_NUMBER,
                max_clip_frames=MAX_CLIP_FRAMES,
                max_side=MAX_SIDE,
                max_channels=MAX_CHANNELS,
                max_name_chars=MAX_NAME_CHARS,
            ),
            ocio_config=service.ocio_config or "",
            colorspaces=colorspace_names(service.ocio_config),
        )

    @handled
    def OpenSession(
        self,
        request: pb.OpenSessionRequest,
        context: grpc.ServicerContext,
    ) -> pb.OpenSessionResponse:
        o = request.options
        for field in ("model", "color_mode", "input_colorspace", "precision"):
            check_text(getattr(o, field), f"options.{field}")
        check_text(request.name, "name")
        if len(o.aovs) > MAX_AOVS:
            raise RRTNError(f"options.aovs lists {len(o.aovs)} names (at most {MAX_AOVS})")
        for aov in o.aovs:
            check_text(aov, "options.aovs")
        served = self.service.models.get(o.model or self.service.default_model)
        try:
            color_mode = ColorMode(o.color_mode or JobSettings.color_mode.value)
        except ValueError:
            raise RRTNError(
                f"options.color_mode {shown(o.color_mode)} is not one of "
                f"{', '.join(m.value for m in ColorMode)}"
            ) from None
        given = {
            spec.name: getattr(o, spec.name)
            for spec in OPTIONS
            if spec.served
            and (getattr(o, spec.name) if spec.type is str else o.HasField(cast(Any, spec.name)))
        }
        # The same description as the command line's: out of range is INVALID_ARGUMENT.
        options = options_from(
            given, RestoreOptions(max_passes=served.max_passes) if served else None
        )
        spec = SessionSpec(
            first_frame=request.first_frame,
            last_frame=request.last_frame,
            width=request.width,
            height=request.height,
            name=request.name,
            model=o.model,
            options=options,
            aovs=parse_aovs(",".join(o.aovs)),
            color_mode=color_mode,
            input_colorspace=o.input_colorspace or None,
        )
        session = self.service.open(spec)
        context.rrtn_fields = {"session": session.id}
        return pb.OpenSessionResponse(session_id=session.id)

    @handled
    def CloseSession(
        self,
        request: pb.CloseSessionRequest,
        context: grpc.ServicerContext,
    ) -> pb.CloseSessionResponse:
        check_text(request.session_id, "session_id", MAX_ID_CHARS)
        context.rrtn_fields = {"session": request.session_id}
        self.service.close(request.session_id)
        return pb.CloseSessionResponse()

    @handled
    def ListSessions(
        self,
        request: pb.ListSessionsRequest,
        context: grpc.ServicerContext,
    ) -> pb.ListSessionsResponse:
        now = time.monotonic()
        infos = []
        for s in self.service.sessions():
            usage = self.service.cache.usage(s.id)
            infos.append(
                pb.SessionInfo(
                    session_id=s.id,
                    name=s.spec.name,
                    first_frame=s.spec.first_frame,
                    last_frame=s.spec.last_frame,
                    width=s.spec.width,
                    height=s.spec.height,
                    frames_held=len(s.given) or len(s.file_stamps),
                    frame_bytes=s.given_bytes(),
                    cache_device_bytes=usage.device_bytes,
                    cache_host_bytes=usage.host_bytes,
                    cache_entries=usage.entries,
                    cache_hits=usage.hits,
                    cache_misses=usage.misses,
                    idle_seconds=now - s.engine.last_used,
                    busy=s.busy,
                )
            )
        total = self.service.cache.usage()
        return pb.ListSessionsResponse(
            sessions=infos,
            cache_device_bytes=total.device_bytes,
            cache_host_bytes=total.host_bytes,
            memory_budget_bytes=self.service.memory_budget,
        )

    @handled
    @streams
    def Restore(
        self,
        request_iterator: Iterator[pb.RestoreRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[pb.RestoreResponse]:
        if not self.slots.acquire(blocking=False):
            raise RRTNError(
                f"the server is running {self.service.limits.restore_slots} restores (its "
                "limit): try again when one has finished",
                kind=ErrorKind.OUT_OF_MEMORY,
            )
        try:
            yield from self._restore(request_iterator, context)
        finally:
            self.slots.release()

    def _restore(
        self, request_iterator: Iterator[pb.RestoreRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.RestoreResponse]:
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("item") != "start":
            raise RRTNError("a Restore call must begin with a RestoreStart message")
        start = first.start
        check_text(start.session_id, "session_id", MAX_ID_CHARS)
        context.rrtn_fields = {
            "session": start.session_id,
            "frames": f"{start.first_frame}-{start.last_frame}",
            "transport": start.WhichOneof("transport") or "none",
        }
        session = self.service.get(start.session_id)
        frames = _requested_frames(session, start)
        transport = start.WhichOneof("transport")
        if transport is None:
            raise RRTNError("RestoreStart needs a transport: paths or bytes")
        stop = threading.Event()
        context.add_callback(stop.set)

        def should_stop() -> bool:
            remaining = context.time_remaining()
            return stop.is_set() or (remaining is not None and remaining <= 0)

        clock = _StageClock(self.metrics)
        try:
            if transport == "paths":
                yield from _run_in_thread(
                    lambda progress, cancelled: [
                        self.service.restore_paths(
                            session,
                            frames,
                            source=start.paths.input,
                            target=start.paths.output,
                            progress=progress,
                            should_stop=cancelled,
                        )
                    ],
                    should_stop,
                    observe=clock,
                )
                return
            if start.bytes.reply_encoding not in (
                pb.FRAME_ENCODING_UNSPECIFIED,
                pb.FRAME_ENCODING_FILE,
                pb.FRAME_ENCODING_RAW,
            ):
                raise RRTNError(
                    f"bytes.reply_encoding {start.bytes.reply_encoding} is not FILE or RAW"
                )
            raw = start.bytes.reply_encoding == pb.FRAME_ENCODING_RAW
            if raw and start.bytes.aov_files:
                raise RRTNError("aov_files needs FILE replies (raw replies carry AOV channels)")
            hashes = _frame_hashes(start)
            needed = self.service.frames_needed(session, frames, hashes)
            yield pb.RestoreResponse(needed=pb.FramesNeeded(frames=needed))
            with self.service.reserve("receiving frames") as take:
                for frame, content_hash, data, size in _receive_frames(
                    request_iterator, set(needed), session, take
                ):
                    take(-size)  # held by the session from here on
                    self.service.accept_frame(session, frame, content_hash, data)
            yield from _run_in_thread(
                lambda progress, cancelled: self.service.restore_given(
                    session,
                    frames,
                    progress=progress,
                    should_stop=cancelled,
                    raw_reply=raw,
                    aov_files=start.bytes.aov_files,
                ),
                should_stop,
                observe=clock,
            )
        finally:
            stop.set()
            clock.close()


def _requested_frames(session: ServedSession, start: pb.RestoreStart) -> range:
    """The frames a RestoreStart asks for, checked to lie in the session's clip before any
    list of them is made."""
    first, last = start.first_frame, start.last_frame
    check_frame_number(first, "first_frame")
    check_frame_number(last, "last_frame")
    if last < first:
        raise RRTNError(f"last_frame {last} is before first_frame {first}")
    if first < session.spec.first_frame or last > session.spec.last_frame:
        raise RRTNError(
            f"frames {first}-{last} are outside the session's clip "
            f"{session.spec.first_frame}-{session.spec.last_frame}"
        )
    return range(first, last + 1)


def _frame_hashes(start: pb.RestoreStart) -> dict[int, str]:
    hashes = dict(start.frame_hashes)
    for frame, value in hashes.items():
        check_text(value, f"frame_hashes[{frame}]", MAX_HASH_CHARS)
    return hashes


class _StageClock:
    """Times each stage of a restore from its progress events, for the metrics: a stage runs
    from its first event to the next stage's (or the end)."""

    def __init__(self, metrics: ServerMetrics | None) -> None:
        self.metrics = metrics
        self.stage: tuple[int, str] | None = None
        self.since = 0.0

    def __call__(self, item: Any) -> None:
        if self.metrics is None:
            return
        if isinstance(item, Progress):
            key = (item.pass_number, item.stage)
            if key != self.stage:
                self.close()
                self.stage, self.since = key, time.perf_counter()
        elif isinstance(item, Summary):
            self.close()
            self.metrics.record_frames(len(item.frames))

    def close(self) -> None:
        if self.metrics is not None and self.stage is not None:
            self.metrics.record_stage(self.stage[1], time.perf_counter() - self.since)
        self.stage = None


WAIT_SECONDS = 0.1
"""How often a stream waiting for its worker looks whether the call was cancelled."""

Work = Callable[[Callable[[Progress], None], Callable[[], bool]], Iterable[Any]]
"""Long work: given a progress callback and a should_stop, yields replies and a summary."""


def _run_in_thread(
    work: Work,
    should_stop: Callable[[], bool],
    *,
    observe: Callable[[Any], None] | None = None,
) -> Iterator[pb.RestoreResponse]:
    """Run ``work`` in a thread; stream its progress, replies and summary as messages
    (``observe`` sees each item first).

    The work stops at its next step once ``should_stop`` says so (the call cancelled or past
    its deadline) or the stream is given up (the client went away), and so leaves its session.
    The stream does not wait for that step: it raises RRTNError (CANCELLED) within
    :data:`WAIT_SECONDS` of the cancellation.
    """
    events: queue.Queue[Any] = queue.Queue()
    done = object()
    abandoned = threading.Event()

    def stop() -> bool:
        return abandoned.is_set() or should_stop()

    def target() -> None:
        items: Iterable[Any] = ()
        try:
            items = work(events.put, stop)
            for item in items:
                check_cancel(stop)
                events.put(item)
        except BaseException as exc:  # handed to the streaming thread
            events.put(exc)
        finally:
            if isinstance(items, Generator):
                items.close()  # a restore left part-way lets go of its session now
        events.put(done)

    thread = threading.Thread(target=target, name="rrtn-restore", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = events.get(timeout=WAIT_SECONDS)
            except queue.Empty:
                check_cancel(should_stop)
                continue
            if item is done:
                break
            if isinstance(item, BaseException):
                thread.join()
                raise item
            check_cancel(should_stop)
            if observe is not None:
                observe(item)
            yield from _messages(item)
        thread.join()
    finally:
        abandoned.set()


def _messages(item: Any) -> Iterator[pb.RestoreResponse]:
    if isinstance(item, Progress):
        yield pb.RestoreResponse(
            progress=pb.Progress(
                **{"pass": item.pass_number},
                stage=item.stage,
                done=item.done,
                total=item.total,
                frame=item.frame or 0,
                has_frame=item.frame is not None,
            )
        )
    elif isinstance(item, Summary):
        yield pb.RestoreResponse(
            summary=pb.RestoreSummary(
                frames=item.frames,
                written=item.written,
                pass_psnr=item.pass_psnr,
                windows_computed=item.windows_computed,
                windows_cached=item.windows_cached,
                seconds=item.seconds,
                nonfinite_frames=item.nonfinite_frames,
            )
        )
    else:
        frame, layer, data = item
        if isinstance(data, RawFrame):
            payload, layout = raw_payload(data.pixels, data.channels)
            messages = frame_chunks(frame, payload, encoding=pb.FRAME_ENCODING_RAW, raw=layout)
        else:
            messages = frame_chunks(frame, data, encoding=pb.FRAME_ENCODING_FILE, layer=layer)
        for chunk in messages:
            yield pb.RestoreResponse(frame=chunk)


FILE_SLACK_BYTES = 1 << 20
"""Room for an image file's header and metadata beyond its pixels."""


def _receive_frames(
    requests: Iterator[pb.RestoreRequest],
    expected: set[int],
    session: ServedSession,
    take: Callable[[int], None],
) -> Iterator[tuple[int, str, bytes | RawFrame, int]]:
    """Assemble the sent frames' chunks; yields (frame, hash, data, bytes taken) as each
    completes. Each frame's announced size is checked against what the session can take
    (its frame size, at most :data:`MAX_CHANNELS` channels of float32) and taken from the host
    budget (``take``) before any of its data is held."""
    width, height = session.spec.width, session.spec.height
    largest = 4 * width * height * MAX_CHANNELS + FILE_SLACK_BYTES
    assembler = FrameAssembler(max_frame_bytes=largest)
    taken: dict[tuple[int, str], int] = {}
    while expected:
        request = next(requests, None)
        if request is None:
            raise RRTNError(f"the client stopped sending before frames {sorted(expected)[:10]}")
        if request.WhichOneof("item") != "frame":
            raise RRTNError("only FrameChunk messages may follow a RestoreStart")
        chunk = request.frame
        if chunk.frame not in expected:
            raise RRTNError(f"frame {chunk.frame} was not asked for (or was sent twice)")
        key = (chunk.frame, chunk.layer)
        if chunk.offset == 0 and key not in taken:
            _check_head(chunk, width, height, largest)
            take(chunk.total_bytes)
            taken[key] = chunk.total_bytes
        whole = assembler.add(chunk)
        if whole is None:
            continue
        head, payload = whole
        expected.discard(head.frame)
        yield head.frame, head.content_hash, _decode(head, payload), taken.pop(key, 0)


def _check_head(chunk: pb.FrameChunk, width: int, height: int, largest: int) -> None:
    """RRTNError unless a frame's first chunk describes a frame the session takes, of at most
    ``largest`` bytes."""
    if not 0 <= chunk.total_bytes <= largest:
        raise RRTNError(
            f"frame {chunk.frame}: {chunk.total_bytes} bytes is not a frame size this session "
            f"takes (at most {largest} bytes)"
        )
    check_text(chunk.content_hash, f"frame {chunk.frame}: content_hash", MAX_HASH_CHARS)
    check_text(chunk.layer, f"frame {chunk.frame}: layer")
    if chunk.encoding == pb.FRAME_ENCODING_RAW:
        layout = chunk.raw
        if (layout.width, layout.height) != (width, height):
            raise RRTNError(
                f"frame {chunk.frame}: raw layout {layout.width}x{layout.height}, the "
                f"session's clip is {width}x{height}"
            )
        if not 1 <= len(layout.channels) <= MAX_CHANNELS:
            raise RRTNError(
                f"frame {chunk.frame}: raw layout has {len(layout.channels)} channels "
                f"(1 to {MAX_CHANNELS})"
            )
        for channel in layout.channels:
            check_text(channel, f"frame {chunk.frame}: channel name")
        expected = 4 * width * height * len(layout.channels)
        if chunk.total_bytes != expected:
            raise RRTNError(
                f"frame {chunk.frame}: {chunk.total_bytes} bytes announced, the raw layout "
                f"makes {expected}"
            )
    elif chunk.encoding != pb.FRAME_ENCODING_FILE:
        raise RRTNError(f"frame {chunk.frame}: encoding must be FILE or RAW")


def _decode(head: pb.FrameChunk, payload: bytes) -> bytes | RawFrame:
    if head.encoding == pb.FRAME_ENCODING_RAW:
        return RawFrame(raw_pixels(head.frame, head.raw, payload), tuple(head.raw.channels))
    if head.encoding != pb.FRAME_ENCODING_FILE:
        raise RRTNError(f"frame {head.frame}: encoding must be FILE or RAW")
    return payload


def add_to_server(servicer: Servicer, server: grpc.Server) -> None:
    """Register ``servicer`` on ``server`` with requests taken as bytes, so that the servicer
    parses them (a malformed one is INVALID_ARGUMENT, not gRPC's INTERNAL)."""
    handlers = {}
    for method in SERVICE.methods:
        behavior = getattr(servicer, method.name)
        serialize = MESSAGES[method.name][1].SerializeToString
        if method.client_streaming and method.server_streaming:
            make = grpc.stream_stream_rpc_method_handler
        elif method.server_streaming:
            make = grpc.unary_stream_rpc_method_handler
        elif method.client_streaming:
            make = grpc.stream_unary_rpc_method_handler
        else:
            make = grpc.unary_unary_rpc_method_handler
        handlers[method.name] = make(behavior, response_serializer=serialize)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
