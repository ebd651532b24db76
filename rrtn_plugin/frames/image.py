"""Reading and writing single image files through OpenImageIO.

Channels are addressed by name (OIIO returns them in its own canonical order); pixels are
float32 arrays of shape (H, W, C) covering the data window. Everything else in the file's header
(timecode, frame rate, DPX fields, EXR attributes, pixel aspect, data and display windows) is
kept in :attr:`ImageInfo.spec` and written back unchanged. OIIO reports failures by return
value; every one becomes an RRTNError naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio

from rrtn_plugin.atomic import atomic_output
from rrtn_plugin.errors import ErrorKind, RRTNError

WRITERS = {"exr": "openexr", "dpx": "dpx", "tif": "tiff", "tiff": "tiff", "png": "png"}
"""File extensions we write, and OIIO's format name for each."""


@dataclass
class ImageInfo:
    """A file's header: size of the data window, channel names, pixel format, full spec."""

    path: Path
    width: int
    height: int
    channels: tuple[str, ...]
    format: str
    """OIIO's name of the pixel type: "half", "float", "uint8", "uint16", …"""
    bits: int
    """Bits per sample as stored (10 for a 10-bit DPX)."""
    spec: oiio.ImageSpec

    def index(self, channel: str) -> int:
        """Position of ``channel`` in the pixel array; RRTNError if the file lacks it."""
        try:
            return self.channels.index(channel)
        except ValueError:
            raise RRTNError(
                f"{self.path}: no channel '{channel}' (has {', '.join(self.channels)})"
            ) from None


def read_info(path: str | os.PathLike[str]) -> ImageInfo:
    """The header of ``path`` without reading pixels."""
    path = Path(path)
    if not path.is_file():
        raise RRTNError(f"missing frame: {path}", kind=ErrorKind.NOT_FOUND)
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise RRTNError(f"cannot read {path}: {oiio.geterror() or 'unknown format'}")
    try:
        spec = oiio.ImageSpec(inp.spec())
    finally:
        inp.close()
    bits = spec.get_int_attribute("oiio:BitsPerSample", spec.format.size() * 8)
    return ImageInfo(
        path, spec.width, spec.height, tuple(spec.channelnames), str(spec.format), bits, spec
    )


HeaderCheck = Callable[[ImageInfo], None]
"""Raises RRTNError when a header is not one the caller takes (size, channels), so that a file
is refused before its pixels are decoded."""


def read_pixels(
    path: str | os.PathLike[str], *, check: HeaderCheck | None = None
) -> tuple[ImageInfo, np.ndarray]:
    """Header and (H, W, C) float32 pixels of the first part/subimage of ``path``.

    ``check`` is given the header before any pixel is decoded (a small file may claim a huge
    image: its decoded size is what ``check`` bounds).
    """
    info = read_info(path)
    if check is not None:
        check(info)
    inp = oiio.ImageInput.open(str(info.path))
    if inp is None:
        raise RRTNError(f"cannot read {info.path}: {oiio.geterror()}")
    try:
        pixels = inp.read_image(0, 0, 0, len(info.channels), "float")
        if pixels is None or inp.has_error:
            raise RRTNError(
                f"cannot read the pixels of {info.path} (truncated or damaged): "
                f"{inp.geterror() or oiio.geterror()}"
            )
    finally:
        inp.close()
    pixels = np.asarray(pixels, dtype=np.float32).reshape(
        info.height, info.width, len(info.channels)
    )
    return info, pixels


def quantize_for(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Round [0, 1] values to the nearest code of an integer format of ``bits`` bits.

    OIIO converts floats to integer files via 16 bits (round(x·65535) >> 6 for 10-bit DPX),
    which is not round(x·1023); values already on the code grid convert exactly.
    """
    top = float((1 << bits) - 1)
    codes: np.ndarray = np.round(np.clip(pixels, 0.0, 1.0) * top)
    return codes / top


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    *,
    channels: Sequence[str],
    template: oiio.ImageSpec,
    channel_formats: Sequence[str] | None = None,
    bits: int | None = None,
    compression: str | None = None,
) -> None:
    """Write (H, W, C) ``pixels`` atomically as one scanline image, keeping the template's header.

    Args:
        path: target file; its extension chooses the format (exr, dpx, tif, png).
        channels: names of the C channels, in order.
        template: spec whose metadata and windows are kept (usually the input frame's).
        channel_formats: per-channel pixel types ("half", "float", …); default: the template's.
        bits: bits per sample for integer formats (10 for 10-bit DPX).
        compression: e.g. "zip" for EXR; default: the template's.
    """
    path = Path(path)
    writer = WRITERS.get(path.suffix.lstrip(".").lower())
    if writer is None:
        raise RRTNError(f"cannot write {path}: use one of .{', .'.join(sorted(WRITERS))}")
    height, width, count = pixels.shape
    if count != len(channels):
        raise ValueError(f"{count} channels of pixels but {len(channels)} names")
    spec = oiio.ImageSpec(template)
    spec.nchannels = count
    spec.channelnames = tuple(channels)
    spec.width, spec.height = width, height
    spec.tile_width = spec.tile_height = spec.tile_depth = 0
    spec.alpha_channel = list(channels).index("A") if "A" in channels else -1
    spec.z_channel = -1
    if channel_formats is not None and len(set(channel_formats)) > 1 and writer == "openexr":
        spec.set_format(oiio.TypeDesc("float"))  # (this clears channelformats: set them after)
        spec.channelformats = tuple(oiio.TypeDesc(f) for f in channel_formats)
    elif channel_formats is not None:
        spec.set_format(oiio.TypeDesc(channel_formats[0]))
        spec.channelformats = ()
    else:
        spec.channelformats = ()
    data = np.ascontiguousarray(pixels, dtype=np.float32)
    if writer != "openexr":
        spec.erase_attribute("oiio:ColorSpace")  # it would override dpx:Transfer (OIIO)
        if bits is not None:
            spec.attribute("oiio:BitsPerSample", bits)
        if spec.format.basetype in (oiio.UINT8, oiio.UINT16):
            data = quantize_for(data, bits or spec.format.size() * 8).astype(np.float32)
    if compression is not None:
        spec.attribute("compression", compression)
    out = oiio.ImageOutput.create(writer)
    if out is None:
        raise RRTNError(f"cannot write {path}: {oiio.geterror()}")
    with atomic_output(path) as tmp:
        if not out.open(str(tmp), spec):
            raise RRTNError(f"cannot write {path}: {out.geterror() or oiio.geterror()}")
        ok = out.write_image(data)
        closed = out.close()
        if not ok or not closed:
            raise RRTNError(f"cannot write {path}: {out.geterror() or oiio.geterror()}")
