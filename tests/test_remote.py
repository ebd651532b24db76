"""What every host adapter shares (rrtn_plugin.client.host_job), against a real server."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from test_job import exr_sequence

from rrtn_plugin.client.host_job import (
    RECORD,
    HostSettings,
    JobThread,
    RestoreJob,
    exr_size,
    files_identity,
    finished_result,
    run_job,
    server_choices,
)
from rrtn_plugin.engine import RestoreOptions
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.image import read_pixels
from rrtn_plugin.frames.restore import JobSettings, restore_sequence
from rrtn_plugin.weights import load_bundled

SIZE = (64, 48)


def bundled_reference(source: Path, out: Path, frames: list[int], *, handles: int) -> Path:
    """What a host's result must equal: the same frames restored in this process by the
    bundled model (one pass, mask AOV, linear Rec.709), written to ``out/plate.####.exr``."""
    restore_sequence(
        source,
        out / "plate.####.exr",
        first=load_bundled()[0],
        settings=JobSettings(
            frames=frames,
            handles=handles,
            input_colorspace="lin_rec709",
            aovs=(Aov.MASK,),
            restore=RestoreOptions(device="cpu", max_passes=1),
        ),
    )
    return out


@pytest.fixture(scope="module")
def plates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("plates")
    exr_sequence(folder, range(1001, 1011), size=SIZE, seed=11)
    return folder


def make_job(
    plates: Path,
    server: str,
    *,
    first: int = 1004,
    last: int = 1006,
    handles: int = 2,
    **settings: object,
) -> RestoreJob:
    pattern = str(plates / "plate.####.exr")
    return RestoreJob.with_handles(
        first=first,
        last=last,
        handles=handles,
        available=(1001, 1010),
        name="ab010 plate",
        input=pattern,
        width=SIZE[0],
        height=SIZE[1],
        identity=files_identity(pattern, range(1001, 1011)),
        settings=HostSettings(**{"server": server, "input_colorspace": "lin_rec709", **settings}),
    )  # type: ignore[arg-type]


def test_a_job_gives_the_in_process_frames_and_is_not_redone(
    bundled_server: str, plates: Path, tmp_path: Path
) -> None:
    job = make_job(plates, bundled_server)
    assert (job.context_first, job.context_last) == (1002, 1008)
    result = run_job(job, tmp_path)
    assert not result.reused
    assert result.folder == job.folder(tmp_path)
    assert sorted(p.name for p in result.folder.glob("*.exr")) == [
        "ab010_plate.1004.exr",
        "ab010_plate.1005.exr",
        "ab010_plate.1006.exr",
    ]
    reference = tmp_path / "reference"
    bundled_reference(plates / "plate.####.exr", reference, [1004, 1005, 1006], handles=2)
    for f in (1004, 1005, 1006):
        info, ours = read_pixels(result.path(f))
        ref_info, ref = read_pixels(reference / f"plate.{f}.exr")
        assert info.channels == ref_info.channels == ("R", "G", "B", "A", "rrtn_mask.Y")
        assert np.allclose(ours, ref, rtol=2**-10, atol=1e-5)
    record = json.loads((result.folder / RECORD).read_text())
    assert record["key"] == job.key()
    assert record["settings"]["model"] == ""

    # Asked again with nothing changed: the result is found without any server (the address
    # is not part of the key, and nothing listens on port 1).
    started = time.perf_counter()
    again = run_job(make_job(plates, "127.0.0.1:1"), tmp_path)
    assert again.reused
    assert again.pattern == result.pattern
    assert time.perf_counter() - started < 1.0


