"""The client library every host adapter uses to talk to an rrtn-plugin server.

It needs only grpcio, protobuf and numpy (hosts bring their own Python), and is synchronous::

    with Client("127.0.0.1:50051") as client:
        session = client.open_session(first_frame=1001, last_frame=1100, width=2048,
                                      height=1556, aovs=["mask"], input_colorspace="ACEScg")
        summary = session.restore_files(1011, 1090, input="/tmp/in/plate.####.exr",
                                        output="/tmp/out/plate.####.exr",
                                        progress=print, cancel=cancel)
        session.close()

``restore_files`` sends the frames (only those the server lacks or that changed) and writes the
restored EXRs locally; ``restore_paths`` lets the server read and write shared storage itself;
``restore_arrays`` sends and returns raw float32 pixels. A :class:`Cancel` handle stops a call
from another thread. Failures raise :class:`ServerError` with the gRPC status and the server's
message.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from rrtn_plugin.atomic import atomic_output
from rrtn_plugin.progress import Progress
from rrtn_plugin.protocol.framing import (
    DEFAULT_ADDRESS,
    MAX_MESSAGE_BYTES,
    FrameAssembler,
    content_hash,
    frame_chunks,
    raw_payload,
    raw_pixels,
)
from rrtn_plugin.protocol.rrtn.v1 import restorer_pb2 as pb
from rrtn_plugin.protocol.rrtn.v1 import restorer_pb2_grpc as pb_grpc

__all__ = [
    "DEFAULT_ADDRESS",
    "Cancel",
    "Client",
    "Progress",
    "ServerError",
    "Session",
    "frame_path",
    "sequence_pattern",
]

FrameData = Callable[[int], tuple[bytes, "pb.FrameEncoding.ValueType", "pb.RawLayout | None"]]
"""What a restore sends for a frame the server asks for: its bytes, encoding and layout."""


class ServerError(Exception):
    """A call failed: ``code`` is the gRPC status, the message the server's explanation."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class Cancel:
    """Give one to a restore call; :meth:`cancel` (from any thread) stops it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._call: Any = None
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            if self._call is not None:
                self._call.cancel()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def _attach(self, call: Any) -> None:
        with self._lock:
            self._call = call
            if self._event.is_set():
                call.cancel()


def frame_path(pattern: str, frame: int) -> Path:
    """``shot.####.exr`` (one digit per ``#`` or ``@``) or ``shot.%04d.exr`` → the frame's path."""
    printf = re.search(r"%0?(\d*)d", pattern)
    if printf:
        digits = int(printf.group(1) or 1)
        return Path(pattern[: printf.start()] + f"{frame:0{digits}d}" + pattern[printf.end() :])
    run = re.search(r"[#@]+", pattern)
    if run is None:
        raise ValueError(f"'{pattern}' has no frame number (use #### or %04d)")
    return Path(pattern[: run.start()] + f"{frame:0{len(run.group())}d}" + pattern[run.end() :])


def sequence_pattern(path: str) -> str:
    """One frame's path → its sequence's pattern: the last run of digits becomes ``#``s."""
    match = re.fullmatch(r"(.*?)(\d+)(\D*)", path)
    if match is None:
        raise ValueError(f"'{path}' has no frame number")
    return f"{match.group(1)}{'#' * len(match.group(2))}{match.group(3)}"


