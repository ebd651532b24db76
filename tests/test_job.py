"""Restore jobs through the CLI: round trips, frame ranges, AOVs, bad input, interruption."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest
from helpers import exr_sequence, network_options

from rrtn_plugin.cli import main
from rrtn_plugin.engine import RestoreOptions
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.image import read_pixels, write_image
from rrtn_plugin.frames.restore import JobSettings, restore_sequence
from rrtn_plugin.model import load_rrtn
from rrtn_plugin.progress import Progress

FAST = ["--device", "cpu", "--max-passes", "1"]


def test_exr_round_trip_with_identity_checkpoint(tmp_path: Path, identity_checkpoint: Path) -> None:
    source = exr_sequence(tmp_path / "in", range(1001, 1009))
    target = tmp_path / "out" / "plate.####.exr"
    assert (
        main(
            [
                "restore",
                str(source),
                str(target),
                "--model",
                str(identity_checkpoint),
                "--frames",
                "1002-1005",
                "--handles",
                "2",
                "--aovs",
                "mask,repair,motion",
                "--input-colorspace",
                "lin_rec709",
                *FAST,
                # Random-noise frames are unrelated pictures, each a shot of its own; here the
                # network alone runs over them, so that its flows are kept.
                "--no-cuts",
                "--tone-guard",
                "off",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in target.parent.iterdir()) == [
        f"plate.{f}.exr" for f in range(1002, 1006)
    ]
    for f in range(1002, 1006):
        _, before = read_pixels(tmp_path / "in" / f"plate.{f}.exr")
        out, after = read_pixels(tmp_path / "out" / f"plate.{f}.exr")
        assert out.channels == (
            "R",
            "G",
            "B",
            "A",
            "backward.u",
            "backward.v",
            "forward.u",
            "forward.v",
            "rrtn_mask.Y",
            "rrtn_repair.Y",
        )
        picture = [out.index(c) for c in ("R", "G", "B", "A")]
        # every pixel, HDR and negative ones included, unchanged within half precision
        assert np.allclose(after[..., picture], before, rtol=2**-10, atol=1e-6)
        assert np.abs(after[..., out.index("rrtn_repair.Y")]).max() < 1e-5
        assert np.isfinite(after[..., out.index("rrtn_mask.Y")]).all()
        assert np.abs(after[..., out.index("forward.u")]).max() > 0  # real flow was kept
        s = out.spec
        assert s.getattribute("smpte:TimeCode") == (0x01000000 + f, 0)
        assert s.getattribute("FramesPerSecond") == (24, 1)
        assert s.get_float_attribute("PixelAspectRatio") == 2.0
        assert s.get_string_attribute("studio:note") == f"frame {f}"
        assert (s.x, s.y, s.full_width, s.full_height) == (2, 3, 56, 48)


def dpx_sequence(folder: Path, frames: range, *, size: tuple[int, int] = (40, 32)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for f in frames:
        spec = oiio.ImageSpec(size[0], size[1], 3, "uint16")
        spec.attribute("oiio:BitsPerSample", 10)
        spec.attribute("dpx:Transfer", "Printing density")
        spec.attribute("dpx:FrameRate", 24.0)
        spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), [0x10000000 + f, 0])
        grey = rng.integers(95, 685, (size[1], size[0], 1))
        codes = np.clip(grey + rng.integers(-4, 5, (size[1], size[0], 3)), 0, 1023)
        write_image(
            folder / f"scan.{f:05d}.dpx",
            (codes / 1023).astype(np.float32),
            channels=("R", "G", "B"),
            template=spec,
            bits=10,
        )
    return folder / "scan.#####.dpx"


def test_dpx_film_scan_round_trip_with_sidecar_aovs(
    tmp_path: Path, identity_checkpoint: Path
) -> None:
    source = dpx_sequence(tmp_path / "scan", range(1, 5))
    target = tmp_path / "out" / "scan.%05d.dpx"
    assert (
        main(
            [
                "restore",
                str(source),
                str(target),
                "--model",
                str(identity_checkpoint),
                "--input-colorspace",
                "ADX10",
                "--aovs",
                "mask",
                *FAST,
            ]
        )
        == 0
    )
    for f in range(1, 5):
        info, before = read_pixels(tmp_path / "scan" / f"scan.{f:05d}.dpx")
        out, after = read_pixels(tmp_path / "out" / f"scan.{f:05d}.dpx")
        assert np.array_equal(np.round(after * 1023), np.round(before * 1023))  # every code
        assert out.bits == 10
        assert out.spec.get_string_attribute("dpx:Transfer") == "Printing density"
        assert out.spec.get_string_attribute("dpx:TimeCode") == info.spec.get_string_attribute(
            "dpx:TimeCode"
        )
        side, planes = read_pixels(tmp_path / "out" / f"scan_rrtn_aovs.{f:05d}.exr")
        assert side.channels == ("rrtn_mask.Y",)
        assert planes.shape == (32, 40, 1)


def test_handles_are_read_not_written_and_clamped_to_media(
    tmp_path: Path, identity_checkpoint: Path
) -> None:
    source = exr_sequence(tmp_path / "in", range(1001, 1007), size=(32, 24))
    model = load_rrtn(identity_checkpoint)
    settings = JobSettings(
        frames=[1001, 1002],
        handles=3,
        input_colorspace="lin_rec709",
        restore=RestoreOptions(max_passes=1, device="cpu"),
    )
    report = restore_sequence(
        source, tmp_path / "out" / "o.####.exr", first=model, settings=settings
    )
    assert report.frames == [1001, 1002]
    assert report.read_frames == [1001, 1002, 1003, 1004, 1005]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["o.1001.exr", "o.1002.exr"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("gap", r"missing frame\(s\): .*plate\.1003\.exr"),
        ("size", r"plate\.1002\.exr is 40x24, but .*plate\.1001\.exr is 32x24"),
        ("channels", r"plate\.1003\.exr has channels R, G, B, but"),
        ("truncated", r"cannot read the pixels of .*plate\.1002\.exr \(truncated"),
        ("colorspace", r"colour space 'lin-rec709' .* did you mean"),
        ("aovs", r"unknown AOV 'masks'"),
        ("range", r"bad frame range '1001:1004'"),
        ("overwrite", r"would overwrite the input"),
        ("model", r"checkpoint not found: .*missing\.pth"),
    ],
)
def test_bad_input_fails_before_any_work_naming_the_problem(
    tmp_path: Path,
    identity_checkpoint: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
    message: str,
) -> None:
    source = exr_sequence(tmp_path / "in", range(1001, 1005), size=(32, 24))
    args = [
        "restore",
        str(source),
        str(tmp_path / "out" / "o.####.exr"),
        "--model",
        str(identity_checkpoint),
        "--input-colorspace",
        "lin_rec709",
        *FAST,
    ]
    if damage == "gap":
        (tmp_path / "in" / "plate.1003.exr").unlink()
        args += ["--frames", "1001-1004"]
    elif damage == "size":
        exr_sequence(tmp_path / "in", range(1002, 1003), size=(40, 24))
    elif damage == "channels":
        exr_sequence(tmp_path / "in", range(1003, 1004), size=(32, 24), channels=("R", "G", "B"))
    elif damage == "truncated":
        path = tmp_path / "in" / "plate.1002.exr"
        path.write_bytes(path.read_bytes()[:-200])
    elif damage == "colorspace":
        args[args.index("lin_rec709")] = "lin-rec709"
    elif damage == "aovs":
        args += ["--aovs", "masks"]
    elif damage == "range":
        args += ["--frames", "1001:1004"]
    elif damage == "overwrite":
        args[2] = str(source)
    elif damage == "model":
        args[args.index(str(identity_checkpoint))] = str(tmp_path / "missing.pth")
    assert main(args) == 2
    errors = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("rrtn-plugin: error:")
    ]
    assert len(errors) == 1
    assert re.search(message, errors[0]), errors[0]
    assert not (tmp_path / "out").exists()


def test_nan_frames_are_restored_around_and_warned(
    tmp_path: Path, identity_checkpoint: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = exr_sequence(tmp_path / "in", range(1, 5), size=(32, 24))
    info, pixels = read_pixels(tmp_path / "in" / "plate.0003.exr")
    pixels[5, 6, 1] = np.nan
    pixels[7, 8, 0] = np.inf
    write_image(
        tmp_path / "in" / "plate.0003.exr", pixels, channels=info.channels, template=info.spec
    )
    model = load_rrtn(identity_checkpoint)
    report = restore_sequence(
        source,
        tmp_path / "out" / "o.####.exr",
        first=model,
        settings=JobSettings(
            input_colorspace="lin_rec709",
            restore=network_options(max_passes=1, device="cpu"),  # the identity, unguarded
        ),
    )
    assert report.nonfinite_frames == [3]
    assert "frame(s) 3 have NaN or infinite pixels" in caplog.text
    _, out = read_pixels(tmp_path / "out" / "o.0003.exr")
    assert np.isnan(out[5, 6, 1])
    assert np.isinf(out[7, 8, 0])
    finite = np.isfinite(pixels)
    assert np.allclose(out[finite], pixels[finite], rtol=2**-10, atol=1e-6)


def test_cancel_while_writing_leaves_only_whole_frames(
    tmp_path: Path, identity_checkpoint: Path
) -> None:
    source = exr_sequence(tmp_path / "in", range(1, 7), size=(32, 24))
    out = tmp_path / "out"

    with pytest.raises(RRTNError) as info:
        restore_sequence(
            source,
            out / "o.####.exr",
            first=load_rrtn(identity_checkpoint),
            settings=JobSettings(
                input_colorspace="lin_rec709", restore=RestoreOptions(max_passes=1, device="cpu")
            ),
            should_stop=lambda: len(list(out.glob("o.*.exr"))) >= 3,
        )
    assert info.value.kind is ErrorKind.CANCELLED
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    # the job's record stays for a retry (--skip-existing) to continue exactly
    assert names == [".o.rrtn-job.1-6.json", "o.0001.exr", "o.0002.exr", "o.0003.exr"]
    names.pop(0)
    for name in names:
        read_pixels(tmp_path / "out" / name)  # complete and readable


def test_a_job_reports_each_frame_read_and_written(
    tmp_path: Path, identity_checkpoint: Path
) -> None:
    """The restore loop's events: every frame read (handles too), then every frame written."""
    source = exr_sequence(tmp_path / "in", range(1, 7), size=(32, 24))
    events: list[Progress] = []
    restore_sequence(
        source,
        tmp_path / "out" / "o.####.exr",
        first=load_rrtn(identity_checkpoint),
        settings=JobSettings(
            frames=[3, 4],
            handles=1,
            input_colorspace="lin_rec709",
            restore=RestoreOptions(max_passes=1, device="cpu"),
        ),
        progress=events.append,
    )
    for stage, frames in (("read", [2, 3, 4, 5]), ("write", [3, 4])):
        seen = [(e.done, e.total, e.frame) for e in events if e.stage == stage]
        steps = [(i, len(frames), f) for i, f in enumerate(frames)]
        assert seen == [*steps, (len(frames), len(frames), None)], stage
    order = [{"read": 0, "flow": 1, "restore": 1, "write": 2}[e.stage] for e in events]
    assert order == sorted(order)  # read, then the engine's passes, then write
    assert 1 in order


