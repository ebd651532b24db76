"""Colour: from the host's colour space to what the network sees, and its change back.

The network was trained on display-referred luminance: sRGB-encoded Rec.709 frames turned to
luma with PIL's weights. :func:`load_config` finds the OpenColorIO config, :class:`Converter`
maps a frame's colour channels to that encoding and back, and :mod:`.frames` extracts the
network's input from a frame and applies the network's change to it; :mod:`.modes` holds
:class:`ColorMode`.

Only :class:`ColorMode` is imported with the package; the rest (torch, OpenColorIO) loads when
first used, so that a front end can offer the modes before torch is loaded.
"""

from typing import TYPE_CHECKING

from rrtn_plugin.color.modes import ColorMode

if TYPE_CHECKING:
    from rrtn_plugin.color.config import (
        WORKING_SPACE,
        load_config,
        resolve_colorspace,
        working_colorspace,
    )
    from rrtn_plugin.color.frames import (
        LUMA_WEIGHTS,
        FrameColor,
        apply_change,
        fill_nonfinite,
        network_input,
    )
    from rrtn_plugin.color.transform import Converter
else:
    from rrtn_plugin.lazy import lazy_names

    __getattr__ = lazy_names(
        __name__,
        {
            "WORKING_SPACE": "config",
            "load_config": "config",
            "resolve_colorspace": "config",
            "working_colorspace": "config",
            "LUMA_WEIGHTS": "frames",
            "FrameColor": "frames",
            "apply_change": "frames",
            "fill_nonfinite": "frames",
            "network_input": "frames",
            "Converter": "transform",
        },
    )


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
