"""Sessions: repeated, widened and changed requests reuse exactly the work that still holds."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from helpers import network_options, session_for

from rrtn_plugin.engine import ClipSession, WorkCache
from rrtn_plugin.engine.keys import model_key
from rrtn_plugin.engine.memory import window_fits
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.model import RRTN
from rrtn_plugin.synth.samples import panning_clip

OPTIONS = network_options(window=6, overlap=3, max_passes=1, device="cpu")


def test_session_matches_the_network_run_on_the_whole_clip(small_model: RRTN) -> None:
    """A 12-frame clip in one 12-frame window is one run of the network: the session's frames
    equal ``model(lq)`` on the padded clip (the engine's own path, compared with the model's)."""
    clip = panning_clip(12, 128, 128, seed=4)
    options = replace(OPTIONS, window=12, overlap=None)
    session = session_for(small_model, clip, options=options, first_frame=0)
    assert session.windows == [(0, 12)]  # windows lie on a grid anchored at frame 0
    result = session.restore(range(12))
    with torch.inference_mode():
        direct = small_model(clip[None, :, None] * 2 - 1)[0, :, 0]
    ours = torch.stack([result.frames[f] for f in range(12)]) * 2 - 1
    assert float((ours - direct).abs().max()) <= 1e-4


def test_asking_again_recomputes_nothing(small_model: RRTN) -> None:
    session = session_for(small_model, panning_clip(12, 128, 128, seed=4), options=OPTIONS)
    first = session.restore(range(1003, 1009))
    again = session.restore(range(1003, 1009))
    assert first.windows_computed > 0
    assert (again.windows_computed, again.flow_pairs) == (0, [0])
    assert again.windows_cached == first.windows_computed
    for f in range(1003, 1009):
        assert torch.equal(first.frames[f], again.frames[f])


def test_widening_computes_only_the_new_windows(small_model: RRTN) -> None:
    session = session_for(small_model, panning_clip(15, 128, 128, seed=4), options=OPTIONS)
    # windows on the grid: (1001,1005) (1002,1008) (1005,1011) (1008,1014) (1011,1016)
    assert session.restore([1005]).windows_computed == 2
    wider = session.restore(range(1005, 1012))
    assert (wider.windows_cached, wider.windows_computed) == (2, 2)


def test_a_changed_frame_invalidates_exactly_its_windows(small_model: RRTN) -> None:
    clip = panning_clip(15, 128, 128, seed=4)
    session = session_for(small_model, clip, options=OPTIONS)
    before = session.restore(range(1001, 1016))
    assert not session.put_frame(1003, clip[2].clone())  # same content: nothing changes
    assert session.put_frame(1003, (clip[2] * 0.9).contiguous())
    after = session.restore(range(1001, 1016))
    # Frame 1003 and its mask neighbours 1002/1004 lie in windows (1001,1005) and (1002,1008).
    assert (after.windows_computed, after.windows_cached) == (2, 3)
    # 1003 with 1002 and 1004, both ways, and 1001 -> 1003 (the first frame's mask looks at
    # frame 3 of the clip, as the reference's does)
    assert after.flow_pairs == [5]
    assert torch.equal(after.frames[1015], before.frames[1015])
    assert not torch.equal(after.frames[1003], before.frames[1003])


def test_recursion_needs_a_window_more_per_pass(small_model: RRTN) -> None:
    clip = panning_clip(40, 128, 128, seed=2)
    options = network_options(window=6, overlap=3, max_passes=2, stop_psnr=200, device="cpu")
    session = session_for(small_model, clip, options=options, first_frame=0)
    # Pass 2 of frame 20 runs windows (15,21) and (18,24): frames 15-23 and mask neighbours
    # 14 and 24, whose pass-1 outputs come from windows (9,15) ... (24,30), neighbours 8, 30.
    assert session.needed_frames([20]) == list(range(8, 31))
    fresh = session_for(small_model, clip, options=options, first_frame=0, given=range(10, 29))
    assert fresh.missing_frames([20]) == [8, 9, 29, 30]
    with pytest.raises(RRTNError, match="frames not given to the session: 8-9, 29-30") as info:
        fresh.restore([20])
    assert info.value.kind is ErrorKind.NOT_FOUND
    result = session.restore([20])
    assert len(result.pass_psnr) == 2
    assert result.windows_computed == 6 + 2


def test_sessions_share_a_cache(small_model: RRTN) -> None:
    cache = WorkCache(device=torch.device("cpu"), device_budget=1 << 30)
    clip = panning_clip(12, 128, 128, seed=4)
    a = session_for(small_model, clip, cache=cache, options=OPTIONS)
    b = session_for(small_model, clip, cache=cache, options=OPTIONS)
    a.restore(range(1001, 1013))
    shared = b.restore(range(1001, 1013))
    assert shared.windows_computed == 0


def perturbed(model: RRTN, seed: int) -> RRTN:
    """A copy of ``model`` with other weights (loaded, as a checkpoint would be)."""
    generator = torch.Generator().manual_seed(seed)
    copied = copy.deepcopy(model)
    copied.load_state_dict(
        {
            k: v + 0.01 * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v
            for k, v in model.state_dict().items()
        }
    )
    return copied


def test_cache_keys_name_the_weights_not_the_model_object(small_model: RRTN) -> None:
    cache = WorkCache(device=torch.device("cpu"), device_budget=1 << 30)
    clip = panning_clip(4, 128, 128, seed=4)
    frames = range(1001, 1005)
    twin = copy.deepcopy(small_model)  # another object with equal weights: the same keys
    assert twin is not small_model
    assert model_key(twin) == model_key(small_model)
    first = session_for(small_model, clip, cache=cache, options=OPTIONS).restore(frames)
    shared = session_for(twin, clip, cache=cache, options=OPTIONS).restore(frames)
    assert (shared.windows_computed, shared.windows_cached, shared.flow_pairs) == (0, 1, [0])
    other = perturbed(small_model, seed=1)  # other weights: none of the work
    assert model_key(other) != model_key(small_model)
    fresh = session_for(other, clip, cache=cache, options=OPTIONS).restore(frames)
    assert (fresh.windows_computed, fresh.windows_cached) == (1, 0)
    assert fresh.flow_pairs == first.flow_pairs
    assert not torch.equal(fresh.frames[1001], first.frames[1001])


def test_a_replaced_model_at_a_reused_id_finds_no_stale_work(small_model: RRTN) -> None:
    cache = WorkCache(device=torch.device("cpu"), device_budget=1 << 30)
    clip = panning_clip(4, 128, 128, seed=4)
    frames = range(1001, 1005)
    model = perturbed(small_model, seed=2)
    address = id(model)
    session_for(model, clip, cache=cache, options=OPTIONS).restore(frames)
    # The same object, so the same id(), given other weights: what a freed model's id taken
    # by a new one would look like to keys made of id().
    model.load_state_dict(perturbed(small_model, seed=3).state_dict())
    assert id(model) == address
    replaced = session_for(model, clip, cache=cache, options=OPTIONS).restore(frames)
    assert (replaced.windows_computed, replaced.windows_cached) == (1, 0)
    alone = session_for(model, clip, options=OPTIONS).restore(frames)  # a cache of its own
    for f in frames:
        assert torch.equal(replaced.frames[f], alone.frames[f])


def test_cache_evicts_least_recently_used_device_to_host_to_nothing() -> None:
    cache = WorkCache(device=torch.device("cpu"), device_budget=800, host_budget=800)
    for i in range(5):  # 400 bytes each
        cache.put(("k", i), torch.zeros(100), owner="s")
    usage = cache.usage("s")
    assert (usage.device_bytes, usage.host_bytes, usage.entries) == (800, 800, 4)
    assert cache.get(("k", 0), owner="s") is None  # dropped
    assert cache.get(("k", 1), owner="s") is not None  # was on host, back on the device
    assert cache.usage().hits == 1
    cache.release("s")
    assert cache.usage("s").entries == 0
    single = WorkCache(device=torch.device("cpu"), device_budget=800)
    for i in range(3):
        single.put(("k", i), torch.zeros(100), owner="s")
    assert single.usage("s").entries == 2
    assert single.get(("k", 0), owner="s") is None


def test_bad_frames_are_named(small_model: RRTN) -> None:
    session = session_for(small_model, panning_clip(4, 128, 128), options=OPTIONS)
    with pytest.raises(RRTNError, match="frame 1010 is outside the session's clip 1001-1004"):
        session.put_frame(1010, torch.zeros(128, 128))
    with pytest.raises(RRTNError, match="frame 1002 is"):
        session.put_frame(1002, torch.zeros(64, 128))
    with pytest.raises(RRTNError, match="NaN"):
        session.put_frame(1002, torch.full((128, 128), float("nan")))


def test_a_tight_memory_budget_tiles_then_shortens_the_windows(
    small_model: RRTN, caplog: pytest.LogCaptureFixture
) -> None:
    # 128x128 frames are one 128px tile already, so a budget too small for 30 frames of them
    # shortens the window (keeping its overlap in proportion) and says so.
    budget = 500 << 20
    assert not window_fits(30, 128, 128, tile=128, budget=budget)
    cache = WorkCache(device=torch.device("cpu"), device_budget=1 << 30)
    options = network_options(
        window=30, overlap=15, max_passes=1, device="cpu", memory_budget=budget
    )
    session = ClipSession(
        first_frame=0,
        num_frames=60,
        height=128,
        width=128,
        first=small_model,
        options=options,
        cache=cache,
    )
    length = session.window_length
    assert 6 <= length < 30
    assert window_fits(length, 128, 128, tile=None, budget=budget)
    assert not window_fits(length + 1, 128, 128, tile=None, budget=budget)
    assert session.window_overlap == 15 * length // 30
    assert session.windows[0] == (0, length)
    assert f"using {length}-frame windows" in caplog.text
    roomy = ClipSession(
        first_frame=0,
        num_frames=60,
        height=128,
        width=128,
        first=small_model,
        options=network_options(window=30, max_passes=1, device="cpu", memory_budget=8 << 30),
        cache=cache,
    )
    assert roomy.window_length == 30
    assert len(roomy.tiles) == 1


def test_a_fixed_window_is_never_shortened(small_model: RRTN) -> None:
    # The budget that shortens 30-frame windows above makes a fixed window fail, naming why.
    tight = network_options(
        window=30,
        overlap=15,
        max_passes=1,
        device="cpu",
        memory_budget=500 << 20,
        fixed_window=True,
    )
    cache = WorkCache(device=torch.device("cpu"), device_budget=1 << 30)
    with pytest.raises(RRTNError, match="window is fixed") as caught:
        ClipSession(
            first_frame=0,
            num_frames=60,
            height=128,
            width=128,
            first=small_model,
            options=tight,
            cache=cache,
        )
    assert caught.value.kind == ErrorKind.OUT_OF_MEMORY
    roomy = ClipSession(
        first_frame=0,
        num_frames=60,
        height=128,
        width=128,
        first=small_model,
        options=replace(tight, memory_budget=8 << 30),
        cache=cache,
    )
    assert (roomy.window_length, roomy.window_overlap) == (30, 15)


def test_tiles_batched_together_give_the_tile_by_tile_result(small_model: RRTN) -> None:
    # 9 tiles of 128 on 256x256 (GPU sessions batch as many as fit): batches of 4, 4 and 1.
    clip = panning_clip(4, 256, 256, seed=6)
    options = replace(OPTIONS, tile=128, tile_overlap=32)
    one = session_for(small_model, clip, options=options)
    batched = session_for(small_model, clip, options=options)
    assert (len(one.tiles), one.tiles_at_once) == (9, 1)  # on CPU: one at a time
    batched.tiles_at_once = 4
    a, b = one.restore(range(1001, 1005)), batched.restore(range(1001, 1005))
    diff = max((a.frames[f] - b.frames[f]).abs().max().item() for f in a.frames)
    assert diff < 1e-5
    assert max((a.frames[f] - clip[f - 1001]).abs().mean().item() for f in a.frames) > 1e-3
