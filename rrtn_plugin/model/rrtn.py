"""The RRTN network: flow, noise mask, second-order bidirectional propagation, reconstruction.

Tensor API (all frames in RRTN's encoding: display-referred luminance mapped to [-1, 1]):

- ``model(lq)``: (N, T, C, H, W) → restored (N, T, C, H, W), the reference forward.
- ``model.compute_flow(lq)``: the reference's flows, each (N, T, 2, H, W), boundary pairs included.
- ``model.noise_mask(lq, flows_forward, flows_backward)``: (N, T, 1, H, W).
- ``model.restore(lq, noise_mask=…, flows_forward=…, flows_backward=…)``: the network after flow
  and mask, given adjacent-pair flows (N, T−1, 2, H, W); the clip engine calls this with flows it
  computed once per pair and masks built from each frame's true neighbours.

``build_rrtn(config, kernels=…)`` builds the network from hyper-parameters, to run with the
given :class:`~rrtn_plugin.model.kernels.Kernels` (``model.set_kernels`` changes them later);
checkpoints are read by :mod:`rrtn_plugin.model.checkpoint`. ``model.fingerprint()`` names the
network's weights and hyper-parameters for cache keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from rrtn_plugin.model.alignment import SecondOrderDeformableAlignment
from rrtn_plugin.model.blocks import ConvPixelShuffle, ConvResBlock
from rrtn_plugin.model.flow import RAFT_MIN_SIDE, build_flow_net, estimate_pair_flows
from rrtn_plugin.model.kernels import Kernels
from rrtn_plugin.model.layout import cat_for_convolution
from rrtn_plugin.model.swin import SwinBackbone
from rrtn_plugin.model.warp import flow_warp

BRANCHES = ("backward_1", "forward_1", "backward_2", "forward_2")
"""Propagation branches in the order they run; each sees the outputs of those before it."""


@dataclass(frozen=True)
class RRTNConfig:
    """Hyper-parameters of an RRTN network; the defaults are the released checkpoints'."""

    in_channels: int = 1
    num_feat: int = 16
    extract_blocks: int = 5
    reconstruct_blocks: int = 5
    embed_dim: int = 64
    depths: tuple[int, ...] = (2, 2, 2)
    num_heads: int = 4
    window_size: int = 8
    mlp_hidden: int = 128
    deform_groups: int = 16
    max_residue_magnitude: float = 10.0
    flow_updates: int = 24
    flow_source: str = "raft"

    @property
    def size_multiple(self) -> int:
        """H and W must be multiples of this (the Swin windows at half resolution)."""
        return 2 * self.window_size

    @property
    def min_side(self) -> int:
        """Smallest H and W the network takes (RAFT's pyramid needs 128 px)."""
        return RAFT_MIN_SIDE if self.flow_source == "raft" else self.size_multiple


def residual_indicator(
    current: torch.Tensor, warped_next: torch.Tensor, warped_previous: torch.Tensor
) -> torch.Tensor:
    """RRTN's noise mask: the geometric mean of the two motion-compensated residuals.

    Damage (dust, scratches) appears in one frame only, so it leaves a residual against both
    neighbours; a residual against one neighbour alone is more likely occlusion.

    Shapes: (B, C, H, W) each → (B, 1, H, W), computed on channel 0.
    """
    return torch.sqrt(
        (warped_next[:, :1] - current[:, :1]).abs()
        * (warped_previous[:, :1] - current[:, :1]).abs()
    )


