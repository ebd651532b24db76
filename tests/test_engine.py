"""The clip engine on clips of awkward sizes and lengths, with real networks on the CPU."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from helpers import network_options

from rrtn_plugin.engine import psnr_8bit, restore_clip
from rrtn_plugin.engine.device import cpu_has_bf16
from rrtn_plugin.engine.flows import estimate_flows, flow_size
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.model import RRTN, build_rrtn
from rrtn_plugin.progress import Progress
from rrtn_plugin.synth.samples import panning_clip as moving_clip

ONE_PASS = network_options(max_passes=1)


@pytest.mark.slow
def test_17_frames_of_200x300_restore_to_their_shape(golden_model: RRTN) -> None:
    clip = moving_clip(17, 200, 300)
    result = restore_clip(clip, first=golden_model, options=ONE_PASS)
    assert result.frames.shape == (17, 200, 300)
    assert result.noise_mask.shape == (17, 200, 300)
    assert torch.isfinite(result.frames).all()
    assert result.flow_pairs == [2 * 16 + 2]
    # The network changed the frames, and the mask lit up on the one-frame specks.
    assert (result.frames - clip).abs().mean() > 1e-3
    assert result.noise_mask.max() > 0.2


def test_2_frames_of_130x130_restore_to_their_shape(golden_model: RRTN) -> None:
    clip = moving_clip(2, 130, 130)
    result = restore_clip(clip, first=golden_model, options=ONE_PASS)
    assert result.frames.shape == (2, 130, 130)
    assert torch.isfinite(result.frames).all()
    assert result.windows == [(0, 3)]  # extended to 3 frames by temporal reflection


def test_one_tiny_frame(small_model: RRTN) -> None:
    clip = torch.rand(1, 17, 23)
    result = restore_clip(clip, first=small_model, options=ONE_PASS)
    assert result.frames.shape == (1, 17, 23)
    assert torch.isfinite(result.frames).all()


@pytest.mark.slow
def test_windows_change_frames_within_tolerance(golden_model: RRTN) -> None:
    """Stated tolerance: with 6-frame windows overlapping by 3 (the shortest sensible split)
    frames differ from a single 12-frame window by at most 0.03 in [0, 1] and on average by
    less than a tenth of what the network changes. Measured: max 0.016, mean 0.0053 vs 0.066.
    """
    clip = moving_clip(12, 128, 160, seed=3)
    whole = restore_clip(clip, first=golden_model, options=network_options(max_passes=1, window=12))
    split = restore_clip(
        clip, first=golden_model, options=network_options(max_passes=1, window=6, overlap=3)
    )
    assert split.windows == [(0, 6), (3, 9), (6, 12)]
    assert split.flow_pairs == whole.flow_pairs == [2 * 11 + 2]  # each pair once
    diff = (whole.frames - split.frames).abs()
    change = (whole.frames - clip).abs().mean()
    assert diff.max() <= 0.03
    assert diff.flatten(1).mean(dim=1).max() < 0.1 * change
    assert torch.equal(whole.noise_mask, split.noise_mask)  # masks use true neighbours


def test_tiles_are_cross_faded(small_model: RRTN) -> None:
    """Tiled and whole-frame results differ only near the tile borders, by little."""
    clip = moving_clip(3, 256, 256, seed=5)
    whole = restore_clip(clip, first=small_model, options=network_options(max_passes=1, tile=0))
    tiled = restore_clip(
        clip, first=small_model, options=network_options(max_passes=1, tile=160, tile_overlap=32)
    )
    assert whole.tiles == 1
    assert tiled.tiles == 4
    diff = (whole.frames - tiled.frames).abs()
    change = (whole.frames - clip).abs().mean()
    assert diff.mean() < 0.05 * change
    assert diff[:, :64, :64].max() < 1e-5  # far from every tile border: identical


def test_recursion_runs_second_network_until_psnr_is_reached(small_model: RRTN) -> None:
    torch.manual_seed(11)
    second = build_rrtn(small_model.config)
    with torch.no_grad():
        for p in second.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    clip = moving_clip(4, 128, 128, seed=1)
    three = restore_clip(
        clip, first=small_model, second=second, options=network_options(max_passes=3, stop_psnr=200)
    )
    assert len(three.pass_psnr) == 3
    # Pass by pass by hand: the first network once, then the second on the clamped output.
    step = restore_clip(clip, first=small_model, options=ONE_PASS)
    assert step.pass_psnr[0] == pytest.approx(three.pass_psnr[0])
    for expected_psnr in three.pass_psnr[1:]:
        step = restore_clip(step.frames.clamp(0, 1), first=second, options=ONE_PASS)
        assert step.pass_psnr[0] == pytest.approx(expected_psnr)
    assert torch.allclose(step.frames, three.frames, atol=1e-6)
    once = restore_clip(
        clip, first=small_model, second=second, options=network_options(max_passes=3, stop_psnr=0.0)
    )
    assert len(once.pass_psnr) == 1


def test_cancel_stops_at_the_next_step(small_model: RRTN) -> None:
    calls = 0

    def should_stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 5

    with pytest.raises(RRTNError) as info:
        restore_clip(
            moving_clip(6, 128, 128), first=small_model, options=ONE_PASS, should_stop=should_stop
        )
    assert info.value.kind is ErrorKind.CANCELLED
    assert calls == 6


def test_progress_reports_flows_and_windows(small_model: RRTN) -> None:
    events: list[Progress] = []
    restore_clip(
        moving_clip(8, 128, 128),
        first=small_model,
        options=network_options(max_passes=1, window=4, overlap=2),
        progress=events.append,
    )
    restores = [(e.done, e.total, e.frame) for e in events if e.stage == "restore"]
    assert restores == [(1, 3, 3), (2, 3, 5), (3, 3, 7)]  # windows (0,4) (2,6) (4,8)
    flows = [e for e in events if e.stage == "flow"]
    assert flows
    assert flows[-1].done == flows[-1].total == 16


def test_motion_is_the_flow_to_each_neighbour(small_model: RRTN) -> None:
    clip = moving_clip(4, 128, 128)
    result = restore_clip(
        clip, first=small_model, options=network_options(max_passes=1, keep_motion=True)
    )
    assert result.motion_forward is not None
    assert result.motion_backward is not None
    lq = clip[:, None] * 2 - 1
    expected = small_model.estimate_pair_flows(lq[1:3], [(0, 1)])[0]
    assert torch.allclose(result.motion_forward[1], expected, atol=1e-5)
    assert torch.count_nonzero(result.motion_forward[3]) == 0
    assert torch.count_nonzero(result.motion_backward[0]) == 0


def test_flow_is_estimated_at_capped_resolution_and_scaled_back(small_model: RRTN) -> None:
    assert flow_size(1088, 1920, 1 << 20) == (768, 1360)
    assert flow_size(256, 256, None) == (256, 256)
    frames = moving_clip(3, 256, 384)[:, None] * 2 - 1
    size = flow_size(256, 384, 128 * 192)
    assert size == (128, 192)
    flow = estimate_flows(small_model, frames, [(0, 1)], size=size)
    small = F.interpolate(frames, size=(128, 192), mode="bilinear", antialias=True)
    low = small_model.estimate_pair_flows(small[0:2], [(0, 1)])
    expected = F.interpolate(low, size=(256, 384), mode="bilinear") * 2
    assert torch.allclose(flow, expected, atol=1e-5)


def test_psnr_8bit() -> None:
    a = torch.full((2, 4, 4), 100 / 255)
    assert psnr_8bit(a, a + 1 / 255) == pytest.approx(20 * math.log10(255))
    assert psnr_8bit(a, a + 0.1 / 255) == math.inf  # equal after rounding to 8 bits


def test_bad_clips_and_options_are_named(small_model: RRTN) -> None:
    clip = torch.rand(4, 128, 128)
    clip[2, 5, 5] = math.nan
    with pytest.raises(RRTNError, match=r"frame\(s\) \[2\]"):
        restore_clip(clip, first=small_model)
    with pytest.raises(RRTNError, match=r"\(T, H, W\)"):
        restore_clip(torch.rand(4, 3, 128, 128), first=small_model)
    with pytest.raises(RRTNError, match="overlap"):
        restore_clip(
            torch.rand(4, 128, 128),
            first=small_model,
            options=network_options(window=10, overlap=10),
        )
    with pytest.raises(RRTNError, match="tile"):
        restore_clip(torch.rand(4, 128, 128), first=small_model, options=network_options(tile=100))
    if not torch.cuda.is_available():
        with pytest.raises(RRTNError, match="no usable CUDA"):
            restore_clip(
                torch.rand(4, 128, 128), first=small_model, options=network_options(device="cuda")
            )
    with pytest.raises(RRTNError, match="fp16 needs a CUDA"):
        restore_clip(
            torch.rand(4, 128, 128),
            first=small_model,
            options=network_options(precision="fp16", device="cpu"),
        )


BF16_SCRIPT = """
import json, torch
from rrtn_plugin.engine import RestoreOptions, restore_clip
from rrtn_plugin.engine.device import cpu_has_bf16
from rrtn_plugin.model import RRTNConfig, build_rrtn
from rrtn_plugin.synth.samples import panning_clip
if not cpu_has_bf16():
    print(json.dumps(None))
    raise SystemExit
