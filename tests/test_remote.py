"""What every host adapter shares (rrtn_plugin.client: jobs, results, staleness), against a
real server where it talks to one."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import DUST, away_from_dust, bundled_reference, dusty_sequence, exr_sequence

from rrtn_plugin.client.farm import farm_command
from rrtn_plugin.client.jobs import RECORD, RestoreJob, finished_result
from rrtn_plugin.client.results import (
    CACHE_FOLDER,
    ResultRule,
    document_path,
    result_root,
    user_cache_root,
)
from rrtn_plugin.client.running import JobThread, run_job
from rrtn_plugin.client.sequences import exr_size, files_identity
from rrtn_plugin.client.settings import (
    CHOICE_HELP,
    KNOBS,
    HostSettings,
    add_options,
    from_options,
    server_choices,
)
from rrtn_plugin.client.staleness import (
    MISSING,
    REWRITTEN,
    new_recipe,
    stale_reasons,
    what_changed,
)
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.image import read_pixels
from rrtn_plugin.options import RestoreOptions, option_spec

SIZE = (64, 48)


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


CHOSEN: dict[str, Any] = {
    "cuts": False,
    "tone_guard": "keep",
    "repair_mode": "defects",
    "repair_strength": 0.5,
}
"""A value other than the default for each restore knob."""


def test_what_changes_the_result_changes_the_key(bundled_server: str, plates: Path) -> None:
    job = make_job(plates, bundled_server)
    assert make_job(plates, "other:50051").key() == job.key()
    assert make_job(plates, bundled_server, passes=2).key() != job.key()
    assert make_job(plates, bundled_server, aovs=("mask", "repair")).key() != job.key()
    assert make_job(plates, bundled_server, handles=1).key() != job.key()
    assert make_job(plates, bundled_server, last=1007).key() != job.key()
    for knob, value in CHOSEN.items():  # each restore knob changes the pixels
        assert make_job(plates, bundled_server, **{knob: value}).key() != job.key(), knob
    assert make_job(plates, bundled_server, repair_strength=1).key() == job.key()  # 1 is 1.0
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
    refused = {
        "repair_mode": ("everything", "repair mode must be one of full, defects (full repairs"),
        "tone_guard": ("smooth", "tone guard must be one of off, keep, deflicker (deflicker"),
        "repair_strength": (1.5, "repair strength must be a number from 0 to 1 (0 keeps the"),
        "cuts": ("yes", "find cuts must be true or false"),
    }
    for knob, (value, message) in refused.items():
        with pytest.raises(RRTNError, match=message.replace("(", r"\(")) as err:
            HostSettings(**{knob: value})  # type: ignore[arg-type]
        assert str(err.value).endswith(f", not {value!r}")
        assert err.value.kind is ErrorKind.INVALID_INPUT
    with pytest.raises(RRTNError, match="repair strength must be a number from 0 to 1"):
        HostSettings(repair_strength=float("nan"))
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


def test_the_restore_knobs_reach_the_server_and_decide_the_result(
    bundled_server: str, tmp_path: Path, opened_sessions: list[Any]
) -> None:
    pattern = str(dusty_sequence(tmp_path / "dusty", range(1, 6), dust_frame=3))

    def dusty_job(**knobs: object) -> RestoreJob:
        return RestoreJob.with_handles(
            first=2,
            last=4,
            handles=1,
            name="dusty",
            input=pattern,
            width=48,
            height=40,
            identity=files_identity(pattern, range(1, 6)),
            settings=HostSettings(
                server=bundled_server, input_colorspace="lin_rec709", **{**CHOSEN, **knobs}
            ),
        )

    def restored(job: RestoreJob) -> list[np.ndarray]:
        result = run_job(job, tmp_path / "cache")
        return [read_pixels(result.path(f))[1][:, :, :3] for f in (2, 3, 4)]

    job = dusty_job()
    half = restored(job)
    (spec,) = opened_sessions  # the OpenSession request, as the server parsed it
    assert (spec.options.cuts, spec.options.tone_guard) == (False, "keep")
    assert (spec.options.repair_mode, spec.options.repair_strength) == ("defects", 0.5)
    record = json.loads((job.folder(tmp_path / "cache") / RECORD).read_text())
    assert {k: record["settings"][k] for k in CHOSEN} == CHOSEN

    # What came back is what those knobs do: "defects" leaves every pixel away from the dust
    # the plate's, bit for bit, and strength 0.5 takes the speck part of the way.
    plate = [read_pixels(pattern.replace("####", f"{f:04d}"))[1] for f in (2, 3, 4)]
    far = away_from_dust()
    assert np.array_equal(half[0], plate[0])
    assert np.array_equal(half[2], plate[2])
    assert np.array_equal(half[1][far], plate[1][far])
    speck = float(plate[1][DUST].mean())
    assert float(half[1][DUST].mean()) < speck

    # The same frames with other knobs (the server reuses the network's work). Strength 0 is
    # sent, not taken as unset: the plate itself.
    none = restored(dusty_job(repair_strength=0.0))
    assert opened_sessions[-1].options.repair_strength == 0.0
    assert all(np.array_equal(ours, theirs) for ours, theirs in zip(none, plate, strict=True))
    whole = restored(dusty_job(repair_strength=1.0))
    assert float(whole[1][DUST].mean()) < float(half[1][DUST].mean()) < speck
    assert np.array_equal(whole[1][far], plate[1][far])
    full = restored(dusty_job(repair_mode="full", repair_strength=1.0))
    assert opened_sessions[-1].options.repair_mode == "full"
    assert not np.any(full[1][far] == plate[1][far])  # the restored picture everywhere
    assert all(s.options.cuts is False and s.options.tone_guard == "keep" for s in opened_sessions)

    # A finished result stands for its knobs only: any other value is another result.
    cache = tmp_path / "cache"
    assert finished_result(job, cache) is not None
    for knob, value in {"cuts": True, "tone_guard": "off", "repair_strength": 0.75}.items():
        other = replace(job, settings=replace(job.settings, **{knob: value}))
        assert other.key() != job.key()
        assert finished_result(other, cache) is None, knob


def test_host_scripts_take_the_knobs_as_options_and_farm_jobs_carry_them() -> None:
    def parsed(*argv: str) -> HostSettings:
        parser = argparse.ArgumentParser()
        add_options(parser, colorspace="ACEScg", cache=Path("/cache"))
        return from_options(parser.parse_args(list(argv)))

    defaults = parsed()
    assert {k.name: getattr(defaults, k.name) for k in KNOBS} == {
        "repair_mode": "full",
        "repair_strength": 1.0,
        "tone_guard": "deflicker",
        "cuts": True,
    }
    assert defaults == HostSettings(input_colorspace="ACEScg", server=defaults.server)
    flags = ("--repair-mode", "defects", "--repair-strength", "0.5", "--tone-guard", "keep")
    chosen = parsed(*flags, "--no-cuts")
    assert {k: getattr(chosen, k) for k in CHOSEN} == CHOSEN
    assert parsed("--cuts").cuts is True
    with pytest.raises(RRTNError, match=r"repair strength must be a number from 0 to 1 .*, not 2"):
        parsed("--repair-strength", "2")
    with pytest.raises(SystemExit):  # argparse: "invalid choice: 'all' (choose from ...)"
        parsed("--repair-mode", "all")

    # A farm job names the knobs that differ from the engine's defaults, as its flags.
    command = farm_command(
        "rrtn-plugin", Path("/b"), "/i.####.exr", "/o.####.exr", first=1, last=9, name="n"
    )
    assert command[-2:] == ["--name", "n"]  # the defaults: nothing added
    assert farm_command(
        "rrtn-plugin", Path("/b"), "/i.####.exr", "/o.####.exr", first=1, last=9, name="n", **CHOSEN
    )[len(command) :] == [*flags, "--no-cuts"]


def test_every_host_shows_the_engines_choices_defaults_and_ranges() -> None:
    defaults = RestoreOptions()
    for knob in KNOBS:
        spec = option_spec(knob.name)
        assert spec.served  # a session option the server takes
        assert knob.default == spec.default == getattr(defaults, knob.name)
        assert getattr(HostSettings(), knob.name) == knob.default
        assert set(knob.choices) == set(spec.choices)  # each with its help
        assert knob.choices[:1] == ((knob.default,) if spec.choices else ())
        assert knob.flag == spec.flag
        for choice in knob.choices:  # the tooltip says what each choice does
            assert f"\n{choice}: {CHOICE_HELP[choice]}." in knob.tooltip
    strength = next(k for k in KNOBS if k.name == "repair_strength")
    assert (strength.type, strength.minimum, strength.maximum) == (float, 0, 1)


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


NUKE = ResultRule("nuke document", "the node's cache folder", subfolder="nuke")
RESOLVE = ResultRule("", "--cache", subfolder="resolve")


def test_the_result_folder_rule_every_host_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = str(tmp_path / "shots" / "ab010.nk")
    # Beside the saved document, unless a folder is configured (the host's setting wins over
    # $RRTN_CACHE, which goes into the host's subfolder); // is the document's folder.
    assert result_root("", "", script, NUKE) == tmp_path / "shots" / CACHE_FOLDER
    assert result_root("/mnt/shared", "/mnt/env", script, NUKE) == Path("/mnt/shared")
    assert result_root("", "/mnt/env", script, NUKE) == Path("/mnt/env/nuke")
    assert result_root("", " /mnt/env ", "", NUKE) == Path("/mnt/env/nuke")  # unsaved is fine
    assert result_root("//../cache", "", script, NUKE) == tmp_path / "cache"
    assert result_root("", "//rr", script, ResultRule(".blend", "x")) == tmp_path / "shots" / "rr"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert result_root("~/rr", "", script, NUKE) == tmp_path / "home" / "rr"
    # An unsaved document with nothing configured has no place every machine reads.
    with pytest.raises(RRTNError, match=r"save the nuke document first: .* rrtn_cache/") as err:
        result_root("", "", "", NUKE)
    assert "the node's cache folder or $RRTN_CACHE" in str(err.value)
    with pytest.raises(RRTNError, match="relative to the nuke document: save the nuke"):
        result_root("//cache", "", "", NUKE)
    # A host whose projects are no files (Resolve): the user's own cache folder.
    assert result_root("", "", "", RESOLVE) == user_cache_root() / "resolve"
    assert result_root("", "/mnt/env", "", RESOLVE) == Path("/mnt/env/resolve")
    assert result_root("/r", "/mnt/env", "", RESOLVE) == Path("/r")


def test_documents_keep_paths_beside_them_relative(tmp_path: Path) -> None:
    blend = str(tmp_path / "project" / "shot.blend")
    inside = tmp_path / "project" / CACHE_FOLDER / "a.####.exr"
    assert document_path(inside, blend, prefix="//") == "//rrtn_cache/a.####.exr"
    tcl = "[file dirname [value root.name]]/"
    assert document_path(inside, blend, prefix=tcl) == f"{tcl}rrtn_cache/a.####.exr"
    sibling = tmp_path / "project2" / "a.exr"  # not "//../project2": it does not move along
    assert document_path(sibling, blend, prefix="//") == str(sibling)
    assert document_path("/mnt/shared/a.exr", blend, prefix="//") == "/mnt/shared/a.exr"
    assert document_path(inside, "", prefix="//") == str(inside)  # unsaved: absolute


def test_staleness_of_a_placed_result(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for folder, numbers in (("plates", range(1, 6)), ("restored", range(2, 5))):
        (project / folder).mkdir(parents=True)
        for n in numbers:
            (project / folder / f"plate.{n:04d}.exr").write_bytes(b"frame %d" % n)
    files = str(project / "plates" / "plate.####.exr")
    inputs = {"files": "//plates/plate.####.exr", "numbers": [1, 5], "scene_frame": 1}
    inputs["colorspace"] = "sRGB"
    recipe = new_recipe(
        kind="node",
        source="Plate",
        inputs=inputs,
        frames=(2, 4),
        context=(1, 5),
        files=files,
        settings={"passes": 0},
    )
    recipe["result"] = "//restored/plate.####.exr"

    def resolve(path: str) -> str:
        return os.path.normpath(path.replace("//", f"{project}/", 1))

    assert stale_reasons(recipe, inputs, resolve, files=files) == []
    absolute = {**inputs, "files": files}  # the same files, named another way
    assert what_changed(inputs, absolute, resolve) == []
    moved = {**inputs, "numbers": [1, 6], "scene_frame": 3, "colorspace": "Linear Rec.709"}
    assert stale_reasons(recipe, moved, resolve) == [
        "the source's frame range changed",
        "the source moved in time",
        "the source's colour space changed",
    ]

    # A context file rewritten in place: found when the files are read, and kept by checks
    # that do not read them, until the file is back.
    path = project / "plates" / "plate.0005.exr"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert stale_reasons(recipe, inputs, resolve, files=files) == [REWRITTEN]
    assert stale_reasons(recipe, inputs, resolve) == []  # not read: nothing known yet
    assert stale_reasons({**recipe, "stale": [REWRITTEN]}, inputs, resolve) == [REWRITTEN]
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert stale_reasons({**recipe, "stale": [REWRITTEN]}, inputs, resolve, files=files) == []

    # The project moved as a whole (dates kept): still up to date; a restored frame gone: not.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(project, elsewhere)
    moved_files = str(elsewhere / "plates" / "plate.####.exr")

    def resolve_moved(path: str) -> str:
        return os.path.normpath(path.replace("//", f"{elsewhere}/", 1))

    assert stale_reasons(recipe, inputs, resolve_moved, files=moved_files) == []
    (elsewhere / "restored" / "plate.0004.exr").unlink()
    assert stale_reasons(recipe, inputs, resolve_moved, files=moved_files) == [MISSING]
