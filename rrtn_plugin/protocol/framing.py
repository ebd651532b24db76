"""How frames travel in ``rrtn.v1`` messages, for both ends: chunks out, whole frames back in.

A frame's data (an image file's bytes, or raw little-endian float32 planes) is cut into
:class:`FrameChunk` messages of at most :data:`CHUNK_BYTES`; the first carries the encoding,
the content hash and, for raw data, the layout. :class:`FrameAssembler` joins the chunks of
any number of frames (and, in replies, their AOV layers) back into whole frames, refusing
chunks out of order, oversized chunks and more data than announced. The client library and the
server's servicer both use these, so the two ends cannot disagree about the framing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rrtn_plugin.errors import RRTNError
from rrtn_plugin.protocol.rrtn.v1 import restorer_pb2 as pb

DEFAULT_ADDRESS = "127.0.0.1:50051"
"""Where ``rrtn-plugin serve`` listens unless told otherwise: loopback only."""
CHUNK_BYTES = 1 << 20
"""Frame data per message: 1 MiB streamed fastest on loopback; gRPC refuses 4 MiB messages."""
MAX_CHUNK_BYTES = 3 << 20
"""The largest chunk either end accepts."""
MAX_MESSAGE_BYTES = 4 << 20
"""gRPC's default message limit, which both ends keep."""


def content_hash(data: bytes) -> str:
    """The hash that names a frame's content (sent with its first chunk)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def raw_payload(pixels: np.ndarray, channels: Sequence[str]) -> tuple[bytes, pb.RawLayout]:
    """(H, W, C) pixels as the bytes and layout of a RAW frame."""
    data = np.ascontiguousarray(pixels, dtype="<f4")
    height, width = data.shape[:2]
    return data.tobytes(), pb.RawLayout(width=width, height=height, channels=list(channels))


def raw_pixels(frame: int, layout: pb.RawLayout, payload: bytes) -> np.ndarray:
    """A RAW frame's bytes as (H, W, C) float32, checked against its layout."""
    if layout.width < 1 or layout.height < 1 or not layout.channels:
        raise RRTNError(
            f"frame {frame}: raw layout {layout.width}x{layout.height} with "
            f"{len(layout.channels)} channels is not a picture"
        )
    shape = (layout.height, layout.width, len(layout.channels))
    if len(payload) != 4 * shape[0] * shape[1] * shape[2]:
        raise RRTNError(
            f"frame {frame}: {len(payload)} bytes of raw data do not make {shape} float32 pixels"
        )
    return np.frombuffer(payload, dtype="<f4").reshape(shape).astype(np.float32)


def frame_chunks(
    frame: int,
    data: bytes,
    *,
    encoding: int,
    layer: str = "",
    raw: pb.RawLayout | None = None,
    with_hash: bool = False,
) -> Iterator[pb.FrameChunk]:
    """A frame's data as FrameChunk messages of at most :data:`CHUNK_BYTES` (one if empty)."""
    first: dict[str, object] = {"encoding": encoding}
    if raw is not None:
        first["raw"] = raw
    if with_hash:
        first["content_hash"] = content_hash(data)
    for offset in range(0, max(len(data), 1), CHUNK_BYTES):
        yield pb.FrameChunk(
            frame=frame,
            layer=layer,
            total_bytes=len(data),
            offset=offset,
            data=data[offset : offset + CHUNK_BYTES],
            **(first if offset == 0 else {}),
        )


@dataclass
class _Partial:
    head: pb.FrameChunk
    parts: list[bytes]
    size: int


class FrameAssembler:
    """Joins chunks into whole frames; :meth:`add` returns (first chunk, data) once complete.

    Frames are told apart by (frame, layer), so several may arrive interleaved.

    Args:
        max_frame_bytes: the largest frame accepted (None: no limit); a first chunk that
            announces more is refused before any of its data is held.
    """

    def __init__(self, *, max_frame_bytes: int | None = None) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._partial: dict[tuple[int, str], _Partial] = {}

    def add(self, chunk: pb.FrameChunk) -> tuple[pb.FrameChunk, bytes] | None:
        """Take one chunk; the frame's first chunk and its whole data when this completes it."""
        key = (chunk.frame, chunk.layer)
        if len(chunk.data) > MAX_CHUNK_BYTES:
            raise RRTNError(
                f"frame {chunk.frame}: chunk of {len(chunk.data)} bytes is larger "
                f"than {MAX_CHUNK_BYTES}"
            )
        if chunk.offset == 0:
            if chunk.total_bytes < 0 or (
                self.max_frame_bytes is not None and chunk.total_bytes > self.max_frame_bytes
            ):
                raise RRTNError(
                    f"frame {chunk.frame}: {chunk.total_bytes} bytes is not a "
                    f"frame size this session takes (at most "
                    f"{self.max_frame_bytes} bytes)"
                )
            self._partial[key] = _Partial(chunk, [], 0)
        partial = self._partial.get(key)
        if partial is None or chunk.offset != partial.size:
            raise RRTNError(f"frame {chunk.frame}: chunk at offset {chunk.offset} is out of order")
        partial.parts.append(chunk.data)
        partial.size += len(chunk.data)
        if partial.size < partial.head.total_bytes:
            return None
        if partial.size > partial.head.total_bytes:
            raise RRTNError(f"frame {chunk.frame}: more data than its total_bytes")
        del self._partial[key]
        return partial.head, b"".join(partial.parts)