class Client:
    """A connection to a server.

    Args:
        address: ``host:port`` or ``unix:///path.sock``.
        token: sent as ``authorization: Bearer <token>`` when given.
        root_certificates: PEM certificates to trust; given, the connection uses TLS.
        timeout: default deadline in seconds for each call (None: none).
    """

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        root_certificates: bytes | None = None,
        timeout: float | None = None,
    ) -> None:
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
        if root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self.channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(address, options=options)
        self.stub = pb_grpc.RestorerStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.timeout = timeout

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.channel.close()

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return method(request, metadata=self.metadata, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise _server_error(exc) from None

    def info(self) -> pb.ServerInfo:
        """Version, device, models and their options, limits."""
        info: pb.ServerInfo = self._call(self.stub.GetServerInfo, pb.GetServerInfoRequest())
        return info

    def sessions(self) -> pb.ListSessionsResponse:
        """The server's open sessions with their memory and cache figures."""
        listed: pb.ListSessionsResponse = self._call(
            self.stub.ListSessions, pb.ListSessionsRequest()
        )
        return listed

    def open_session(
        self,
        *,
        first_frame: int,
        last_frame: int,
        width: int,
        height: int,
        name: str = "",
        model: str = "",
        aovs: Sequence[str] = (),
        color_mode: str = "",
        input_colorspace: str = "",
        precision: str = "",
        max_passes: int | None = None,
        stop_psnr: float | None = None,
        window: int | None = None,
        overlap: int | None = None,
        tile: int | None = None,
        flow_max_pixels: int | None = None,
        cuts: bool | None = None,
        tone_guard: str = "",
        repair_mode: str = "",
        repair_strength: float | None = None,
    ) -> Session:
        """Open a session for frames ``first_frame``–``last_frame`` of ``width`` × ``height``.

        The range is everything the client can provide (the host's range with its handles).
        Options left unset (None, empty) take the server's defaults: ``cuts`` restores each
        shot on its own, ``tone_guard`` is "deflicker", "keep" or "off", ``repair_mode``
        "full" or "defects", ``repair_strength`` from 0 (the input) to 1 (the repair).
        """
        optional: dict[str, Any] = {
            "max_passes": max_passes,
            "stop_psnr": stop_psnr,
            "window": window,
            "overlap": overlap,
            "tile": tile,
            "flow_max_pixels": flow_max_pixels,
            "cuts": cuts,
            "repair_strength": repair_strength,
        }
        options = pb.SessionOptions(
            model=model,
            aovs=list(aovs),
            color_mode=color_mode,
            input_colorspace=input_colorspace,
            precision=precision,
            tone_guard=tone_guard,
            repair_mode=repair_mode,
            **{k: v for k, v in optional.items() if v is not None},
        )
        reply = self._call(
            self.stub.OpenSession,
            pb.OpenSessionRequest(
                name=name,
                first_frame=first_frame,
                last_frame=last_frame,
                width=width,
                height=height,
                options=options,
            ),
        )
        return Session(self, reply.session_id, first_frame, last_frame)


class Session:
    """An open session on the server (see :meth:`Client.open_session`)."""

    def __init__(self, client: Client, session_id: str, first_frame: int, last_frame: int) -> None:
        self.client, self.id = client, session_id
        self.first_frame, self.last_frame = first_frame, last_frame
        self._hashes: dict[Path, tuple[int, int, str]] = {}

    def close(self) -> None:
        self.client._call(self.client.stub.CloseSession, pb.CloseSessionRequest(session_id=self.id))

    def restore_paths(
        self,
        first: int,
        last: int,
        *,
        input: str,
        output: str,
        progress: Callable[[Progress], None] | None = None,
        cancel: Cancel | None = None,
    ) -> pb.RestoreSummary:
        """The server reads ``input`` and writes ``output`` (patterns on its storage)."""
        start = pb.RestoreStart(
            session_id=self.id,
            first_frame=first,
            last_frame=last,
            paths=pb.PathTransport(input=input, output=output),
        )
        summary, _ = self._restore(start, None, progress, cancel, lambda *_: None)
        return summary

    def restore_files(
        self,
        first: int,
        last: int,
        *,
        input: str,
        output: str,
        aov_output: str | None = None,
        progress: Callable[[Progress], None] | None = None,
        cancel: Cancel | None = None,
    ) -> pb.RestoreSummary:
        """Send frames from local files ``input``; write the restored EXRs to ``output``.

        Only frames the server lacks, or whose bytes changed, are sent. The AOVs are channels
        of the output EXRs, or, given ``aov_output`` (a pattern holding ``{aov}``, such as
        ``out/plate_{aov}.####.exr``), files of their own there. Outputs are written
        atomically.
        """
        if aov_output is not None and "{aov}" not in aov_output:
            raise ValueError(f"aov_output '{aov_output}' needs an {{aov}} placeholder")
        files = {f: frame_path(input, f) for f in range(self.first_frame, self.last_frame + 1)}
        files = {f: p for f, p in files.items() if p.is_file()}
        hashes = {f: self._file_hash(p) for f, p in files.items()}

        def frame_data(frame: int) -> tuple[bytes, pb.FrameEncoding.ValueType, None]:
            if frame not in files:
                raise FileNotFoundError(
                    f"the server needs frame {frame}: {frame_path(input, frame)} does not exist"
                )
            return files[frame].read_bytes(), pb.FRAME_ENCODING_FILE, None

        def write(frame: int, data: bytes, head: pb.FrameChunk) -> None:
            pattern = (
                aov_output.replace("{aov}", head.layer) if head.layer and aov_output else output
            )
            target = frame_path(pattern, frame)
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(target) as tmp:
                tmp.write_bytes(data)

        start = pb.RestoreStart(
            session_id=self.id,
            first_frame=first,
            last_frame=last,
            bytes=pb.BytesTransport(
                reply_encoding=pb.FRAME_ENCODING_FILE, aov_files=aov_output is not None
            ),
            frame_hashes=hashes,
        )
        summary, _ = self._restore(start, frame_data, progress, cancel, write)
        return summary

    def restore_arrays(
        self,
        first: int,
        last: int,
        frames: Mapping[int, np.ndarray],
        *,
        channels: Sequence[str],
        progress: Callable[[Progress], None] | None = None,
        cancel: Cancel | None = None,
    ) -> tuple[dict[int, np.ndarray], tuple[str, ...], pb.RestoreSummary]:
        """Send (H, W, C) float32 ``frames``; returns restored frames, their channels, summary.

        The returned channels are ``channels`` followed by the session's AOV channels.
        """
        hashes = {f: content_hash(raw_payload(a, channels)[0]) for f, a in frames.items()}

        def frame_data(frame: int) -> tuple[bytes, pb.FrameEncoding.ValueType, pb.RawLayout]:
            if frame not in frames:
                raise KeyError(f"the server needs frame {frame}, which was not given")
            data, layout = raw_payload(frames[frame], channels)
            return data, pb.FRAME_ENCODING_RAW, layout

        restored: dict[int, np.ndarray] = {}
        layout: list[tuple[str, ...]] = []

        def keep(frame: int, data: bytes, head: pb.FrameChunk) -> None:
            restored[frame] = raw_pixels(frame, head.raw, data)
            layout[:] = [tuple(head.raw.channels)]

        start = pb.RestoreStart(
            session_id=self.id,
            first_frame=first,
            last_frame=last,
            bytes=pb.BytesTransport(reply_encoding=pb.FRAME_ENCODING_RAW),
            frame_hashes=hashes,
        )
        summary, _ = self._restore(start, frame_data, progress, cancel, keep)
        return restored, (layout[0] if layout else tuple(channels)), summary

    def _file_hash(self, path: Path) -> str:
        """Content hash of a file, remembered while its size and modification time hold."""
        stat = path.stat()
        known = self._hashes.get(path)
        if known is not None and known[:2] == (stat.st_mtime_ns, stat.st_size):
            return known[2]
        digest = content_hash(path.read_bytes())
        self._hashes[path] = (stat.st_mtime_ns, stat.st_size, digest)
        return digest

    def _restore(
        self,
        start: pb.RestoreStart,
        frame_data: FrameData | None,
        progress: Callable[[Progress], None] | None,
        cancel: Cancel | None,
        receive: Callable[[int, bytes, pb.FrameChunk], None],
    ) -> tuple[pb.RestoreSummary, list[int]]:
        outbox: queue.Queue[pb.RestoreRequest | None] = queue.Queue()
        outbox.put(pb.RestoreRequest(start=start))

        def requests() -> Iterator[pb.RestoreRequest]:
            while (item := outbox.get()) is not None:
                yield item

        call = self.client.stub.Restore(
            requests(), metadata=self.client.metadata, timeout=self.client.timeout
        )
        if cancel is not None:
            cancel._attach(call)
        summary: pb.RestoreSummary | None = None
        needed: list[int] = []
        assembler = FrameAssembler()
        try:
            for reply in call:
                kind = reply.WhichOneof("item")
                if kind == "needed":
                    needed = list(reply.needed.frames)
                    for frame in needed:
                        if frame_data is None:
                            raise ServerError(
                                grpc.StatusCode.INTERNAL, f"the server asked for frame {frame}"
                            )
                        data, encoding, raw = frame_data(frame)
                        for chunk in frame_chunks(
                            frame, data, encoding=encoding, raw=raw, with_hash=True
                        ):
                            outbox.put(pb.RestoreRequest(frame=chunk))
                    outbox.put(None)
                elif kind == "progress":
                    if progress is not None:
                        p = reply.progress
                        progress(
                            Progress(
                                getattr(p, "pass"),
                                p.stage,
                                p.done,
                                p.total,
                                p.frame if p.has_frame else None,
                            )
                        )
                elif kind == "frame":
                    whole = assembler.add(reply.frame)
                    if whole is not None:
                        head, data = whole
                        receive(head.frame, data, head)
                elif kind == "summary":
                    summary = reply.summary
        except grpc.RpcError as exc:
            raise _server_error(exc) from None
        except BaseException:
            call.cancel()
            raise
        finally:
            outbox.put(None)
        if summary is None:
            raise ServerError(grpc.StatusCode.UNKNOWN, "the server ended without a summary")
        return summary, needed


def _server_error(exc: grpc.RpcError) -> ServerError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    return ServerError(code, details or "")