def test_what_changes_the_result_changes_the_key(bundled_server: str, plates: Path) -> None:
    job = make_job(plates, bundled_server)
    assert make_job(plates, "other:50051").key() == job.key()
    assert make_job(plates, bundled_server, passes=2).key() != job.key()
    assert make_job(plates, bundled_server, aovs=("mask", "repair")).key() != job.key()
    assert make_job(plates, bundled_server, handles=1).key() != job.key()
    assert make_job(plates, bundled_server, last=1007).key() != job.key()
    before = job.identity
    path = plates / "plate.1009.exr"  # a handle frame rewritten: another input
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    try:
        assert files_identity(job.input, range(1001, 1011)) != before
    finally:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_aov_files_and_a_missing_result_file(
    bundled_server: str, plates: Path, tmp_path: Path
) -> None:
    job = make_job(plates, bundled_server, aovs=("mask", "repair"))
    job = RestoreJob(**{**job.__dict__, "aov_files": True})
    result = run_job(job, tmp_path)
    assert set(result.aov_patterns) == {"mask", "repair"}
    info, _picture = read_pixels(result.path(1005))
    assert info.channels == ("R", "G", "B", "A")
    info, mask = read_pixels(Path(result.aov_patterns["mask"].replace("####", "1005")))
    assert info.channels == ("R", "G", "B")
    assert mask.max() > 0
    assert np.array_equal(mask[:, :, 0], mask[:, :, 2])
    assert finished_result(job, tmp_path) is not None
    result.path(1005).unlink()  # a result with a file gone is done again, not reused
    assert finished_result(job, tmp_path) is None


def test_thread_reports_progress_and_cancels(
    bundled_server: str, plates: Path, tmp_path: Path
) -> None:
    done = JobThread(make_job(plates, bundled_server, first=1005, last=1005), tmp_path).start()
    assert done.finished(60)
    assert done.error is None
    assert done.result is not None
    assert (done.progress.fraction, done.progress.text) == (1.0, "Writing frames: 1/1")

    cancelled = JobThread(
        make_job(plates, bundled_server, first=1001, last=1010, handles=0), tmp_path
    ).start()
    cancelled.cancel()
    assert cancelled.finished(60)
    assert cancelled.result is None
    assert cancelled.error is not None
    assert cancelled.error.kind is ErrorKind.CANCELLED
    assert not (cancelled.job.folder(tmp_path) / RECORD).exists()


def test_errors_a_user_can_act_on(bundled_server: str, plates: Path, tmp_path: Path) -> None:
    with pytest.raises(RRTNError, match=r"no rrtn-plugin server answers at 127\.0\.0\.1:1"):
        run_job(make_job(plates, "127.0.0.1:1"), tmp_path)
    with pytest.raises(RRTNError, match="not all in the input's range 1001-1010"):
        make_job(plates, bundled_server, first=1000)
    with pytest.raises(RRTNError, match="last frame 1004 is before the first 1006"):
        make_job(plates, bundled_server, first=1006, last=1004)
    with pytest.raises(RRTNError, match="colour space 'Nope 709' is not in the OpenColorIO"):
        run_job(make_job(plates, bundled_server, input_colorspace="Nope 709"), tmp_path)
    with pytest.raises(RRTNError, match="passes must be 0"):
        HostSettings(passes=-1)
    missing = RestoreJob.with_handles(
        first=1,
        last=2,
        handles=0,
        name="gone",
        input=str(tmp_path / "none.####.exr"),
        width=8,
        height=8,
        identity="x",
        settings=HostSettings(server=bundled_server),
    )
    with pytest.raises(RRTNError, match=r"none\.0001\.exr does not exist"):
        run_job(missing, tmp_path)


def test_exr_size_reads_the_data_window(plates: Path, tmp_path: Path) -> None:
    assert exr_size(plates / "plate.1001.exr") == SIZE  # a tiled file with a data window
    (tmp_path / "x.exr").write_bytes(b"not an exr")
    with pytest.raises(RRTNError, match="is not an OpenEXR file"):
        exr_size(tmp_path / "x.exr")


def test_server_choices(bundled_server: str) -> None:
    choices = server_choices(HostSettings(server=bundled_server))
    assert choices.models == ("bundled",)
    assert {"mask", "repair", "motion"} <= set(choices.aovs)
    assert "ACEScg" in choices.colorspaces
    assert choices.device == "cpu"
