"""Quality measures, footage from stills, the temporal-median baseline, the evaluation table,
and the evaluation on real film (damage draws, no damage, a cut, a flash, the strip image)."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import OpenImageIO as oiio
import pytest
import torch

from rrtn_plugin.cli import main
from rrtn_plugin.engine import RestoreOptions
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.image import write_image
from rrtn_plugin.frames.sequence import parse_pattern
from rrtn_plugin.synth.footage import (
    HELD_OUT_STILLS,
    TRAINING_STILLS,
    camera_clip,
    load_still,
)
from rrtn_plugin.synth.samples import panning_clip
from rrtn_plugin.training.evaluate import (
    REAL_FILMS,
    EvalClip,
    FilmDamage,
    MethodOutput,
    evaluate,
    evaluate_real_film,
    fast_pixels,
    format_real_film,
    format_table,
    held_out_clips,
    identity_method,
    load_real_film,
    median_method,
    real_film_cases,
    real_film_report,
    sequence_pair,
    shared_clips_folder,
    temporal_median,
    write_strip,
)
from rrtn_plugin.training.quality import (
    clip_motion,
    frame_level_spread,
    level_matched_psnr,
    mask_scores,
    masked_psnr,
    psnr,
    ssim,
    warp_error,
)


def test_psnr_and_ssim_known_values() -> None:
    clean = panning_clip(3, 32, 32, specks=0)
    assert psnr(clean.clamp(0, 0.9) + 0.1, clean.clamp(0, 0.9)) == pytest.approx(20.0)
    assert math.isinf(psnr(clean, clean))
    assert ssim(clean, clean) == pytest.approx(1.0, abs=1e-5)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    assert 0.2 < ssim(noisy, clean) < 0.9
    # halving the picture keeps its structure but not its luminance or contrast terms
    assert 0.5 < ssim(clean * 0.5, clean) < 0.95
    with pytest.raises(ValueError, match="one shape"):
        psnr(clean, clean[:2])


def test_level_matched_psnr_leaves_out_each_frames_level_only() -> None:
    clean = panning_clip(4, 32, 32, specks=0).clamp(0.1, 0.9)
    flicker = torch.tensor([0.05, -0.03, 0.01, 0.02]).view(4, 1, 1)
    assert level_matched_psnr(clean + flicker, clean) > 100  # float rounding only
    assert psnr(clean + flicker, clean) < 33
    assert frame_level_spread(clean + flicker) == pytest.approx(
        float((clean + flicker).mean(dim=(1, 2)).std(unbiased=False)), rel=1e-6
    )
    assert frame_level_spread(clean.mean(0).expand(4, 32, 32)) == pytest.approx(0, abs=1e-9)
    # everything but the level still counts: grain and a speck, with or without flicker
    noisy = clean + 0.01 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    specked = noisy.clone()
    specked[2, 5:8, 5:8] *= 0.3
    assert level_matched_psnr(specked + flicker, clean) == pytest.approx(
        level_matched_psnr(specked, clean), abs=1e-4
    )
    assert level_matched_psnr(noisy, clean) == pytest.approx(40.0, abs=0.3)
    assert level_matched_psnr(specked, clean) < level_matched_psnr(noisy, clean) - 1


def test_masked_psnr_scores_only_the_chosen_pixels_and_fast_pixels_choose_them() -> None:
    clean = torch.full((3, 4, 4), 0.5)
    result = clean.clone()
    result[0, 0, 0] = 0.6  # off by 0.1 where chosen
    result[1] = 0.0  # far off where not
    chosen = torch.zeros(3, 4, 4, dtype=torch.bool)
    chosen[0, :2] = True  # 8 pixels, one of them off by 0.1
    assert masked_psnr(result, clean, chosen) == pytest.approx(-10 * math.log10(0.01 / 8))
    assert math.isnan(masked_psnr(result, clean, torch.zeros_like(chosen)))
    motion = torch.zeros(2, 2, 4, 4)
    motion[0, 0, 1, 1] = 5.0  # x
    motion[1, :, 2, 2] = 3.0  # 4.24 px/frame diagonally
    motion[1, 1, 3, 3] = 4.0  # exactly the threshold: not faster
    fast = fast_pixels(motion, (3, 4, 4))
    assert fast.nonzero().tolist() == [[0, 1, 1], [1, 2, 2]]


def test_warp_error_follows_the_motion_of_the_clean_clip() -> None:
    clean = panning_clip(5, 64, 64, speed=(1.0, 0.5), specks=0)
    motion = clip_motion(clean)
    assert motion.shape == (4, 2, 64, 64)
    moving = warp_error(clean, motion)
    flickering = clean * torch.tensor([1.0, 0.8, 1.0, 0.8, 1.0]).view(5, 1, 1)
    assert moving < 0.01  # the clean clip's own motion is compensated
    assert warp_error(flickering, motion) > 5 * moving
    # a static comparison, without motion compensation, sees the pan as flicker
    assert float((clean[1:] - clean[:-1]).abs().mean()) > 3 * moving


def test_mask_scores() -> None:
    truth = torch.tensor([True, True, False, False])
    scores = mask_scores(torch.tensor([True, False, True, False]), truth)
    assert (scores.precision, scores.recall) == (0.5, 0.5)
    assert math.isnan(mask_scores(torch.zeros(4, dtype=torch.bool), truth).precision)


def test_stills_split_into_training_and_held_out_and_film_as_moving_clips() -> None:
    assert not set(TRAINING_STILLS) & set(HELD_OUT_STILLS)
    for name in (*TRAINING_STILLS, *HELD_OUT_STILLS):
        still = load_still(name)
        assert still.ndim == 2
        assert 0 <= float(still.min()) <= float(still.max()) <= 1
    gen = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    clip = camera_clip(load_still("chelsea"), frames=6, height=48, width=64, generator=gen())
    assert clip.shape == (6, 48, 64)
    assert torch.equal(
        clip, camera_clip(load_still("chelsea"), frames=6, height=48, width=64, generator=gen())
    )
    assert float((clip[1:] - clip[:-1]).abs().mean()) > 0.005  # the camera moves


def test_temporal_median_removes_one_frame_specks_on_a_moving_clip() -> None:
    clean = panning_clip(5, 64, 64, speed=(1.0, 0.0), specks=0)
    damaged = clean.clone()
    damaged[2, 30:34, 30:34] = 0.0
    restored = temporal_median(damaged, radius=1)
    assert float((restored[2, 30:34, 30:34] - clean[2, 30:34, 30:34]).abs().max()) < 0.05
    assert psnr(restored[2:3], clean[2:3]) > psnr(damaged[2:3], clean[2:3]) + 10
    assert restored.shape == damaged.shape


def test_evaluate_scores_each_method_and_tables_them() -> None:
    clips = held_out_clips(frames=4, height=48, width=64, per_still=1, seed=3)
    assert [c.name for c in clips] == [f"{n}-0" for n in HELD_OUT_STILLS]
    # the reference keeps the print's fade: the old one (the filmed still) differs from it
    legacy = held_out_clips(frames=4, height=48, width=64, per_still=1, seed=3, reference="clean")
    assert all(torch.equal(a.damaged, b.damaged) for a, b in zip(clips, legacy, strict=True))
    assert any(
        float((a.clean - b.clean).abs().max()) > 0.01 for a, b in zip(clips, legacy, strict=True)
    )
    with pytest.raises(RRTNError, match="reference"):
        held_out_clips(reference="still")
    assert all(c.mask is not None and c.damaged.shape == c.clean.shape for c in clips)

    def perfect(damaged: torch.Tensor) -> MethodOutput:
        clip = next(c for c in clips if c.damaged is damaged)
        return MethodOutput(clip.clean, clip.mask)

    rows = evaluate(
        clips, {"input": identity_method, "median": median_method(1), "oracle": perfect}
    )
    assert [r.method for r in rows] == ["input", "median", "oracle"]
    damaged_psnr = sum(psnr(c.damaged, c.clean) for c in clips) / len(clips)
    assert rows[0].psnr == pytest.approx(damaged_psnr)
    assert rows[0].recall == 0.0
    assert math.isinf(rows[2].psnr)
    assert rows[2].ssim == pytest.approx(1.0, abs=1e-5)
    assert (rows[2].mask_precision, rows[2].mask_recall) == (1.0, 1.0)
    table = format_table(rows, 0.01)
    assert table.splitlines()[0].startswith("| method | PSNR dB | SSIM |")
    assert "| oracle | inf |" in table
    assert "| clean clips (floor) | | | 1.00 |" in table


def test_sequence_pair_reads_damaged_clean_and_mask_files(tmp_path: Path) -> None:
    spec = oiio.ImageSpec(32, 24, 3, "half")
    for t in range(3):
        for name, value in (("clean", 0.18), ("damaged", 0.2)):
            (tmp_path / name).mkdir(exist_ok=True)
            write_image(
                tmp_path / name / f"s.{t + 1}.exr",
                np.full((24, 32, 3), value, np.float32),
                channels=("R", "G", "B"),
                template=spec,
            )
        (tmp_path / "mask").mkdir(exist_ok=True)
        write_image(
            tmp_path / "mask" / f"m.{t + 1}.png",
            np.ones((24, 32, 1), np.float32),
            channels=("Y",),
            template=oiio.ImageSpec(32, 24, 1, "uint8"),
        )
    pair = sequence_pair(
        parse_pattern(tmp_path / "damaged" / "s.#.exr"),
        parse_pattern(tmp_path / "clean" / "s.#.exr"),
        mask=parse_pattern(tmp_path / "mask" / "m.#.png"),
    )
    assert isinstance(pair, EvalClip)
    assert pair.clean.shape == (3, 24, 32)
    assert pair.mask is not None
    assert bool(pair.mask.all())
    assert float(pair.damaged.mean()) > float(pair.clean.mean())  # same encoding for both


def test_evaluate_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            ["evaluate", "--frames", "4", "--size", "64x48", "--per-still", "1", "--device", "cpu"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("3 clip(s), 12 frames")
    rows = [line.split(" | ")[0] for line in out.splitlines() if line.startswith("| ")]
    assert rows == [
        "| method",
        "| damaged input",
        "| temporal median ±1 (DIS)",
        "| RRTN (bundled)",
        "| clean clips (floor)",
    ]
    assert main(["evaluate", "--damaged", "d.####.exr"]) == 2
    assert "give both --damaged and --clean" in capsys.readouterr().err


def test_film_damage_is_reproducible_and_its_mask_covers_what_it_drew() -> None:
    clean = 0.2 + 0.6 * panning_clip(6, 48, 64, specks=0)
    damage = FilmDamage(specks=20, blotches=3)
    a, mask = damage.apply(clean, seed=4)
    b, _ = damage.apply(clean, seed=4)
    c, _ = damage.apply(clean, seed=5)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == mask.shape == clean.shape
    assert 0.001 < float(mask.float().mean()) < 0.2
    big = (a - clean).abs() > 0.3
    assert float((big & ~mask).float().sum()) < 0.02 * float(big.float().sum())
    columns = mask.sum(1)  # the scratch: one column (or two) per frame, drifting slowly
    assert bool((columns.amax(1) >= 20).all())
    quiet = FilmDamage(specks=0, blotches=0, flicker=0, grain=0, scratch=False)
    assert torch.allclose(quiet.apply(clean, seed=1)[0], clean, atol=1e-6)
    flicker = FilmDamage(specks=0, blotches=0, flicker=0.05, grain=0, scratch=False)
    levels = (flicker.apply(clean, seed=1)[0] - clean).flatten(1).mean(1)
    assert float(levels.std()) > 0.01


@pytest.fixture(scope="module")
def film_folder() -> Path:
    folder = shared_clips_folder()
    if folder is None:
        pytest.skip("real-film clips not found (../shared/clips absent; set RRTN_SHARED)")
    return folder


def test_real_film_cases(film_folder: Path) -> None:
    cases = real_film_cases(film_folder, frames=6, height=48, width=64, draws=2)
    assert [c.kind for c in cases] == ["damaged"] * 2 + ["none"] + ["damaged"] * 2 + [
        "none",
        "cut",
        "flash",
    ]
    assert len({c.name for c in cases}) == len(cases)
    market = load_real_film(film_folder, REAL_FILMS[0], frames=6, height=48, width=64)
    robbery = load_real_film(film_folder, REAL_FILMS[1], frames=6, height=48, width=64)
    assert market.shape == (6, 48, 64)
    assert torch.equal(cases[0].reference, market)
    assert torch.equal(cases[2].damaged, market)  # no damage: the film itself
    assert not torch.equal(cases[0].damaged, cases[1].damaged)  # independent draws
    cut, flash = cases[-2:]
    assert torch.equal(cut.reference, torch.cat([market[:3], robbery[3:]]))
    assert float(flash.reference[3].mean()) > float(robbery[3].mean()) + 0.15
    # 8-bit sRGB PNG frames: luminance in display units
    assert 0.1 < float(market.mean()) < 0.6


def test_real_film_scores_tables_and_strip(film_folder: Path, tmp_path: Path) -> None:
    cases = real_film_cases(film_folder, frames=4, height=48, width=64, draws=1)

    def darker(damaged: torch.Tensor) -> MethodOutput:
        return MethodOutput(damaged - 0.05)

    scores = evaluate_real_film(cases, {"damaged input": identity_method, "darker": darker})
    none = next(c for c in cases if c.kind == "none")
    assert math.isinf(scores[none.name]["damaged input"].psnr)
    assert scores[none.name]["darker"].psnr == pytest.approx(26.02, abs=0.3)  # clamped at 0
    assert scores[none.name]["darker"].tone_shift == pytest.approx(-0.05, abs=0.005)
    assert scores[none.name]["darker"].median_shift == pytest.approx(-0.05, abs=0.005)
    damaged = cases[0]
    assert scores[damaged.name]["damaged input"].psnr == pytest.approx(
        psnr(damaged.damaged, damaged.reference)
    )
    table = format_real_film(cases, scores, baseline="damaged input")
    lines = table.splitlines()
    assert lines[0] == "| clip | damaged input | darker |"
    # the level-matched table: the darker copy of the input loses nothing there
    spread = frame_level_spread(damaged.reference)
    matched = next(line for line in lines if "reference's flicker" in line)
    assert matched == "| clip | reference's flicker | damaged input | darker |"
    assert scores[damaged.name]["darker"].psnr_level == pytest.approx(
        scores[damaged.name]["damaged input"].psnr_level, abs=0.5
    )
    assert f"| {damaged.name} | {spread:.4f} |" in table
    assert "| clip | pixels > 4 px/frame | damaged input | darker |" in lines
    share = scores[damaged.name]["darker"].fast_share
    assert 0 <= share < 1
    assert share == scores[damaged.name]["damaged input"].fast_share
    assert f"| {damaged.name} | {100 * share:.0f} % |" in table
    assert any(line.startswith(f"| {damaged.name} |") for line in lines)
    assert f"| {none.name} | darker | -0.05" in table
    path = write_strip(tmp_path / "strip.png", damaged, scores[damaged.name], scale=2)
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (22 + 2 * 48, 3 * 2 * 64 + 2 * 4)  # two methods and the reference
    assert int(image[30:, 2 * 64 + 4 :][:, : 2 * 64].mean()) > 0


def test_real_film_report_says_why_when_the_films_are_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRTN_SHARED", str(tmp_path))
    assert shared_clips_folder() is None
    with pytest.raises(RRTNError, match="real-film clips are not available") as info:
        real_film_report(None, None, RestoreOptions(device="cpu"))  # type: ignore[arg-type]
    assert info.value.kind is ErrorKind.NOT_FOUND
