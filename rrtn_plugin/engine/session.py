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

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import torch

from rrtn_plugin.engine.cache import WorkCache
from rrtn_plugin.engine.cuts import boundaries_between, frame_signature, signatures_of
from rrtn_plugin.engine.device import check_precision, resolve_device, tune_host_allocator
from rrtn_plugin.engine.finish import finish, stages_on
from rrtn_plugin.engine.geometry import Tile
from rrtn_plugin.engine.keys import model_key
from rrtn_plugin.engine.metrics import psnr_8bit
from rrtn_plugin.engine.pieces import Network
from rrtn_plugin.engine.plan import plan_clip
from rrtn_plugin.engine.recursion import Recursion
from rrtn_plugin.engine.store import FrameStore
from rrtn_plugin.engine.tiling import tile_weight_maps
from rrtn_plugin.engine.windows import Window, needed_frames, stage_reach, widen
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.model import RRTN
from rrtn_plugin.options import RestoreOptions
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
        self._signatures: dict[int, tuple[torch.Tensor, float]] = {}
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
        changed = self._frames.put(index, luma)
        if changed and self.options.cuts:
            self._signatures[index] = frame_signature(luma)
        return changed

    def frame_key(self, frame: int) -> str | None:
        """The content hash of a frame the session holds, else None."""
        return self._frames.key(self._index(frame))

    def needed_frames(self, frames: Iterable[int]) -> list[int]:
        """Every frame that restoring ``frames`` may read, with all passes run, the stages
        after the network and shot detection (:func:`~rrtn_plugin.engine.windows.needed_frames`
        with :func:`~rrtn_plugin.engine.windows.stage_reach`)."""
        around, margin = stage_reach(self.options)
        needed = needed_frames(
            [self._index(f) for f in frames],
            windows=self.plan.windows,
            clip=(0, self.plan.extended - 1),
            passes=self.options.max_passes,
            around=around,
            margin=margin,
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

        Each shot (:meth:`shots`) is restored on its own. Pass 1 uses the first network;
        further passes use the second while the PSNR between a pass's input and output on the
        requested frames is below ``options.stop_psnr``. The stages after the network
        (:func:`.finish.finish`) then run on each shot's frames, with their neighbours within
        the tone guard's reach.

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
        combined = _Combined(progress)
        runs = [
            self._shot_run(start, stop, wanted, keep_motion, combined.of(k), should_stop)
            for k, (start, stop) in enumerate(self.shots(self.first_frame + v for v in wanted))
        ]
        result = SessionResult(frames={}, masks={}, pass_psnr=[])
        try:
            for p in range(1, self.options.max_passes + 1):
                before, after = [], []
                for run in runs:
                    run.recursion.make_outputs(p, set(run.targets))
                    crop = run.recursion.plan.crop
                    before += [crop(run.recursion.inputs[(p, v)][1]) for v in run.asked]
                    after += [crop(run.recursion.outputs[(p, v)][1]) for v in run.asked]
                result.pass_psnr.append(
                    psnr_8bit((torch.cat(before) + 1) / 2, (torch.cat(after) + 1) / 2)
                )
                if result.pass_psnr[-1] >= self.options.stop_psnr:
                    break
        except torch.cuda.OutOfMemoryError as exc:
            raise self._out_of_memory(exc) from exc
        finally:
            self.last_used = time.monotonic()
        if keep_motion:
            result.motion_forward, result.motion_backward = {}, {}
        for run in runs:
            self._finish_shot(run, len(result.pass_psnr), result)
        return result

    def shots(self, frames: Iterable[int]) -> list[tuple[int, int]]:
        """The shots, as [start, stop) indices of the clip, that hold ``frames`` (frame
        numbers, whose needed frames have been given): the whole clip without
        ``options.cuts``. A shot that goes on beyond the frames the request reads ends at
        the clip's end: the windows that request uses are the same either way."""
        wanted = sorted({self._index(f) for f in frames})
        if not self.options.cuts:
            return [(0, self.num_frames)]
        missing = self.missing_frames(self.first_frame + v for v in wanted)
        if missing:
            raise RRTNError(
                f"frames not given to the session: {_ranges(missing)}", kind=ErrorKind.NOT_FOUND
            )
        around, margin = stage_reach(self.options)
        core = needed_frames(
            widen(wanted, around, (0, self.num_frames - 1)),
            windows=self.plan.windows,
            clip=(0, self.plan.extended - 1),
            passes=self.options.max_passes,
        )
        lo, hi = self.plan.source[core[0]], max(self.plan.source[v] for v in core)
        first, last = max(0, lo - margin), min(self.num_frames - 1, hi + margin)
        marks = signatures_of([self._signatures[i] for i in range(first, last + 1)])
        cuts = [first + b for b in boundaries_between(marks, lo - first, hi - first)]
        edges = [0, *cuts, self.num_frames]
        return [(a, b) for a, b in itertools.pairwise(edges) if any(a <= v < b for v in wanted)]

    def _shot_run(
        self,
        start: int,
        stop: int,
        wanted: list[int],
        keep_motion: bool,
        progress: Callable[[Progress], None],
        should_stop: Callable[[], bool] | None,
    ) -> _ShotRun:
        """The passes over the shot [start, stop) (clip indices) for the frames of ``wanted``
        in it and the frames the stages read around them."""
        plan = self.plan.shot(start, stop)
        asked = [v - start for v in wanted if start <= v < stop]
        around, _ = stage_reach(self.options)
        recursion = Recursion(
            plan=plan,
            frames=self._frames,
            offset=start,
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
            keep_motion=keep_motion,
            progress=progress,
            should_stop=should_stop,
        )
        targets = sorted(widen(asked, around, (0, plan.num_frames - 1)))
        return _ShotRun(recursion, start, asked, targets)

    def _finish_shot(self, run: _ShotRun, passes: int, result: SessionResult) -> None:
        """Run the stages after the network on a shot's frames and put its asked-for frames
        (and their AOVs) into ``result``."""
        recursion, start = run.recursion, run.start
        crop = recursion.plan.crop
        restored = {v: (crop(recursion.outputs[(passes, v)][1])[0] + 1) / 2 for v in run.targets}
        masks = {v: crop(recursion.masks[v])[0] / 2 for v in run.targets}
        if stages_on(self.options):
            for span in _runs(run.targets):
                done = finish(
                    torch.stack([self._frames.luma(start + v) for v in span]),
                    torch.stack([restored[v] for v in span]),
                    torch.stack([masks[v] for v in span]),
                    options=self.options,
                )
                restored.update(zip(span, done, strict=True))
        for v in run.asked:
            number = self.first_frame + start + v
            result.frames[number] = restored[v]
            result.masks[number] = masks[v]
            if result.motion_forward is not None and result.motion_backward is not None:
                result.motion_forward[number] = self._motion(recursion, v, +1)
                result.motion_backward[number] = self._motion(recursion, v, -1)
        result.windows_computed += recursion.windows_computed
        result.windows_cached += recursion.windows_cached
        for p in range(1, passes + 1):
            if len(result.flow_pairs) < p:
                result.flow_pairs.append(0)
            result.flow_pairs[p - 1] += recursion.pieces.flow_pairs.get(p, 0)

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


@dataclass
class _ShotRun:
    """A request's passes over one shot: the shot starts at clip index ``start``; ``asked``
    are the requested frames and ``targets`` those and the frames the stages read around
    them, as indices of the shot."""

    recursion: Recursion
    start: int
    asked: list[int]
    targets: list[int]


class _Combined:
    """Progress of several shots' passes as one count: per pass and stage, the steps done and
    the steps known of every shot, added up."""

    def __init__(self, progress: Callable[[Progress], None] | None) -> None:
        self.progress = progress
        self.counts: dict[tuple[int, str], dict[int, tuple[int, int]]] = {}

    def of(self, shot: int) -> Callable[[Progress], None]:
        """The progress callback of shot number ``shot``."""

        def report(event: Progress) -> None:
            counts = self.counts.setdefault((event.pass_number, event.stage), {})
            counts[shot] = (event.done, event.total)
            if self.progress is not None:
                done = sum(d for d, _ in counts.values())
                total = sum(t for _, t in counts.values())
                self.progress(replace(event, done=done, total=total))

        return report


def _runs(indices: list[int]) -> list[list[int]]:
    """Sorted ``indices`` split into runs of consecutive ones."""
    runs: list[list[int]] = []
    for v in indices:
        if runs and v == runs[-1][-1] + 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return runs


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
