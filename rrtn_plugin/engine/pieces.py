"""The cached pieces a window's run is built from: flows per frame pair, and noise masks and
spatial features per frame, each looked up in the :class:`WorkCache` before it is computed.

:class:`Pieces` serves one request. Within a window's run, pieces already fetched are kept in
a ``local`` dictionary (so the cache is asked once per piece and window); flows missing from
the cache are estimated in batches of pairs, each frame sent to RAFT once per batch, and
reported as "flow" progress.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import NamedTuple, cast

import torch

from rrtn_plugin.engine.cache import WorkCache
from rrtn_plugin.engine.flows import estimate_flows
from rrtn_plugin.engine.keys import flow_key, mask_key, model_mask_key, spatial_key
from rrtn_plugin.engine.plan import ClipPlan
from rrtn_plugin.model import RRTN, residual_indicator
from rrtn_plugin.model.rrtn import frame_batches
from rrtn_plugin.model.warp import flow_warp
from rrtn_plugin.progress import Progress

Inputs = dict[tuple[int, int], tuple[str, torch.Tensor]]
"""(pass, frame index) → (content key, (1, Hp, Wp) frame in [-1, 1]): a pass's inputs."""
Local = dict[Hashable, torch.Tensor]
"""Pieces already at hand during one window's run, by key."""


class Network(NamedTuple):
    """A network and its name in cache keys (:func:`~rrtn_plugin.engine.keys.model_key`)."""

    model: RRTN
    key: str


class Pieces:
    """Flows, noise masks and spatial features of one request's passes.

    Args:
        plan: the clip's plan (neighbours, flow resolution and batch, padded size).
        inputs: the passes' inputs, filled in by the recursion as it goes.
        cache, owner: where pieces are kept, and under whose name.
        device: where the network runs.
        precision: the options' precision (part of the flows', masks' and features' keys).
        report, check_stop: progress and cancellation.
    """

    def __init__(
        self,
        *,
        plan: ClipPlan,
        inputs: Inputs,
        cache: WorkCache,
        owner: str,
        device: torch.device,
        precision: str,
        report: Callable[[Progress], None],
        check_stop: Callable[[], None],
    ) -> None:
        self.plan, self.inputs = plan, inputs
        self.cache, self.owner = cache, owner
        self.device, self.precision = device, precision
        self.report, self.check_stop = report, check_stop
        self.flow_pairs: dict[int, int] = {}
        """RAFT pair estimations made, per pass."""
        self.pairs_seen: dict[int, int] = {}
        self.pairs_total: dict[int, int] = {}

    def expect_pairs(self, p: int, count: int) -> None:
        """Count ``count`` more frame pairs into pass ``p``'s flow progress total."""
        self.pairs_total[p] = self.pairs_total.get(p, 0) + count

    # -- flows -------------------------------------------------------------------------------

    def flow_key(self, p: int, net: Network, a: int, b: int) -> str:
        first, second = self.inputs[(p, a)][0], self.inputs[(p, b)][0]
        return flow_key(net.key, self.precision, self.plan.flow_size, first, second)

    def ensure_flows(
        self, p: int, net: Network, pairs: list[tuple[int, int]], local: Local
    ) -> None:
        """Make the pass-``p`` flows of ``pairs`` (frame indices) known in ``local``: from the
        cache, else estimated in batches."""
        todo = []
        for a, b in dict.fromkeys(pairs):
            key = self.flow_key(p, net, a, b)
            if key in local:
                continue
            found = self.cache.get(key, owner=self.owner)
            if found is not None:
                local[key] = found
            else:
                todo.append((a, b, key))
        for i in range(0, len(todo), self.plan.flow_batch):
            self.check_stop()
            chunk = todo[i : i + self.plan.flow_batch]
            used = sorted({v for a, b, _ in chunk for v in (a, b)})  # each frame sent once
            where = {v: k for k, v in enumerate(used)}
            frames = torch.stack([self.inputs[(p, v)][1] for v in used]).to(self.device)
            flows = estimate_flows(
                net.model,
                frames,
                [(where[a], where[b]) for a, b, _ in chunk],
                size=self.plan.flow_size,
            )
            for (_, _, key), flow in zip(chunk, flows, strict=True):
                local[key] = flow
                self.cache.put(key, flow, owner=self.owner)
            self.flow_pairs[p] = self.flow_pairs.get(p, 0) + len(chunk)
            self.pairs_seen[p] = self.pairs_seen.get(p, 0) + len(chunk)
            self.report(
                Progress(
                    p, "flow", min(self.pairs_seen[p], self.pairs_total[p]), self.pairs_total[p]
                )
            )

    def flow(self, p: int, net: Network, a: int, b: int, local: Local) -> torch.Tensor:
        """(2, Hp, Wp) pass-``p`` flow on frame ``a``'s grid that warps frame ``b`` onto it."""
        key = self.flow_key(p, net, a, b)
        if key not in local:
            self.ensure_flows(p, net, [(a, b)], local)
        return local[key]

    # -- masks and spatial features ----------------------------------------------------------

    def mask_key(self, p: int, v: int) -> str:
        """The key of frame ``v``'s pass-``p`` noise mask inputs (:func:`.keys.mask_key`)."""
        nxt, prev = self.plan.neighbours(v)
        return mask_key(
            self.inputs[(p, v)][0],
            self.inputs[(p, nxt)][0],
            self.inputs[(p, prev)][0],
            self.plan.flow_size,
        )

    def mask(self, p: int, net: Network, v: int, local: Local) -> torch.Tensor:
        """(1, Hp, Wp) noise mask of frame ``v`` at pass ``p``."""
        key = model_mask_key(net.key, self.mask_key(p, v), self.precision)
        if key in local:
            return local[key]
        found = self.cache.get(key, owner=self.owner)
        if found is None:
            nxt, prev = self.plan.neighbours(v)
            frames = torch.stack([self.inputs[(p, i)][1] for i in (v, nxt, prev)]).to(self.device)
            found = residual_indicator(
                frames[0:1],
                flow_warp(frames[1:2], self.flow(p, net, v, nxt, local)[None]),
                flow_warp(frames[2:3], self.flow(p, net, v, prev, local)[None]),
            )[0]
            self.cache.put(key, found, owner=self.owner)
        local[key] = found
        return found

    def spatial(
        self, p: int, net: Network, frames: range, lq: torch.Tensor, masks: torch.Tensor
    ) -> list[torch.Tensor]:
        """The window's (1, F, Hp, Wp) spatial features, the missing ones computed in batches.

        Args:
            frames: the window's frame indices; lq (n, 1, Hp, Wp) and masks (n, 1, Hp, Wp)
                their frames and noise masks.
        """
        keys = [spatial_key(net.key, self.mask_key(p, v), self.precision) for v in frames]
        found = [self.cache.get(key, owner=self.owner) for key in keys]
        missing = [i for i, feats in enumerate(found) if feats is None]
        pixels = self.plan.padded_height * self.plan.padded_width
        for batch in frame_batches(len(missing), pixels, kernels=net.model.kernels):
            chosen = [missing[j] for j in batch]
            for i, feats in zip(
                chosen, net.model.spatial_features(lq[chosen], masks[chosen]), strict=True
            ):
                found[i] = computed = feats[None]
                self.cache.put(keys[i], computed, owner=self.owner)
        return cast("list[torch.Tensor]", found)  # every missing one computed
