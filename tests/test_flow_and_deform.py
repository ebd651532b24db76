"""Flow (RAFT per clip, classical DIS) and the grid_sample deformable convolution used on CPU."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY_DIS_CONFIG
from torchvision.ops import deform_conv2d

from rrtn_plugin.model import RRTNConfig, build_rrtn, deform
from rrtn_plugin.model.deform import sampled_deform_conv2d
from rrtn_plugin.model.flow import (
    CorrelationPyramid,
    DISFlow,
    FixedContextGRU,
    build_raft,
    estimate_pair_flows,
    raft_input,
)
from rrtn_plugin.model.kernels import Kernels
from rrtn_plugin.model.warp import flow_warp
from rrtn_plugin.synth.samples import panning_clip

DIS_CONFIG = TINY_DIS_CONFIG


def test_dis_flow_finds_a_known_pan_in_the_warp_convention() -> None:
    clip = panning_clip(2, 64, 80, speed=(2.0, -1.0), specks=0) * 2 - 1
    first, second = clip[0:1, None], clip[1:2, None]
    flow = DISFlow()(first, second)
    assert flow.shape == (1, 2, 64, 80)
    inner = flow[0, :, 12:-12, 12:-12].mean(dim=(1, 2))
    # frame 1 shows frame 0 moved by (-2, +1) px: warping it back needs flow (-2, +1)
    assert inner.tolist() == pytest.approx([-2.0, 1.0], abs=0.1)
    warped = flow_warp(second, flow)
    assert float((warped - first)[..., 12:-12, 12:-12].abs().mean()) < 0.01


def test_a_dis_network_takes_small_frames_and_rejects_unknown_sources() -> None:
    model = build_rrtn(DIS_CONFIG)
    assert DIS_CONFIG.min_side == 16
    assert RRTNConfig().min_side == 128
    out = model(torch.rand(1, 3, 1, 32, 48) * 2 - 1)
    assert out.shape == (1, 3, 1, 32, 48)
    with pytest.raises(ValueError, match="unknown flow source 'pwc'"):
        build_rrtn(RRTNConfig(flow_source="pwc"))


@pytest.mark.parametrize("band_pixels", [1 << 16, 30])
@torch.enable_grad()
def test_sampled_deform_conv_equals_torchvision_values_and_gradients(
    band_pixels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deform, "BAND_PIXELS", band_pixels)  # one band, or one row per band
    torch.manual_seed(0)
    n, c, h, w, groups = 2, 8, 12, 14, 4
    x = torch.randn(n, c, h, w, requires_grad=True)
    offset = (torch.randn(n, 2 * groups * 9, h, w) * 3).requires_grad_()
    weight = torch.randn(5, c, 3, 3, requires_grad=True)
    bias = torch.randn(5, requires_grad=True)
    mask = torch.rand(n, groups * 9, h, w, requires_grad=True)
    inputs = (x, offset, weight, bias, mask)
    ours = sampled_deform_conv2d(x, offset, weight, bias, mask)
    theirs = deform_conv2d(x, offset, weight, bias, padding=(1, 1), mask=mask)
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-5)
    grads_ours = torch.autograd.grad(ours.square().sum(), inputs)
    grads_theirs = torch.autograd.grad(theirs.square().sum(), inputs)
    for a, b in zip(grads_ours, grads_theirs, strict=True):
        assert torch.allclose(a, b, atol=1e-3 * float(b.abs().max()), rtol=1e-4)


def test_alignment_runs_the_sampled_conv_on_cpu_with_torchvisions_result() -> None:
    torch.manual_seed(1)
    model = build_rrtn(DIS_CONFIG)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    lq = torch.rand(1, 4, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        automatic = model(lq)
        model.set_kernels(Kernels(deform="sampled"))
        sampled = model(lq)
        model.set_kernels(Kernels(deform="torchvision"))
        torchvision = model(lq)
    assert torch.equal(automatic, sampled)  # "auto" is the sampled conv on CPU …
    assert not torch.equal(sampled, torchvision)  # … a different kernel …
    assert torch.allclose(sampled, torchvision, atol=1e-4)  # … with the same result


@torch.no_grad()
def test_raft_per_clip_equals_torchvision_raft_per_pair() -> None:
    torch.manual_seed(2)
    flow_net = build_raft().eval()
    flow_net.update_block.flow_head.conv2.weight.mul_(0.2)  # flows of a few px, not 50
    frames = panning_clip(3, 128, 128, seed=6)[:, None] * 2 - 1
    pairs = [(1, 0), (0, 1), (2, 0), (1, 2)]
    ours = estimate_pair_flows(flow_net, frames, pairs, num_updates=4)
    first, second = ([frames[i] for i in side] for side in zip(*pairs, strict=True))
    theirs = flow_net(
        raft_input(torch.stack(first)), raft_input(torch.stack(second)), num_flow_updates=4
    )[-1]
    assert theirs.abs().max().item() > 1.0
    assert (ours - theirs).abs().max().item() < 1e-4


@torch.no_grad()
def test_correlation_pyramid_equals_torchvisions_corr_block() -> None:
    torch.manual_seed(4)
    first, second = torch.randn(3, 32, 16, 20), torch.randn(3, 32, 16, 20)
    # centres inside the map, near its edges and outside it (windows partly or wholly off)
    coords = torch.stack([torch.rand(3, 16, 20) * 30 - 5, torch.rand(3, 16, 20) * 26 - 5], dim=1)
    block = build_raft().corr_block
    block.build_pyramid(first, second)
    expected = block.index_pyramid(centroids_coords=coords)
    got = CorrelationPyramid(first, second, levels=block.num_levels, radius=block.radius).lookup(
        coords
    )
    assert got.shape == expected.shape == (3, 4 * 81, 16, 20)
    scale = expected.abs().max().item()
    assert scale > 1.0
    # grid coordinates rounded in another order: bilinear values a few ulps of the scale apart
    assert (got - expected).abs().max().item() < 1e-5 * scale
    with torch.autocast("cpu", dtype=torch.bfloat16):  # positions stay float32, as theirs do
        block.build_pyramid(first, second)
        expected = block.index_pyramid(centroids_coords=coords)
        got = CorrelationPyramid(
            first, second, levels=block.num_levels, radius=block.radius
        ).lookup(coords)
    assert (got.float() - expected.float()).abs().max().item() < 1e-5 * scale
    with pytest.raises(ValueError, match="too small for 4 levels"):
        CorrelationPyramid(first[..., :8], second[..., :8], levels=4, radius=4)


@torch.no_grad()
def test_fixed_context_gru_equals_torchvisions_gru() -> None:
    torch.manual_seed(3)
    gru = build_raft().update_block.recurrent_block.convgru1
    hidden, context, motion = (
        torch.randn(2, 128, 6, 7),
        torch.randn(2, 128, 6, 7),
        torch.randn(2, 128, 6, 7),
    )
    expected = gru(hidden, torch.cat([context, motion], dim=1))
    got = FixedContextGRU(gru, context)(hidden, motion)
    assert (got - expected).abs().max().item() < 1e-5
    assert (expected - hidden).abs().mean().item() > 0.1
