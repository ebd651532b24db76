"""Farm jobs: chunks whose context makes them equal to one run, the Open Job Description bundle,
and the bundle run for real with ``openjd run`` (a task killed mid-chunk, then the job re-run)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import exr_sequence, network_options

from rrtn_plugin.cli import main
from rrtn_plugin.cli.arguments import job_settings
from rrtn_plugin.cli.main import build_parser
from rrtn_plugin.color import ColorMode
from rrtn_plugin.engine import ClipSession, RestoreOptions
from rrtn_plugin.engine.clip import one_call_cache
from rrtn_plugin.engine.windows import frames_read, plan_windows
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.farm.chunks import plan_chunks
from rrtn_plugin.farm.job import task_options
from rrtn_plugin.farm.openjd import FarmJob, job_template
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.image import read_pixels
from rrtn_plugin.frames.restore import JobSettings, restore_sequence
from rrtn_plugin.model import RRTN
from rrtn_plugin.weights import load_bundled

BIN = Path(sys.executable).parent
OPTIONS = [
    "--window",
    "6",
    "--overlap",
    "3",
    "--max-passes",
    "2",
    "--device",
    "cpu",
    "--input-colorspace",
    "lin_rec709",
    "--aovs",
    "mask",
]


@pytest.mark.parametrize("stages", [True, False], ids=["stages", "network alone"])
@pytest.mark.parametrize(("window", "overlap", "passes"), [(6, 3, 1), (6, 3, 3), (7, 2, 2)])
def test_frames_read_is_the_sessions_rule(
    small_model: RRTN, window: int, overlap: int, passes: int, stages: bool
) -> None:
    options = RestoreOptions(
        window=window,
        overlap=overlap,
        max_passes=passes,
        device="cpu",
        cuts=stages,
        tone_guard="deflicker" if stages else "off",
    )
    session = ClipSession(
        first_frame=1001,
        num_frames=40,
        height=16,
        width=16,
        first=small_model,
        options=options,
        cache=one_call_cache(options),
    )
    for first, last in [(1001, 1001), (1003, 1009), (1017, 1024), (1035, 1040), (1012, 1012)]:
        needed = session.needed_frames(range(first, last + 1))
        assert needed == list(range(needed[0], needed[-1] + 1))  # one run of frames
        assert frames_read(first, last, clip=(1001, 1040), options=options) == (
            needed[0],
            needed[-1],
        )


def test_frames_read_on_a_long_clip_plans_only_the_windows_it_reaches() -> None:
    clip, length, overlap = (1, 5000), 30, 15
    windows = plan_windows(clip[0], clip[1] + 1, length=length, overlap=overlap)
    for first, last, passes in [(1, 10, 1), (2400, 2600, 1), (2400, 2600, 4), (4990, 5000, 2)]:
        low, high = first, last
        for _ in range(passes):  # the rule over all of the clip's windows
            covering = [(s, e) for s, e in windows if s <= high and e > low]
            low = max(clip[0], min(s for s, _ in covering) - 1)
            high = min(clip[1], max(e for _, e in covering))
        alone = network_options(window=length, overlap=overlap, max_passes=passes)
        assert frames_read(first, last, clip=clip, options=alone) == (low, high)


def test_chunks_write_every_frame_once() -> None:
    chunks = plan_chunks(
        1001,
        1100,
        size=30,
        available=(990, 1100),
        options=network_options(window=30, overlap=15, max_passes=2),
    )
    assert [c.frames for c in chunks] == ["1001-1030", "1031-1060", "1061-1090", "1091-1100"]
    written = [f for c in chunks for f in range(c.first, c.last + 1)]
    assert written == list(range(1001, 1101))
    assert chunks[0].read_first == 990  # context reaches into the handles before the range
    assert chunks[-1].read_last == 1100  # and stops where the media does
    # Two passes: the windows covering 1031-1060 (1005-1079), then those covering that
    # range and its mask neighbours for the first pass (990-1100, all the media here).
    assert (chunks[1].read_first, chunks[1].read_last) == (990, 1100)
    assert max(c.handles for c in chunks) == 57
    # One pass: windows every 15 frames, 30 long; 1101-1200 is covered by 1080-1109 …
    # 1200-1229, plus one neighbour on each side.
    (_, middle, _) = plan_chunks(
        1001,
        1300,
        size=100,
        available=(990, 1300),
        options=network_options(window=30, overlap=15, max_passes=1),
    )
    assert (middle.read_first, middle.read_last, middle.handles) == (1079, 1230, 30)
    with pytest.raises(RRTNError, match="not all in the media's 990-1100"):
        plan_chunks(
            980,
            1000,
            size=5,
            available=(990, 1100),
            options=network_options(window=6, overlap=3, max_passes=1),
        )
    with pytest.raises(RRTNError, match="at least 1 frame"):
        plan_chunks(
            1001,
            1010,
            size=0,
            available=(990, 1100),
            options=network_options(window=6, overlap=3, max_passes=1),
        )


@pytest.fixture(scope="module")
def plates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reel")
    exr_sequence(folder, range(1001, 1025), size=(48, 40), seed=3)
    return folder


def write_bundle(bundle: Path, plates: Path, output: Path, *extra: str) -> dict:
    assert (
        main(
            [
                "farm",
                "openjd",
                str(bundle),
                str(plates / "plate.####.exr"),
                str(output / "plate.####.exr"),
                *extra,
            ]
        )
        == 0
    )
    return json.loads((bundle / "template.json").read_text())


def test_bundle_is_valid_and_carries_the_jobs_options(
    plates: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = write_bundle(
        tmp_path / "job",
        plates,
        tmp_path / "out",
        "--chunk",
        "10",
        "--frames",
        "1003-1024",
        "--model-second",
        str(tmp_path / "second.safetensors"),
        "--aovs",
        "mask,repair",
        "--max-passes",
        "1",
    )
    assert "each task picks its tiles from its worker's free memory" in capsys.readouterr().out
    checked = subprocess.run(
        [BIN / "openjd", "check", tmp_path / "job" / "template.json"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (step,) = template["steps"]
    assert step["parameterSpace"]["taskParameterDefinitions"][0]["range"] == [
        "1003-1012",
        "1013-1022",
        "1023-1024",
    ]
    assert step["hostRequirements"] == {"amounts": [{"name": "amount.worker.gpu", "min": 1}]}
    args = step["script"]["actions"]["onRun"]["args"]
    # One pass of the bundled model's 30-frame windows over a 24-frame reel: the last chunk
    # (1023-1024) reads the whole reel back to 1001 (its tone guard looks 9 frames back, its
    # window starts at 1005, and shot detection looks further than the reel).
    assert args[:8] == [
        "restore",
        "{{Param.Input}}",
        "{{Param.Output}}",
        "--frames",
        "{{Task.Param.Frames}}",
        "--handles",
        "22",
        "--skip-existing",
    ]
    assert args[args.index("--aovs") + 1] == "mask,repair"
    assert args[-2:] == ["--model-second", "{{Param.ModelSecond}}"]
    assert args[args.index("--stop-psnr") + 1] == "inf"  # every task runs the same passes
    assert args.count("--fixed-window") == 1  # and the windows its chunk was planned for
    values = json.loads((tmp_path / "job" / "parameter_values.json").read_text())
    assert {v["name"]: v["value"] for v in values["parameterValues"]} == {
        "Input": str(plates / "plate.####.exr"),
        "Output": str(tmp_path / "out/plate.####.exr"),
        "ModelSecond": str(tmp_path / "second.safetensors"),
    }

    cpu = write_bundle(
        tmp_path / "cpu",
        plates,
        tmp_path / "out",
        *OPTIONS,
        "--memory-budget",
        "2",
        "--fixed-window",
    )
    assert "hostRequirements" not in cpu["steps"][0]
    args = cpu["steps"][0]["script"]["actions"]["onRun"]["args"]
    assert args[args.index("--memory-budget") + 1] == "2.0"
    assert args.count("--fixed-window") == 1
    assert "each task picks its tiles" not in capsys.readouterr().out
    assert (
        main(
            [
                "farm",
                "openjd",
                str(tmp_path / "x"),
                str(plates / "plate.####.exr"),
                str(tmp_path / "o.####.exr"),
                "--chunk",
                "0",
            ]
        )
        == 2
    )
    assert not (tmp_path / "x").exists()
    chunks = plan_chunks(
        1,
        2000,
        size=1,
        available=(1, 2000),
        options=network_options(window=6, overlap=3, max_passes=1),
    )
    with pytest.raises(RRTNError, match="2000 chunks are more than the 1024 tasks"):
        job_template(
            FarmJob(
                name="long",
                input="in.####.exr",
                output="out.####.exr",
                chunks=chunks,
                options=[],
                models={},
                gpu=False,
            )
        )


def test_bundle_folder_may_be_relative_as_in_the_readme(
    plates: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    template = write_bundle(Path("jobs/reel1"), plates, tmp_path / "out", *OPTIONS)
    assert (tmp_path / "jobs/reel1/template.json").is_file()
    assert template["steps"][0]["parameterSpace"]["taskParameterDefinitions"][0]["range"] == [
        "1001-1024"
    ]


def task_command(template: dict, values: dict[str, str], frames: str) -> list[str]:
    """One task's command line, as the farm runs it."""
    action = template["steps"][0]["script"]["actions"]["onRun"]
    values = {**{f"Param.{k}": v for k, v in values.items()}, "Task.Param.Frames": frames}
    return [
        action["command"].replace("{{Param.RrtnPlugin}}", values["Param.RrtnPlugin"]),
        *[values.get(a.strip("{}"), a) for a in action["args"]],
    ]


