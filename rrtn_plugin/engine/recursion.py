"""One request's recursion passes: each pass's windows run (or found in the cache) and blended.

:class:`Recursion` makes known, on demand, the outputs of any frames at any pass. A pass-p
output frame is the blend of the pass-p windows that cover it (:func:`.windows.window_weights`);
a window needs the pass-p inputs of its frames and of their mask neighbours; the pass-1 inputs
are the given frames, and a later pass's inputs are the previous pass's outputs, clamped to
[0, 1] (and quantized to 8 bits when asked). So asking for pass p of a few frames reaches, pass
by pass back, exactly the windows :func:`.windows.needed_frames` counts.

A window's network output is cached under a key made of its frames' and masks' keys
(:mod:`.keys`), so a window whose inputs have not changed is found, not run. The first pass's
masks and motion are kept as the request's AOVs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import cast

import torch

from rrtn_plugin.engine.cache import WorkCache
from rrtn_plugin.engine.device import autocast
from rrtn_plugin.engine.geometry import pad_reflect
from rrtn_plugin.engine.keys import input_key, output_key, window_key
from rrtn_plugin.engine.metrics import quantize_8bit
from rrtn_plugin.engine.pieces import Inputs, Local, Network, Pieces
from rrtn_plugin.engine.plan import ClipPlan
from rrtn_plugin.engine.store import FrameStore
from rrtn_plugin.engine.tiling import restore_tiled
from rrtn_plugin.engine.windows import Window, window_weights
from rrtn_plugin.options import RestoreOptions
from rrtn_plugin.progress import Progress, check_cancel


class Recursion:
    """The passes of one request over a session's frames.

    Args:
        plan: the plan of the clip (or shot) restored.
        frames, offset: the session's given frames; the plan's index 0 is frame ``offset``.
        networks: the networks of pass 1 and of later passes, with their keys.
        options: the session's options (precision, quantization between passes).
        cache, owner, compute_lock: where work is kept, under whose name, and the lock held
            while the network runs.
        device: where the network runs.
        tile_weights: the tiles' cross-fade weights (:func:`.tiling.tile_weight_maps`).
        keep_motion: keep the first pass's flows to each neighbour.
        progress, should_stop: progress events and cancellation, polled between steps.

    After passes have run, :attr:`inputs` and :attr:`outputs` hold (key, frame) per (pass, frame
    index), :attr:`masks` and :attr:`motion` the first pass's AOVs.
    """

    def __init__(
        self,
        *,
        plan: ClipPlan,
        frames: FrameStore,
        networks: tuple[Network, Network],
        options: RestoreOptions,
        cache: WorkCache,
        owner: str,
        compute_lock: threading.Lock | None,
        device: torch.device,
        tile_weights: list[torch.Tensor],
        offset: int = 0,
        keep_motion: bool,
        progress: Callable[[Progress], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.plan, self.frames, self.networks = plan, frames, networks
        self.options, self.device = options, device
        self.cache, self.owner = cache, owner
        self.compute_lock = compute_lock or contextlib.nullcontext()
        self.tile_weights, self.offset = tile_weights, offset
        self.keep_motion = keep_motion
        self.progress, self.should_stop = progress, should_stop
        self.inputs: Inputs = {}
        self.outputs: Inputs = {}
        self.window_keys: dict[tuple[int, Window], str] = {}
        self.window_outputs: dict[tuple[int, Window], torch.Tensor] = {}
        self.masks: dict[int, torch.Tensor] = {}
        self.motion: dict[tuple[int, int], torch.Tensor] = {}
        self.windows_computed = 0
        self.windows_cached = 0
        self.windows_done: dict[int, int] = {}
        self.windows_total: dict[int, int] = {}
        self.pieces = Pieces(
            plan=plan,
            inputs=self.inputs,
            cache=cache,
            owner=owner,
            device=device,
            precision=options.precision,
            report=self.report,
            check_stop=self.check_stop,
        )

    # -- passes ------------------------------------------------------------------------------

    def make_inputs(self, p: int, indices: set[int]) -> None:
        """Make the pass-``p`` inputs of ``indices`` (virtual frame indices) known."""
        todo = {v for v in indices if (p, v) not in self.inputs}
        if not todo:
            return
        if p == 1:
            for v in todo:
                self.inputs[(1, v)] = self.frames[self.offset + self.plan.source[v]]
            return
        self.make_outputs(p - 1, {self.plan.source[v] for v in todo})
        quantize = self.options.quantize_between_passes
        hp, wp = self.plan.padded_height, self.plan.padded_width
        for v in todo:
            key, out = self.outputs[(p - 1, self.plan.source[v])]
            frame = ((self.plan.crop(out) + 1) / 2).clamp(0, 1)
            if quantize:
                frame = quantize_8bit(frame)
            self.inputs[(p, v)] = (input_key(key, quantize), pad_reflect(frame * 2 - 1, hp, wp))

    def make_outputs(self, p: int, indices: set[int]) -> None:
        """Make the pass-``p`` outputs of real frames ``indices`` known (blended windows)."""
        todo = {v for v in indices if (p, v) not in self.outputs}
        if not todo:
            return
        windows = self.plan.covering(todo)
        needed = set()
        for s, e in windows:
            for v in range(s, e):
                needed |= {v, *self.plan.neighbours(v)}
        self.make_inputs(p, needed)
        new = [w for w in windows if (p, w) not in self.window_outputs]
        self.windows_total[p] = self.windows_total.get(p, 0) + len(new)
        self.pieces.expect_pairs(p, len(self.plan.pairs_of(new)))
        for w in new:
            self.window_outputs[(p, w)] = self.window(p, w)
        results = {w: self.window_outputs[(p, w)] for w in windows}
        for v in todo:
            cover = [w for w in windows if w[0] <= v < w[1]]
            weights = [float(window_weights(e - s)[v - s]) for s, e in cover]
            blended = cast(  # a tensor: every frame is in at least one window
                torch.Tensor,
                sum(results[w][v - w[0]] * wt for w, wt in zip(cover, weights, strict=True)),
            )
            key = output_key((self.window_keys[(p, w)], v - w[0]) for w in cover)
            self.outputs[(p, v)] = (key, blended / sum(weights))

    # -- one window --------------------------------------------------------------------------

    def window(self, p: int, window: Window) -> torch.Tensor:
        """(n, 1, Hp, Wp) pass-``p`` network output of a window, from the cache or computed."""
        net = self.networks[0 if p == 1 else 1]
        s, e = window
        key = window_key(
            net.key,
            self.plan.params,
            [self.inputs[(p, v)][0] for v in range(s, e)],
            [self.pieces.mask_key(p, v) for v in range(s, e)],
        )
        self.window_keys[(p, window)] = key
        local: Local = {}
        self.check_stop()
        with (
            self.compute_lock,
            torch.inference_mode(),
            autocast(self.options.precision, self.device),
        ):
            out = self.cache.get(key, owner=self.owner)
            if out is not None:
                self.windows_cached += 1
            else:
                out = self.compute_window(p, net, window, local)
                self.cache.put(key, out, owner=self.owner)
                self.windows_computed += 1
            if p == 1:  # the first pass's masks and motion are the AOVs
                self._keep_aovs(net, window, local)
        self.windows_done[p] = self.windows_done.get(p, 0) + 1
        self.report(
            Progress(
                p,
                "restore",
                self.windows_done[p],
                self.windows_total[p],
                frame=self.plan.first_frame + min(e, self.plan.num_frames) - 1,
            )
        )
        return out.float().cpu()

    def compute_window(self, p: int, net: Network, window: Window, local: Local) -> torch.Tensor:
        """Run the network on a window: its flows, masks and spatial features, then the tiles."""
        s, e = window
        frames = range(s, e)
        pieces = self.pieces
        pieces.ensure_flows(
            p,
            net,
            [(v, n) for v in frames for n in self.plan.neighbours(v)]
            + [(v + 1, v) for v in frames[:-1]],
            local,
        )
        lq = torch.stack([self.inputs[(p, v)][1] for v in frames]).to(self.device)
        masks = torch.stack([pieces.mask(p, net, v, local) for v in frames])
        forward = [pieces.flow(p, net, v + 1, v, local) for v in frames[:-1]]
        backward = [pieces.flow(p, net, v, v + 1, local) for v in frames[:-1]]
        hp, wp = self.plan.padded_height, self.plan.padded_width
        empty = torch.zeros(0, 2, hp, wp, device=self.device)
        forward_t = (torch.stack(forward) if forward else empty).unsqueeze(0)
        backward_t = (torch.stack(backward) if backward else empty).unsqueeze(0)
        spatial = pieces.spatial(p, net, frames, lq, masks)
        return restore_tiled(
            net.model,
            lq.unsqueeze(0),
            masks.unsqueeze(0),
            forward_t,
            backward_t,
            spatial,
            tiles=self.plan.tiles,
            weights=self.tile_weights,
            at_once=self.plan.tiles_at_once,
            on_step=self.check_stop,
        )

    def _keep_aovs(self, net: Network, window: Window, local: Local) -> None:
        """Keep the first pass's masks (and motion, when asked) of a window's real frames."""
        for v in range(*window):
            if v not in self.masks:
                self.masks[v] = self.pieces.mask(1, net, v, local).float().cpu()
            for step in (+1, -1) if self.keep_motion else ():
                if 0 <= v + step < self.plan.num_frames and (v, step) not in self.motion:
                    self.motion[(v, step)] = (
                        self.pieces.flow(1, net, v, v + step, local).float().cpu()
                    )

    # -- plumbing ----------------------------------------------------------------------------

    def report(self, event: Progress) -> None:
        if self.progress is not None:
            self.progress(event)

    def check_stop(self) -> None:
        check_cancel(self.should_stop)
