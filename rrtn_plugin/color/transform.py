"""Colour-space conversion of pixel arrays with OpenColorIO's CPU processors."""

from __future__ import annotations

import numpy as np
import PyOpenColorIO as ocio

from rrtn_plugin.color.config import resolve_colorspace


class Converter:
    """Converts RGB between a source space and the working space, both ways.

    Args:
        config: the OpenColorIO config.
        source: the frames' colour space (name, alias or role).
        working: the network's space (see :func:`working_colorspace`).

    Out-of-range values are kept (OCIO's sRGB curve is extended, not clamped); round trips are
    within 1e-4 on [0, 1].
    """

    def __init__(self, config: ocio.Config, *, source: str, working: str) -> None:
        self.source = resolve_colorspace(config, source)
        self.working = resolve_colorspace(config, working)
        self._to = config.getProcessor(self.source, self.working).getDefaultCPUProcessor()
        self._from = config.getProcessor(self.working, self.source).getDefaultCPUProcessor()

    def to_working(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) source RGB → (H, W, 3) float32 working RGB (a new array)."""
        return self._apply(self._to, rgb)

    def from_working(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) working RGB → (H, W, 3) float32 source RGB (a new array)."""
        return self._apply(self._from, rgb)

    @staticmethod
    def _apply(processor: ocio.CPUProcessor, rgb: np.ndarray) -> np.ndarray:
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected (H, W, 3) pixels, got {rgb.shape}")
        out = np.array(rgb, dtype=np.float32, order="C", copy=True)
        processor.apply(ocio.PackedImageDesc(out, out.shape[1], out.shape[0], 3))
        return out