def test_openjd_run_after_a_killed_task_equals_one_run(plates: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    template = write_bundle(tmp_path / "job", plates, output, "--chunk", "8", *OPTIONS)
    values = {
        "Input": str(plates / "plate.####.exr"),
        "Output": str(output / "plate.####.exr"),
        "RrtnPlugin": str(BIN / "rrtn-plugin"),
    }

    # The middle task, killed while it writes its frames.
    # One thread per task: two on two cores shared with the test run were many times slower
    # (the frames are the same either way).
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}
    task = subprocess.Popen(
        task_command(template, values, "1009-1016"),
        text=True,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=one_thread,
    )
    assert task.stderr is not None
    while not task.stderr.readline().startswith("write"):
        assert task.poll() is None, "the task ended before writing"
    while True:  # let it run a millisecond at a time until its first frame is on disk
        os.kill(task.pid, signal.SIGSTOP)
        written = sorted(p.name for p in output.glob("plate.*.exr"))
        if written:
            break
        os.kill(task.pid, signal.SIGCONT)
        time.sleep(0.001)
    task.kill()
    task.wait()
    assert 1 <= len(written) < 8, written  # mid-chunk
    assert written == [f"plate.{f}.exr" for f in range(1009, 1009 + len(written))]
    for name in written:  # what it left is whole frames only
        assert read_pixels(output / name)[1].shape == (40, 48, 5)
    # and the task's record, so that its retry restores the rest as it would have
    assert (output / ".plate.rrtn-job.1009-1016.json").is_file()

    # The whole job, as a farm retry runs it: the dead task's frames are kept, the rest done.
    args = [f"{k}={v}" for k, v in values.items()]
    run = subprocess.run(
        [
            BIN / "openjd",
            "run",
            tmp_path / "job" / "template.json",
            "--step",
            "Restore",
            *[a for kv in args for a in ("-p", kv)],
        ],
        capture_output=True,
        text=True,
        timeout=1200,
        env=one_thread,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"skipped {len(written)} frames already written" in run.stdout
    assert sorted(p.name for p in output.iterdir()) == [
        f"plate.{f}.exr" for f in range(1001, 1025)
    ]  # each frame once, no temporary left

    reference = tmp_path / "one"
    restore_sequence(
        plates / "plate.####.exr",
        reference / "plate.####.exr",
        first=load_bundled()[0],
        settings=JobSettings(
            input_colorspace="lin_rec709",
            aovs=(Aov.MASK,),
            restore=RestoreOptions(
                window=6, overlap=3, max_passes=2, stop_psnr=float("inf"), device="cpu"
            ),
        ),
    )
    for f in range(1001, 1025):
        chunked, whole = (
            read_pixels(output / f"plate.{f}.exr")[1],
            read_pixels(reference / f"plate.{f}.exr")[1],
        )
        assert np.array_equal(chunked, whole), f  # measured: identical, 0.0 everywhere


def test_skip_existing_restores_only_missing_frames(plates: Path, tmp_path: Path) -> None:
    settings = JobSettings(
        frames=list(range(1005, 1011)),
        handles=3,
        input_colorspace="lin_rec709",
        skip_existing=True,
        restore=RestoreOptions(window=6, overlap=3, max_passes=1, device="cpu"),
    )
    out = tmp_path / "out" / "plate.####.exr"
    first = load_bundled()[0]
    report = restore_sequence(plates / "plate.####.exr", out, first=first, settings=settings)
    assert (report.frames, report.skipped) == (list(range(1005, 1011)), [])
    (tmp_path / "out" / "plate.1008.exr").unlink()
    (tmp_path / "out" / "plate.1009.exr").write_bytes(b"")  # not a frame: restored again
    again = restore_sequence(plates / "plate.####.exr", out, first=first, settings=settings)
    assert (again.frames, again.skipped) == ([1008, 1009], [1005, 1006, 1007, 1010])
    done = restore_sequence(plates / "plate.####.exr", out, first=first, settings=settings)
    assert (done.frames, done.skipped, done.read_frames) == ([], list(range(1005, 1011)), [])


def test_task_options_are_the_jobs_settings_under_the_farm_policy() -> None:
    settings = JobSettings(
        frames=[1001, 1002],
        handles=3,
        input_colorspace="ACEScg",
        color_mode=ColorMode.MONOCHROME,
        aovs=(Aov.MASK, Aov.MOTION),
        restore=RestoreOptions(
            window=6,
            overlap=3,
            max_passes=2,
            flow_max_pixels=None,
            tile=0,
            memory_budget=3 << 29,
            device="cpu",
            precision="bf16",
            quantize_between_passes=True,
            cuts=False,
            tone_guard="keep",
            repair_mode="defects",
            repair_strength=0.5,
        ),
    )
    flags = task_options(settings)
    assert flags == [
        *("--input-colorspace", "ACEScg", "--color-mode", "monochrome", "--aovs", "mask,motion"),
        *("--window", "6", "--overlap", "3", "--max-passes", "2", "--stop-psnr", "inf"),
        *("--flow-max-pixels", "0", "--tile", "0", "--memory-budget", "1.5", "--device", "cpu"),
        *("--precision", "bf16", "--quantize-between-passes", "--fixed-window", "--no-cuts"),
        *("--tone-guard", "keep", "--repair-mode", "defects", "--repair-strength", "0.5"),
    ]
    # A task's command line gives back the job's settings, with every pass run and the window
    # fixed (frames and handles are the task's own).
    args = build_parser().parse_args(["restore", "in.####.exr", "out.####.exr", *flags])
    policy = replace(settings.restore, stop_psnr=math.inf, fixed_window=True)
    assert job_settings(args) == replace(settings, frames=None, handles=0, restore=policy)
    # Defaults are left out, but the pass count always goes: a task's default is its model's.
    assert task_options(JobSettings(restore=RestoreOptions(max_passes=1))) == [
        *("--max-passes", "1", "--stop-psnr", "inf", "--fixed-window")
    ]
    assert task_options(JobSettings(), compile=True)[-1] == "--compile"
