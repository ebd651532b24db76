"""Image files held in memory: decoding received bytes and encoding frames to send.

OpenImageIO's Python binding reads and writes only files, so bytes go through an anonymous
in-memory file (Linux ``memfd``) or, elsewhere, a private temporary file. Formats are recognised
by content, so received bytes need no name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from rrtn_plugin.frames.image import HeaderCheck, ImageInfo, read_pixels, write_image

_SHM = Path("/dev/shm")


@contextlib.contextmanager
def bytes_as_file(data: bytes) -> Iterator[Path]:
    """A readable path whose content is ``data``, for as long as the context lasts."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("rrtn-frame")
        try:
            os.write(fd, data)
            yield Path(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="rrtn-") as folder:
        path = Path(folder) / "frame"
        path.write_bytes(data)
        yield path


def read_image_bytes(
    data: bytes, *, check: HeaderCheck | None = None
) -> tuple[ImageInfo, np.ndarray]:
    """Header and (H, W, C) float32 pixels of an image file given as bytes; ``check`` sees the
    header before the pixels are decoded (see :func:`read_pixels`)."""
    with bytes_as_file(data) as path:
        return read_pixels(path, check=check)


def encode_image(
    pixels: np.ndarray,
    *,
    channels: Sequence[str],
    template: oiio.ImageSpec,
    channel_formats: Sequence[str] | None = None,
    extension: str = "exr",
    compression: str | None = None,
) -> bytes:
    """The bytes of an image file of ``pixels`` (see :func:`write_image` for the arguments)."""
    base = _SHM if _SHM.is_dir() and os.access(_SHM, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="rrtn-", dir=base) as folder:
        path = Path(folder) / f"frame.{extension}"
        write_image(
            path,
            pixels,
            channels=channels,
            template=template,
            channel_formats=channel_formats,
            compression=compression,
        )
        return path.read_bytes()