def test_terminated_run_leaves_no_partial_file(tmp_path: Path, identity_checkpoint: Path) -> None:
    """SIGTERM once writing has begun: the frames already written are whole, nothing else."""
    source = exr_sequence(tmp_path / "in", range(1, 9), size=(320, 256))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rrtn_plugin.cli",
            "restore",
            str(source),
            str(out / "o.####.exr"),
            "--model",
            str(identity_checkpoint),
            "--input-colorspace",
            "lin_rec709",
            "--flow-max-pixels",
            "16384",
            "--aovs",
            "mask,repair,motion",
            *FAST,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},  # two threads on busy shared cores crawl
    )
    # Stop it as soon as its first frame is in place, then terminate it there: some frames
    # written, not all (a frame takes far longer to render and write than this poll).
    deadline = time.monotonic() + 300
    while not any(out.glob("o.*.exr")):
        assert proc.poll() is None, "the job ended before writing a frame"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGSTOP)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    rc = proc.wait(timeout=120)
    assert rc == 143
    names = sorted(p.name for p in out.iterdir() if p.name != ".o.rrtn-job.1-8.json")
    assert all(n.startswith("o.") and n.endswith(".exr") for n in names), names  # no temp
    assert 1 <= len(names) < 8  # stopped while writing: some frames, not all
    for name in names:
        _, pixels = read_pixels(out / name)  # every frame present is whole
        assert pixels.shape == (256, 320, 10)


@pytest.mark.slow
def test_real_film_clip_through_the_cli(
    tmp_path: Path, golden_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = golden_dir.parents[1] / "clips" / "the_great_train_robbery"
    if not clip.is_dir():
        pytest.skip(f"sample clips not found at {clip}")
    target = tmp_path / "out" / "train.####.exr"
    assert (
        main(
            [
                "restore",
                str(clip / "#####.png"),
                str(target),
                "--frames",
                "2-3",
                "--handles",
                "1",
                "--model",
                str(golden_dir / "checkpoint.pth"),
                "--input-colorspace",
                "srgb_tx",
                "--aovs",
                "mask,repair",
                *FAST,
            ]
        )
        == 0
    )
    assert sorted(p.name for p in target.parent.iterdir()) == ["train.0002.exr", "train.0003.exr"]
    info, pixels = read_pixels(tmp_path / "out" / "train.0002.exr")
    assert pixels.shape == (368, 480, 5)
    mask = pixels[..., info.index("rrtn_mask.Y")]
    assert np.isfinite(pixels).all()
    assert 0.0 < float((mask > 0.05).mean()) < 1.0
    assert "noise mask above 0.05 on" in capsys.readouterr().out
