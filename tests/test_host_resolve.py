"""The Resolve script (hosts/resolve) driven through a working fake of Resolve's scripting API
and a real server: the fake renders the timeline to EXR, imports and lays out clips."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from test_job import exr_sequence
from test_remote import bundled_reference

from rrtn_plugin.frames.image import read_pixels

HERE = Path(__file__).resolve().parent
START = 86400  # 01:00:00:00 at 24 fps


@pytest.fixture
def resolve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Resolve with a timeline cutting from shot A (source frames 1-8) to shot B (3-10)."""
    monkeypatch.syspath_prepend(str(HERE / "fakes"))
    monkeypatch.syspath_prepend(str(HERE.parent / "hosts" / "resolve"))
    import DaVinciResolveScript as fake

    shots = {}
    for name, seed in (("a", 1), ("b", 2)):
        exr_sequence(tmp_path / name, range(1, 13), size=(64, 48), seed=seed)
        shots[name] = fake.MediaPoolItem(name, str(tmp_path / name / "plate.%04d.exr"), 1, 12)
    timeline = fake.Timeline("Reel 1", START)
    timeline.tracks[0] = [
        fake.TimelineItem(shots["a"], START, 1, 8),
        fake.TimelineItem(shots["b"], START + 8, 3, 8),
    ]
    fake.app = fake.Resolve(fake.Project(timeline, 64, 48))
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


def test_marked_range_with_handles_is_imported_with_its_matte(
    resolve, bundled_server: str, tmp_path: Path
) -> None:
    project = resolve.app.GetProjectManager().GetCurrentProject()
    project.timeline.SetMarkInOut(2, 5)  # timeline frames START+2 .. START+5
    assert run(bundled_server, tmp_path, "--handles", "2", "--append") == 0
    assert project.rendered == [(START, START + 7)]  # handles, clamped at the timeline start
    assert project.jobs == {}  # the render job is removed from the queue afterwards
    (bin_,) = project.pool.root.GetSubFolderList()
    assert bin_.GetName() == "RRTN"
    (clip,) = bin_.GetClipList()
    assert (clip.first, clip.last) == (START + 2, START + 5)  # exactly the marked frames
    (matte,) = clip.mattes
    stem = f"Reel_1_{START + 2}-{START + 5}"
    assert sorted(p.name for p in Path(matte).iterdir()) == [
        f"{stem}_mask.{f}.exr" for f in range(START + 2, START + 6)
    ]
    assert not list((tmp_path / "cache" / "renders").rglob("*.exr"))  # staging removed
    (placed,) = project.timeline.tracks[1]
    assert (placed.GetStart(), placed.GetEnd()) == (START + 2, START + 6)

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


def test_clip_under_the_playhead_keeps_its_context_inside_the_clip(
    resolve, bundled_server: str, tmp_path: Path
) -> None:
    project = resolve.app.GetProjectManager().GetCurrentProject()
    project.timeline.playhead = START + 10  # on shot B
    assert run(bundled_server, tmp_path, "--handles", "4") == 0
    assert project.rendered == [(START + 8, START + 15)]  # nothing of shot A
    (clip,) = project.pool.root.GetSubFolderList()[0].GetClipList()
    assert (clip.first, clip.last) == (START + 8, START + 15)
    assert len(project.timeline.tracks) == 1  # no --append: the timeline is left alone


def test_errors_are_reported_not_raised(
    resolve, bundled_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = resolve.app.GetProjectManager().GetCurrentProject()
    project.timeline.tracks[0][1].start += 2  # a two-frame gap after shot A
    project.timeline.SetMarkInOut(6, 11)
    assert run(bundled_server, tmp_path) == 1
    assert "the EXR render ended Failed: no clip at frame 86408" in capsys.readouterr().err
    project.timeline.SetMarkInOut(6, 40)
    assert run(bundled_server, tmp_path) == 1
    assert (
        "the marked range 86406-86440 is not inside the timeline 86400-86417"
        in capsys.readouterr().err
    )
    resolve.app = None
    assert run(bundled_server, tmp_path) == 1
    assert "Resolve does not answer" in capsys.readouterr().err
