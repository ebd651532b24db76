"""The clip engine: schedules the network over clips of any size and length.

:class:`ClipSession` holds a clip's frames and restores any range of them, caching flows,
masks, features and window results in a :class:`WorkCache` keyed by content; ``restore_clip``
is the one-call form. Frames are padded to sizes the network takes, long clips run in
cross-faded windows, each frame pair's flow is computed once, frames that exceed the memory
budget are tiled, and the recursion passes run until the output settles.
"""

from rrtn_plugin.engine.cache import CacheUsage, WorkCache
from rrtn_plugin.engine.clip import ClipResult, restore_clip
from rrtn_plugin.engine.device import resolve_device
from rrtn_plugin.engine.metrics import psnr_8bit, quantize_8bit
from rrtn_plugin.engine.session import ClipSession, SessionResult
from rrtn_plugin.options import RestoreOptions

__all__ = [
    "CacheUsage",
    "ClipResult",
    "ClipSession",
    "RestoreOptions",
    "SessionResult",
    "WorkCache",
    "psnr_8bit",
    "quantize_8bit",
    "resolve_device",
    "restore_clip",
]
