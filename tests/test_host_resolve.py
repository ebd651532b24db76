"""The Resolve script (hosts/resolve) driven through a working fake of Resolve's scripting API
and a real server: the fake renders the timeline to EXR (every enabled track, the render range
being the timeline's marks, Resolve 19+ semantics), imports and lays out clips, and runs a
UIManager dialog with a scripted user."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import bundled_reference, exr_sequence

from rrtn_plugin.client.jobs import FARM_RECORD
from rrtn_plugin.frames.image import read_pixels

HERE = Path(__file__).resolve().parent
START = 86400  # 01:00:00:00 at 24 fps
USER_RENDER_SETTINGS = {
    "TargetDir": "/deliveries/reel1",
    "CustomName": "Reel 1 review",
    "ExportAudio": True,
    "ExportVideo": True,
    "SelectAllFrames": True,
}


@pytest.fixture
def resolve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Resolve 20.2 with a timeline cutting from shot A (source frames 1-8) to shot B (3-10)."""
    monkeypatch.syspath_prepend(str(HERE / "fakes"))
    monkeypatch.syspath_prepend(str(HERE.parent / "hosts" / "resolve"))
    import DaVinciResolveScript as fake

    shots = {}
    for name, seed in (("a", 1), ("b", 2)):
        exr_sequence(tmp_path / name, range(1, 13), size=(64, 48), seed=seed)
        shots[name] = fake.MediaPoolItem(name, str(tmp_path / name / "plate.%04d.exr"), 1, 12)
    timeline = fake.Timeline("Reel 1", START)
    timeline.video[0].items = [
        fake.TimelineItem(shots["a"], START, 1, 8),
        fake.TimelineItem(shots["b"], START + 8, 3, 8),
    ]
    fake.app = fake.Resolve(fake.Project(timeline, 64, 48))
    fake.user_events.clear()
    yield fake
    fake.app = None
    sys.modules.pop("rrtn_resolve", None)


def run(server: str, tmp_path: Path, *extra: str) -> int:
    import rrtn_resolve

    return rrtn_resolve.main(
        [
            "--server",
            server,
            "--colorspace",
            "lin_rec709",
            "--cache",
            str(tmp_path / "cache"),
            *extra,
        ]
    )


def assert_user_settings_back(project, marks: dict) -> None:
    assert project.timeline.marks == marks
    assert project.render_settings == USER_RENDER_SETTINGS
    assert (project.format, project.codec, project.mode) == ("mov", "H264", 0)
    assert project.presets == {}
    assert project.jobs == {}  # the render job is removed from the queue afterwards
    assert project.pool.current is project.pool.root
    assert all(t.enabled for kind in ("video", "subtitle") for t in project.timeline.tracks[kind])


