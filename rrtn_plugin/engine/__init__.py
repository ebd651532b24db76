"""The clip engine: schedules the network over clips of any size and length.

``restore_clip`` pads frames to sizes the network takes, splits long clips into cross-faded
windows, computes each frame pair's flow once, tiles frames that exceed the memory budget, and
runs the recursion passes.
"""

from rrtn_plugin.engine.clip import (
    ClipResult,
    Progress,
    RestoreOptions,
    psnr_8bit,
    quantize_8bit,
    restore_clip,
)
from rrtn_plugin.engine.device import resolve_device

__all__ = [
    "ClipResult",
    "Progress",
    "RestoreOptions",
    "psnr_8bit",
    "quantize_8bit",
    "resolve_device",
    "restore_clip",
]
