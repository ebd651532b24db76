"""A clip restored over one or many requests: its frames, its schedule, and its cached work.

A :class:`ClipSession` holds the frames of one clip (as the network's luminance) and restores
any range of them on request. Windows lie on a fixed grid (:mod:`.windows`), so the work of a
request is a set of windows per recursion pass, and everything is cached in a shared
:class:`WorkCache` under keys made of content hashes:

- per frame pair: the flow (frame hashes, model, flow resolution);
- per frame: the noise mask (its and its neighbours' hashes) and the spatial features;
- per window and pass: the network's output (every frame's hash and mask key, the model, the
  parameters); a pass's output frame is keyed by the windows it was blended from and its place
  in each, and the next pass's input by that.

So asking again for a range finds every window in the cache; widening a range computes only the
new windows; a frame whose content changes gets a new hash, which changes exactly the keys of
the flows, masks, windows and later passes that depend on it.

Recursion widens what a request needs: pass p of a window needs pass p−1 output for all the
window's frames, which needs the pass p−1 windows around them, so each extra pass reaches one
window further on each side (:meth:`ClipSession.needed_frames`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

import torch

from rrtn_plugin.engine.cache import WorkCache
from rrtn_plugin.engine.device import (
    autocast,
    available_memory,
    check_precision,
    resolve_device,
    tune_host_allocator,
)
from rrtn_plugin.engine.flows import estimate_flows, flow_size, raft_pair_bytes
from rrtn_plugin.engine.geometry import (
    Tile,
    pad_reflect,
    padded_size,
    plan_tiles,
    reflect_indices,
    tile_weights,
)
from rrtn_plugin.engine.memory import plan_schedule, tiles_at_once
from rrtn_plugin.engine.metrics import psnr_8bit, quantize_8bit
from rrtn_plugin.engine.options import Progress, RestoreOptions
from rrtn_plugin.engine.windows import plan_windows, window_weights
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.model import RRTN, residual_indicator
from rrtn_plugin.model.flow import RAFT_MIN_SIDE
from rrtn_plugin.model.rrtn import frame_batches
from rrtn_plugin.model.warp import flow_warp

Window = tuple[int, int]
log = logging.getLogger(__name__)


def digest(*parts: Hashable) -> str:
    """A short stable key for a tuple of key parts."""
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def content_key(tensor: torch.Tensor) -> str:
    """Hash of a tensor's values (its dtype and shape included)."""
    data = tensor.detach().contiguous().cpu()
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{data.dtype}{tuple(data.shape)}".encode())
    h.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return h.hexdigest()


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


