"""Film-damage synthesis: each kind of damage, its ground-truth mask, the target a restorer
should return, seeds and files; the varied training footage (exposures, moving objects)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import torch

from rrtn_plugin.cli import main
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.frames.image import read_pixels, write_image
from rrtn_plugin.synth import DamageParams, degrade_clip, sample_damage
from rrtn_plugin.synth.damage_files import degrade_sequence
from rrtn_plugin.synth.footage import (
    HELD_OUT_STILLS,
    LOOKS,
    TRAINING_STILLS,
    Exposure,
    add_sprites,
    draw_exposure,
    training_clip,
)
from rrtn_plugin.synth.samples import panning_clip

NONE = DamageParams(
    dust_per_mpx=0,
    hairs_per_frame=0,
    scratches=0,
    flicker=0,
    contrast_flicker=0,
    fade=1,
    grain=0,
    blur=0,
    jpeg_quality=0,
)
"""No damage at all: each test switches on one kind."""


def test_no_damage_leaves_the_clip_unchanged() -> None:
    clean = panning_clip(4, 32, 40, specks=0)
    damaged = degrade_clip(clean, seed=1, params=NONE)
    assert torch.allclose(damaged.frames, clean, atol=1e-6)
    assert not damaged.mask.any()


def test_same_seed_same_damage_and_other_seed_other_damage() -> None:
    clean = panning_clip(5, 48, 64, specks=0)
    a, b = degrade_clip(clean, seed=3), degrade_clip(clean, seed=3)
    c = degrade_clip(clean, seed=4)
    assert torch.equal(a.frames, b.frames)
    assert torch.equal(a.mask, b.mask)
    assert a.params == b.params != c.params
    assert not torch.equal(a.frames, c.frames)
    assert a.frames.shape == clean.shape
    assert a.mask.shape == clean.shape
    assert float(a.frames.min()) >= 0
    assert float(a.frames.max()) <= 1


def test_dust_changes_only_masked_pixels_and_comes_in_both_polarities() -> None:
    clean = torch.full((6, 96, 96), 0.5)
    params = replace(NONE, dust_per_mpx=20000, dust_max_radius=8, bright_dust=0.5)
    damaged = degrade_clip(clean, seed=2, params=params)
    changed = (damaged.frames - clean).abs() > 0.15  # coverage > 0.25 of a ±0.5 change
    assert damaged.mask.float().mean() > 0.01
    assert not (changed & ~damaged.mask).any()  # all strong changes are in the mask
    assert (changed & damaged.mask).sum() > 0.8 * damaged.mask.sum()
    assert (damaged.frames < 0.3).any()
    assert (damaged.frames > 0.7).any()
    # specks differ from frame to frame
    assert (damaged.mask[0] != damaged.mask[1]).any()


def test_hairs_are_thin_and_long() -> None:
    clean = torch.full((20, 128, 128), 0.6)
    damaged = degrade_clip(clean, seed=5, params=replace(NONE, hairs_per_frame=1.0))
    per_frame = damaged.mask.flatten(1).sum(1)
    assert (per_frame > 0).sum() >= 5
    for frame in damaged.mask[per_frame > 0]:
        rows, cols = frame.any(1).sum(), frame.any(0).sum()
        assert max(int(rows), int(cols)) >= 8  # at least 10 px long (bounding box)


def test_line_scratches_persist_and_drift_slowly() -> None:
    clean = torch.full((12, 96, 128), 0.4)
    damaged = degrade_clip(clean, seed=7, params=replace(NONE, scratches=1, scratch_drift=0.3))
    columns = damaged.mask.sum(1)  # (T, W): scratch pixels per column
    present = [t for t in range(12) if columns[t].max() >= 20]
    assert len(present) >= 9  # it skips a frame now and then
    positions = [int(columns[t].argmax()) for t in present]
    assert max(abs(a - b) for a, b in itertools.pairwise(positions)) <= 4
    assert damaged.mask.sum(2).max() <= 4  # a line a few px wide


def test_flicker_changes_brightness_per_frame() -> None:
    clean = torch.full((60, 16, 16), 0.5)
    damaged = degrade_clip(clean, seed=1, params=replace(NONE, flicker=0.04))
    offsets = damaged.frames.flatten(1).mean(1) - 0.5
    assert 0.02 < float(offsets.std()) < 0.07
    assert torch.allclose(damaged.frames.flatten(1).std(1), torch.zeros(60), atol=1e-6)


def test_fading_lifts_black_and_keeps_white() -> None:
    clean = torch.linspace(0, 1, 64).repeat(3, 8, 1)
    damaged = degrade_clip(clean, seed=1, params=replace(NONE, fade=0.8)).frames
    assert float(damaged[0, 0, 0]) == pytest.approx(0.2, abs=1e-6)
    assert float(damaged[0, 0, -1]) == pytest.approx(1.0, abs=1e-6)
    assert float(damaged[0, 0, 32]) == pytest.approx(0.2 + 0.8 * 32 / 63, abs=1e-6)


def test_grain_strength_at_mid_grey() -> None:
    clean = torch.full((4, 64, 64), 0.5)
    damaged = degrade_clip(clean, seed=1, params=replace(NONE, grain=0.05)).frames
    assert float((damaged - clean).std()) == pytest.approx(0.05, rel=0.1)


def test_blur_and_compression_soften_edges() -> None:
    clean = torch.zeros(2, 32, 32)
    clean[:, :, 16:] = 1
    blurred = degrade_clip(clean, seed=1, params=replace(NONE, blur=1.5)).frames
    assert 0.1 < float(blurred[0, 10, 15]) < 0.5 < float(blurred[0, 10, 16]) < 0.9
    jpeg = degrade_clip(clean, seed=1, params=replace(NONE, jpeg_quality=20)).frames
    assert 0 < float((jpeg - clean).abs().max()) < 0.5


def test_colour_clips_get_the_same_damage_on_every_channel() -> None:
    grey = panning_clip(4, 32, 32, specks=0)
    rgb = grey.unsqueeze(-1).repeat(1, 1, 1, 3)
    params = replace(sample_damage(torch.Generator().manual_seed(0)), jpeg_quality=0)
    damaged = degrade_clip(rgb, seed=9, params=params)
    assert damaged.frames.shape == rgb.shape
    assert torch.equal(damaged.frames[..., 0], damaged.frames[..., 2])
    assert torch.allclose(damaged.frames[..., 0], degrade_clip(grey, seed=9, params=params).frames)


def test_drawn_parameters_are_valid_and_vary() -> None:
    generator = torch.Generator().manual_seed(0)
    drawn = [sample_damage(generator) for _ in range(50)]
    assert len({p.dust_per_mpx for p in drawn}) == 50
    assert {p.scratches for p in drawn} == {0, 1, 2, 3}
    assert any(p.jpeg_quality == 0 for p in drawn)
    assert any(p.jpeg_quality for p in drawn)
    with pytest.raises(ValueError, match="grain"):
        DamageParams(grain=-1)
    with pytest.raises(ValueError, match="exactly one"):
        degrade_clip(torch.zeros(3, 8, 8))


def _write_sequence(folder: Path, frames: int = 4) -> None:
    folder.mkdir()
    spec = oiio.ImageSpec(48, 32, 4, "half")
    spec.attribute("Owner", "rrtn-plugin tests")
    for t in range(frames):
        pixels = np.full((32, 48, 4), 0.18, np.float32)
        pixels[..., 3] = 0.75
        pixels[:, 8 * t : 8 * t + 8, :3] = 0.5  # a moving bar
        write_image(
            folder / f"shot.{1001 + t}.exr", pixels, channels=("R", "G", "B", "A"), template=spec
        )


def test_degrade_command_damages_files_and_writes_the_mask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_sequence(tmp_path / "clean")
    out, masks = tmp_path / "damaged" / "shot.####.exr", tmp_path / "mask" / "m.####.png"
    assert (
        main(
            [
                "degrade",
                str(tmp_path / "clean" / "shot.####.exr"),
                str(out),
                "--seed",
                "4",
                "--mask",
                str(masks),
            ]
        )
        == 0
    )
    assert "damage: dust_per_mpx" in capsys.readouterr().out
    for t in range(1001, 1005):
        info, damaged = read_pixels(tmp_path / "damaged" / f"shot.{t}.exr")
        _, clean = read_pixels(tmp_path / "clean" / f"shot.{t}.exr")
        assert info.channels == ("R", "G", "B", "A")
        assert info.spec.get_string_attribute("Owner") == "rrtn-plugin tests"
        assert np.array_equal(damaged[..., 3], clean[..., 3])  # alpha untouched
        assert np.abs(damaged[..., :3] - clean[..., :3]).mean() > 0.001
        assert read_pixels(tmp_path / "mask" / f"m.{t}.png")[1].shape == (32, 48, 1)
    # the input is never overwritten
    with pytest.raises(RRTNError, match="overwrite"):
        degrade_sequence(
            tmp_path / "clean" / "shot.####.exr", tmp_path / "clean" / "shot.####.exr", seed=0
        )


def test_the_target_keeps_the_prints_look_and_drops_the_damage() -> None:
    clean = torch.linspace(0, 1, 64).repeat(6, 48, 1)
    # no damage: the target is the clean clip
    assert torch.allclose(degrade_clip(clean, seed=1, params=NONE).target, clean, atol=1e-6)
    # fading is the print's look: the target is faded as the frames are
    faded = degrade_clip(clean, seed=1, params=replace(NONE, fade=0.8))
    assert torch.allclose(faded.target, faded.frames, atol=1e-6)
    assert float(faded.target[0, 0, 0]) == pytest.approx(0.2, abs=1e-6)
    # so is the print's softness; its per-frame wobble is not
    edge = (clean > 0.5).float()
    soft = degrade_clip(edge, seed=1, params=replace(NONE, blur=1.0))
    assert float((soft.target - edge).abs().max()) > 0.2
    assert 0 < float((soft.frames - soft.target).abs().max()) < 0.1
    # everything else is damage: dust, scratches, grain are not in the target
    worn = replace(NONE, dust_per_mpx=20000, scratches=2, grain=0.05)
    damaged = degrade_clip(clean, seed=2, params=worn)
    assert torch.allclose(damaged.target, clean, atol=1e-6)
    assert float((damaged.frames - clean).abs().mean()) > 0.02


def test_flicker_moves_frames_around_the_clips_own_level() -> None:
    clean = torch.full((8, 16, 16), 0.4)
    params = replace(NONE, flicker=0.05, contrast_flicker=0.05, flicker_correlation=0.0)
    for seed in range(5):
        damaged = degrade_clip(clean, seed=seed, params=params)
        levels = damaged.frames.flatten(1).mean(1)
        assert float(levels.std()) > 0.01  # it flickers
        assert float(levels.mean()) == pytest.approx(0.4, abs=1e-5)  # around the clip's level
        assert torch.allclose(damaged.target, clean, atol=1e-6)


def test_flicker_correlation_sets_how_slowly_it_drifts() -> None:
    clean = torch.full((200, 4, 4), 0.5)

    def lag_one(correlation: float) -> float:
        params = replace(NONE, flicker=0.03, flicker_correlation=correlation)
        levels = degrade_clip(clean, seed=0, params=params).frames.flatten(1).mean(1)
        return float(torch.corrcoef(torch.stack([levels[1:], levels[:-1]]))[0, 1])

    assert abs(lag_one(0.0)) < 0.2
    assert lag_one(0.8) > 0.6
    with pytest.raises(ValueError, match="flicker_correlation"):
        DamageParams(flicker_correlation=1.0)


def test_every_offline_still_not_held_out_is_training_footage() -> None:
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    stills = {p.stem for p in folder.iterdir() if p.suffix in (".png", ".jpg")}
    expected = stills - set(HELD_OUT_STILLS) - {"chessboard_RGB"}  # the grey one is kept
    assert set(TRAINING_STILLS) == expected
    assert not set(TRAINING_STILLS) & set(HELD_OUT_STILLS)


@pytest.mark.parametrize("look", LOOKS)
def test_exposures_give_each_look_its_range(look: str) -> None:
    ramp = torch.linspace(0, 1, 101)
    generator = torch.Generator().manual_seed(4)
    for _ in range(10):
        exposure = draw_exposure(generator, look)
        toned = exposure.apply(ramp)
        assert bool((toned[1:] >= toned[:-1]).all())  # a tone curve keeps the order
        low, mid, high = float(toned[0]), float(toned[50]), float(toned[-1])
        if look == "dark":
            assert high <= 0.6
        elif look == "low-key":
            assert mid < 0.4 * high
        elif look == "low-contrast":
            assert low >= 0.15
            assert high - low <= 0.65
        elif look == "high-key":
            assert low >= 0.2
            assert mid > 0.6
        else:
            assert low <= 0.05
            assert high >= 0.9
    with pytest.raises(ValueError, match="look"):
        draw_exposure(generator, "sepia")
    with pytest.raises(ValueError, match="black"):
        Exposure(black=0.5, white=0.4, gamma=1.0)


def test_sprites_move_on_their_own_over_a_still_view() -> None:
    background = torch.full((6, 64, 80), 0.5)
    moved = add_sprites(background, count=1, generator=torch.Generator().manual_seed(3))
    covered = (moved - background).abs() > 1e-3
    assert bool(covered.any(dim=(1, 2)).sum() >= 4)  # on screen most of the clip
    centres = []
    for frame in covered:
        if frame.sum() > 20:
            ys, xs = frame.nonzero(as_tuple=True)
            centres.append((float(ys.float().mean()), float(xs.float().mean())))
    steps = [math.dist(a, b) for a, b in itertools.pairwise(centres)]
    assert steps
    assert 0.3 < sum(steps) / len(steps) < 6  # 0.5–4 px a frame, give or take its edges


def test_training_clips_are_varied_and_reproducible() -> None:
    def clip(seed: int) -> torch.Tensor:
        return training_clip(torch.Generator().manual_seed(seed), frames=4, height=48, width=48)

    assert torch.equal(clip(1), clip(1))
    clips = [clip(seed) for seed in range(24)]
    assert all(c.shape == (4, 48, 48) for c in clips)
    assert all(float(c.min()) >= 0 and float(c.max()) <= 1 for c in clips)
    means = torch.tensor([float(c.mean()) for c in clips])
    assert float(means.min()) < 0.2  # dark clips
    assert float(means.max()) > 0.6  # bright ones
    spans = torch.tensor([float(c.quantile(0.95) - c.quantile(0.05)) for c in clips])
    assert float(spans.min()) < 0.25  # flat, low-contrast ones
