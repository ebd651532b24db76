"""A clip restored over one or many requests: :class:`ClipSession`, its frames and its results.

A :class:`ClipSession` holds the frames of one clip (as the network's luminance) and restores
any range of them on request. Its parts, one job each:

- :mod:`.plan`: the clip's padded size, windows, tiles and flow resolution, once per session;
- :mod:`.store`: the given frames, padded, under their content keys;
- :mod:`.windows`: the window grid and the rule of which frames a request reads;
- :mod:`.recursion`: a request's passes, windows run or found and blended;
- :mod:`.pieces`: the flows, masks and spatial features windows are built from;
- :mod:`.tiling`: the network on a window in cross-faded tiles;
- :mod:`.keys`: the cache keys, from content hashes and the networks' fingerprints.

Everything is cached in a shared :class:`WorkCache` under keys made of content hashes, so
asking again for a range finds every window in the cache; widening a range computes only the
new windows; a frame whose content changes gets a new hash, which changes exactly the keys of
the flows, masks, windows and later passes that depend on it.

Recursion widens what a request needs: pass p of a window needs pass p−1 output for all the
window's frames, which needs the pass p−1 windows around them, so each extra pass reaches one
window further on each side (:meth:`ClipSession.needed_frames`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import torch

from rrtn_plugin.engine.cache import WorkCache
from rrtn_plugin.engine.device import check_precision, resolve_device, tune_host_allocator
from rrtn_plugin.engine.geometry import Tile
from rrtn_plugin.engine.keys import model_key
from rrtn_plugin.engine.metrics import psnr_8bit
from rrtn_plugin.engine.options import RestoreOptions
from rrtn_plugin.engine.pieces import Network
from rrtn_plugin.engine.plan import plan_clip
from rrtn_plugin.engine.recursion import Recursion
from rrtn_plugin.engine.store import FrameStore
from rrtn_plugin.engine.tiling import tile_weight_maps
from rrtn_plugin.engine.windows import Window, needed_frames
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.model import RRTN
from rrtn_plugin.progress import Progress


@dataclass
class SessionResult:
    """The restored frames of one request, by frame number; CPU tensors.

    Attributes:
        frames: (H, W) restored luminance in [0, 1] (not clamped).
        masks: (H, W) the first pass's noise mask, in frame-value units.
        motion_forward, motion_backward: (2, H, W) first-pass flow to the next / previous frame
            (x, y with y down; zero without a neighbour), when asked for.
        pass_psnr: PSNR(pass input, pass output) in dB on the requested frames, per pass run.
        windows_computed, windows_cached: window runs of the network computed and found.
        flow_pairs: RAFT estimations made, per pass.
    """

    frames: dict[int, torch.Tensor]
    masks: dict[int, torch.Tensor]
    pass_psnr: list[float]
    motion_forward: dict[int, torch.Tensor] | None = None
    motion_backward: dict[int, torch.Tensor] | None = None
    windows_computed: int = 0
    windows_cached: int = 0
    flow_pairs: list[int] = field(default_factory=list)


class ClipSession:
    """The frames ``first_frame`` … ``first_frame + num_frames − 1`` of one clip, and their work.

    Args:
        first_frame, num_frames: the clip's frame numbers.
        height, width: frame size in pixels (any; padded internally).
        first, second: networks for pass 1 and later passes (``second`` defaults to ``first``).
        options: scheduling; ``memory_budget`` bounds the compute (the cache has its own).
        cache: where intermediate results are kept, possibly shared with other sessions.
        owner: this session's name in the cache's figures.
        compute_lock: held while the network runs, to share one device between sessions.
    """

    def __init__(
        self,
        *,
        first_frame: int,
        num_frames: int,
        height: int,
        width: int,
        first: RRTN,
        second: RRTN | None = None,
        options: RestoreOptions,
        cache: WorkCache,
        owner: str = "session",
        compute_lock: threading.Lock | None = None,
    ) -> None:
        options.check()
        if num_frames < 1 or height < 1 or width < 1:
            raise RRTNError(
                f"a clip needs at least one frame of at least 1x1 pixels, got "
                f"{num_frames} frames of {width}x{height}"
            )
        self.options = options
        self.device = resolve_device(options.device)
        if self.device.type == "cpu":
            tune_host_allocator()
        check_precision(options.precision, self.device)
        self.models = (first.to(self.device).eval(), (second or first).to(self.device).eval())
        self.cache, self.owner = cache, owner
        self.compute_lock = compute_lock
        self.first_frame, self.num_frames = first_frame, num_frames
        self.height, self.width = height, width
        self.plan = plan_clip(
            options,
            device=self.device,
            first_frame=first_frame,
            num_frames=num_frames,
            height=height,
            width=width,
            multiple=first.config.size_multiple,
        )
        self.tile_weights = tile_weight_maps(
            self.plan.tiles,
            self.plan.padded_height,
            self.plan.padded_width,
            overlap=options.tile_overlap,
            device=self.device,
        )
        self._frames = FrameStore(
            padded_height=self.plan.padded_height, padded_width=self.plan.padded_width
        )
        self.last_used = time.monotonic()

    # -- the plan ----------------------------------------------------------------------------

    @property
    def hp(self) -> int:
        """Padded frame height the network sees."""
        return self.plan.padded_height

    @property
    def wp(self) -> int:
        """Padded frame width the network sees."""
        return self.plan.padded_width

    @property
    def flow_hw(self) -> tuple[int, int]:
        """(h, w) RAFT runs at."""
        return self.plan.flow_size

    @property
    def window_length(self) -> int:
        return self.plan.window_length

    @property
    def window_overlap(self) -> int:
        return self.plan.window_overlap

    @property
    def windows(self) -> list[Window]:
        """[start, stop) of every window, as 0-based indices of the clip."""
        return list(self.plan.windows)

    @property
    def tiles(self) -> list[Tile]:
        return list(self.plan.tiles)

    @property
    def tiles_at_once(self) -> int:
        """Tiles the network takes in one batch (settable: tests compare batch sizes)."""
        return self.plan.tiles_at_once

    @tiles_at_once.setter
    def tiles_at_once(self, value: int) -> None:
        self.plan = replace(self.plan, tiles_at_once=value)

    # -- frames ------------------------------------------------------------------------------

    @property
    def frame_numbers(self) -> range:
        return range(self.first_frame, self.first_frame + self.num_frames)

    def put_frame(self, frame: int, luma: torch.Tensor) -> bool:
        """Set a frame's (H, W) luminance in [0, 1]; returns whether its content changed."""
        index = self._index(frame)
        if tuple(luma.shape) != (self.height, self.width):
            raise RRTNError(
                f"frame {frame} is {tuple(luma.shape)[::-1]} pixels, the session's "
                f"clip is {self.width}x{self.height}"
            )
        luma = luma.detach().to("cpu", torch.float32)
        if not torch.isfinite(luma).all():
            raise RRTNError(f"frame {frame} has NaN or infinite values")
        return self._frames.put(index, luma)

    def frame_key(self, frame: int) -> str | None:
        """The content hash of a frame the session holds, else None."""
        return self._frames.key(self._index(frame))

    def needed_frames(self, frames: Iterable[int]) -> list[int]:
        """Every frame that restoring ``frames`` may read, with all passes run
        (:func:`~rrtn_plugin.engine.windows.needed_frames`)."""
        needed = needed_frames(
            [self._index(f) for f in frames],
            windows=self.plan.windows,
            clip=(0, self.plan.extended - 1),
            passes=self.options.max_passes,
        )
        # A clip extended by reflection (fewer than 3 frames) needs all its frames.
        return sorted({self.first_frame + self.plan.source[v] for v in needed})

    def missing_frames(self, frames: Iterable[int]) -> list[int]:
        """The frames among :meth:`needed_frames` that have not been given."""
        return [f for f in self.needed_frames(frames) if self._index(f) not in self._frames]

    def held_bytes(self) -> int:
        """Host memory held by the session's frames."""
        return self._frames.held_bytes()

    # -- restoring ---------------------------------------------------------------------------

    def restore(
        self,
        frames: Iterable[int],
        *,
        keep_motion: bool = False,
        progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> SessionResult:
        """Restore ``frames`` (frame numbers of the clip).

        Pass 1 uses the first network; further passes use the second while the PSNR between a
        pass's input and output on the requested frames is below ``options.stop_psnr``.

        Raises:
            RRTNError: a needed frame was not given (NOT_FOUND), cancelled, out of memory.
        """
        self.last_used = time.monotonic()
        wanted = sorted({self._index(f) for f in frames})
        if not wanted:
            raise RRTNError("no frames asked for")
        missing = self.missing_frames(self.first_frame + i for i in wanted)
        if missing:
            raise RRTNError(
                f"frames not given to the session: {_ranges(missing)}", kind=ErrorKind.NOT_FOUND
            )
        run = Recursion(
            plan=self.plan,
            frames=self._frames,
            networks=(
                Network(self.models[0], model_key(self.models[0])),
                Network(self.models[1], model_key(self.models[1])),
            ),
            options=self.options,
            cache=self.cache,
            owner=self.owner,
            compute_lock=self.compute_lock,
            device=self.device,
            tile_weights=self.tile_weights,
            first_frame=self.first_frame,
            keep_motion=keep_motion,
            progress=progress,
            should_stop=should_stop,
        )
        crop = self.plan.crop
        psnrs: list[float] = []
        try:
            for p in range(1, self.options.max_passes + 1):
                run.make_outputs(p, set(wanted))
                before = torch.cat([crop(run.inputs[(p, v)][1]) for v in wanted])
                after = torch.cat([crop(run.outputs[(p, v)][1]) for v in wanted])
                psnrs.append(psnr_8bit((before + 1) / 2, (after + 1) / 2))
                if psnrs[-1] >= self.options.stop_psnr:
                    break
        except torch.cuda.OutOfMemoryError as exc:
            raise self._out_of_memory(exc) from exc
        finally:
            self.last_used = time.monotonic()
        last = len(psnrs)
        result = SessionResult(
            frames={
                self.first_frame + v: ((crop(run.outputs[(last, v)][1])[0] + 1) / 2) for v in wanted
            },
            masks={self.first_frame + v: crop(run.masks[v])[0] / 2 for v in wanted},
            pass_psnr=psnrs,
            windows_computed=run.windows_computed,
            windows_cached=run.windows_cached,
            flow_pairs=[run.pieces.flow_pairs.get(p, 0) for p in range(1, last + 1)],
        )
        if keep_motion:
            result.motion_forward = {self.first_frame + v: self._motion(run, v, +1) for v in wanted}
            result.motion_backward = {
                self.first_frame + v: self._motion(run, v, -1) for v in wanted
            }
        return result

    # -- plumbing ----------------------------------------------------------------------------

    def _index(self, frame: int) -> int:
        index = frame - self.first_frame
        if not 0 <= index < self.num_frames:
            raise RRTNError(
                f"frame {frame} is outside the session's clip "
                f"{self.first_frame}-{self.first_frame + self.num_frames - 1}"
            )
        return index

    def _motion(self, run: Recursion, v: int, step: int) -> torch.Tensor:
        flow = run.motion.get((v, step))
        if flow is None:
            return torch.zeros(2, self.height, self.width)
        return self.plan.crop(flow).contiguous()

    def _out_of_memory(self, exc: BaseException) -> RRTNError:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return RRTNError(
            f"out of memory on {self.device} (window {self.window_length} frames, "
            f"{len(self.tiles)} tile(s)): use a shorter window, a smaller tile (e.g. tile=256), "
            "a lower flow_max_pixels, or a smaller memory_budget so the engine tiles earlier "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
            kind=ErrorKind.OUT_OF_MEMORY,
        )


def _ranges(frames: list[int]) -> str:
    """1, 2, 3, 7 → "1-3, 7"."""
    parts: list[str] = []
    start = prev = frames[0]
    for f in [*frames[1:], None]:
        if f is not None and f == prev + 1:
            prev = f
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        if f is not None:
            start = prev = f
    return ", ".join(parts)
