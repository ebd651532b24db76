"""The engine's stages around the network: each shot restored on its own, the tone guard and
the repair modes, through :class:`ClipSession` as every front end runs them."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import torch
from helpers import network_options, session_for

from rrtn_plugin.engine import RestoreOptions
from rrtn_plugin.engine.repair import damage_mask, feathered
from rrtn_plugin.engine.windows import stage_reach
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.restore import JobSettings, restore_sequence
from rrtn_plugin.model import RRTN
from rrtn_plugin.synth.footage import camera_clip, load_still
from rrtn_plugin.weights import load_bundled

STAGED = RestoreOptions(window=6, overlap=3, max_passes=1, device="cpu")


def filmed(still: str, seed: int, frames: int = 8) -> torch.Tensor:
    """A short synthetic shot: a camera moving over a still, (frames, 96, 128)."""
    generator = torch.Generator().manual_seed(seed)
    return camera_clip(
        load_still(still), frames=frames, height=96, width=128, generator=generator, max_speed=1
    )


def restored(
    model: RRTN, clip: torch.Tensor, options: RestoreOptions, *, first_frame: int = 1001
) -> dict[int, torch.Tensor]:
    """Every frame of ``clip`` restored by one session numbered from ``first_frame``."""
    session = session_for(model, clip, options=options, first_frame=first_frame)
    return session.restore(range(first_frame, first_frame + clip.shape[0])).frames


def test_each_shot_of_a_joined_clip_is_restored_as_if_alone(small_model: RRTN) -> None:
    a, b = filmed("camera", 1), filmed("astronaut", 2)
    joined = torch.cat([a, b])
    session = session_for(small_model, joined, options=STAGED)
    assert session.shots(range(1001, 1017)) == [(0, 8), (8, 16)]
    assert session.shots([1003]) == [(0, 8)]
    # no window of either shot crosses the cut
    for start, stop in session.shots(range(1001, 1017)):
        for s, e in session.plan.shot(start, stop).windows:
            assert 0 <= s < e <= stop - start
    together = session.restore(range(1001, 1017)).frames
    first_alone = restored(small_model, a, STAGED, first_frame=1001)
    second_alone = restored(small_model, b, STAGED, first_frame=1009)
    for number in range(1001, 1009):
        assert torch.equal(together[number], first_alone[number])
    for number in range(1009, 1017):
        assert torch.equal(together[number], second_alone[number])
    # without cut detection the first shot leaks into the second
    leaked = restored(small_model, joined, replace(STAGED, cuts=False))
    assert not torch.equal(leaked[1009], second_alone[1009])


def test_a_flash_frame_is_restored_alone(small_model: RRTN) -> None:
    clip = filmed("camera", 3, frames=9)
    clip[4] = (clip[4] * 0.4).clamp(0, 1)
    together = restored(small_model, clip, STAGED)
    alone = restored(small_model, clip[4:5], STAGED, first_frame=1005)
    assert torch.equal(together[1005], alone[1005])
    # its neighbours are one shot around it: frames 1004 and 1006 are restored without it
    before = restored(small_model, clip[:4], STAGED)
    assert torch.equal(together[1004], before[1004])


@pytest.mark.parametrize("tone_guard", ["deflicker", "keep"])
def test_a_part_of_a_clip_is_restored_as_in_the_whole(small_model: RRTN, tone_guard: str) -> None:
    """The stages and shot detection read only what ``needed_frames`` names: a request for a
    few frames, given just those, gives what a run over the whole clip gives."""
    options = replace(STAGED, tone_guard=tone_guard)
    joined = torch.cat([filmed("camera", 1, frames=12), filmed("astronaut", 2, frames=12)])
    whole = restored(small_model, joined, options)
    session = session_for(small_model, joined, options=options, given=())
    wanted = [1011, 1012, 1013]
    needed = session.needed_frames(wanted)
    assert needed[0] > 1001 or needed[-1] < 1024 or len(needed) == 24
    for number in needed:
        session.put_frame(number, joined[number - 1001])
    part = session.restore(wanted).frames
    for number in wanted:
        assert torch.equal(part[number], whole[number])


def test_only_deflicker_reads_frames_around_for_the_tone_guard() -> None:
    reach = {g: stage_reach(replace(STAGED, tone_guard=g)) for g in ("deflicker", "keep", "off")}
    assert reach == {"deflicker": (9, 35), "keep": (0, 35), "off": (0, 35)}
    assert stage_reach(replace(STAGED, cuts=False, tone_guard="off")) == (0, 0)


def regrading(model: RRTN, offset: float) -> RRTN:
    """A copy of ``model`` whose output is ``offset`` brighter everywhere (display units): a
    network that re-grades, as the issue's bundled model did."""
    darker = copy.deepcopy(model)
    with torch.no_grad():
        darker.conv_last.bias += 2 * offset  # the network's frames are in [-1, 1]
    return darker