@dataclass
class _Run:
    """What one request has computed so far (it is not kept after the request)."""

    inputs: dict[tuple[int, int], tuple[str, torch.Tensor]] = field(default_factory=dict)
    outputs: dict[tuple[int, int], tuple[str, torch.Tensor]] = field(default_factory=dict)
    window_keys: dict[tuple[int, Window], str] = field(default_factory=dict)
    window_outputs: dict[tuple[int, Window], torch.Tensor] = field(default_factory=dict)
    masks: dict[int, torch.Tensor] = field(default_factory=dict)
    motion: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)
    keep_motion: bool = False
    windows_computed: int = 0
    windows_cached: int = 0
    flow_pairs: dict[int, int] = field(default_factory=dict)
    pairs_seen: dict[int, int] = field(default_factory=dict)
    pairs_total: dict[int, int] = field(default_factory=dict)
    windows_done: dict[int, int] = field(default_factory=dict)
    windows_total: dict[int, int] = field(default_factory=dict)


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
        self.compute_lock = compute_lock or contextlib.nullcontext()
        self.first_frame, self.num_frames = first_frame, num_frames
        self.height, self.width = height, width
        m = first.config.size_multiple
        self.hp = padded_size(height, multiple=m, minimum=RAFT_MIN_SIDE)
        self.wp = padded_size(width, multiple=m, minimum=RAFT_MIN_SIDE)
        self.extended = max(num_frames, 3)
        self.source = reflect_indices(num_frames, self.extended).tolist()
        budget = options.memory_budget or int(0.8 * available_memory(self.device))
        schedule = plan_schedule(
            options, frames=self.extended, height=self.hp, width=self.wp, budget=budget, multiple=m
        )
        longest = min(options.window, self.extended)
        if schedule.window < longest:
            log.warning(
                "%d-frame windows of %dx%d do not fit the %.3g GiB memory budget: "
                "using %d-frame windows",
                longest,
                width,
                height,
                budget / 2**30,
                schedule.window,
            )
        self.window_length, self.window_overlap = schedule.window, schedule.overlap
        self.windows = [
            (s - first_frame, e - first_frame)
            for s, e in plan_windows(
                first_frame,
                first_frame + self.extended,
                length=schedule.window,
                overlap=schedule.overlap,
            )
        ]
        self.tiles = plan_tiles(self.hp, self.wp, tile=schedule.tile, overlap=options.tile_overlap)
        self.tile_weights = (
            [
                tile_weights(t, self.hp, self.wp, overlap=options.tile_overlap).to(self.device)
                for t in self.tiles
            ]
            if len(self.tiles) > 1
            else []
        )
        # A GPU runs as many tiles at once as fit; a CPU gains nothing from it (its kernels are
        # busy with one tile) and would only hold more memory.
        self.tiles_at_once = 1
        if len(self.tiles) > 1 and self.device.type == "cuda":
            self.tiles_at_once = min(
                len(self.tiles),
                tiles_at_once(
                    min(schedule.window, self.extended),
                    self.tiles[0].height,
                    self.tiles[0].width,
                    height=self.hp,
                    width=self.wp,
                    budget=budget,
                ),
            )
        self.flow_hw = flow_size(self.hp, self.wp, options.flow_max_pixels)
        self.flow_batch = max(1, (budget // 4) // raft_pair_bytes(*self.flow_hw))
        self.params = (
            self.hp,
            self.wp,
            options.precision,
            options.tile_overlap,
            tuple((t.top, t.left, t.height, t.width) for t in self.tiles),
        )
        self._frames: dict[int, tuple[str, torch.Tensor]] = {}
        self.last_used = time.monotonic()

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
        key = content_key(luma)
        if index in self._frames and self._frames[index][0] == key:
            return False
        self._frames[index] = (key, pad_reflect(luma * 2 - 1, self.hp, self.wp).unsqueeze(0))
        return True

    def frame_key(self, frame: int) -> str | None:
        """The content hash of a frame the session holds, else None."""
        entry = self._frames.get(self._index(frame))
        return entry[0] if entry else None

    def needed_frames(self, frames: Iterable[int]) -> list[int]:
        """Every frame that restoring ``frames`` may read, with all passes run."""
        wanted = {self._index(f) for f in frames}
        for _ in range(self.options.max_passes):
            around = set()
            for s, e in self._covering(wanted):
                for v in range(s, e):
                    around |= {v, *self._neighbours(v)}
            wanted = {self.source[v] for v in around}
        return sorted(self.first_frame + i for i in wanted)

    def missing_frames(self, frames: Iterable[int]) -> list[int]:
        """The frames among :meth:`needed_frames` that have not been given."""
        return [f for f in self.needed_frames(frames) if self._index(f) not in self._frames]

    def held_bytes(self) -> int:
        """Host memory held by the session's frames."""
        return sum(t.element_size() * t.nelement() for _, t in self._frames.values())

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
        self._progress, self._should_stop = progress, should_stop
        run = _Run(keep_motion=keep_motion)
        psnrs: list[float] = []
        try:
            for p in range(1, self.options.max_passes + 1):
                self._outputs(p, set(wanted), run)
                before = torch.cat([self._crop(run.inputs[(p, v)][1]) for v in wanted])
                after = torch.cat([self._crop(run.outputs[(p, v)][1]) for v in wanted])
                psnrs.append(psnr_8bit((before + 1) / 2, (after + 1) / 2))
                if psnrs[-1] >= self.options.stop_psnr:
                    break
        except torch.cuda.OutOfMemoryError as exc:
            raise self._out_of_memory(exc) from exc
        finally:
            self._progress = self._should_stop = None
            self.last_used = time.monotonic()
        last = len(psnrs)
        result = SessionResult(
            frames={
                self.first_frame + v: ((self._crop(run.outputs[(last, v)][1])[0] + 1) / 2)
                for v in wanted
            },
            masks={self.first_frame + v: self._crop(run.masks[v])[0] / 2 for v in wanted},
            pass_psnr=psnrs,
            windows_computed=run.windows_computed,
            windows_cached=run.windows_cached,
            flow_pairs=[run.flow_pairs.get(p, 0) for p in range(1, last + 1)],
        )
        if keep_motion:
            result.motion_forward = {self.first_frame + v: self._motion(run, v, +1) for v in wanted}
            result.motion_backward = {
                self.first_frame + v: self._motion(run, v, -1) for v in wanted
            }
        return result

    # -- schedule ----------------------------------------------------------------------------

    def _index(self, frame: int) -> int:
        index = frame - self.first_frame
        if not 0 <= index < self.num_frames:
            raise RRTNError(
                f"frame {frame} is outside the session's clip "
                f"{self.first_frame}-{self.first_frame + self.num_frames - 1}"
            )
        return index

    def _covering(self, indices: set[int]) -> list[Window]:
        return [w for w in self.windows if any(w[0] <= v < w[1] for v in indices)]

    def _neighbours(self, v: int) -> tuple[int, int]:
        """(next, previous) frames a frame's mask compares with; the reference's at the ends."""
        last = self.extended - 1
        return (v + 1 if v < last else last - 2), (v - 1 if v > 0 else 2)

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., : self.height, : self.width]

    def _inputs(self, p: int, indices: set[int], run: _Run) -> None:
        """Make the pass-``p`` inputs of ``indices`` (virtual frame indices) known."""
        todo = {v for v in indices if (p, v) not in run.inputs}
        if not todo:
            return
        if p == 1:
            for v in todo:
                run.inputs[(1, v)] = self._frames[self.source[v]]
            return
        self._outputs(p - 1, {self.source[v] for v in todo}, run)
        quantize = self.options.quantize_between_passes
        for v in todo:
            key, out = run.outputs[(p - 1, self.source[v])]
            frame = ((self._crop(out) + 1) / 2).clamp(0, 1)
            if quantize:
                frame = quantize_8bit(frame)
            run.inputs[(p, v)] = (
                digest("in", key, quantize),
                pad_reflect(frame * 2 - 1, self.hp, self.wp),
            )

    def _outputs(self, p: int, indices: set[int], run: _Run) -> None:
        """Make the pass-``p`` outputs of real frames ``indices`` known (blended windows)."""
        todo = {v for v in indices if (p, v) not in run.outputs}
        if not todo:
            return
        windows = self._covering(todo)
        needed = set()
        for s, e in windows:
            for v in range(s, e):
                needed |= {v, *self._neighbours(v)}
        self._inputs(p, needed, run)
        new = [w for w in windows if (p, w) not in run.window_outputs]
        run.windows_total[p] = run.windows_total.get(p, 0) + len(new)
        run.pairs_total[p] = run.pairs_total.get(p, 0) + len(self._pairs_of(new))
        for w in new:
            run.window_outputs[(p, w)] = self._window(p, w, run)
        results = {w: run.window_outputs[(p, w)] for w in windows}
        for v in todo:
            cover = [w for w in windows if w[0] <= v < w[1]]
            weights = [float(window_weights(e - s)[v - s]) for s, e in cover]
            blended = sum(results[w][v - w[0]] * wt for w, wt in zip(cover, weights, strict=True))
            key = digest("out", *((run.window_keys[(p, w)], v - w[0]) for w in cover))
            run.outputs[(p, v)] = (key, blended / sum(weights))

    def _pairs_of(self, windows: list[Window]) -> set[tuple[int, int]]:
        pairs = set()
        for s, e in windows:
            for v in range(s, e):
                nxt, prev = self._neighbours(v)
                pairs |= {(v, nxt), (v, prev)}
        return pairs

    # -- one window --------------------------------------------------------------------------

    def _window(self, p: int, window: Window, run: _Run) -> torch.Tensor:
        """(n, 1, Hp, Wp) pass-``p`` network output of a window, from the cache or computed."""
        model = self.models[0 if p == 1 else 1]
        s, e = window
        keys = [run.inputs[(p, v)][0] for v in range(s, e)]
        mask_keys = [self._mask_key(p, v, run) for v in range(s, e)]
        key = digest("window", id(model), self.params, *keys, *mask_keys)
        run.window_keys[(p, window)] = key
        local: dict[Hashable, torch.Tensor] = {}
        self._check_stop()
        with (
            self.compute_lock,
            torch.inference_mode(),
            autocast(self.options.precision, self.device),
        ):
            out = self.cache.get(key, owner=self.owner)
            if out is not None:
                run.windows_cached += 1
            else:
                out = self._compute_window(p, model, window, run, local)
                self.cache.put(key, out, owner=self.owner)
                run.windows_computed += 1
            if p == 1:  # the first pass's masks and motion are the AOVs
                for v in range(s, e):
                    if v not in run.masks:
                        run.masks[v] = self._mask(1, model, v, run, local).float().cpu()
                    for step in (+1, -1) if run.keep_motion else ():
                        if 0 <= v + step < self.num_frames and (v, step) not in run.motion:
                            run.motion[(v, step)] = (
                                self._flow(1, model, v, v + step, run, local).float().cpu()
                            )
        run.windows_done[p] = run.windows_done.get(p, 0) + 1
        self._report(
            Progress(
                p,
                "restore",
                run.windows_done[p],
                run.windows_total[p],
                frame=self.first_frame + min(e, self.num_frames) - 1,
            )
        )
        return out.float().cpu()

    def _compute_window(
        self, p: int, model: RRTN, window: Window, run: _Run, local: dict[Hashable, torch.Tensor]
    ) -> torch.Tensor:
        s, e = window
        frames = range(s, e)
        self._ensure_flows(
            p,
            model,
            [(v, n) for v in frames for n in self._neighbours(v)]
            + [(v + 1, v) for v in frames[:-1]],
            run,
            local,
        )
        lq = torch.stack([run.inputs[(p, v)][1] for v in frames]).to(self.device)
        masks = torch.stack([self._mask(p, model, v, run, local) for v in frames])
        forward = [self._flow(p, model, v + 1, v, run, local) for v in frames[:-1]]
        backward = [self._flow(p, model, v, v + 1, run, local) for v in frames[:-1]]
        empty = torch.zeros(0, 2, self.hp, self.wp, device=self.device)
        forward_t = (torch.stack(forward) if forward else empty).unsqueeze(0)
        backward_t = (torch.stack(backward) if backward else empty).unsqueeze(0)
        spatial = self._spatial(p, model, frames, lq, masks, run)
        return self._restore_tiled(
            model, lq.unsqueeze(0), masks.unsqueeze(0), forward_t, backward_t, spatial
        )

    def _restore_tiled(
        self,
        model: RRTN,
        lq: torch.Tensor,
        mask: torch.Tensor,
        forward: torch.Tensor,
        backward: torch.Tensor,
        spatial: list[torch.Tensor],
    ) -> torch.Tensor:
        """(1, n, 1, Hp, Wp) window → (n, 1, Hp, Wp) restored, ``tiles_at_once`` tiles at a time
        (batched along N)."""
        _, n, c, hp, wp = lq.shape
        if len(self.tiles) == 1:
            return model.restore(
                lq,
                noise_mask=mask,
                flows_forward=forward,
                flows_backward=backward,
                spatial=spatial,
                on_step=self._check_stop,
            )[0].float()
        out = torch.zeros(n, c, hp, wp, device=lq.device)
        weight_sum = torch.zeros(1, 1, hp, wp, device=lq.device)
        for first in range(0, len(self.tiles), self.tiles_at_once):
            tiles = self.tiles[first : first + self.tiles_at_once]
            restored = model.restore(
                _crops(lq, tiles),
                noise_mask=_crops(mask, tiles),
                flows_forward=_crops(forward, tiles),
                flows_backward=_crops(backward, tiles),
                spatial=[_crops(f, tiles) for f in spatial],
                on_step=self._check_stop,
            )
            weights = self.tile_weights[first : first + self.tiles_at_once]
            for tile, result, weight in zip(tiles, restored, weights, strict=True):
                region = (..., tile.rows, tile.cols)
                out[region] += result.float() * weight
                weight_sum[region] += weight
        return out / weight_sum

    # -- cached pieces -----------------------------------------------------------------------

    def _flow_key(self, p: int, model: RRTN, a: int, b: int, run: _Run) -> str:
        return digest("flow", id(model), self.flow_hw, run.inputs[(p, a)][0], run.inputs[(p, b)][0])

    def _ensure_flows(
        self,
        p: int,
        model: RRTN,
        pairs: list[tuple[int, int]],
        run: _Run,
        local: dict[Hashable, torch.Tensor],
    ) -> None:
        todo = []
        for a, b in dict.fromkeys(pairs):
            key = self._flow_key(p, model, a, b, run)
            if key in local:
                continue
            found = self.cache.get(key, owner=self.owner)
            if found is not None:
                local[key] = found
            else:
                todo.append((a, b, key))
        for i in range(0, len(todo), self.flow_batch):
            self._check_stop()
            chunk = todo[i : i + self.flow_batch]
            used = sorted({v for a, b, _ in chunk for v in (a, b)})  # each frame sent once
            where = {v: k for k, v in enumerate(used)}
            frames = torch.stack([run.inputs[(p, v)][1] for v in used]).to(self.device)
            flows = estimate_flows(
                model, frames, [(where[a], where[b]) for a, b, _ in chunk], size=self.flow_hw
            )
            for (_, _, key), flow in zip(chunk, flows, strict=True):
                local[key] = flow
                self.cache.put(key, flow, owner=self.owner)
            run.flow_pairs[p] = run.flow_pairs.get(p, 0) + len(chunk)
            run.pairs_seen[p] = run.pairs_seen.get(p, 0) + len(chunk)
            self._report(
                Progress(p, "flow", min(run.pairs_seen[p], run.pairs_total[p]), run.pairs_total[p])
            )

    def _flow(
        self, p: int, model: RRTN, a: int, b: int, run: _Run, local: dict[Hashable, torch.Tensor]
    ) -> torch.Tensor:
        key = self._flow_key(p, model, a, b, run)
        if key not in local:
            self._ensure_flows(p, model, [(a, b)], run, local)
        return local[key]

    def _mask_key(self, p: int, v: int, run: _Run) -> str:
        nxt, prev = self._neighbours(v)
        return digest(
            "mask",
            run.inputs[(p, v)][0],
            run.inputs[(p, nxt)][0],
            run.inputs[(p, prev)][0],
            self.flow_hw,
        )

    def _mask(
        self, p: int, model: RRTN, v: int, run: _Run, local: dict[Hashable, torch.Tensor]
    ) -> torch.Tensor:
        """(1, Hp, Wp) noise mask of frame ``v`` at pass ``p``."""
        key = digest(id(model), self._mask_key(p, v, run))
        if key in local:
            return local[key]
        found = self.cache.get(key, owner=self.owner)
        if found is None:
            nxt, prev = self._neighbours(v)
            frames = torch.stack([run.inputs[(p, i)][1] for i in (v, nxt, prev)]).to(self.device)
            found = residual_indicator(
                frames[0:1],
                flow_warp(frames[1:2], self._flow(p, model, v, nxt, run, local)[None]),
                flow_warp(frames[2:3], self._flow(p, model, v, prev, run, local)[None]),
            )[0]
            self.cache.put(key, found, owner=self.owner)
        local[key] = found
        return found

    def _spatial(
        self, p: int, model: RRTN, frames: range, lq: torch.Tensor, masks: torch.Tensor, run: _Run
    ) -> list[torch.Tensor]:
        """The window's (1, F, Hp, Wp) spatial features, the missing ones computed in batches."""
        keys = [
            digest("spatial", id(model), self._mask_key(p, v, run), self.options.precision)
            for v in frames
        ]
        found = [self.cache.get(key, owner=self.owner) for key in keys]
        missing = [i for i, feats in enumerate(found) if feats is None]
        for batch in frame_batches(len(missing), self.hp * self.wp):
            chosen = [missing[j] for j in batch]
            for i, feats in zip(
                chosen, model.spatial_features(lq[chosen], masks[chosen]), strict=True
            ):
                found[i] = feats[None]
                self.cache.put(keys[i], found[i], owner=self.owner)
        return found

    def _motion(self, run: _Run, v: int, step: int) -> torch.Tensor:
        flow = run.motion.get((v, step))
        if flow is None:
            return torch.zeros(2, self.height, self.width)
        return self._crop(flow).contiguous()

    # -- plumbing ----------------------------------------------------------------------------

    def _report(self, event: Progress) -> None:
        if self._progress is not None:
            self._progress(event)

    def _check_stop(self) -> None:
        if self._should_stop is not None and self._should_stop():
            raise RRTNError("restore cancelled", kind=ErrorKind.CANCELLED)

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

    _progress: Callable[[Progress], None] | None = None
    _should_stop: Callable[[], bool] | None = None


def _crops(x: torch.Tensor, tiles: list[Tile]) -> torch.Tensor:
    """(1, …, H, W) → (len(tiles), …, h, w): the tiles of ``x`` as one batch."""
    return torch.cat([x[..., tile.rows, tile.cols] for tile in tiles])


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
