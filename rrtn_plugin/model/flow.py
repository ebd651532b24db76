"""Optical flow for RRTN: torchvision's RAFT-large, fed the way the reference feeds its RAFT,
or a classical estimator (OpenCV's DIS) for models trained without RAFT weights.

Both take frames in RRTN's [-1, 1] encoding and return flow on the first image's grid that
warps the second onto it. Which one a network uses is its ``RRTNConfig.flow_source``, recorded
in our checkpoints; the authors' checkpoints use RAFT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.optical_flow import raft_large
from torchvision.models.optical_flow._utils import make_coords_grid, upsample_flow
from torchvision.models.optical_flow.raft import RAFT

from rrtn_plugin.model.choices import FLOW_SOURCES as FLOW_SOURCES
from rrtn_plugin.model.kernels import Kernels
from rrtn_plugin.model.layout import for_convolution

RAFT_MIN_SIDE = 128
"""RAFT's coarsest correlation level is H/64 × W/64; below 128 px it degenerates (NaN flows)."""
RAFT_MULTIPLE = 8


def build_raft() -> nn.Module:
    """An untrained torchvision RAFT-large (weights come from the RRTN checkpoint)."""
    return raft_large(weights=None, progress=False)


class DISFlow(nn.Module):
    """OpenCV's DIS optical flow (medium preset) as a parameter-free module.

    Runs on the CPU whatever the input's device; the result comes back on the input's device.
    """

    def forward(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) × 2 in [-1, 1] → (B, 2, H, W) flow on image1's grid (x first)."""
        dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        first, second = _to_gray8(image1), _to_gray8(image2)
        # OpenCV's stubs omit that the output flow may be None (allocated by calc).
        flows = [dis.calc(a, b, None) for a, b in zip(first, second, strict=True)]  # type: ignore[call-overload]
        out = torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2)
        return out.to(device=image1.device, dtype=torch.float32)


def build_flow_net(source: str) -> nn.Module:
    """The flow estimator named by ``source`` (one of ``FLOW_SOURCES``), untrained."""
    if source == "raft":
        return build_raft()
    if source == "dis":
        return DISFlow()
    raise ValueError(f"unknown flow source {source!r}; expected one of {FLOW_SOURCES}")


