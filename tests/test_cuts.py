"""Cut and flash detection: none inside real shots (damaged or not), the join of two films found
exactly, a flash frame found on its own; segments never span a boundary."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from rrtn_plugin.engine.cuts import CutRules, Shots, detect_shots, jump_level, signatures
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.synth.footage import camera_clip, load_still
from rrtn_plugin.synth.samples import panning_clip
from rrtn_plugin.training.evaluate import (
    REAL_FILMS,
    FilmDamage,
    load_real_film,
    shared_clips_folder,
)


@pytest.fixture(scope="module")
def films() -> dict[str, torch.Tensor]:
    """Both real films whole (368×480; 60 and 48 frames), or skip when ../shared is absent."""
    folder = shared_clips_folder()
    if folder is None:
        pytest.skip("real-film clips not found (../shared/clips absent; set RRTN_SHARED)")
    return {
        name: load_real_film(folder, name, frames=frames, height=368, width=480)
        for name, frames in zip(REAL_FILMS, (60, 48), strict=True)
    }


def test_real_films_have_no_cuts_damaged_or_not(films: dict[str, torch.Tensor]) -> None:
    for k, film in enumerate(films.values()):
        assert detect_shots(film) == Shots(frames=film.shape[0])
        for seed, flicker in enumerate((0.02, 0.04, 0.06)):
            heavy = FilmDamage(specks=40, blotches=6, flicker=flicker)
            damaged, _ = heavy.apply(film[:, ::2, ::2], seed=10 * k + seed)
            assert detect_shots(damaged) == Shots(frames=film.shape[0])


def test_the_join_of_two_films_is_found_exactly(films: dict[str, torch.Tensor]) -> None:
    a, b = films.values()
    joined = torch.cat([a[:10], b[:14]])
    shots = detect_shots(joined)
    assert shots == Shots(frames=24, cuts=(10,))
    assert shots.segments() == [(0, 10), (10, 24)]
    damaged, _ = FilmDamage().apply(joined[:, ::2, ::2], seed=3)
    assert detect_shots(damaged).cuts == (10,)
    # small crops too (what the evaluation uses)
    crops = torch.cat([a[:6, 120:248, 160:320], b[6:12, 120:248, 160:320]])
    assert detect_shots(crops).cuts == (6,)


@pytest.mark.parametrize(
    "flash",
    [
        lambda x: 0.35 + 0.65 * x,  # over-exposed
        lambda x: 0.3 * x,  # under-exposed
        lambda x: torch.ones_like(x),  # a white frame
    ],
    ids=["over-exposed", "under-exposed", "white"],
)
def test_a_flash_frame_is_a_segment_of_its_own(
    films: dict[str, torch.Tensor], flash: Callable[[torch.Tensor], torch.Tensor]
) -> None:
    film = films[REAL_FILMS[1]][:12].clone()
    film[5] = flash(film[5])
    shots = detect_shots(film)
    assert shots == Shots(frames=12, flashes=(5,))
    assert shots.segments() == [(0, 5), (5, 6), (6, 12)]
    damaged, _ = FilmDamage().apply(film[:, ::2, ::2], seed=1)
    assert detect_shots(damaged).segments() == [(0, 5), (5, 6), (6, 12)]


def test_synthetic_shots_without_shared_data() -> None:
    def filmed(still: str, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return camera_clip(
            load_still(still), frames=8, height=96, width=128, generator=generator, max_speed=1
        )

    a, b = filmed("camera", 1), filmed("astronaut", 2)
    assert detect_shots(a) == Shots(frames=8)
    assert detect_shots(torch.cat([a, b])).cuts == (8,)
    # brightness and contrast flicker alone is no cut
    gains = torch.tensor([1.0, 0.9, 1.05, 0.95, 1.0, 0.92, 1.05, 0.97]).view(-1, 1, 1)
    assert detect_shots((a - 0.5) * gains + 0.5 + 0.15 * (gains - 1)) == Shots(frames=8)
    # a light that changes at once and stays is a cut; one that comes back is a flash
    lit = a.clone()
    lit[4:] = 0.6 * lit[4:]
    assert detect_shots(lit).cuts == (4,)
    flashed = a.clone()
    flashed[3] = 0.5 * flashed[3]
    assert detect_shots(flashed).flashes == (3,)


def test_segments_and_boundaries() -> None:
    shots = Shots(frames=10, cuts=(4,), flashes=(0, 7, 9))
    assert shots.boundaries == [1, 4, 7, 8, 9]
    assert shots.segments() == [(0, 1), (1, 4), (4, 7), (7, 8), (8, 9), (9, 10)]
    assert Shots(frames=3).segments() == [(0, 3)]
    assert detect_shots(torch.rand(1, 16, 16)) == Shots(frames=1)
    # two unrelated frames: a cut
    noise = torch.rand(2, 32, 32, generator=torch.Generator().manual_seed(0))
    assert detect_shots(noise).cuts == (1,)


def test_heavy_flicker_raises_the_bar_for_a_jump_of_light() -> None:
    rules = CutRules()
    calm = torch.tensor([0.01, -0.01, 0.02, -0.02, 0.0, 0.01])
    assert jump_level(calm, rules, rules.level_spread) == rules.flash_level
    wild = 5 * calm
    assert jump_level(wild, rules, rules.level_spread) > rules.flash_level


def test_signatures_ignore_brightness_and_contrast() -> None:
    a = panning_clip(2, 48, 64, specks=0)
    sig = signatures(torch.stack([a[0], 0.2 + 0.5 * a[0]]))
    assert torch.allclose(sig.thumbnails[0], sig.thumbnails[1], atol=1e-5)
    assert float(sig.levels[1]) == pytest.approx(0.2 + 0.5 * float(a[0].mean()), abs=1e-5)
    with pytest.raises(RRTNError, match="T, H, W"):
        detect_shots(a[0])
