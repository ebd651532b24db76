"""``rrtn.v1.Restorer`` on top of :class:`RestoreService`: messages in, service calls, messages out.

Every handler logs one line (method, peer, outcome, duration) and maps the project's errors to
gRPC statuses: bad input → INVALID_ARGUMENT, unknown session or file → NOT_FOUND, over budget →
RESOURCE_EXHAUSTED, a path outside the roots → PERMISSION_DENIED, cancelled → CANCELLED.
Anything else is logged with its traceback and reported as INTERNAL; the server keeps running.
Long work runs in a worker thread so progress streams back while it advances; a cancelled or
disconnected call, or one past its deadline, stops that work at the next step.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from rrtn_plugin import __version__
from rrtn_plugin.color import ColorMode
from rrtn_plugin.engine import Progress, RestoreOptions
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.aovs import Aov, parse_aovs
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
from rrtn_plugin.server.service import (
    RawFrame,
    RestoreService,
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


def handled(method: Callable[..., Any]) -> Callable[..., Any]:
    """Log one line per call and turn RRTNError (and anything unexpected) into a status."""

    def finish(context: grpc.ServicerContext, started: float, outcome: str) -> None:
        log.info(
            "%s %s %s %.3fs",
            method.__name__,
            context.peer(),
            outcome,
            time.perf_counter() - started,
        )

    def fail(context: grpc.ServicerContext, started: float, exc: Exception) -> None:
        if isinstance(exc, RRTNError):
            code = STATUS[exc.kind]
            remaining = context.time_remaining()
            if exc.kind is ErrorKind.CANCELLED and remaining is not None and remaining <= 0:
                code = grpc.StatusCode.DEADLINE_EXCEEDED  # the work stopped at the deadline
            finish(context, started, f"{code.name}: {exc}")
            context.abort(code, str(exc))
        log.exception("%s failed", method.__name__)
        finish(context, started, "INTERNAL")
        context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")

    @functools.wraps(method)
    def unary(self: Servicer, request: Any, context: grpc.ServicerContext) -> Any:
        started = time.perf_counter()
        try:
            response = method(self, request, context)
        except Exception as exc:  # mapped to a status: the server never crashes on input
            fail(context, started, exc)
        finish(context, started, "OK")
        return response

    @functools.wraps(method)
    def streaming(self: Servicer, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            yield from method(self, request, context)
        except GeneratorExit:
            finish(context, started, "CANCELLED (client went away)")
            raise
        except Exception as exc:
            fail(context, started, exc)
        finish(context, started, "OK")

    return streaming if getattr(method, "streams", False) else unary


def streams(method: Callable[..., Any]) -> Callable[..., Any]:
    method.streams = True  # type: ignore[attr-defined]
    return method


class Servicer(pb_grpc.RestorerServicer):
    """The ``Restorer`` service."""

    def __init__(self, service: RestoreService) -> None:
        self.service = service

    @handled
    def GetServerInfo(
        self,
        request: pb.GetServerInfoRequest,
        context: grpc.ServicerContext,
    ) -> pb.ServerInfo:
        service = self.service
        defaults = RestoreOptions()
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
                pb.OptionInfo(
                    name="max_passes",
                    type="int",
                    default=str(service.models[service.default_model].max_passes),
                    minimum=1,
                    maximum=8,
                    help="recursion passes at most",
                ),
                pb.OptionInfo(
                    name="stop_psnr",
                    type="float",
                    default=str(defaults.stop_psnr),
                    minimum=20,
                    maximum=100,
                    help="stop recursing when a pass changes frames less than this",
                ),
                pb.OptionInfo(
                    name="window",
                    type="int",
                    default=str(defaults.window),
                    minimum=3,
                    maximum=120,
                    help="frames per network run",
                ),
                pb.OptionInfo(
                    name="overlap",
                    type="int",
                    default=str(defaults.window // 2),
                    minimum=0,
                    maximum=119,
                    help="frames shared by windows",
                ),
                pb.OptionInfo(
                    name="aovs",
                    type="strings",
                    choices=[a.value for a in Aov],
                    help="extra channels: noise mask, repair amount, motion",
                ),
                pb.OptionInfo(
                    name="color_mode",
                    type="string",
                    default=ColorMode.KEEP_CHROMA.value,
                    choices=[m.value for m in ColorMode],
                ),
                pb.OptionInfo(
                    name="input_colorspace",
                    type="string",
                    default="scene_linear",
                    help="colour space of the frames sent",
                ),
                pb.OptionInfo(
                    name="precision",
                    type="string",
                    default="fp32",
                    choices=["fp32", "bf16", "fp16"] if service.device.type == "cuda" else ["fp32"],
                ),
            ],
            limits=pb.Limits(
                max_chunk_bytes=MAX_CHUNK_BYTES,
                max_message_bytes=MAX_MESSAGE_BYTES,
                memory_budget_bytes=service.memory_budget,
                max_sessions=service.limits.max_sessions,
                session_idle_timeout_seconds=service.limits.idle_timeout,
                path_transport=bool(service.limits.path_roots),
                path_roots=[str(r) for r in service.limits.path_roots],
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
        defaults = RestoreOptions()
        served = self.service.models.get(o.model or self.service.default_model)
        try:
            color_mode = ColorMode(o.color_mode or ColorMode.KEEP_CHROMA.value)
        except ValueError:
            raise RRTNError(
                f"options.color_mode '{o.color_mode}' is not one of "
                f"{', '.join(m.value for m in ColorMode)}"
            ) from None
        options = RestoreOptions(
            window=o.window if o.HasField("window") else defaults.window,
            overlap=o.overlap if o.HasField("overlap") else None,
            max_passes=o.max_passes
            if o.HasField("max_passes")
            else served.max_passes
            if served
            else defaults.max_passes,
            stop_psnr=o.stop_psnr if o.HasField("stop_psnr") else defaults.stop_psnr,
            tile=o.tile if o.HasField("tile") else None,
            flow_max_pixels=(o.flow_max_pixels or None)
            if o.HasField("flow_max_pixels")
            else defaults.flow_max_pixels,
            precision=o.precision or "fp32",
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
        return pb.OpenSessionResponse(session_id=self.service.open(spec).id)

    @handled
    def CloseSession(
        self,
        request: pb.CloseSessionRequest,
        context: grpc.ServicerContext,
    ) -> pb.CloseSessionResponse:
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
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("item") != "start":
            raise RRTNError("a Restore call must begin with a RestoreStart message")
        start = first.start
        session = self.service.get(start.session_id)
        if start.bytes.reply_encoding == pb.FRAME_ENCODING_RAW and start.bytes.aov_files:
            raise RRTNError("aov_files needs FILE replies (raw replies carry AOV channels)")
        if start.last_frame < start.first_frame:
            raise RRTNError(
                f"last_frame {start.last_frame} is before first_frame {start.first_frame}"
            )
        frames = list(range(start.first_frame, start.last_frame + 1))
        stop = threading.Event()
        context.add_callback(stop.set)

        def should_stop() -> bool:
            remaining = context.time_remaining()
            return stop.is_set() or (remaining is not None and remaining <= 0)

        try:
            if start.WhichOneof("transport") == "paths":
                yield from _run_in_thread(
                    lambda progress: [
                        self.service.restore_paths(
                            session,
                            frames,
                            source=start.paths.input,
                            target=start.paths.output,
                            progress=progress,
                            should_stop=should_stop,
                        )
                    ],
                    should_stop,
                )
                return
            needed = self.service.frames_needed(session, frames, dict(start.frame_hashes))
            yield pb.RestoreResponse(needed=pb.FramesNeeded(frames=needed))
            for frame, content_hash, data in _receive_frames(request_iterator, set(needed)):
                self.service.accept_frame(session, frame, content_hash, data)
            raw = start.bytes.reply_encoding == pb.FRAME_ENCODING_RAW
            yield from _run_in_thread(
                lambda progress: self.service.restore_given(
                    session,
                    frames,
                    progress=progress,
                    should_stop=should_stop,
                    raw_reply=raw,
                    aov_files=start.bytes.aov_files,
                ),
                should_stop,
            )
        finally:
            stop.set()


def _run_in_thread(
    work: Callable[[Callable[[Progress], None]], Any], should_stop: Callable[[], bool]
) -> Iterator[pb.RestoreResponse]:
    """Run ``work`` in a thread; stream its progress, replies and summary as messages."""
    events: queue.Queue[Any] = queue.Queue()
    done = object()

    def target() -> None:
        try:
            for item in work(events.put):
                events.put(item)
        except BaseException as exc:  # handed to the streaming thread
            events.put(exc)
        events.put(done)

    thread = threading.Thread(target=target, name="rrtn-restore", daemon=True)
    thread.start()
    while True:
        item = events.get()
        if item is done:
            break
        if isinstance(item, BaseException):
            thread.join()
            raise item
        yield from _messages(item)
    thread.join()


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


def _receive_frames(
    requests: Iterator[pb.RestoreRequest], expected: set[int]
) -> Iterator[tuple[int, str, bytes | RawFrame]]:
    """Assemble the sent frames' chunks; yields (frame, hash, data) as each completes."""
    assembler = FrameAssembler()
    while expected:
        request = next(requests, None)
        if request is None:
            raise RRTNError(f"the client stopped sending before frames {sorted(expected)[:10]}")
        if request.WhichOneof("item") != "frame":
            raise RRTNError("only FrameChunk messages may follow a RestoreStart")
        if request.frame.frame not in expected:
            raise RRTNError(f"frame {request.frame.frame} was not asked for (or was sent twice)")
        whole = assembler.add(request.frame)
        if whole is None:
            continue
        head, payload = whole
        expected.discard(head.frame)
        yield head.frame, head.content_hash, _decode(head, payload)


def _decode(head: pb.FrameChunk, payload: bytes) -> bytes | RawFrame:
    if head.encoding == pb.FRAME_ENCODING_RAW:
        return RawFrame(raw_pixels(head.frame, head.raw, payload), tuple(head.raw.channels))
    if head.encoding != pb.FRAME_ENCODING_FILE:
        raise RRTNError(f"frame {head.frame}: encoding must be FILE or RAW")
    return payload
