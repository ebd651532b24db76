"""Colour: from the host's colour space to what the network sees, and its change back.

The network was trained on display-referred luminance: sRGB-encoded Rec.709 frames turned to
luma with PIL's weights. :func:`load_config` finds the OpenColorIO config, :class:`Converter`
maps a frame's colour channels to that encoding and back, and :mod:`.frames` extracts the
network's input from a frame and applies the network's change to it.
"""

from rrtn_plugin.color.config import (
    WORKING_SPACE,
    load_config,
    resolve_colorspace,
    working_colorspace,
)
from rrtn_plugin.color.frames import (
    LUMA_WEIGHTS,
    ColorMode,
    FrameColor,
    apply_change,
    fill_nonfinite,
    network_input,
)
from rrtn_plugin.color.transform import Converter

__all__ = [
    "LUMA_WEIGHTS",
    "WORKING_SPACE",
    "ColorMode",
    "Converter",
    "FrameColor",
    "apply_change",
    "fill_nonfinite",
    "load_config",
    "network_input",
    "resolve_colorspace",
    "working_colorspace",
]
