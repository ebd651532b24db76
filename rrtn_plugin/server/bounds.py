"""What a request may ask of a server: the bounds every field of every message is checked
against before anything is allocated, and the cost a session is charged for what it holds.

The servicer checks each message against these bounds (INVALID_ARGUMENT naming the field, its
value shortened by :func:`~rrtn_plugin.server.confine.shown` and the bound), and the service
charges each session's fixed cost and each frame's bytes to the host budget before taking them
(RESOURCE_EXHAUSTED). The engine's options have their own ranges, enforced by
:meth:`RestoreOptions.check() <rrtn_plugin.options.RestoreOptions.check>`, which the
server advertises in ``GetServerInfo``.
"""

from __future__ import annotations

from rrtn_plugin.engine.geometry import padded_size
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.model.flow import RAFT_MIN_SIDE
from rrtn_plugin.server.confine import shown

MAX_FRAME_NUMBER = 999_999_999
"""Frame numbers run from −MAX_FRAME_NUMBER to MAX_FRAME_NUMBER (nine digits)."""
MAX_CLIP_FRAMES = 200_000
"""The longest clip a session holds: a feature (~130,000 frames) with room for handles."""
MAX_SIDE = 16_384
"""The widest and tallest frame a session takes (16K)."""
MAX_CHANNELS = 64
"""The most channels a frame may have."""
MAX_NAME_CHARS = 256
"""Session names, model names, colour spaces, colour modes, AOV and precision names."""
MAX_ID_CHARS = 64
"""Session ids (the server makes 32-character ones)."""
MAX_HASH_CHARS = 128
"""A frame's content hash as a client sends it."""
MAX_AOVS = 8
"""AOV names in one request (there are three AOVs; repeats are allowed, a few)."""
SESSION_FRAME_BYTES = 128
"""Host bytes a session's plan takes per frame of its clip, before any frame is given
(measured: 47 bytes a frame for the plan's tuples at 30 million frames; rounded up)."""


def check_text(value: str, field: str, limit: int = MAX_NAME_CHARS) -> str:
    """``value``, or RRTNError (INVALID_INPUT) if it is longer than ``limit`` characters or holds
    a NUL byte; the message names ``field`` and shows the value shortened."""
    if len(value) > limit:
        raise RRTNError(
            f"{field} is {len(value)} characters long (at most {limit}): {shown(value)}"
        )
    if "\0" in value:
        raise RRTNError(f"{field} {shown(value)} holds a NUL byte")
    return value


def check_frame_number(value: int, field: str) -> int:
    """``value``, or RRTNError unless |value| ≤ :data:`MAX_FRAME_NUMBER`."""
    if not -MAX_FRAME_NUMBER <= value <= MAX_FRAME_NUMBER:
        raise RRTNError(
            f"{field} {value} is not a frame number (from {-MAX_FRAME_NUMBER} to "
            f"{MAX_FRAME_NUMBER})"
        )
    return value


def check_clip(first: int, last: int, width: int, height: int) -> None:
    """RRTNError unless frames ``first``–``last`` of ``width`` × ``height`` make a clip a
    session may hold (see the bounds above)."""
    check_frame_number(first, "first_frame")
    check_frame_number(last, "last_frame")
    if last < first:
        raise RRTNError(f"last_frame {last} is before first_frame {first}")
    if last - first + 1 > MAX_CLIP_FRAMES:
        raise RRTNError(
            f"frames {first}-{last} are {last - first + 1} frames; a session holds at most "
            f"{MAX_CLIP_FRAMES} (open one session per reel or shot)"
        )
    for name, side in (("width", width), ("height", height)):
        if not 1 <= side <= MAX_SIDE:
            raise RRTNError(f"{name} must be from 1 to {MAX_SIDE} pixels, got {side}")


def session_fixed_bytes(frames: int, width: int, height: int) -> int:
    """Host bytes a session of ``frames`` frames of ``width`` × ``height`` takes before any
    frame is given: its plan, and the tiles' blending weights (at most twice the padded frame
    in float32)."""
    hp = padded_size(height, multiple=16, minimum=RAFT_MIN_SIDE)
    wp = padded_size(width, multiple=16, minimum=RAFT_MIN_SIDE)
    return frames * SESSION_FRAME_BYTES + 8 * hp * wp


def frame_bytes(width: int, height: int, channels: int) -> int:
    """Host bytes one decoded frame takes: its float32 pixels and its padded network input."""
    hp = padded_size(height, multiple=16, minimum=RAFT_MIN_SIDE)
    wp = padded_size(width, multiple=16, minimum=RAFT_MIN_SIDE)
    return 4 * width * height * channels + 4 * hp * wp
