"""Padding, tiles, windows and the memory rule: the engine's arithmetic."""

from __future__ import annotations

import itertools

import pytest
import torch

from rrtn_plugin.engine.geometry import (
    pad_reflect,
    padded_size,
    plan_tiles,
    reflect_indices,
    tile_weights,
)
from rrtn_plugin.engine.memory import (
    WINDOW_BYTES_PER_PIXEL,
    Schedule,
    plan_memory,
    plan_schedule,
    restorer_bytes,
    tiles_at_once,
    window_fits,
)
from rrtn_plugin.engine.windows import plan_windows, window_weights
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.options import RestoreOptions


def test_reflect_indices_mirror_and_repeat() -> None:
    assert reflect_indices(3, 8).tolist() == [0, 1, 2, 1, 0, 1, 2, 1]
    assert reflect_indices(1, 3).tolist() == [0, 0, 0]
    assert reflect_indices(2, 3).tolist() == [0, 1, 0]


def test_padded_size() -> None:
    assert padded_size(200, multiple=16, minimum=128) == 208
    assert padded_size(130, multiple=16, minimum=128) == 144
    assert padded_size(20, multiple=16, minimum=128) == 128
    assert padded_size(256, multiple=16, minimum=128) == 256


def test_pad_reflect_keeps_the_frame_and_mirrors_the_border() -> None:
    x = torch.arange(12.0).view(1, 3, 4)
    padded = pad_reflect(x, 5, 7)
    assert torch.equal(padded[..., :3, :4], x)
    assert padded[0, 3].tolist() == [4.0, 5.0, 6.0, 7.0, 6.0, 5.0, 4.0]  # row 1 mirrored
    assert padded[0, :, 4].tolist() == [2.0, 6.0, 10.0, 6.0, 2.0]


def test_tiles_cover_the_frame_with_the_overlap() -> None:
    tiles = plan_tiles(300, 500, tile=160, overlap=32)
    covered = torch.zeros(300, 500)
    for t in tiles:
        assert (t.height, t.width) == (160, 160)
        covered[t.rows, t.cols] += 1
    assert covered.min() >= 1
    assert plan_tiles(300, 500, tile=None, overlap=32) == [
        plan_tiles(300, 500, tile=512, overlap=32)[0]
    ]


def test_tile_weights_ramp_only_on_inner_edges() -> None:
    tiles = plan_tiles(256, 256, tile=160, overlap=32)
    total = torch.zeros(256, 256)
    for t in tiles:
        w = tile_weights(t, 256, 256, overlap=32)
        total[t.rows, t.cols] += w
        if t.top == 0 and t.left == 0:
            assert w[0, 0] == 1
            assert w[-1, -1] < 0.02
    assert total.min() > 0.5  # every pixel is well covered


def test_windows_follow_the_reference_schedule_on_a_fixed_grid() -> None:
    assert plan_windows(0, 20, length=30, overlap=15) == [(0, 20)]
    assert plan_windows(0, 36, length=30, overlap=15) == [(0, 30), (15, 36)]
    assert plan_windows(0, 75, length=30, overlap=15) == [(0, 30), (15, 45), (30, 60), (45, 75)]
    for start in range(-40, 40, 7):
        for stop in range(start + 1, start + 130, 5):
            windows = plan_windows(start, stop, length=30, overlap=15)
            assert windows[0][0] == start
            assert windows[-1][1] == stop
            assert all(0 < e - s <= 30 for s, e in windows)
            assert all(a[1] - b[0] >= 15 for a, b in itertools.pairwise(windows))
            # the reference's work: T + (n - 1) * overlap frames
            work = sum(e - s for s, e in windows)
            assert work == stop - start + (len(windows) - 1) * 15
    with pytest.raises(ValueError, match="overlap"):
        plan_windows(0, 40, length=10, overlap=10)
    assert window_weights(6).tolist() == [1, 2, 3, 3, 2, 1]


