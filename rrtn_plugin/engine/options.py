"""What the engine is asked to do (:class:`RestoreOptions`) and what it reports (`Progress`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rrtn_plugin.errors import RRTNError
from rrtn_plugin.model.flow import RAFT_MIN_SIDE


@dataclass(frozen=True)
class RestoreOptions:
    """How :func:`restore_clip` schedules the work. Defaults follow the authors' usage.

    Attributes:
        window: frames per network run (30).
        overlap: frames shared by consecutive windows (None: half the window, 15).
        max_passes: recursion passes at most, the first included (4).
        stop_psnr: stop when PSNR(pass input, pass output) on 8-bit frames reaches this (43 dB;
            infinity: always run ``max_passes``, as farm tasks do so that chunks agree).
        flow_max_pixels: estimate flow on frames downscaled to about this many pixels
            (None: full resolution; RAFT's memory grows with the square of the pixel count).
        tile: tile side for the network; None chooses from ``memory_budget`` (whole frames when
            they fit), 0 forbids tiling.
        tile_overlap: pixels shared by neighbouring tiles (32).
        memory_budget: bytes the engine may use on the device; None: 80 % of what is free.
        device: "auto" (CUDA when present), "cpu", "cuda", "cuda:N".
        precision: "fp32"; "bf16" autocast (CUDA, or CPUs with AVX512-BF16/AMX); "fp16"
            autocast on CUDA.
        quantize_between_passes: round each pass's output to 8 bits before the next pass, as
            the reference does through its PNG files (off: only clamped to [0, 1]).
        keep_motion: also return per-frame motion vectors of the first pass.
        fixed_window: never shorten the window to fit ``memory_budget``; fail instead (farm
            tasks: their chunks were planned for this window).
    """

    window: int = 30
    overlap: int | None = None
    max_passes: int = 4
    stop_psnr: float = 43.0
    flow_max_pixels: int | None = 1 << 20
    tile: int | None = None
    tile_overlap: int = 32
    memory_budget: int | None = None
    device: str = "auto"
    precision: str = "fp32"
    quantize_between_passes: bool = False
    keep_motion: bool = False
    fixed_window: bool = False

    @property
    def window_overlap(self) -> int:
        return self.window // 2 if self.overlap is None else self.overlap

    def check(self) -> None:
        """Raise RRTNError naming the first option that is out of range."""
        if self.window < 3:
            raise RRTNError(f"window must be at least 3 frames, got {self.window}")
        if not 0 <= self.window_overlap < self.window:
            raise RRTNError(f"overlap must be in [0, window={self.window}), got {self.overlap}")
        if self.max_passes < 1:
            raise RRTNError(f"max_passes must be at least 1, got {self.max_passes}")
        if math.isnan(self.stop_psnr) or self.stop_psnr == -math.inf:
            raise RRTNError(f"stop_psnr must be a number of dB or inf, got {self.stop_psnr}")
        if self.flow_max_pixels is not None and self.flow_max_pixels < RAFT_MIN_SIDE**2:
            raise RRTNError(
                f"flow_max_pixels must be at least {RAFT_MIN_SIDE**2}, got {self.flow_max_pixels}"
            )
        if self.tile is not None and self.tile != 0 and (self.tile < 128 or self.tile % 16):
            raise RRTNError(f"tile must be a multiple of 16 and at least 128, got {self.tile}")
        if self.tile_overlap < 0 or self.tile_overlap % 2:
            raise RRTNError(f"tile_overlap must be even and ≥ 0, got {self.tile_overlap}")
        if self.memory_budget is not None and self.memory_budget <= 0:
            raise RRTNError(f"memory_budget must be positive, got {self.memory_budget}")


@dataclass(frozen=True)
class Progress:
    """One step of work.

    ``stage`` is "flow" (RAFT pairs of this pass: ``done`` of ``total``), "restore" (windows of
    this pass), or, from jobs, "read"/"write" (frames, ``pass_number`` 0). ``frame`` is the
    last frame finished, when there is one.
    """

    pass_number: int
    stage: str
    done: int
    total: int
    frame: int | None = None
