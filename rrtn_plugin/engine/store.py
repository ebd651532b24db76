"""The frames a session has been given: each one's content key and its padded network input.

Frames are held on the host as the network takes them, (1, Hp, Wp) in [-1, 1], mirror-padded
(:func:`~rrtn_plugin.engine.geometry.pad_reflect`), under their 0-based index in the clip, with
the :func:`~rrtn_plugin.engine.keys.content_key` of the (H, W) luminance they were given as.
"""

from __future__ import annotations

import torch

from rrtn_plugin.engine.geometry import pad_reflect
from rrtn_plugin.engine.keys import content_key


class FrameStore:
    """A clip's given frames, by index, padded to ``padded_height`` × ``padded_width``."""

    def __init__(self, *, padded_height: int, padded_width: int) -> None:
        self.padded_height, self.padded_width = padded_height, padded_width
        self._frames: dict[int, tuple[str, torch.Tensor]] = {}

    def put(self, index: int, luma: torch.Tensor) -> bool:
        """Hold ``luma``, (H, W) float32 CPU luminance in [0, 1], as frame ``index``; returns
        whether the frame's content changed."""
        key = content_key(luma)
        if index in self._frames and self._frames[index][0] == key:
            return False
        padded = pad_reflect(luma * 2 - 1, self.padded_height, self.padded_width).unsqueeze(0)
        self._frames[index] = (key, padded)
        return True

    def key(self, index: int) -> str | None:
        """The content key of frame ``index``, None when it has not been given."""
        entry = self._frames.get(index)
        return entry[0] if entry else None

    def __contains__(self, index: int) -> bool:
        return index in self._frames

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor]:
        """(content key, (1, Hp, Wp) padded frame) of frame ``index``."""
        return self._frames[index]

    def held_bytes(self) -> int:
        """Host memory the padded frames take."""
        return sum(t.element_size() * t.nelement() for _, t in self._frames.values())