def _to_gray8(frames: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] → (B, H, W) uint8 luminance (channel mean for RGB)."""
    gray = frames.detach().float().mean(dim=1)
    codes = ((gray.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return np.ascontiguousarray(codes.cpu().numpy())


def raft_input(lq: torch.Tensor) -> torch.Tensor:
    """Map RRTN's [-1, 1] grayscale or RGB frames to what RAFT saw in the reference.

    The reference multiplies by 255 and RAFT maps x → 2·x/255 − 1, so RAFT sees 2·lq − 1. The
    same arithmetic, in the same order, keeps flows bit-identical for inputs off the 8-bit grid.

    Shapes: (B, 1 or 3, H, W) → (B, 3, H, W).
    """
    if lq.shape[1] == 1:
        lq = lq.expand(-1, 3, -1, -1)
    elif lq.shape[1] != 3:
        raise ValueError(f"RAFT takes 1 or 3 channels, got {lq.shape[1]}")
    return 2 * ((lq * 255) / 255.0) - 1


@torch.no_grad()
def estimate_pair_flows(
    flow_net: nn.Module,
    frames: torch.Tensor,
    pairs: Sequence[tuple[int, int]],
    *,
    num_updates: int = 24,
    kernels: Kernels | None = None,
) -> torch.Tensor:
    """Flows between frames of a clip: for each pair (a, b), the flow on frame a's grid that
    warps frame b onto it.

    RAFT's feature encoder runs once per frame and its context encoder once per frame that
    starts a pair (both treat each image on its own: instance norm, batch norm in eval mode),
    so a frame in four pairs is encoded once instead of four times; the correlation pyramid
    (:class:`CorrelationPyramid`) and the refinement run per pair, the context's share of the
    refinement's gates is computed once (:class:`FixedContextGRU`), and only the final flow is
    upsampled. RAFT's maps are laid out for convolution as ``kernels`` say (default
    :class:`Kernels`; :mod:`rrtn_plugin.model.layout`).
    The flows are torchvision RAFT's last predictions for the same pairs, within float rounding
    (< 1e-4 px).

    Args:
        flow_net: torchvision RAFT in eval mode, or :class:`DISFlow`.
        frames: (T, C, H, W) in RRTN's [-1, 1] encoding; for RAFT, H and W multiples of 8 and
            at least 128.
        pairs: (a, b) indices into ``frames``.

    Returns:
        (P, 2, H, W) flows in pixels, channel 0 horizontal, in the order of ``pairs``.
    """
    if not pairs:
        raise ValueError("no frame pairs given")
    first = [a for a, _ in pairs]
    second = [b for _, b in pairs]
    if not isinstance(flow_net, RAFT):
        return flow_net(frames[first], frames[second])
    h, w = frames.shape[-2:]
    if min(h, w) < RAFT_MIN_SIDE or h % RAFT_MULTIPLE or w % RAFT_MULTIPLE:
        raise ValueError(
            f"RAFT needs H and W multiples of {RAFT_MULTIPLE} and at least "
            f"{RAFT_MIN_SIDE}, got {h}x{w}"
        )
    images = for_convolution(raft_input(frames), kernels=kernels)
    used = sorted(set(first) | set(second))
    features = flow_net.feature_encoder(images[used])
    feature_of = {frame: i for i, frame in enumerate(used)}
    sources = sorted(set(first))
    context_of = {frame: i for i, frame in enumerate(sources)}
    context = flow_net.context_encoder(images[sources])[[context_of[a] for a in first]]
    context = for_convolution(context, kernels=kernels)
    hidden_size = flow_net.update_block.hidden_state_size
    hidden, context = torch.split(context, [hidden_size, context.shape[1] - hidden_size], dim=1)
    hidden, context = torch.tanh(hidden), F.relu(context)
    correlation = CorrelationPyramid(
        features[[feature_of[a] for a in first]],
        features[[feature_of[b] for b in second]],
        levels=flow_net.corr_block.num_levels,
        radius=flow_net.corr_block.radius,
    )
    update = flow_net.update_block
    grus = [
        FixedContextGRU(gru, context)
        for gru in (update.recurrent_block.convgru1, update.recurrent_block.convgru2)
    ]
    coords0 = make_coords_grid(len(pairs), h // 8, w // 8).to(frames.device)
    coords0 = for_convolution(coords0, kernels=kernels)
    coords1 = coords0
    for _ in range(num_updates):
        motion = update.motion_encoder(coords1 - coords0, correlation.lookup(coords1))
        for gru in grus:
            hidden = gru(hidden, motion)
        coords1 = coords1 + update.flow_head(hidden)
    up_mask = None if flow_net.mask_predictor is None else flow_net.mask_predictor(hidden)
    return upsample_flow(
        flow=(coords1 - coords0).contiguous(),
        up_mask=None if up_mask is None else up_mask.contiguous(),
    )


class CorrelationPyramid:
    """RAFT's all-pairs correlation of two feature maps, average-pooled into levels, and its
    lookup in a square window around given positions: torchvision's ``CorrBlock`` as a value
    (the module keeps its pyramid between calls), with each level's sampling grid built in one
    step from tables made once.

    Shapes: features (P, C, h, w) of the pairs' first and second frames; :meth:`lookup` takes
    positions (P, 2, h, w) on the second frame's grid (x first) and returns
    (P, levels · (2·radius + 1)², h, w), laid out channels-last. The window's points are in
    torchvision's order: level, then x offset, then y offset.
    """

    def __init__(
        self, first: torch.Tensor, second: torch.Tensor, *, levels: int, radius: int
    ) -> None:
        if first.shape != second.shape:
            raise ValueError(
                f"feature maps differ in shape: {tuple(first.shape)} and {tuple(second.shape)}"
            )
        p, c, h, w = first.shape
        if min(h, w) < 2**levels:
            raise ValueError(f"{h}x{w} feature maps are too small for {levels} levels")
        volume = torch.bmm(first.flatten(2).transpose(1, 2), second.flatten(2))
        volume = (volume / math.sqrt(c)).view(p * h * w, 1, h, w)
        self.levels = [volume]
        for _ in range(levels - 1):
            self.levels.append(F.avg_pool2d(self.levels[-1], kernel_size=2, stride=2))
        side = 2 * radius + 1
        steps = torch.linspace(-radius, radius, side, device=first.device)
        window = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), dim=-1).view(-1, 2)
        # A window's grid for grid_sample is an affine map of its centre, in normalised
        # coordinates (align_corners: -1 and 1 are the first and last pixel centres, and level l
        # holds positions / 2^l): grid = table + (x, y) @ scales, one matrix product per level.
        self.side = side
        self.scales, self.tables = [], []
        for level, volume in enumerate(self.levels):
            size = torch.tensor(
                [volume.shape[-1] - 1, volume.shape[-2] - 1],
                dtype=torch.float32,
                device=first.device,
            )
            self.tables.append((2 * window / size - 1).flatten())
            self.scales.append(torch.diag(2 / size / 2**level).repeat(1, side * side))

    def lookup(self, coords: torch.Tensor) -> torch.Tensor:
        """Bilinear correlation values around ``coords`` (P, 2, h, w), zero outside the map.

        The sampling positions stay float32 under autocast, as torchvision's do.
        """
        p, _, h, w = coords.shape
        points = coords.float().permute(0, 2, 3, 1).reshape(p * h * w, 2)
        with torch.autocast(coords.device.type, enabled=False):
            grids = [
                torch.addmm(table, points, scale).view(-1, self.side, self.side, 2)
                for scale, table in zip(self.scales, self.tables, strict=True)
            ]
        windows = [
            F.grid_sample(
                volume, grid, mode="bilinear", padding_mode="zeros", align_corners=True
            ).view(p, h, w, -1)
            for volume, grid in zip(self.levels, grids, strict=True)
        ]
        return torch.cat(windows, dim=-1).permute(0, 3, 1, 2)


class ConvGRU(Protocol):
    """What :class:`FixedContextGRU` reads of torchvision's ``ConvGRU`` (untyped there)."""

    convz: nn.Conv2d
    convr: nn.Conv2d
    convq: nn.Conv2d


