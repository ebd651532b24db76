"""What a host knows of an EXR or image sequence's files without OpenImageIO (hosts' Pythons
lack it): their identity (:func:`files_identity`: names, sizes and dates, or their content),
an EXR's size (:func:`exr_size`) and the one sequence a host's render left in a folder
(:func:`rendered_sequence`).
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from rrtn_plugin.client.library import frame_path
from rrtn_plugin.errors import RRTNError

EXR_MAGIC = b"\x76\x2f\x31\x01"
VOLATILE_EXR_ATTRIBUTES = {"DateTime", "capDate", "utcOffset"}
"""Header attributes a renderer stamps with the time of writing: not part of the content."""


def files_identity(
    pattern: str, frames: Iterable[int], *, by_content: bool = False, folder: bool = True
) -> str:
    """Identity of a sequence's files: each one's name, size and modification time, or with
    ``by_content`` their content (for files a host renders afresh each time: an EXR's pixels
    and header, less the time stamps a renderer writes; other files' bytes). Without
    ``folder`` only the files' own names count, so a project moved as a whole keeps the
    identity of its files. A path without a frame number is one file, the same for every
    frame."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        frame_path(pattern, 0)
    except ValueError:
        frames = (0,)
    for frame in frames:
        try:
            path = frame_path(pattern, frame)
        except ValueError:
            path = Path(pattern)
        named = path if folder else path.name
        try:
            if by_content:
                digest.update(exr_content_identity(path).encode())
            else:
                stat = path.stat()
                digest.update(f"{named}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        except FileNotFoundError:
            digest.update(f"{named}:missing\n".encode())
    return digest.hexdigest()


def exr_size(path: Path) -> tuple[int, int]:
    """Width and height of an EXR's data window, read from its header (Blender gives no size
    for multi-layer EXRs)."""
    with open(path, "rb") as file:
        if file.read(4) != EXR_MAGIC:
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


def exr_content_identity(path: Path) -> str:
    """A digest of an EXR's content: its header attributes less :data:`VOLATILE_EXR_ATTRIBUTES`
    and its chunks (everything from the first chunk on; the offset table before it depends on
    the header's length). Files that are not single-part EXRs are digested whole."""
    data = path.read_bytes()
    digest = hashlib.blake2b(digest_size=16)
    multipart_or_deep = len(data) > 8 and data[5] & 0x18  # version flags: multipart, non-image
    if data[:4] != EXR_MAGIC or multipart_or_deep:
        digest.update(data)
        return digest.hexdigest()
    at = 8
    while data[at] != 0:
        name_end = data.index(b"\0", at)
        kind_end = data.index(b"\0", name_end + 1)
        (size,) = struct.unpack_from("<i", data, kind_end + 1)
        end = kind_end + 5 + size
        if data[at:name_end].decode("latin-1") not in VOLATILE_EXR_ATTRIBUTES:
            digest.update(data[at:end])
        at = end
    (first_chunk,) = struct.unpack_from("<Q", data, at + 1)
    digest.update(data[first_chunk:] if at + 1 < first_chunk <= len(data) else data[at + 1 :])
    return digest.hexdigest()


def rendered_sequence(folder: Path, count: int) -> tuple[str, int]:
    """The one EXR sequence a host's render left in ``folder``: its pattern (``####``) and
    first number; raises RRTNError unless it is one unbroken run of ``count`` frames."""
    numbered = [re.fullmatch(r"(.*?)(\d+)\.exr", p.name) for p in sorted(folder.glob("*.exr"))]
    found = sorted((m.group(1), len(m.group(2)), int(m.group(2))) for m in numbered if m)
    stems = {(stem, digits) for stem, digits, _ in found}
    numbers = [n for *_, n in found]
    if len(stems) != 1 or numbers != list(range(numbers[0], numbers[0] + count)):
        raise RRTNError(
            f"the render left {len(found)} EXR files in {folder}, not one "
            f"sequence of {count} frames"
        )
    ((stem, digits),) = stems
    return str(folder / f"{stem}{'#' * digits}.exr"), numbers[0]


def _read_cstring(file: BinaryIO) -> str:
    chars = bytearray()
    while (byte := file.read(1)) not in (b"", b"\0"):
        chars += byte
    return chars.decode("latin-1")
