"""Training: a tiny run, its checkpoint and metadata, resuming, fine-tuning and bad settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
import torch
from helpers import TINY_DIS_CONFIG

from rrtn_plugin.cli import main
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.frames.image import write_image
from rrtn_plugin.frames.sequence import parse_pattern
from rrtn_plugin.model import RRTNConfig, build_rrtn, load_rrtn, read_metadata
from rrtn_plugin.training.train import (
    Footage,
    TrainProgress,
    TrainSettings,
    cosine_lr,
    train,
    training_batch,
)

TINY = TINY_DIS_CONFIG


def tiny(out: Path, **changes: object) -> TrainSettings:
    settings = TrainSettings(
        out=out, steps=3, batch=1, frames=3, crop=32, config=TINY, save_every=1, seed=5, lr=1e-3
    )
    for key, value in changes.items():
        setattr(settings, key, value)
    return settings


class StopTrainingError(Exception):
    pass


def test_a_tiny_run_saves_a_loadable_checkpoint_with_metadata(tmp_path: Path) -> None:
    seen: list[TrainProgress] = []
    final = train(tiny(tmp_path), seen.append)
    assert final == tmp_path / "rrtn_first.safetensors"
    assert [p.step for p in seen] == [1, 2, 3]
    assert all(np.isfinite(p.loss) and p.loss > 0 for p in seen)
    model = load_rrtn(final)
    assert model.config == TINY
    assert not model.training
    meta = read_metadata(final)
    assert meta["flow_source"] == "dis"
    assert meta["stage"] == "first"
    assert meta["steps"] == "3"
    assert "scikit-image stills" in meta["trained_on"]
    assert "rrtn_plugin.synth" in meta["trained_on"]
    assert "moving objects and drawn exposures" in meta["trained_on"]
    assert meta["target"].startswith("the clip's own tone")
    # training moved the weights off the seeded start (the same build the run started from)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        start = build_rrtn(TINY)
    moved = (model.conv_last.weight - start.conv_last.weight).detach().abs().max()
    assert float(moved) > 1e-6


def test_resuming_an_interrupted_run_gives_the_same_weights(tmp_path: Path) -> None:
    straight = load_rrtn(train(tiny(tmp_path / "straight")))

    def stop_after_two(p: TrainProgress) -> None:
        if p.step == 2:
            raise StopTrainingError

    with pytest.raises(StopTrainingError):
        train(tiny(tmp_path / "resumed"), stop_after_two)
    assert read_metadata(tmp_path / "resumed" / "last.safetensors")["steps"] == "2"
    seen: list[TrainProgress] = []
    resumed = load_rrtn(train(tiny(tmp_path / "resumed", resume=True), seen.append))
    assert [p.step for p in seen] == [3]
    for (name, a), b in zip(
        straight.state_dict().items(), resumed.state_dict().values(), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-6), name


def test_second_stage_trains_on_the_first_stage_output_and_fine_tunes(tmp_path: Path) -> None:
    first = train(tiny(tmp_path / "first", steps=1))
    second = train(
        tiny(tmp_path / "second", steps=1, stage="second", first_model=first, init=first)
    )
    meta = read_metadata(second)
    assert meta["stage"] == "second"
    assert meta["first_model"] == "rrtn_first.safetensors"
    assert meta["base"] == "rrtn_first.safetensors"


def test_training_on_user_sequences(tmp_path: Path) -> None:
    folder = tmp_path / "clean"
    folder.mkdir()
    spec = oiio.ImageSpec(40, 36, 3, "half")
    for t in range(4):
        pixels = np.full((36, 40, 3), 0.1, np.float32)
        pixels[:, 4 * t : 4 * t + 10] = 0.6
        write_image(
            folder / f"plate.{t + 1:04d}.exr", pixels, channels=("R", "G", "B"), template=spec
        )
    settings = tiny(
        tmp_path / "out", steps=1, clean=[parse_pattern(folder / "plate.####.exr", must_exist=True)]
    )
    meta = read_metadata(train(settings))
    assert "plate.%04d.exr" in meta["trained_on"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stage": "second"}, "first-pass checkpoint"),
        ({"crop": 40}, "crop must be a multiple of 16"),
        ({"loss": "l2"}, "loss must be one of"),
        ({"frames": 2}, "frames ≥ 3"),
        ({"resume": True}, "nothing to resume"),
        ({"config": RRTNConfig()}, "RAFT would be untrained"),
    ],
)
def test_bad_settings_are_refused_before_training(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(RRTNError, match=message):
        train(tiny(tmp_path, **changes))


def test_learning_rate_decays_by_cosine_to_one_percent() -> None:
    assert cosine_lr(2e-4, 0, 100) == pytest.approx(2e-4)
    assert cosine_lr(2e-4, 50, 100) == pytest.approx(1.01e-4)
    assert cosine_lr(2e-4, 100, 100) == pytest.approx(2e-6)


def test_train_command_reports_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "train",
                "--out",
                str(tmp_path),
                "--steps",
                "1",
                "--batch",
                "1",
                "--frames",
                "3",
                "--crop",
                "32",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    text = capsys.readouterr()
    assert "step 1/1 loss" in text.err
    assert f"wrote {tmp_path / 'rrtn_first.safetensors'}" in text.out


def test_fine_tuning_an_official_checkpoint_keeps_its_raft_frozen(
    golden_dir: Path, tmp_path: Path
) -> None:
    official = golden_dir / "checkpoint.pth"
    tuned = load_rrtn(train(tiny(tmp_path, steps=1, init=official, crop=128)))
    before = load_rrtn(official)
    assert tuned.config.flow_source == "raft"
    assert read_metadata(tmp_path / "rrtn_first.safetensors")["base"] == "checkpoint.pth"
    for (name, a), b in zip(before.state_dict().items(), tuned.state_dict().values(), strict=True):
        if name.startswith("flow_net."):
            assert torch.equal(a, b), name
    assert not torch.equal(before.conv_last.weight, tuned.conv_last.weight)


def test_each_steps_data_is_fixed_and_its_target_keeps_the_clips_tone(tmp_path: Path) -> None:
    settings = tiny(tmp_path, batch=8, frames=4, crop=48)
    footage = Footage((), frames=4, crop=48, input_colorspace=None)
    lq, target = training_batch(footage, settings, 7, None)
    again, same = training_batch(footage, settings, 7, None)
    assert torch.equal(lq, again)
    assert torch.equal(target, same)
    other, _ = training_batch(footage, settings, 8, None)
    assert not torch.equal(lq, other)
    assert lq.shape == target.shape == (8, 4, 1, 48, 48)
    # the target is the damaged clip's own tone (fade kept, flicker zero-mean), not a re-graded
    # clean clip: over a clip, input and target agree in level
    shift = ((lq - target) / 2).mean(dim=(1, 2, 3, 4))
    assert float(shift.abs().max()) < 0.03
    # and the footage is varied: dark and bright clips in one batch
    levels = (target + 1) / 2
    assert float(levels.mean(dim=(1, 2, 3, 4)).max() - levels.mean(dim=(1, 2, 3, 4)).min()) > 0.2
