"""The Blender extension (hosts/blender) in real Blender: bpy 5.0.1 and 4.5.15 LTS as Python
modules, against a real server.

The operator restores a plate sequence from a compositor Image node and from a sequencer image
strip in a saved project; the results must render as exactly the restored frames, go out of
date when their source changes, and, once the project has moved to another folder, render the
same in a fresh Blender without the extension (what a render farm or ``--factory-startup``
has: the result is built-in data reading frames kept beside the .blend). The farm route writes
an Open Job Description bundle through ``rrtn-plugin farm openjd``, runs it with ``openjd
run`` and loads its frames.

bpy needs numpy < 2 (this project needs numpy 2), so each version is installed into its own
folder beside the virtual environment on first use and runs in a child process with nothing
else on its path (tests/blender_driver.py). The extension zip is built
(hosts/blender/build_extension.py) and installed into that Blender as a user would, so the
client library, grpcio and protobuf come from its bundled wheels. The tests skip, saying why,
only when bpy cannot be installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    BIN,
    VERSIONS,
    build_extension,
    bundled_reference,
    drive,
    exr_sequence,
    install_bpy,
    read_toml,
    this_platform,
)

from rrtn_plugin.frames.image import read_pixels

SIZE = (64, 48)


@pytest.fixture(scope="session", params=VERSIONS)
def blender(request: pytest.FixtureRequest) -> Path:
    """A folder holding bpy ``request.param``."""
    return install_bpy(request.param)


@pytest.fixture(scope="session")
def newest_blender() -> Path:
    """A folder holding the newest bpy (for the slow farm round trip, run once)."""
    return install_bpy(VERSIONS[0])


@pytest.fixture(scope="session")
def extension(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extension zip for this machine's platform."""
    return build_extension([this_platform()], tmp_path_factory.mktemp("extension"))


def test_extension_zip_lists_the_wheels_it_holds(extension: Path) -> None:
    with zipfile.ZipFile(extension) as archive:
        names = set(archive.namelist())
        manifest = read_toml(archive.read("blender_manifest.toml").decode())
    assert {"__init__.py", "blender_manifest.toml"} <= names
    assert {w.removeprefix("./") for w in manifest["wheels"]} == {
        n for n in names if n.startswith("wheels/")
    }
    assert {Path(w).name.split("-")[0] for w in manifest["wheels"]} == {
        "grpcio",
        "protobuf",
        "typing_extensions",
        "rrtn_plugin",
    }
    assert manifest["platforms"] == [this_platform()]
    assert manifest["blender_version_min"] == "4.2.0"


def plate_project(root: Path) -> Path:
    """A project folder holding plates/plate.1001-1010.exr (RGB, HDR, with a data window)."""
    project = root / "project"
    exr_sequence(project / "plates", range(1001, 1011), size=SIZE, channels=("R", "G", "B"), seed=9)
    return project


def pixels(path: Path) -> np.ndarray:
    return read_pixels(path)[1]


