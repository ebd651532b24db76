"""Restoring a whole clip: padding, windows, shared flows, tiles, recursion passes.

:func:`restore_clip` takes a (T, H, W) luminance clip in the network's display-referred [0, 1]
encoding (colour spaces and files are handled before this) and returns the restored clip with
its noise mask, optional motion, and the PSNR of every pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from rrtn_plugin.engine.device import (
    autocast,
    available_memory,
    check_precision,
    resolve_device,
)
from rrtn_plugin.engine.flows import ClipFlows, flow_size, raft_pair_bytes
from rrtn_plugin.engine.geometry import (
    Tile,
    pad_reflect,
    padded_size,
    plan_tiles,
    reflect_indices,
    tile_weights,
)
from rrtn_plugin.engine.memory import choose_tile
from rrtn_plugin.engine.windows import plan_windows, window_weights
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.model import RRTN
from rrtn_plugin.model.flow import RAFT_MIN_SIDE


@dataclass(frozen=True)
class RestoreOptions:
    """How :func:`restore_clip` schedules the work. Defaults follow the authors' usage.

    Attributes:
        window: frames per network run (30).
        overlap: frames shared by consecutive windows (None: half the window, 15).
        max_passes: recursion passes at most, the first included (4).
        stop_psnr: stop when PSNR(pass input, pass output) on 8-bit frames reaches this (43 dB).
        flow_max_pixels: estimate flow on frames downscaled to about this many pixels
            (None: full resolution; RAFT's memory grows with the square of the pixel count).
        tile: tile side for the network; None chooses from ``memory_budget`` (whole frames when
            they fit), 0 forbids tiling.
        tile_overlap: pixels shared by neighbouring tiles (32).
        memory_budget: bytes the engine may use on the device; None: 80 % of what is free.
        device: "auto" (CUDA when present), "cpu", "cuda", "cuda:N".
        precision: "fp32", or "bf16"/"fp16" autocast on CUDA.
        quantize_between_passes: round each pass's output to 8 bits before the next pass, as
            the reference does through its PNG files (off: only clamped to [0, 1]).
        keep_motion: also return per-frame motion vectors of the first pass.
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
        if not math.isfinite(self.stop_psnr):
            raise RRTNError(f"stop_psnr must be a finite number of dB, got {self.stop_psnr}")
        if self.flow_max_pixels is not None and self.flow_max_pixels < RAFT_MIN_SIDE ** 2:
            raise RRTNError(f"flow_max_pixels must be at least {RAFT_MIN_SIDE ** 2}, "
                            f"got {self.flow_max_pixels}")
        if self.tile is not None and self.tile != 0 and (self.tile < 128 or self.tile % 16):
            raise RRTNError(f"tile must be a multiple of 16 and at least 128, got {self.tile}")
        if self.tile_overlap < 0 or self.tile_overlap % 2:
            raise RRTNError(f"tile_overlap must be even and ≥ 0, got {self.tile_overlap}")
        if self.memory_budget is not None and self.memory_budget <= 0:
            raise RRTNError(f"memory_budget must be positive, got {self.memory_budget}")


@dataclass(frozen=True)
class Progress:
    """One step of work: ``stage`` is "flow" (RAFT pairs) or "restore" (frames finished)."""

    pass_number: int
    stage: str
    done: int
    total: int


@dataclass
class ClipResult:
    """What :func:`restore_clip` returns; arrays are CPU float32.

    Attributes:
        frames: (T, H, W) restored clip in [0, 1] encoding (not clamped).
        noise_mask: (T, H, W) the first pass's noise mask, in the same units as frame values
            (|difference| of frame values), the damage RRTN saw.
        motion_forward, motion_backward: (T, 2, H, W) per-frame motion in pixels (x, y with y
            down) to the next / previous frame, zero where there is none; only with
            ``keep_motion``.
        pass_psnr: PSNR(pass input, pass output) in dB on 8-bit frames, one per pass run.
        flow_pairs: RAFT pair estimations per pass.
        windows: the [start, stop) windows run (on the temporally extended clip).
        tiles: tiles per frame.
        seconds: wall time.
    """

    frames: torch.Tensor
    noise_mask: torch.Tensor
    pass_psnr: list[float]
    flow_pairs: list[int]
    windows: list[tuple[int, int]]
    tiles: int
    seconds: float
    motion_forward: torch.Tensor | None = None
    motion_backward: torch.Tensor | None = None
    devices: list[str] = field(default_factory=list)


def psnr_8bit(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over frames of PSNR between two (T, …) clips in [0, 1], each rounded to 8 bits."""
    qa, qb = quantize_8bit(a).double(), quantize_8bit(b).double()
    mse = ((qa - qb) ** 2).flatten(1).mean(dim=1)
    per_frame = torch.where(mse == 0, torch.full_like(mse, math.inf),
                            20 * torch.log10(1.0 / mse.sqrt()))
    return float(per_frame.mean())


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] values clamped and rounded to the 8-bit grid (still in [0, 1])."""
    return torch.round(x.clamp(0, 1) * 255) / 255


def restore_clip(clip: torch.Tensor | np.ndarray, *, first: RRTN, second: RRTN | None = None,
                 options: RestoreOptions | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> ClipResult:
    """Restore a clip of any length and frame size.

    Args:
        clip: (T, H, W) luminance in the network's [0, 1] encoding, T ≥ 1, finite values.
        first: network for the first pass.
        second: network for later passes (default: ``first``).
        options: scheduling; see :class:`RestoreOptions`.
        progress: called as work advances.
        should_stop: polled between steps (every frame of every branch); returning True stops
            the work with RRTNError(kind=CANCELLED).

    How it works: frames are mirror-padded to multiples of 16 (≥ 128) and clips shorter than
    3 frames are extended by temporal reflection; flows are computed once per frame pair and
    pass (:class:`ClipFlows`); windows are cross-faded (:mod:`rrtn_plugin.engine.windows`);
    frames too large for the memory budget are cut into cross-faded tiles. Pass 1 uses
    ``first``; further passes use ``second`` while the last pass's PSNR is below ``stop_psnr``.
    """
    opts = options or RestoreOptions()
    opts.check()
    started = time.perf_counter()
    frames = _as_clip(clip)
    device = resolve_device(opts.device)
    check_precision(opts.precision, device)
    models = [first, second or first]
    for model in models:
        model.to(device).eval()
    n, h, w = frames.shape
    m = first.config.size_multiple
    hp, wp = padded_size(h, multiple=m, minimum=RAFT_MIN_SIDE), padded_size(
        w, multiple=m, minimum=RAFT_MIN_SIDE)

    def network_input(clip01: torch.Tensor) -> torch.Tensor:
        """(n, h, w) in [0, 1] → (T', 1, Hp, Wp) in [-1, 1]: extended to ≥ 3 frames, padded."""
        extended = clip01[reflect_indices(n, 3)] if n < 3 else clip01
        return pad_reflect(extended * 2 - 1, hp, wp).unsqueeze(1)

    lq = network_input(frames)

    budget = opts.memory_budget or int(0.8 * available_memory(device))
    windows = plan_windows(lq.shape[0], length=opts.window, overlap=opts.window_overlap)
    longest = max(stop - start for start, stop in windows)
    tile = opts.tile if opts.tile else None
    if opts.tile is None:
        tile = choose_tile(longest, hp, wp, budget=budget, multiple=m)
    tiles = plan_tiles(hp, wp, tile=tile, overlap=opts.tile_overlap)

    def stop_check() -> None:
        if should_stop is not None and should_stop():
            raise RRTNError("restore cancelled", kind=ErrorKind.CANCELLED)

    result = ClipResult(frames=frames, noise_mask=torch.zeros_like(frames), pass_psnr=[],
                        flow_pairs=[], windows=windows, tiles=len(tiles), seconds=0.0)
    current = lq
    for pass_number in range(1, opts.max_passes + 1):
        model = models[0] if pass_number == 1 else models[1]
        run = _Pass(model, current, num_frames=n, device=device, options=opts, windows=windows,
                    tiles=tiles, budget=budget, pass_number=pass_number, progress=progress,
                    stop_check=stop_check, keep_motion=opts.keep_motion and pass_number == 1)
        try:
            output = run.run()
        except torch.cuda.OutOfMemoryError as exc:
            raise _out_of_memory(exc, device, opts) from exc
        except RuntimeError as exc:
            if "memory" in str(exc).lower() and "alloc" in str(exc).lower():
                raise _out_of_memory(exc, device, opts) from exc
            raise
        before, after = (current[:n, 0, :h, :w] + 1) / 2, (output[:n, 0, :h, :w] + 1) / 2
        result.pass_psnr.append(psnr_8bit(before, after))
        result.flow_pairs.append(run.pairs_computed)
        result.frames = after.contiguous()
        if pass_number == 1:
            result.noise_mask = (run.mask[:n, 0, :h, :w] / 2).contiguous()
            if run.motion is not None:
                fwd, bwd = run.motion
                result.motion_forward = fwd[:n, :, :h, :w].contiguous()
                result.motion_backward = bwd[:n, :, :h, :w].contiguous()
        if result.pass_psnr[-1] >= opts.stop_psnr:
            break
        next_input = after.clamp(0, 1)
        if opts.quantize_between_passes:
            next_input = quantize_8bit(next_input)
        current = network_input(next_input)
    result.seconds = time.perf_counter() - started
    return result


class _Pass:
    """One recursion pass of one network over the (padded, extended) clip."""

    def __init__(self, model: RRTN, lq: torch.Tensor, *, num_frames: int, device: torch.device,
                 options: RestoreOptions, windows: list[tuple[int, int]], tiles: list[Tile],
                 budget: int, pass_number: int, progress: Callable[[Progress], None] | None,
                 stop_check: Callable[[], None], keep_motion: bool) -> None:
        self.model, self.lq, self.device, self.opts = model, lq, device, options
        self.num_frames = num_frames
        self.windows, self.tiles, self.pass_number = windows, tiles, pass_number
        self.progress, self.stop_check = progress, stop_check
        t, _, hp, wp = lq.shape
        self.mask = torch.zeros(t, 1, hp, wp)
        self.motion = (torch.zeros(t, 2, hp, wp), torch.zeros(t, 2, hp, wp)) if keep_motion \
            else None
        flow_h, flow_w = flow_size(hp, wp, options.flow_max_pixels)
        self.flow_batch_bytes = max(budget // 4, raft_pair_bytes(flow_h, flow_w))
        self.pairs_computed = 0
        self._pairs_done = 0

    def _report(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(Progress(self.pass_number, stage, done, total))

    def run(self) -> torch.Tensor:
        t = self.lq.shape[0]
        total_pairs = 2 * (t - 1) + 2
        accumulated = torch.zeros_like(self.lq)
        weight_sum = torch.zeros(t, 1, 1, 1)

        def before_batch(count: int) -> None:
            self.stop_check()
            self._pairs_done += count
            self._report("flow", min(self._pairs_done, total_pairs), total_pairs)

        flows = ClipFlows(self.model, self.lq, device=self.device,
                          max_pixels=self.opts.flow_max_pixels,
                          batch_bytes=self.flow_batch_bytes, before_batch=before_batch)
        for k, (start, stop) in enumerate(self.windows):
            self.stop_check()
            with torch.inference_mode(), autocast(self.opts.precision, self.device):
                forward, backward = flows.adjacent_flows(start, stop)
                mask = flows.masks(start, stop)
                window = self.lq[start:stop].to(self.device).unsqueeze(0)
                out = self._restore_window(window, mask, forward, backward)
            weights = window_weights(stop - start).view(-1, 1, 1, 1)
            accumulated[start:stop] += out.float().cpu() * weights
            weight_sum[start:stop] += weights
            self.mask[start:stop] = mask[0].float().cpu()
            if self.motion is not None:
                self._keep_motion(flows, start, stop)
            following = self.windows[k + 1][0] if k + 1 < len(self.windows) else t
            flows.forget_before(following)
            self._report("restore", min(following, self.num_frames), self.num_frames)
        self.pairs_computed = flows.pairs_computed
        return accumulated / weight_sum

    def _restore_window(self, lq: torch.Tensor, mask: torch.Tensor, forward: torch.Tensor,
                        backward: torch.Tensor) -> torch.Tensor:
        """(1, n, 1, Hp, Wp) window → (n, 1, Hp, Wp) restored, tile by tile."""
        _, n, c, hp, wp = lq.shape

        def step() -> None:
            self.stop_check()

        if len(self.tiles) == 1:
            return self.model.restore(lq, noise_mask=mask, flows_forward=forward,
                                      flows_backward=backward, on_step=step)[0]
        out = torch.zeros(n, c, hp, wp, device=lq.device)
        weight_sum = torch.zeros(1, 1, hp, wp, device=lq.device)
        for tile in self.tiles:
            region = (..., tile.rows, tile.cols)
            restored = self.model.restore(lq[region], noise_mask=mask[region],
                                          flows_forward=forward[region],
                                          flows_backward=backward[region], on_step=step)[0]
            weights = tile_weights(tile, hp, wp, overlap=self.opts.tile_overlap).to(lq.device)
            out[region] += restored.float() * weights
            weight_sum[region] += weights
        return out / weight_sum

    def _keep_motion(self, flows: ClipFlows, start: int, stop: int) -> None:
        assert self.motion is not None
        fwd, bwd = self.motion
        last = self.num_frames - 1
        for t in range(start, min(stop, self.num_frames)):
            if t < last:
                fwd[t] = flows.flow(t, t + 1).float().cpu()
            if t > 0:
                bwd[t] = flows.flow(t, t - 1).float().cpu()


def _as_clip(clip: torch.Tensor | np.ndarray) -> torch.Tensor:
    frames = torch.as_tensor(np.asarray(clip) if not isinstance(clip, torch.Tensor) else clip)
    if frames.ndim != 3 or min(frames.shape) < 1:
        raise RRTNError(f"expected a (T, H, W) clip with T, H, W ≥ 1, got {tuple(frames.shape)}")
    if not frames.is_floating_point():
        raise RRTNError(f"expected float frames in [0, 1], got {frames.dtype}")
    frames = frames.detach().to("cpu", torch.float32)
    bad = ~torch.isfinite(frames)
    if bad.any():
        which = sorted({int(i) for i in bad.flatten(1).any(dim=1).nonzero().flatten()})
        raise RRTNError(f"clip has NaN or infinite values in frame(s) {which[:10]}; replace "
                        "them before restoring (the network would spread them)")
    return frames


def _out_of_memory(exc: BaseException, device: torch.device, opts: RestoreOptions) -> RRTNError:
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return RRTNError(
        f"out of memory on {device} (window {opts.window} frames, tile "
        f"{opts.tile or 'auto'}): use a shorter window, a smaller tile (e.g. tile=256), a "
        f"lower flow_max_pixels, or a smaller memory_budget so the engine tiles earlier "
        f"({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]})",
        kind=ErrorKind.OUT_OF_MEMORY)
