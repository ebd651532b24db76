"""The tone guard: a re-graded output comes back at the input's level; local repairs survive it;
deflicker evens out flicker without smearing what moves and never across a shot boundary."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from rrtn_plugin.engine import tone
from rrtn_plugin.engine.tone import ToneGuard, guard_tone, smooth_in_time, tone_grid
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.synth.samples import panning_clip
from rrtn_plugin.training.evaluate import REAL_FILMS, load_real_film, shared_clips_folder


@pytest.fixture(scope="module")
def film() -> torch.Tensor:
    """12 frames of real film (128×160), or skip when ../shared is absent."""
    folder = shared_clips_folder()
    if folder is None:
        pytest.skip("real-film clips not found (../shared/clips absent; set RRTN_SHARED)")
    return load_real_film(folder, REAL_FILMS[1], frames=12)


def clip() -> torch.Tensor:
    """A synthetic moving clip that needs no shared data, levels 0.1–0.9."""
    return 0.1 + 0.8 * panning_clip(10, 64, 80, specks=0)


@pytest.mark.parametrize(
    "regrade",
    [
        lambda x: x - 0.065,  # the bundled model
        lambda x: x * 0.75,
        lambda x: x + 0.08,
        lambda x: x**1.4,
    ],
    ids=["darker by 0.065", "times 0.75", "brighter by 0.08", "gamma 1.4"],
)
def test_a_uniformly_regraded_clip_comes_back_at_its_own_level(
    regrade: Callable[[torch.Tensor], torch.Tensor],
) -> None:
    inp = clip()
    out = regrade(inp)
    assert abs(float(out.mean() - inp.mean())) > 0.05
    guarded = guard_tone(inp, out)
    assert float(guarded.mean()) == pytest.approx(float(inp.mean()), abs=0.005)
    # the bars are 0.01 (mean) and 0.02 (median); a gamma moves the median most
    assert float(guarded.median()) == pytest.approx(float(inp.median()), abs=0.02)
    per_frame = (guarded - inp).flatten(1).mean(1)
    assert float(per_frame.abs().max()) < 0.01


def test_real_film_darkened_or_brightened_keeps_its_level(film: torch.Tensor) -> None:
    for out in (film - 0.065, (film * 1.2).clamp(0, 1), film**1.3):
        guarded = guard_tone(film, out)
        assert abs(float(guarded.mean() - film.mean())) <= 0.01
        assert abs(float(guarded.median() - film.median())) <= 0.02
    # a faithful output is left as it is
    assert torch.allclose(guard_tone(film, film), film, atol=1e-6)


def test_keep_gives_each_frame_the_inputs_tone_and_deflicker_evens_its_level() -> None:
    base = clip()
    offsets = 0.04 * torch.tensor([1, -1, 1, 1, -1, -1, 1, -1, 1, -1], dtype=torch.float32)
    inp = base + offsets.view(-1, 1, 1)
    # the network removed the flicker exactly; keep puts the tone as shot back, frame by frame
    kept = guard_tone(inp, base)
    assert torch.allclose(kept.flatten(1).mean(1), inp.flatten(1).mean(1), atol=2e-3)
    # deflicker evens each frame's overall level out and keeps the clip's
    levelled = guard_tone(inp, base, guard=ToneGuard(deflicker=True))
    left = (levelled - base).flatten(1).mean(1)
    assert float(left.std()) < 0.3 * float(offsets.std())
    assert float(levelled.mean()) == pytest.approx(float(inp.mean()), abs=2e-3)


def test_deflicker_does_not_smear_the_tone_of_what_moves() -> None:
    """A dark figure crossing a bright, flickering frame at 6 px/frame: levelling each block's
    tone in time would darken the blocks it crosses before and after (the first version of the
    guard did); levelling the whole frame leaves only a flat shift per frame."""
    t, h, w = 10, 64, 80
    frames = torch.full((t, h, w), 0.7)
    for i in range(t):
        frames[i, 20:44, 6 * i : 6 * i + 16] = 0.15
    offsets = 0.04 * torch.tensor([1, -1, 1, 1, -1, -1, 1, -1, 1, -1], dtype=torch.float32)
    inp = frames + offsets.view(-1, 1, 1)
    guarded = guard_tone(inp, frames, guard=ToneGuard(deflicker=True))
    error = guarded - frames
    flat = error - error.flatten(1).mean(1).view(-1, 1, 1)
    assert float(flat.abs().max()) < 1e-4  # a flat shift per frame, no trail
    assert float(error.flatten(1).mean(1).abs().max()) < 0.03  # flicker mostly removed
    # the tone in the figure's path, a frame before it arrives, stays the background's
    assert float(guarded[3, 20:44, 50:60].mean() - guarded[3, 0:10, 50:60].mean()) == (
        pytest.approx(0.0, abs=1e-4)
    )


def test_deflicker_mode_removes_flicker_the_network_left() -> None:
    base = clip()
    offsets = 0.04 * torch.tensor([1, -1, 1, 1, -1, -1, 1, -1, 1, -1], dtype=torch.float32)
    inp = base + offsets.view(-1, 1, 1)
    level = guard_tone(inp, inp, guard=ToneGuard(deflicker=True))
    left = (level - base).flatten(1).mean(1)
    assert float(left.std()) < 0.3 * float(offsets.std())
    assert float(level.mean()) == pytest.approx(float(inp.mean()), abs=2e-3)
    # the default only undoes the network's own change: the input's flicker is kept
    assert torch.allclose(guard_tone(inp, inp), inp, atol=1e-6)


def test_a_repaired_blotch_is_not_put_back() -> None:
    clean = clip()
    inp = clean.clone()
    inp[4, 21:27, 33:39] = 0.02  # a dark blotch the network repaired
    guarded = guard_tone(inp, clean)
    assert float((guarded - clean)[4, 21:27, 33:39].abs().max()) < 0.006  # robust means
    assert float((guarded - clean).abs().max()) < 0.01


def test_deflicker_keeps_a_fade_to_black_and_still_evens_flicker_on_it() -> None:
    frames = clip()
    inp = frames * torch.linspace(1.0, 0.1, frames.shape[0]).view(-1, 1, 1)  # a fade-out
    levels = inp.flatten(1).mean(1)
    deflicker = ToneGuard(deflicker=True)
    faded = guard_tone(inp, inp, guard=deflicker)
    assert float((faded.flatten(1).mean(1) - levels).abs().max()) < 0.003  # ends included
    offsets = 0.04 * torch.tensor([1, -1, 1, 1, -1, -1, 1, -1, 1, -1], dtype=torch.float32)
    evened = guard_tone(inp + offsets.view(-1, 1, 1), inp, guard=deflicker)
    left = evened.flatten(1).mean(1) - levels
    assert float(left.std()) < 0.35 * float(offsets.std())


def test_levelling_never_crosses_a_shot_boundary() -> None:
    dark, bright = 0.2 + 0.1 * clip()[:5], 0.6 + 0.1 * clip()[5:]
    inp = torch.cat([dark, bright])
    out = torch.cat([dark - 0.1, bright + 0.1])  # each shot re-graded its own way
    shots = [(0, 5), (5, 10)]
    deflicker = ToneGuard(deflicker=True)
    guarded = guard_tone(inp, out, segments=shots, guard=deflicker)
    for start, stop in shots:
        assert float(guarded[start:stop].mean()) == pytest.approx(
            float(inp[start:stop].mean()), abs=2e-3
        )
    # without the boundary, the two shots' levels leak into each other at the cut
    leaky = guard_tone(inp, out, guard=deflicker)
    assert abs(float((leaky[4] - inp[4]).mean())) > 0.02
    # a one-frame segment (a flash) keeps its own level
    flash = guard_tone(inp, out, segments=[(0, 4), (4, 5), (5, 10)], guard=deflicker)
    assert float(flash[4].mean()) == pytest.approx(float(inp[4].mean()), abs=2e-3)


def test_smooth_in_time_and_tone_grid() -> None:
    values = torch.tensor([0.0, 0.0, 3.0, 0.0, 0.0])
    smoothed = smooth_in_time(values, 1.0, [(0, 5)])
    centre = 3 / (1 + 2 * math.exp(-0.5) + 2 * math.exp(-2.0))
    assert float(smoothed[2]) == pytest.approx(centre, rel=1e-5)
    assert torch.equal(smooth_in_time(values, 1.0, [(0, 2), (2, 3), (3, 5)])[2], values[2])
    frames = torch.zeros(1, 64, 80)
    frames[0, :, 40:] = 1.0
    frames[0, 10, 10] = 1.0  # one speck moves its block by at most spread / 64
    grid = tone_grid(frames, blocks=8)
    assert grid.shape == (1, 8, 10)
    assert 0 < float(grid[0, 0, 0]) < 0.05 / 64
    assert float(grid[0, 0, -1]) == 1.0


def test_smoothing_drops_a_slope_that_is_only_flicker(monkeypatch: pytest.MonkeyPatch) -> None:
    def rms_error(doubt: float) -> float:
        monkeypatch.setattr(tone, "SLOPE_DOUBT", doubt)
        errors = []
        for seed in range(20):  # a steady level with flicker of sd 0.02, 12 frames
            g = torch.Generator().manual_seed(seed)
            level = 0.3 + 0.02 * torch.randn(12, generator=g)
            errors.append(float((smooth_in_time(level, 3.0, [(0, 12)]) - 0.3).pow(2).mean()))
        return math.sqrt(sum(errors) / len(errors))

    assert rms_error(tone.SLOPE_DOUBT) < 0.007 < 0.008 < rms_error(0.0)  # 0.0065 vs 0.0082
    # a fade's slope stands far above its flicker and is kept: no end is held back
    g = torch.Generator().manual_seed(0)
    fade = torch.linspace(0.3, 0.02, 12)
    smoothed = smooth_in_time(fade + 0.005 * torch.randn(12, generator=g), 3.0, [(0, 12)])
    assert float((smoothed - fade).abs().max()) < 0.004


def test_bad_arguments_are_refused() -> None:
    inp = clip()
    with pytest.raises(RRTNError, match="differ"):
        guard_tone(inp, inp[:5])
    with pytest.raises(RRTNError, match="segments"):
        guard_tone(inp, inp, segments=[(0, 4), (5, 10)])
    with pytest.raises(RRTNError, match="blocks"):
        ToneGuard(blocks=0)
    with pytest.raises(RRTNError, match="T, H, W"):
        guard_tone(inp[0], inp[0])
