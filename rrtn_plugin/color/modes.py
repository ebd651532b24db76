"""What the restored luminance does to colour footage (:class:`ColorMode`). Imports nothing
heavy, so that a front end can offer the modes (``rrtn-plugin --help``) before torch loads."""

from __future__ import annotations

import enum


class ColorMode(enum.Enum):
    """What the restored luminance does to colour footage."""

    KEEP_CHROMA = "keep-chroma"
    """Add the luminance change to R, G and B alike: colour (chroma) is kept."""
    MONOCHROME = "monochrome"
    """Write the restored luminance into R, G and B: a black-and-white result."""