@pytest.mark.parametrize("guard", ["keep", "deflicker"])
def test_the_tone_guard_holds_a_regrading_network_to_the_input_level(
    small_model: RRTN, guard: str
) -> None:
    clip = 0.2 + 0.6 * filmed("camera", 4)
    model = regrading(small_model, -0.15)
    unguarded = torch.stack(list(restored(model, clip, replace(STAGED, tone_guard="off")).values()))
    guarded = torch.stack(list(restored(model, clip, replace(STAGED, tone_guard=guard)).values()))
    assert float(unguarded.mean() - clip.mean()) < -0.08
    assert abs(float(guarded.mean() - clip.mean())) <= 0.01
    assert abs(float(guarded.median() - clip.median())) <= 0.02
    per_frame = (guarded - clip).flatten(1).mean(1)
    assert float(per_frame.abs().max()) <= 0.02


@pytest.mark.parametrize("gain", [0.45, 1.6])
def test_a_darkened_or_brightened_clip_comes_back_at_its_own_level(gain: float) -> None:
    """The bundled model with the default stages on a uniformly darkened or brightened shot."""
    clip = (filmed("astronaut", 5) * gain).clamp(0, 1)
    out = torch.stack(list(restored(load_bundled()[0], clip, STAGED).values()))
    assert abs(float(out.mean() - clip.mean())) <= 0.01
    assert abs(float(out.median() - clip.median())) <= 0.02


def test_defects_mode_leaves_every_unmasked_pixel_as_given() -> None:
    model = load_bundled()[0]  # trained flows: a mask that finds the damage, not everything
    clip = filmed("camera", 6)
    clip[3, 40:46, 60:66] = 1.0  # a blotch on one frame
    options = replace(STAGED, repair_mode="defects")
    result = session_for(model, clip, options=options).restore(range(1001, 1009))
    out = torch.stack([result.frames[n] for n in range(1001, 1009)])
    weight = feathered(damage_mask(torch.stack([result.masks[n] for n in range(1001, 1009)])))
    untouched = weight == 0
    assert 0.5 < float(untouched.float().mean()) < 1
    assert torch.equal(out[untouched], clip[untouched])
    assert not torch.equal(out, clip)
    assert float(weight[3, 40:46, 60:66].min()) == 1.0  # the blotch is repaired
    # strength 0 gives the input back, bit for bit
    none = restored(model, clip, replace(options, repair_strength=0.0))
    assert all(torch.equal(none[n], clip[n - 1001]) for n in range(1001, 1009))


def test_stages_off_give_the_network_output(small_model: RRTN) -> None:
    clip = filmed("camera", 7, frames=6)
    off = replace(STAGED, cuts=False, tone_guard="off", repair_mode="full", repair_strength=1.0)
    assert off == network_options(window=6, overlap=3, max_passes=1, device="cpu")
    network = restored(small_model, clip, off)
    guarded = restored(small_model, clip, replace(off, tone_guard="keep"))
    assert not torch.equal(network[1003], guarded[1003])


def test_defects_mode_keeps_unmasked_pixels_of_the_files_bit_identical(tmp_path: Path) -> None:
    """Through the files: where the repair AOV is 0, every channel of the written EXR is the
    input's (grain, colour, alpha), bit for bit; most of the picture is untouched."""
    clip = filmed("camera", 8, frames=6)
    clip[2, 30:36, 50:56] = 1.0  # a blotch
    folder = tmp_path / "in"
    folder.mkdir()
    tint = np.array([1.0, 0.9, 0.75, 1.0], np.float32)  # sepia RGB, alpha 1
    for f, frame in enumerate(clip.numpy(), start=1):
        linear = np.where(frame <= 0.04045, frame / 12.92, ((frame + 0.055) / 1.055) ** 2.4)
        pixels = (linear[..., None] * tint).astype(np.float32)
        pixels[..., 3] = 1.0
        spec = oiio.ImageSpec(128, 96, 4, "half")
        spec.channelnames = ("R", "G", "B", "A")
        image = oiio.ImageBuf(spec)
        image.set_pixels(oiio.ROI(), pixels)
        image.write(str(folder / f"plate.{f:04d}.exr"))
    restore_sequence(
        folder / "plate.####.exr",
        tmp_path / "out" / "plate.####.exr",
        first=load_bundled()[0],
        settings=JobSettings(
            input_colorspace="lin_rec709",
            aovs=(Aov.REPAIR,),
            restore=replace(STAGED, repair_mode="defects"),
        ),
    )
    untouched = []
    for f in range(1, 7):
        given = oiio.ImageBuf(str(folder / f"plate.{f:04d}.exr")).get_pixels(oiio.FLOAT)
        written = oiio.ImageBuf(str(tmp_path / "out" / f"plate.{f:04d}.exr")).get_pixels(oiio.FLOAT)
        same = written[..., 4] == 0  # the repair AOV
        assert np.array_equal(written[same][:, :4], given[same])
        untouched.append(float(same.mean()))
    assert min(untouched) > 0.5
    assert untouched[2] < 1  # the blotch's frame was repaired