def test_windows_are_the_grid_windows_not_inside_another() -> None:
    for start, stop, length, overlap in [
        (0, 20, 30, 15),
        (3, 97, 7, 3),
        (-5, 61, 6, 5),
        (1001, 1130, 30, 15),
        (10, 14, 6, 3),
    ]:
        step = length - overlap
        grid = {
            (max(start, k * step), min(stop, k * step + length))
            for k in range(start // step - length, stop // step + 1)
        }
        grid = {(lo, hi) for lo, hi in grid if hi > lo}
        expected = sorted(
            w for w in grid if not any(o != w and o[0] <= w[0] and w[1] <= o[1] for o in grid)
        )
        assert plan_windows(start, stop, length=length, overlap=overlap) == expected


def test_clips_sharing_frames_share_their_inner_windows() -> None:
    short = plan_windows(1001, 1101, length=30, overlap=15)
    wide = plan_windows(990, 1130, length=30, overlap=15)
    assert set(short[1:-1]) <= set(wide)
    assert short[1:-1] == [(1005, 1035), (1020, 1050), (1035, 1065), (1050, 1080), (1065, 1095)]


def test_memory_rule_tiles_only_when_needed_and_shortens_windows_last() -> None:
    assert plan_memory(30, 368, 480, budget=8 << 30) == (30, None)
    need = restorer_bytes(30, 1088, 1920) + 30 * 1088 * 1920 * WINDOW_BYTES_PER_PIXEL
    window, tile = plan_memory(30, 1088, 1920, budget=need // 3)
    assert window == 30
    assert tile is not None
    assert tile % 16 == 0
    assert 128 <= tile < 1920
    assert window_fits(30, 1088, 1920, tile=tile, budget=need // 3)
    assert not window_fits(30, 1088, 1920, tile=tile + 16, budget=need // 3)
    # The frames of a 30-frame 1080p window alone take 2 GB: a 2.25 GiB budget shortens the window
    # to the longest that fits in some tile, with the largest such tile.
    budget = 9 << 28
    window, tile = plan_memory(30, 1088, 1920, budget=budget)
    assert 6 <= window < 30
    assert tile is not None
    assert window_fits(window, 1088, 1920, tile=128, budget=budget)
    assert not window_fits(window + 1, 1088, 1920, tile=128, budget=budget)
    with pytest.raises(RRTNError, match="larger memory budget") as info:
        plan_memory(30, 1088, 1920, budget=100 << 20)
    assert info.value.kind is ErrorKind.OUT_OF_MEMORY


def test_schedule_follows_the_options_then_the_budget() -> None:
    options = RestoreOptions(window=30, overlap=10)
    assert plan_schedule(
        RestoreOptions(window=30, overlap=10, tile=256),
        frames=100,
        height=1088,
        width=1920,
        budget=1,
    ) == Schedule(30, 10, 256)
    assert plan_schedule(
        RestoreOptions(tile=0), frames=100, height=1088, width=1920, budget=1
    ) == Schedule(30, 15, None)
    budget = 9 << 28  # shortens a 30-frame 1080p window (above)
    window, tile = plan_memory(30, 1088, 1920, budget=budget)
    assert plan_schedule(options, frames=100, height=1088, width=1920, budget=budget) == Schedule(
        window, 10 * window // 30, tile
    )
    with pytest.raises(RRTNError, match="window is fixed") as info:
        plan_schedule(
            RestoreOptions(window=30, overlap=10, fixed_window=True),
            frames=100,
            height=1088,
            width=1920,
            budget=budget,
        )
    assert info.value.kind is ErrorKind.OUT_OF_MEMORY
    # A clip shorter than the window is planned for its length, the window kept.
    assert plan_schedule(options, frames=8, height=128, width=128, budget=8 << 30) == Schedule(
        30, 10, None
    )


def test_tiles_at_once_is_what_the_budget_leaves_over_tile_cost() -> None:
    window = 30 * 1088 * 1920 * WINDOW_BYTES_PER_PIXEL
    tile = restorer_bytes(30, 256, 256)
    assert (
        tiles_at_once(30, 256, 256, height=1088, width=1920, budget=window + 5 * tile + tile // 2)
        == 5
    )
    assert tiles_at_once(30, 256, 256, height=1088, width=1920, budget=window) == 1