class RRTN(nn.Module):
    """Recursive Recurrent Transformer Network for old-film restoration (WACV 2024).

    Args:
        flow_net: torchvision RAFT-large, or a classical estimator (``config.flow_source``).
        feat_extract: (N, C+1, H, W) frame and noise mask → (N, F, H, W) spatial features.
        deform_align: one :class:`SecondOrderDeformableAlignment` per branch in ``BRANCHES``.
        backbone: one :class:`SwinBackbone` per branch; branch i takes (2 + i)·F channels.
        reconstruction: (N, 5F, H, W) → (N, F, H, W).
        upsample1, upsample2: F → F convs (pixel shuffle ×1) of the output head.
        conv_hr: F → F conv; conv_last: F → C conv, added to the input frame.
        config: the hyper-parameters the parts were built with.
        kernels: how the network computes (:meth:`set_kernels`); the defaults by default.
    """

    def __init__(
        self,
        *,
        flow_net: nn.Module,
        feat_extract: nn.Module,
        deform_align: nn.ModuleDict,
        backbone: nn.ModuleDict,
        reconstruction: nn.Module,
        upsample1: nn.Module,
        upsample2: nn.Module,
        conv_hr: nn.Module,
        conv_last: nn.Module,
        config: RRTNConfig,
        kernels: Kernels | None = None,
    ) -> None:
        super().__init__()
        for parts, name in ((deform_align, "deform_align"), (backbone, "backbone")):
            if tuple(parts.keys()) != BRANCHES:
                raise ValueError(f"{name} must have the branches {BRANCHES}, got {tuple(parts)}")
        self.config = config
        self.flow_net = flow_net
        self.feat_extract = feat_extract
        self.deform_align = deform_align
        self.backbone = backbone
        self.reconstruction = reconstruction
        self.upsample1 = upsample1
        self.upsample2 = upsample2
        self.conv_hr = conv_hr
        self.conv_last = conv_last
        self.lrelu = nn.LeakyReLU(0.1)
        self._fingerprint: str | None = None
        self.set_kernels(kernels or Kernels())

    # -- kernels and identity ----------------------------------------------------------------

    def set_kernels(self, kernels: Kernels) -> None:
        """Compute with ``kernels`` from now on, in every part that has a choice: the feature
        extraction and reconstruction (layout), each branch's alignment (DCN kernel, layout)
        and Swin backbone (attention, linear layers, layout), RAFT (layout) and the per-frame
        batches. Parts that are not this package's modules keep their own ways."""
        self.kernels = kernels
        parts = (
            self.feat_extract,
            self.reconstruction,
            *self.deform_align.values(),
            *self.backbone.values(),
        )
        for part in parts:
            if isinstance(part, (ConvResBlock, SecondOrderDeformableAlignment, SwinBackbone)):
                part.set_kernels(kernels)

    def fingerprint(self) -> str:
        """A content hash of the network: its hyper-parameters and every state-dict tensor's
        name, dtype, shape and bytes. Networks with equal weights have equal fingerprints,
        whatever object holds them; it names the network in cache keys.

        Computed once, at the first call (the weights are read to the host once), and kept: a
        change of the weights in place afterwards (training, ``.half()``) is not seen, except
        through :meth:`load_state_dict`, which forgets it. The kernels are not part of it.
        """
        if self._fingerprint is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(repr(self.config).encode())
            for name, tensor in self.state_dict().items():
                data = tensor.detach().contiguous().cpu()
                h.update(f"{name}{data.dtype}{tuple(data.shape)}".encode())
                if data.numel():
                    h.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """``nn.Module.load_state_dict``; the network's :meth:`fingerprint` is taken afresh."""
        self._fingerprint = None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # -- validation --------------------------------------------------------------------------

    def check_input(self, lq: torch.Tensor, *, min_frames: int = 3) -> None:
        """Raise ValueError unless ``lq`` is (N, T, C, H, W) with sizes this network can take."""
        if lq.ndim != 5:
            raise ValueError(f"expected lq of shape (N, T, C, H, W), got {tuple(lq.shape)}")
        _, t, c, h, w = lq.shape
        m = self.config.size_multiple
        if c != self.config.in_channels:
            raise ValueError(f"this network takes {self.config.in_channels} channel(s), got {c}")
        if h % m or w % m or min(h, w) < self.config.min_side:
            raise ValueError(
                f"H and W must be multiples of {m} and at least "
                f"{self.config.min_side}, "
                f"got {h}x{w}; pad the frames (the clip engine does)"
            )
        if t < min_frames:
            raise ValueError(f"need at least {min_frames} frames, got {t}")

    def compile_steps(self) -> None:
        """``torch.compile`` the parts that run per frame (feature extraction, alignment, Swin
        backbones, reconstruction), each for static shapes.

        The first run at each frame (or tile) size compiles, which takes tens of seconds; later
        runs are faster (figures in ``bench/speed.py --compile``). RAFT stays eager.
        """
        for part in (
            self.feat_extract,
            *self.deform_align.values(),
            *self.backbone.values(),
            self.reconstruction,
        ):
            part.compile(dynamic=False)

    # -- flow and mask -----------------------------------------------------------------------

    def estimate_pair_flows(
        self, frames: torch.Tensor, pairs: Sequence[tuple[int, int]]
    ) -> torch.Tensor:
        """(T, C, H, W) frames and (a, b) index pairs → (P, 2, H, W): for each pair, the flow
        on frame a's grid that warps frame b onto it (each frame encoded once)."""
        return estimate_pair_flows(
            self.flow_net,
            frames,
            pairs,
            num_updates=self.config.flow_updates,
            kernels=self.kernels,
        )

    def compute_flow(self, lq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference's flows for a clip.

        Args:
            lq: (N, T, C, H, W), T ≥ 3.

        Returns:
            ``flows_forward`` and ``flows_backward``, each (N, T, 2, H, W):
            ``flows_forward[:, i]`` = flow(i+1 → i) for i < T−1 and flow(0 → 2) at T−1;
            ``flows_backward[:, i]`` = flow(i → i+1) for i < T−1 and flow(T−1 → T−3) at T−1,
            where flow(a → b) lives on a's grid and warps b onto a. The boundary entries only
            feed the noise mask.
        """
        self.check_input(lq)
        n, t, c, h, w = lq.shape
        forward = [(i + 1, i) for i in range(t - 1)] + [(0, 2)]
        backward = [(i, i + 1) for i in range(t - 1)] + [(t - 1, t - 3)]
        pairs = [(k * t + a, k * t + b) for k in range(n) for a, b in forward + backward]
        flows = self.estimate_pair_flows(lq.reshape(-1, c, h, w), pairs).view(n, 2, t, 2, h, w)
        return flows[:, 0], flows[:, 1]

    def noise_mask(
        self, lq: torch.Tensor, flows_forward: torch.Tensor, flows_backward: torch.Tensor
    ) -> torch.Tensor:
        """The reference's noise mask, (N, T, 1, H, W), from :meth:`compute_flow`'s flows.

        Frame i is compared with frame i+1 warped by ``flows_backward[:, i]`` and with frame i−1
        warped by ``flows_forward[:, i−1]``; at the clip ends the missing neighbour is replaced
        as the reference does (frame T−3 for the last frame, frame 2 for the first).
        """
        self.check_input(lq)
        n, t, c, h, w = lq.shape
        if flows_forward.shape != (n, t, 2, h, w) or flows_backward.shape != (n, t, 2, h, w):
            raise ValueError(
                f"flows must be {(n, t, 2, h, w)}, got {tuple(flows_forward.shape)} "
                f"and {tuple(flows_backward.shape)}"
            )
        nexts = torch.cat([lq[:, 1:], lq[:, -3:-2]], dim=1)
        previous = torch.cat([lq[:, 2:3], lq[:, :-1]], dim=1)
        previous_flows = torch.cat([flows_forward[:, -1:], flows_forward[:, :-1]], dim=1)
        flat = (-1, c, h, w)
        mask = residual_indicator(
            lq.reshape(flat),
            flow_warp(nexts.reshape(flat), flows_backward.reshape(-1, 2, h, w)),
            flow_warp(previous.reshape(flat), previous_flows.reshape(-1, 2, h, w)),
        )
        return mask.view(n, t, 1, h, w)

    # -- the network after flow --------------------------------------------------------------

    def spatial_features(self, lq: torch.Tensor, noise_mask: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) frames and (N, 1, H, W) masks → (N, F, H, W) spatial features."""
        return self.feat_extract(cat_for_convolution([lq, noise_mask], kernels=self.kernels))

    def restore(
        self,
        lq: torch.Tensor,
        *,
        noise_mask: torch.Tensor,
        flows_forward: torch.Tensor,
        flows_backward: torch.Tensor,
        spatial: list[torch.Tensor] | None = None,
        on_step: Callable[[], None] | None = None,
    ) -> torch.Tensor:
        """Propagate and reconstruct with given flows and mask.

        Args:
            lq: (N, T, C, H, W), T ≥ 1.
            noise_mask: (N, T, 1, H, W).
            flows_forward: (N, T−1, 2, H, W), ``[:, i]`` = flow(i+1 → i).
            flows_backward: (N, T−1, 2, H, W), ``[:, i]`` = flow(i → i+1).
            spatial: the T (N, F, H, W) outputs of :meth:`spatial_features`, when already known.
            on_step: called after each frame of each branch and of the reconstruction (progress,
                cancellation: an exception raised there stops the computation).

        Returns:
            (N, T, C, H, W) restored frames (not clamped).
        """
        self.check_input(lq, min_frames=1)
        n, t, _, h, w = lq.shape
        if noise_mask.shape != (n, t, 1, h, w):
            raise ValueError(f"noise_mask must be {(n, t, 1, h, w)}, got {tuple(noise_mask.shape)}")
        for name, flows in (("flows_forward", flows_forward), ("flows_backward", flows_backward)):
            if flows.shape != (n, t - 1, 2, h, w):
                raise ValueError(f"{name} must be {(n, t - 1, 2, h, w)}, got {tuple(flows.shape)}")
        step = on_step or _no_op
        batches = frame_batches(t, n * h * w, kernels=self.kernels)
        if spatial is None:
            spatial = [
                feats
                for frames in batches
                for feats in _unbatch(
                    self.spatial_features(_batch(lq, frames), _batch(noise_mask, frames)), n
                )
            ]
        elif len(spatial) != t:
            raise ValueError(f"spatial must hold {t} feature maps, got {len(spatial)}")
        branches: dict[str, list[torch.Tensor]] = {}
        for name in BRANCHES:
            flows = flows_backward if name.startswith("backward") else flows_forward
            branches[name] = self._propagate(name, spatial, branches, flows, step)
        outputs = []
        for frames in batches:
            features = [torch.cat([spatial[i] for i in frames])]
            features += [torch.cat([branches[b][i] for i in frames]) for b in BRANCHES]
            outputs += _unbatch(self._reconstruct(_batch(lq, frames), features), n)
            for _ in frames:
                step()
        return torch.stack(outputs, dim=1)

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        """(N, T, C, H, W) in [-1, 1] → restored (N, T, C, H, W), as the reference computes it."""
        flows_forward, flows_backward = self.compute_flow(lq)
        mask = self.noise_mask(lq, flows_forward, flows_backward)
        return self.restore(
            lq,
            noise_mask=mask,
            flows_forward=flows_forward[:, :-1],
            flows_backward=flows_backward[:, :-1],
        )

    def _propagate(
        self,
        name: str,
        spatial: list[torch.Tensor],
        earlier: dict[str, list[torch.Tensor]],
        flows: torch.Tensor,
        step: Callable[[], None],
    ) -> list[torch.Tensor]:
        """Run one propagation branch; returns its (N, F, H, W) output per frame, in frame order.

        Backward branches visit frames T−1 … 0, forward branches 0 … T−1. Each step aligns the
        propagated features of the one or two previously visited frames to the current frame,
        then adds the backbone's residual computed from the current spatial features, the
        earlier branches' outputs at this frame and the aligned features.
        """
        t = len(spatial)
        backward = name.startswith("backward")
        order = range(t - 1, -1, -1) if backward else range(t)
        align, backbone = self.deform_align[name], self.backbone[name]
        feat_prop = spatial[0].new_zeros(spatial[0].shape)
        visited: list[torch.Tensor] = []
        for visit, idx in enumerate(order):
            current = spatial[idx]
            if visit > 0:
                # flows[:, j] is on frame j+1's grid (forward) or frame j's grid (backward).
                flow_n1 = flows[:, idx] if backward else flows[:, idx - 1]
                cond_n1 = flow_warp(feat_prop, flow_n1)
                if visit > 1:
                    feat_n2 = visited[-2]
                    flow_prev = flows[:, idx + 1] if backward else flows[:, idx - 2]
                    flow_n2 = flow_n1 + flow_warp(flow_prev, flow_n1)
                    cond_n2 = flow_warp(feat_n2, flow_n2)
                else:
                    feat_n2 = torch.zeros_like(feat_prop)
                    flow_n2 = torch.zeros_like(flow_n1)
                    cond_n2 = torch.zeros_like(cond_n1)
                feat_prop = align(
                    torch.cat([feat_prop, feat_n2], dim=1),
                    torch.cat([cond_n1, current, cond_n2], dim=1),
                    flow_n1,
                    flow_n2,
                )
            inputs = [current, *(earlier[b][idx] for b in earlier), feat_prop]
            feat_prop = feat_prop + backbone(cat_for_convolution(inputs, kernels=self.kernels))
            visited.append(feat_prop)
            step()
        return visited[::-1] if backward else visited

    def _reconstruct(self, lq: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        """(B, C, H, W) frames and their 5 (B, F, H, W) feature maps (spatial, then each
        branch's) → (B, C, H, W) restored frames."""
        x = self.reconstruction(cat_for_convolution(features, kernels=self.kernels))
        x = self.lrelu(self.upsample1(x))
        x = self.lrelu(self.upsample2(x))
        x = self.lrelu(self.conv_hr(x))
        return self.conv_last(x) + lq


def _no_op() -> None:
    pass


FRAME_BATCH_PIXELS = 1 << 21
"""Pixels the per-frame stages (spatial features, reconstruction) take in one batch."""


def frame_batches(
    frames: int, pixels_per_frame: int, *, kernels: Kernels | None = None
) -> list[range]:
    """Consecutive ranges of ``frames`` frames, each of at most ``kernels.frame_batch`` frames
    (default :class:`Kernels`: 8) and :data:`FRAME_BATCH_PIXELS` pixels (one frame at least)."""
    most = (kernels or Kernels()).frame_batch
    size = max(1, min(most, FRAME_BATCH_PIXELS // max(pixels_per_frame, 1)))
    return [range(i, min(i + size, frames)) for i in range(0, frames, size)]


def _batch(x: torch.Tensor, frames: range) -> torch.Tensor:
    """(N, T, C, H, W) → (len(frames)·N, C, H, W), frame-major."""
    return x[:, frames.start : frames.stop].transpose(0, 1).flatten(0, 1)


def _unbatch(x: torch.Tensor, n: int) -> list[torch.Tensor]:
    """(k·N, C, H, W), frame-major → k tensors of (N, C, H, W)."""
    return list(torch.split(x, n))


def build_rrtn(config: RRTNConfig | None = None, *, kernels: Kernels | None = None) -> RRTN:
    """A freshly initialised RRTN (in eval mode) with the given hyper-parameters, computing
    with ``kernels`` (default :class:`Kernels`)."""
    cfg = config or RRTNConfig()
    f = cfg.num_feat
    if cfg.embed_dim // 4 != f:
        raise ValueError(f"embed_dim // 4 ({cfg.embed_dim // 4}) must equal num_feat ({f})")
    model = RRTN(
        flow_net=build_flow_net(cfg.flow_source),
        feat_extract=ConvResBlock(cfg.in_channels + 1, f, cfg.extract_blocks),
        deform_align=nn.ModuleDict(
            {
                name: SecondOrderDeformableAlignment(
                    f,
                    deform_groups=cfg.deform_groups,
                    max_residue_magnitude=cfg.max_residue_magnitude,
                )
                for name in BRANCHES
            }
        ),
        backbone=nn.ModuleDict(
            {
                name: SwinBackbone(
                    in_channels=(2 + i) * f,
                    embed_dim=cfg.embed_dim,
                    depths=cfg.depths,
                    num_heads=cfg.num_heads,
                    window_size=cfg.window_size,
                    mlp_hidden=cfg.mlp_hidden,
                )
                for i, name in enumerate(BRANCHES)
            }
        ),
        reconstruction=ConvResBlock(5 * f, f, cfg.reconstruct_blocks),
        upsample1=ConvPixelShuffle(f, f),
        upsample2=ConvPixelShuffle(f, f),
        conv_hr=nn.Conv2d(f, f, 3, 1, 1),
        conv_last=nn.Conv2d(f, cfg.in_channels, 3, 1, 1),
        config=cfg,
        kernels=kernels,
    )
    return model.eval()


def build_identity_rrtn(
    config: RRTNConfig | None = None, *, kernels: Kernels | None = None
) -> RRTN:
    """An RRTN whose output equals its input exactly (its last conv is zero).

    Flow and noise mask are still computed (by an untrained RAFT), so every stage runs: for
    testing the plumbing around the network, and for running without trained weights.
    """
    model = build_rrtn(config, kernels=kernels)
    nn.init.zeros_(cast(torch.Tensor, model.conv_last.weight))
    nn.init.zeros_(cast(torch.Tensor, model.conv_last.bias))
    return model