def test_results_are_built_in_data_that_render_without_the_extension(
    blender: Path, extension: Path, bundled_server: str, tmp_path: Path, opened_sessions: list
) -> None:
    project = plate_project(tmp_path)
    out = tmp_path / "renders"
    out.mkdir()
    first, last, handles = 1004, 1006, 2
    strip_files = [1001, 1002, 1003, 1004]
    report = drive(
        blender,
        "restore",
        {
            "extension": str(extension),
            "project": str(project),
            "first": first,
            "last": last,
            "handles": handles,
            "size": SIZE,
            "strip_files": strip_files,
            "out": str(out),
        },
        tmp_path,
        RRTN_SERVER=bundled_server,
    )
    assert report["version"][:2] == [int(v) for v in blender.name[4:].split(".")[:2]]
    assert str(tmp_path) in report["client_from"]  # from the extension's wheel, not the repo
    assert report["bl_options"] == ["REGISTER"]  # no UNDO: F9 would re-run the restore

    # Where results live: beside the saved .blend, or a configured (shared) folder.
    rules = report["rules"]
    assert rules["beside"] == str(project / "rrtn_cache")
    assert rules["configured"] == "/mnt/shared/rrtn"  # the preferences win over $RRTN_CACHE
    assert rules["environment"] == "/mnt/farm"
    assert rules["relative"] == str(tmp_path / "cache")
    assert rules["unsaved"].startswith("save the .blend first")
    assert "save the .blend first" in rules["unsaved_relative"]
    assert rules["no_program"].startswith("rrtn-plugin is not on PATH")
    assert rules["inside"] == "//rrtn_cache/a.####.exr"
    assert rules["outside"] == "/mnt/shared/a.####.exr"
    assert rules["sibling"] == str(tmp_path / "project2" / "a.exr")  # not "//../project2"
    assert rules["same"] == []  # a relative and an absolute path to the same files
    assert rules["changed"] == [
        "the source's frame range changed",
        "the source's colour space changed",
    ]
    assert rules["command"] == [
        *("rrtn-plugin", "farm", "openjd", "/b", "/p/a.####.exr", "/o/a.####.exr"),
        *("--frames", "3-9", "--chunk", "4", "--name", "RRTN restore a"),
        *("--aovs", "mask,repair", "--input-colorspace", "lin_rec709", "--max-passes", "2"),
        *("--model", "/m.safetensors", "--repair-mode", "defects", "--repair-strength", "0.5"),
        *("--tone-guard", "keep", "--no-cuts"),
    ]
    # The restore knobs on both operators and in their dialogs: menus whose choices say what
    # they do, a 0-1 slider, a checkbox, at the engine's defaults.
    for operator in ("restore", "farm_job"):
        knobs = report["knobs"][operator]
        assert knobs["repair_mode"]["name"] == "Repair mode"
        assert [i for i, _ in knobs["repair_mode"]["items"]] == ["full", "defects"]
        assert [i for i, _ in knobs["tone_guard"]["items"]] == ["deflicker", "keep", "off"]
        assert all(text for _, text in knobs["tone_guard"]["items"])
        assert knobs["repair_mode"]["items"][1][1].startswith("Only the dust and blotches")
        assert (knobs["repair_mode"]["default"], knobs["tone_guard"]["default"]) == (
            "full",
            "deflicker",
        )
        strength = knobs["repair_strength"]
        assert (strength["range"], strength["default"], strength["subtype"]) == (
            [0.0, 1.0],
            1.0,
            "FACTOR",
        )
        assert (knobs["cuts"]["type"], knobs["cuts"]["default"]) == ("BOOLEAN", True)
    knob_names = ["repair_mode", "repair_strength", "tone_guard", "cuts"]
    restore_dialog = ["first", "last", "handles", "passes", "model", "aovs", "colorspace"]
    farm_dialog = ["first", "last", "passes", "aovs", "colorspace", *knob_names]
    assert report["knobs"]["dialog"] == {
        "restore": [*restore_dialog, *knob_names],
        "farm_job": [*farm_dialog, "model_file", "chunk"],
    }
    # A value Blender's menu does not hold is refused, naming the choices.
    assert "everything" in report["knob_error"]
    assert "('full', 'defects')" in report["knob_error"]
    # Offered in the compositor and the sequencer (and to scripts), not in other editors.
    assert report["rules"]["poll"] == {
        "compositor": True,
        "shader": False,
        "geometry": False,
        "sequencer": True,
        "viewport": False,
        "console": True,
        "script": True,
    }
    entries = ["rrtn.restore", "rrtn.farm_job", "rrtn.farm_load"]
    assert rules["node_menu"]["compositor"] == entries
    assert not any(v for k, v in rules["node_menu"].items() if k != "compositor")

    assert report["unsaved"].startswith("Error: save the .blend first")
    assert report["plate_path"] == "//plates/plate.1001.exr"
    assert "no Image node 'Nope'" in report["error"]
    assert report["result"] == ["FINISHED"]
    node = report["node"]
    assert node["type"] == "CompositorNodeGroup"  # built in: no add-on needed to render it
    assert node["outputs"] == ["Image", "rrtn_mask"]
    assert node["inputs"] == ["Plate"]
    assert node["plate_from"] == "Plate"
    assert node["sink_from"] == "RRTN Restore"  # put in the plate's place
    assert node["image"].startswith("//rrtn_cache/plate-")  # relative: moves with the project
    assert node["read"] == [first, last - first + 2, first - 1]
    assert (node["mute"], node["label"], node["stale"]) == (False, "RRTN Restore", [])
    recipe = node["recipe"]
    assert recipe["inputs"] == {
        "files": "//plates/plate.####.exr",
        "numbers": [1001, 1010],
        "scene_frame": 1001,
        "colorspace": "Linear Rec.709",
    }
    assert recipe["frames"] == [first, last]
    assert recipe["context"] == [first - handles, last + handles]
    assert recipe["settings"]["aovs"] == ["mask"]
    restored = project / recipe["result"].removeprefix("//")
    # The sidebar: the result's frames, place and state, and Restore Again with its settings.
    again = {"node_name": "Plate", "first": first, "last": last, "handles": handles}
    again |= {"passes": 0, "model": "", "aovs": ["mask"], "colorspace": "lin_rec709"}
    again |= {"repair_mode": "full", "repair_strength": 1.0, "tone_guard": "deflicker"}
    again |= {"cuts": True}
    head = [["label", f"Frames {first}-{last} of Plate"], ["label", recipe["result"]]]
    tail = [["operator", "rrtn.restore", "Restore Again", again]]
    tail += [["operator", "rrtn.check", "", {}]]
    assert report["panel"]["fresh"] == [*head, ["label", "Up to date"], *tail]
    stale_lines = [["label", "Out of date:"], ["label", "the source's frame range changed"]]
    assert report["panel"]["stale"] == [*head, *stale_lines, *tail]
    assert report["panel"]["plate"] == [
        ["operator", "rrtn.restore", "", {}],
        ["operator", "rrtn.farm_job", "", {}],
    ]

    reference = tmp_path / "reference"
    bundled_reference(
        project / "plates" / "plate.####.exr", reference, [1004, 1005, 1006], handles=2
    )
    for frame in (1004, 1005, 1006):
        ours_info, ours = read_pixels(str(restored).replace("####", str(frame)))
        ref = pixels(reference / f"plate.{frame}.exr")
        assert ours_info.channels == ("R", "G", "B", "rrtn_mask.Y")
        assert np.allclose(ours, ref, rtol=2**-10, atol=1e-4), frame
        shown = pixels(out / f"comp.{frame}.exr")
        assert np.array_equal(shown[:, :, :3], ours[:, :, :3]), frame  # bit for bit
        assert np.all(shown[:, :, 3] == 1.0)
    for outside in (1003, 1007):  # exactly the range: transparent black outside it
        assert not np.any(pixels(out / f"comp.{outside}.exr")), outside
    mask = pixels(out / "mask.exr")
    assert np.array_equal(mask[:, :, 0], pixels(str(restored).replace("####", "1005"))[:, :, 3])
    assert mask.max() > 0

    # Out of date when the source changes, seen by the depsgraph handler: muted, so the plate
    # shows through (exactly as the plate node alone shows it), and up to date once it is back.
    stale = ["the source's frame range changed"]
    assert report["moved"] == {"mute": True, "label": "RRTN Restore: out of date", "stale": stale}
    assert np.array_equal(pixels(out / "stale.exr"), pixels(out / "plate_direct.exr"))
    assert report["back"] == {"mute": False, "label": "RRTN Restore", "stale": []}
    rewritten = ["the source's files were rewritten"]
    assert report["rewritten"]["stale"] == rewritten
    assert report["rewritten"]["mute"]
    assert report["rewritten_kept"]["stale"] == rewritten  # a later check keeps it
    assert report["unrewritten"]["stale"] == []
    recolored = {"mute": True, "label": "RRTN Restore: out of date"}
    recolored["stale"] = ["the source's colour space changed"]
    assert report["recolored"] == [recolored, recolored]
    assert report["again"] == [["FINISHED"], ["FINISHED"]]
    fresh_node = {"mute": False, "label": "RRTN Restore", "stale": []}
    assert report["again_state"] == [fresh_node, fresh_node]
    assert report["groups"] == ["RRTN Restore"]  # restored again in place, not a second node
    # Opening the .blend after a plate file was rewritten: out of date at once.
    assert report["reopened"] == {**recolored, "stale": rewritten}

    # The sequencer: the result is an image strip in the channel above, at the same frames.
    assert report["prefer"] == {"node": "node", "strip": "strip", "script": "node"}
    assert report["strip_result"] == ["FINISHED"]
    strip = report["strip"]
    assert strip["name"] == "Plate strip RRTN"
    assert (strip["type"], strip["channel"], strip["blend_type"]) == ("IMAGE", 3, "REPLACE")
    assert strip["frames"] == [1, 5]
    assert strip["directory"].startswith("//rrtn_cache/plate-")
    assert strip["files"] == [f"plate.{n}.exr" for n in strip_files]
    assert strip["recipe"]["settings"]["input_colorspace"] == "lin_rec709"  # from the image's
    # Restored with other knobs: they went to the server, and the recipe keeps them (Restore
    # Again repeats them).
    chosen = {"repair_mode": "defects", "repair_strength": 0.5, "tone_guard": "keep"}
    chosen["cuts"] = False
    assert {k: strip["recipe"]["settings"][k] for k in chosen} == chosen
    options = opened_sessions[-1].options
    assert {k: getattr(options, k) for k in chosen} == chosen
    assert opened_sessions[0].options.repair_mode == "full"  # the node's: the defaults
    strip_restored = project / strip["recipe"]["result"].removeprefix("//")
    for frame, number in enumerate(strip_files, 1):
        ours = pixels(str(strip_restored).replace("####", str(number)))[:, :, :3]
        # The sequencer's float pipeline is not bit-exact (relative error ~3e-5).
        assert np.allclose(pixels(out / f"edit.{frame}.exr")[:, :, :3], ours, rtol=2e-4, atol=0)
    assert not np.any(pixels(out / f"edit.{len(strip_files) + 1}.exr"))
    assert report["strip_moved"] == {"mute": True, "stale": ["the source moved in time"]}
    assert report["strip_back"] == {"mute": False, "stale": []}

    # Moved to another folder and opened in a fresh Blender without the extension: the same
    # frames, no crash, nothing but built-in nodes.
    moved = tmp_path / "elsewhere" / "project"
    shutil.move(project, moved)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    frames = list(range(first - 1, last + 2))
    shown = drive(
        blender,
        "render",
        {
            "out": str(fresh),
            "renders": [
                [str(moved / "shot.blend"), frames, "comp"],
                [str(moved / "edit.blend"), list(range(1, len(strip_files) + 2)), "edit"],
            ],
        },
        tmp_path,
    )
    assert shown["addons"] == []
    # Blender's own nodes only (4.5's default tree adds a Viewer and a Reroute).
    built_in = {"CompositorNodeImage", "NodeGroupOutput", "CompositorNodeComposite"}
    built_in |= {"CompositorNodeViewer", "NodeReroute"}
    for types in shown["node_types"].values():
        assert "CompositorNodeGroup" in types
        assert set(types) - {"CompositorNodeGroup"} <= built_in, types
    for frame in frames:
        assert np.array_equal(
            pixels(fresh / f"comp.{frame}.exr"), pixels(out / f"comp.{frame}.exr")
        )
    for frame in range(1, len(strip_files) + 2):
        assert np.array_equal(
            pixels(fresh / f"edit.{frame}.exr"), pixels(out / f"edit.{frame}.exr")
        )