class FixedContextGRU:
    """One of RAFT's ConvGRUs (torchvision's ``ConvGRU``) for a run of refinements in which the
    context part of its input stays the same.

    The gates convolve [hidden, context, motion]; convolution is linear, so the context's share
    (with the bias) is computed once here instead of at each of the 24 refinements, a third of
    the gates' work, and the update and reset gates run as one convolution.

    Shapes: context (B, Cc, h, w) at construction; hidden (B, Ch, h, w) and motion (B, Cm, h, w)
    → the next hidden state (B, Ch, h, w).
    """

    def __init__(self, gru: ConvGRU, context: torch.Tensor) -> None:
        hidden = gru.convz.out_channels
        cut = (hidden, hidden + context.shape[1])

        def split(conv: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
            weight = conv.weight
            own = torch.cat([weight[:, : cut[0]], weight[:, cut[1] :]], dim=1)
            fixed = F.conv2d(context, weight[:, cut[0] : cut[1]], conv.bias, padding=conv.padding)
            return own, fixed

        weight_z, fixed_z = split(gru.convz)
        weight_r, fixed_r = split(gru.convr)
        weight_q, fixed_q = split(gru.convq)
        self.weight_zr = torch.cat([weight_z, weight_r])
        self.fixed_zr = torch.cat([fixed_z, fixed_r], dim=1)
        # tanh(a) = 2·σ(2a) − 1, with the 2 in the weights (exact): CPU sigmoid is faster.
        self.weight_q, self.fixed_q = 2 * weight_q, 2 * fixed_q
        self.padding = gru.convz.padding
        self.hidden = hidden

    def __call__(self, hidden: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        zr = F.conv2d(torch.cat([hidden, motion], dim=1), self.weight_zr, padding=self.padding)
        z, r = torch.split(torch.sigmoid(zr + self.fixed_zr), self.hidden, dim=1)
        q = (
            2
            * torch.sigmoid(
                F.conv2d(
                    torch.cat([r * hidden, motion], dim=1), self.weight_q, padding=self.padding
                )
                + self.fixed_q
            )
            - 1
        )
        return hidden + z * (q - hidden)
