"""The frames a session has been given: each one's content key and its luminance.

Frames are held on the host as they were given, (H, W) float32 luminance in [0, 1], under
their 0-based index in the clip, with their :func:`~rrtn_plugin.engine.keys.content_key`. The
network takes them mirror-padded and in [-1, 1] (:meth:`FrameStore.__getitem__`); the stages
after it compare its output with the frames as given (:meth:`FrameStore.luma`), so a pixel no
stage touches comes back bit for bit.
"""

from __future__ import annotations

import torch

from rrtn_plugin.engine.geometry import pad_reflect
from rrtn_plugin.engine.keys import content_key


class FrameStore:
    """A clip's given frames, by index; the network's input padded to ``padded_height`` ×
    ``padded_width``."""

    def __init__(self, *, padded_height: int, padded_width: int) -> None:
        self.padded_height, self.padded_width = padded_height, padded_width
        self._frames: dict[int, tuple[str, torch.Tensor]] = {}

    def put(self, index: int, luma: torch.Tensor) -> bool:
        """Hold ``luma``, (H, W) float32 CPU luminance in [0, 1], as frame ``index``; returns
        whether the frame's content changed."""
        key = content_key(luma)
        if index in self._frames and self._frames[index][0] == key:
            return False
        self._frames[index] = (key, luma)
        return True

    def key(self, index: int) -> str | None:
        """The content key of frame ``index``, None when it has not been given."""
        entry = self._frames.get(index)
        return entry[0] if entry else None

    def __contains__(self, index: int) -> bool:
        return index in self._frames

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor]:
        """(content key, (1, Hp, Wp) frame in [-1, 1], mirror-padded) of frame ``index``."""
        key, luma = self._frames[index]
        return key, pad_reflect(luma * 2 - 1, self.padded_height, self.padded_width)[None]

    def luma(self, index: int) -> torch.Tensor:
        """(H, W) frame ``index`` as it was given."""
        return self._frames[index][1]

    def held_bytes(self) -> int:
        """Host memory the frames take."""
        return sum(t.element_size() * t.nelement() for _, t in self._frames.values())