def test_farm_job_runs_in_openjd_and_its_frames_load_into_the_scene(
    newest_blender: Path, extension: Path, tmp_path: Path
) -> None:
    project = plate_project(tmp_path)
    first, last = 1004, 1006
    with_program = tmp_path / "with"
    with_program.mkdir()
    (with_program / "rrtn-plugin").symlink_to(BIN / "rrtn-plugin")
    report = drive(
        newest_blender,
        "farm",
        {
            "extension": str(extension),
            "project": str(project),
            "first": first,
            "last": last,
            "size": SIZE,
            "path_without": "/usr/bin:/bin",
            "path_with": f"{with_program}:/usr/bin:/bin",
        },
        tmp_path,
    )
    assert "rrtn-plugin is not on PATH" in report["without"]
    assert report["with"] == ["FINISHED"]
    [job] = report["pending"]
    assert job["farm"].startswith("//rrtn_cache/plate-farm-")
    assert job["result"].startswith("//rrtn_cache/plate-farm-")
    assert report["not_yet"] == ["CANCELLED"]  # nothing written by the farm yet

    bundle = project / job["farm"].removeprefix("//")
    output = project / job["result"].removeprefix("//")
    values = json.loads((bundle / "parameter_values.json").read_text())["parameterValues"]
    assert {v["name"]: v["value"] for v in values} == {
        "Input": str(project / "plates" / "plate.####.exr"),
        "Output": str(output),
    }
    run = subprocess.run(
        [
            BIN / "openjd",
            "run",
            bundle / "template.json",
            "--step",
            "Restore",
            *[a for v in values for a in ("-p", f"{v['name']}={v['value']}")],
            "-p",
            f"RrtnPlugin={BIN / 'rrtn-plugin'}",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    loaded = drive(
        newest_blender,
        "farm_load",
        {"extension": str(extension), "blend": str(project / "shot.blend")},
        tmp_path,
    )
    assert loaded["loaded"] == ["FINISHED"]
    assert loaded["pending"] == []
    assert loaded["results"] == [["RRTN Restore", job["result"]]]
    assert loaded["sink_from"] == "RRTN Restore"
    renders = tmp_path / "renders"
    renders.mkdir()
    drive(
        newest_blender,
        "render",
        {"out": str(renders), "renders": [[str(project / "shot.blend"), [1004, 1006], "farm"]]},
        tmp_path,
    )
    for frame in (1004, 1006):
        farm = pixels(str(output).replace("####", str(frame)))
        assert np.array_equal(pixels(renders / f"farm.{frame}.exr")[:, :, :3], farm[:, :, :3])