def test_marked_range_is_restored_from_its_source_clip_and_a_rerun_does_nothing(
    resolve, bundled_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = resolve.app.GetProjectManager().GetCurrentProject()
    timeline = project.timeline
    timeline.SetMarkInOut(2, 5)  # timeline frames START+2 .. START+5
    marks = timeline.GetMarkInOut()
    titles, subtitles = resolve.Track(), resolve.Track()
    titles.items = [resolve.TimelineItem(resolve.Title("Main title"), START, 0, 12)]
    subtitles.items = [resolve.TimelineItem(resolve.Title("Subtitle 1"), START + 3, 0, 4)]
    timeline.video.append(titles)
    timeline.tracks["subtitle"].append(subtitles)

    assert run(bundled_server, tmp_path, "--handles", "2", "--append") == 0
    assert project.rendered == [(START, START + 7)]  # handles, clamped at the timeline start
    assert project.rendered_tracks == [{1}]  # the source clip alone: no title, no subtitle
    assert_user_settings_back(project, marks)
    (bin_,) = project.pool.root.GetSubFolderList()
    assert bin_.GetName() == "RRTN"
    (clip,) = bin_.GetClipList()
    assert (clip.first, clip.last) == (START + 2, START + 5)  # exactly the marked frames
    assert clip.GetMetadata("Comments").startswith("rrtn-plugin restore ")
    (matte,) = clip.mattes
    stem = f"Reel_1_{START + 2}-{START + 5}"
    assert sorted(p.name for p in Path(matte).iterdir()) == [
        f"{stem}_mask.{f}.exr" for f in range(START + 2, START + 6)
    ]
    assert not list((tmp_path / "cache" / "renders").rglob("*.exr"))  # staging removed
    (placed,) = timeline.video[2].items  # a new track above the title track
    assert (placed.GetStart(), placed.GetEnd()) == (START + 2, START + 6)  # every frame

    expected = bundled_reference(
        tmp_path / "a" / "plate.####.exr", tmp_path / "reference", [3, 4, 5, 6], handles=2
    )
    for timeline_frame in range(START + 2, START + 6):
        source_frame = timeline_frame - START + 1  # shot A starts on source frame 1
        info, ours = read_pixels(Path(clip.printf % timeline_frame))
        _, ref = read_pixels(expected / f"plate.{source_frame:04d}.exr")
        assert info.channels == ("R", "G", "B")
        assert np.allclose(ours, ref[:, :, :3], rtol=2**-10, atol=1e-4), timeline_frame
        _, mask = read_pixels(Path(matte) / f"{stem}_mask.{timeline_frame}.exr")
        assert np.allclose(mask[:, :, 0], ref[:, :, 4], atol=1e-5)

    # Run again: the same range (not widened), rendered from the original clip, not from the
    # restored one above it; the result is found and nothing is imported or appended twice.
    capsys.readouterr()
    assert run(bundled_server, tmp_path, "--handles", "2", "--append") == 0
    assert project.rendered[-1] == (START, START + 7)
    assert project.rendered_tracks[-1] == {1}
    assert len(bin_.GetClipList()) == 1
    assert len(timeline.video) == 3
    assert "Up to date: frames 86402-86405" in capsys.readouterr().out
    assert_user_settings_back(project, marks)


KNOB_FLAGS = ("--repair-mode", "defects", "--repair-strength", "0.5", "--tone-guard", "keep")
KNOB_FLAGS += ("--no-cuts",)


def test_clip_under_the_playhead_on_a_timeline_smaller_than_the_project(
    resolve, bundled_server: str, tmp_path: Path, opened_sessions: list
) -> None:
    project = resolve.app.GetProjectManager().GetCurrentProject()
    project.settings.update(timelineResolutionWidth="128", timelineResolutionHeight="96")
    project.timeline.settings.update(timelineResolutionWidth="32", timelineResolutionHeight="24")
    project.timeline.playhead = START + 10  # on shot B
    assert run(bundled_server, tmp_path, "--handles", "4", *KNOB_FLAGS) == 0
    (spec,) = opened_sessions  # the restore knobs, as the server took them
    assert (spec.options.repair_mode, spec.options.repair_strength) == ("defects", 0.5)
    assert (spec.options.tone_guard, spec.options.cuts) == ("keep", False)
    assert project.rendered == [(START + 8, START + 15)]  # nothing of shot A
    (clip,) = project.pool.root.GetSubFolderList()[0].GetClipList()
    assert (clip.first, clip.last) == (START + 8, START + 15)
    assert read_pixels(Path(clip.printf % (START + 9)))[1].shape == (24, 32, 3)
    assert len(project.timeline.video) == 1  # no --append: the timeline is left alone
    assert_user_settings_back(project, {})


def test_errors_are_reported_not_raised_and_settings_come_back(
    resolve, bundled_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = resolve.app.GetProjectManager().GetCurrentProject()
    project.timeline.video[0].items[1].start += 2  # a two-frame gap after shot A
    project.timeline.SetMarkInOut(6, 11)
    marks = project.timeline.GetMarkInOut()
    assert run(bundled_server, tmp_path) == 1
    assert "the EXR render ended Failed: no clip at frame 86408" in capsys.readouterr().err
    assert_user_settings_back(project, marks)
    project.timeline.SetMarkInOut(6, 40)
    assert run(bundled_server, tmp_path) == 1
    assert (
        "the marked range 86406-86440 is not inside the timeline 86400-86417"
        in capsys.readouterr().err
    )
    # Knob values out of range are refused before anything is rendered, saying what to give.
    rendered = len(project.rendered)
    assert run(bundled_server, tmp_path, "--repair-strength", "1.5") == 1
    err = capsys.readouterr().err
    assert "repair strength must be a number from 0 to 1 (0 keeps the plate, 1 gives" in err
    with pytest.raises(SystemExit):
        run(bundled_server, tmp_path, "--tone-guard", "smooth")
    assert "argument --tone-guard: invalid choice: 'smooth'" in capsys.readouterr().err
    assert len(project.rendered) == rendered
    resolve.app.version = [19, 0, 3, 7, ""]  # no GetMarkInOut yet
    assert run(bundled_server, tmp_path) == 1
    assert "needs DaVinci Resolve Studio 19.1 or later (this is 19.0.3)" in capsys.readouterr().err
    resolve.app = None
    assert run(bundled_server, tmp_path) == 1
    assert "Resolve does not answer" in capsys.readouterr().err


def test_the_scripts_menu_dialog_runs_and_cancels(
    resolve, bundled_server: str, tmp_path: Path, opened_sessions: list
) -> None:
    import rrtn_resolve

    app = resolve.app
    project = app.GetProjectManager().GetCurrentProject()
    project.timeline.SetMarkInOut(1, 4)
    marks = project.timeline.GetMarkInOut()
    typed = (
        f"Server={bundled_server};Colorspace=lin_rec709;Handles=1;Append=1;"
        f"Cache={tmp_path / 'cache'}"
    )
    # The restore knobs: menus, a number Qt keeps within 0-1 (7 typed: 1), a checkbox.
    knobs = "repair_mode=defects;tone_guard=off;repair_strength=7;cuts=0"
    resolve.user_events[:] = [(1, "type", f"{typed};{knobs}"), (2, "Start", "Clicked")]
    rrtn_resolve.dialog(app, app.Fusion(), resolve.bmd)
    items = resolve.dialogs[-1].GetItems()
    assert items["Status"].Text.startswith("Imported "), items["Status"].Text
    assert items["repair_mode"].items == ["full", "defects"]
    assert items["tone_guard"].items == ["deflicker", "keep", "off"]
    assert "keep: hold the plate's own tone" in items["tone_guard"].ToolTip
    assert (items["repair_strength"].Minimum, items["repair_strength"].Maximum) == (0, 1)
    (spec,) = opened_sessions
    assert (spec.options.repair_mode, spec.options.repair_strength) == ("defects", 1.0)
    assert (spec.options.tone_guard, spec.options.cuts) == ("off", False)
    assert (items["Start"].Enabled, items["Cancel"].Text) == (True, "Close")
    (clip,) = project.pool.root.GetSubFolderList()[0].GetClipList()
    assert (clip.first, clip.last) == (START + 1, START + 4)
    assert len(project.timeline.video) == 2
    assert_user_settings_back(project, marks)

    # Cancelled while it runs (another range): nothing imported, the settings back.
    project.timeline.SetMarkInOut(9, 12)
    marks = project.timeline.GetMarkInOut()
    resolve.user_events[:] = [
        (1, "type", typed),
        (2, "Start", "Clicked"),
        (3, "Cancel", "Clicked"),
        (400, "Cancel", "Clicked"),  # then Close
    ]
    rrtn_resolve.dialog(app, app.Fusion(), resolve.bmd)
    items = resolve.dialogs[-1].GetItems()
    status = items["Status"].Text
    assert status.startswith("Error: "), status
    assert "cancelled" in status, status
    # A fresh dialog shows the engine's defaults.
    assert (items["repair_mode"].CurrentText, items["tone_guard"].CurrentText) == (
        "full",
        "deflicker",
    )
    assert (items["repair_strength"].Value, items["cuts"].Checked) == (1.0, True)
    assert len(project.pool.root.GetSubFolderList()[0].GetClipList()) == 1
    assert_user_settings_back(project, marks)


def test_farm_job_is_written_for_the_rendered_range_and_its_results_imported(
    resolve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--farm renders the range as a restore does (settings put back), keeps the render in the
    job's folder and writes the bundle; a plain run waits for the farm, then imports."""
    program = str(Path(sys.executable).parent / "rrtn-plugin")
    monkeypatch.setenv("RRTN_PLUGIN", program)
    project = resolve.app.GetProjectManager().GetCurrentProject()
    project.timeline.SetMarkInOut(2, 5)
    marks = project.timeline.GetMarkInOut()
    server = "localhost:1"  # no server: the farm restores, a finished result needs none

    assert run(server, tmp_path, "--handles", "2", *KNOB_FLAGS, "--farm") == 0
    assert project.rendered == [(START, START + 7)]
    assert_user_settings_back(project, marks)
    assert project.pool.root.GetSubFolderList() == []  # nothing imported yet
    (record_file,) = (tmp_path / "cache").rglob(FARM_RECORD)
    record = json.loads(record_file.read_text())
    assert record["command"][-len(KNOB_FLAGS) :] == list(KNOB_FLAGS)  # to every task
    assert record["settings"]["repair_mode"] == "defects"
    folder = record_file.parent
    bundle = folder / "openjd"
    out = capsys.readouterr().out
    assert f"Farm job written: {bundle}" in out
    assert f"deadline bundle submit {bundle}" in out
    assert f"openjd run {bundle / 'template.json'} --step Restore" in out
    assert f"Results (frames {START + 2}-{START + 5}): {record['pattern']}" in out
    values = json.loads((bundle / "parameter_values.json").read_text())
    given = {v["name"]: v["value"] for v in values["parameterValues"]}
    assert given["Input"].startswith(str(folder / "input") + os.sep)  # kept for the farm
    assert (
        given["Output"]
        == record["pattern"]
        == str(folder / f"Reel_1_{START + 2}-{START + 5}.#####.exr")
    )
    assert f"-p Input={given['Input']} -p Output={given['Output']}" in out
    inputs = sorted((folder / "input").glob("*.exr"))
    assert len(inputs) == 8  # the range with its handles
    template = json.loads((bundle / "template.json").read_text())
    (step,) = template["steps"]
    (frames,) = step["parameterSpace"]["taskParameterDefinitions"]
    assert frames["range"] == [f"{START + 2}-{START + 5}"]
    assert not list((tmp_path / "cache" / "renders").rglob("*.exr"))  # staging removed

    # The farm has not finished: a plain run says so and restores nothing itself.
    assert run(server, tmp_path, "--handles", "2", *KNOB_FLAGS) == 1
    assert "the farm job has written 0 of 4 frames" in capsys.readouterr().err
    assert_user_settings_back(project, marks)

    # The farm writes every frame (copies stand in for its restore), then a plain run imports.
    for source in inputs[2:6]:
        frame = int(source.stem[-8:])
        shutil.copy(source, record["pattern"].replace("#####", f"{frame:05d}"))
    assert run(server, tmp_path, "--handles", "2", *KNOB_FLAGS, "--append") == 0
    (bin_,) = project.pool.root.GetSubFolderList()
    (clip,) = bin_.GetClipList()
    assert (clip.first, clip.last) == (START + 2, START + 5)
    assert clip.GetMetadata("Comments") == f"rrtn-plugin restore {record['key']}"
    (placed,) = project.timeline.video[1].items
    assert (placed.GetStart(), placed.GetEnd()) == (START + 2, START + 6)
    assert_user_settings_back(project, marks)
    assert run(server, tmp_path, "--handles", "2", *KNOB_FLAGS, "--append") == 0  # nothing twice
    assert "Up to date: frames 86402-86405" in capsys.readouterr().out
    assert len(bin_.GetClipList()) == 1
    # Other knobs ask for another result: the farm's does not stand for it (and there is no
    # server to make it).
    assert run(server, tmp_path, "--handles", "2", "--append") == 1
    assert "no rrtn-plugin server answers at localhost:1" in capsys.readouterr().err
    assert len(bin_.GetClipList()) == 1


def test_farm_job_needs_shared_results_and_the_program(
    resolve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import rrtn_resolve

    monkeypatch.delenv("RRTN_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    monkeypatch.setenv("RRTN_PLUGIN", str(Path(sys.executable).parent / "rrtn-plugin"))
    project = resolve.app.GetProjectManager().GetCurrentProject()
    project.timeline.SetMarkInOut(2, 5)
    assert rrtn_resolve.main(["--colorspace", "lin_rec709", "--farm"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'home-cache' / 'rrtn-plugin' / 'resolve'}, a per-user folder" in err
    assert "set $RRTN_CACHE or --cache to shared storage" in err
    assert project.rendered == []  # refused before rendering

    # The dialog's "Write farm job" says the same in its status line.
    app = resolve.app
    resolve.user_events[:] = [(1, "type", "Colorspace=lin_rec709"), (2, "Farm", "Clicked")]
    rrtn_resolve.dialog(app, app.Fusion(), resolve.bmd)
    items = resolve.dialogs[-1].GetItems()
    assert "per-user folder" in items["Status"].Text, items["Status"].Text
    assert (items["Start"].Enabled, items["Farm"].Enabled) == (True, True)

    # Shared results but no rrtn-plugin program: said before rendering too.
    monkeypatch.setenv("RRTN_PLUGIN", str(tmp_path / "no-such-rrtn-plugin"))
    assert run("localhost:1", tmp_path, "--farm") == 1
    assert "no-such-rrtn-plugin is not on PATH" in capsys.readouterr().err
    assert project.rendered == []