torch.manual_seed(8)
model = build_rrtn(RRTNConfig(num_feat=8, embed_dim=32, depths=(1,), num_heads=2, mlp_hidden=32,
                              extract_blocks=1, reconstruct_blocks=1, flow_source="dis"))
with torch.no_grad():
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.02)
clip = panning_clip(6, 128, 128, seed=3)
out = {precision: restore_clip(clip, first=model, options=RestoreOptions(
    max_passes=1, device="cpu", precision=precision, cuts=False, tone_guard="off")).frames
    for precision in ("fp32", "bf16")}
diff = (out["bf16"] - out["fp32"]).abs()
print(json.dumps({"max": diff.max().item(), "mean": diff.mean().item(),
                  "change": (out["fp32"] - clip).abs().mean().item()}))
"""


def test_bf16_on_cpu_stays_close_to_fp32() -> None:
    # The tests cap oneDNN at AVX2 (conftest), where bf16 has no kernels: run uncapped.
    env = {k: v for k, v in os.environ.items() if k != "DNNL_MAX_CPU_ISA"}
    child = subprocess.run(
        [sys.executable, "-c", BF16_SCRIPT],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    figures = json.loads(child.stdout.splitlines()[-1])
    if figures is None:
        pytest.skip("this CPU has no bf16 kernels in oneDNN")
    assert 0 < figures["max"] < 0.01
    assert figures["mean"] < 1e-3
    assert figures["change"] > 10 * figures["mean"]


def test_bf16_without_cpu_kernels_is_refused(small_model: RRTN) -> None:
    if cpu_has_bf16():
        pytest.skip("oneDNN has bf16 kernels here (the tests normally cap it at AVX2)")
    with pytest.raises(RRTNError, match="bf16 on the CPU needs AVX-512"):
        restore_clip(
            torch.rand(4, 128, 128),
            first=small_model,
            options=network_options(precision="bf16", device="cpu"),
        )
