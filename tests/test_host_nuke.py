"""The Nuke adapter (hosts/nuke) driven through a working fake of Nuke's API and a real server.

The fake (tests/fakes/nuke) renders Writes to real EXR files (the bbox as the data window, the
format as the display window, as Nuke does) and reads Reads from them, so what is checked here
is what a compositor would see: the frames rendered, the Read's range, path and layers, the
restored pixels lined up with the format, and what a second press, a moved node, an edited
expression, proxy mode, cancel and the farm button do.
"""

from __future__ import annotations

import ast
import json
import os
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import PyOpenColorIO as ocio
import pytest
from helpers import DUST, away_from_dust, bundled_reference, dusty_sequence, exr_sequence

from rrtn_plugin.client.jobs import FARM_RECORD, RECORD, finished_result
from rrtn_plugin.client.settings import CHOICE_HELP
from rrtn_plugin.frames.image import read_pixels

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NUKE_HOST = REPO / "hosts" / "nuke"
CLIENT_MODULES = ("settings", "jobs", "running", "results", "sequences", "staleness", "farm")
CLIENT_MODULES += ("colour", "steps", "versions")


@pytest.fixture
def nuke(monkeypatch: pytest.MonkeyPatch, bundled_server: str, tmp_path: Path):
    """Nuke started with the adapter on its plugin path (init.py, then menu.py)."""
    monkeypatch.syspath_prepend(str(HERE / "fakes"))
    monkeypatch.syspath_prepend(str(NUKE_HOST))
    monkeypatch.setenv("RRTN_SERVER", bundled_server)
    monkeypatch.setenv("RRTN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OCIO", raising=False)
    import nuke as fake

    fake.reset()
    runpy.run_path(str(NUKE_HOST / "init.py"))
    runpy.run_path(str(NUKE_HOST / "menu.py"))
    yield fake
    sys.modules.pop("rrtn_nuke", None)


def press(nuke, group, button: str = "restore") -> str:
    nuke.this_node.append(group)
    group[button].execute()
    nuke.run_main_loop(lambda: not group["status"].value().startswith("Restoring"))
    return group["status"].value()


def padded_to_display_window(pattern: Path, out: Path, frames: range) -> Path:
    """The frames as a Nuke user sees them: the display window, black where no data is."""
    out.mkdir(parents=True, exist_ok=True)
    for f in frames:
        image = oiio.ImageInput.open(str(pattern).replace("####", f"{f:04d}"))
        spec = image.spec()
        pixels = image.read_image(format="float")
        image.close()
        full = np.zeros((spec.full_height, spec.full_width, spec.nchannels), np.float32)
        full[spec.y : spec.y + spec.height, spec.x : spec.x + spec.width] = pixels
        padded = oiio.ImageSpec(spec.full_width, spec.full_height, spec.nchannels, "float")
        padded.channelnames = spec.channelnames
        writer = oiio.ImageOutput.create("openexr")
        writer.open(str(out / f"plate.{f:04d}.exr"), padded)
        writer.write_image(full)
        writer.close()
    return out / "plate.####.exr"


def test_restore_button_renders_restores_and_reads_back(
    nuke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RRTN_CACHE")  # results beside the saved script
    shots = tmp_path / "shots"
    shots.mkdir()
    nuke.root()["name"].setValue(str(shots / "ab010.nk"))
    plates = tmp_path / "plates"
    exr_sequence(plates, range(1001, 1011), size=(64, 48), seed=4)  # data window in 72x56
    plate = nuke.nodes.Read(file=str(plates / "plate.####.exr"), first=1001, last=1010)
    plate.setXYpos(100, 200)
    assert (plate.format().width(), plate.format().height()) == (72, 56)
    assert (plate.bbox().w(), plate.bbox().h()) == (64, 48)  # bbox ≠ format
    nuke.selection.append(plate)
    steps = len(nuke.undo_steps)
    group = nuke.menu("Nodes").commands["RRTN/RRTN Restore"]()
    assert group.input(0) is plate  # connected to the selected node
    assert nuke.undo_steps[steps:] == ["RRTN Restore"]  # one undo step
    assert (group.xpos(), group.ypos() > plate.ypos()) == (plate.xpos(), True)
    assert nuke.selectedNodes() == [group]
    assert nuke.shown_panels == [group]
    assert (group["first"].value(), group["last"].value()) == (1001, 1010)
    assert group["model"].items == ["(server default)", "bundled"]
    assert group["colorspace"].value() == "lin_rec709"
    assert group["status"].value().startswith("Server 0.1.0 on cpu")
    assert group.render(1005).pixels.shape == (48, 64, 4)  # not restored yet: passes through

    group["first"].setValue(1004)
    group["last"].setValue(1006)
    group["handles"].setValue(2)
    group["model"].setValue("bundled")
    status = press(nuke, group)
    assert status.startswith("Restored frames 1004-1006 in "), status
    assert [f for _, f in nuke.executed] == list(range(1002, 1009))  # range with handles
    read = group.node("Restored")
    assert (read["first"].value(), read["last"].value()) == (1004, 1006)
    assert read["file"].value().startswith("[file dirname [value root.name]]/rrtn_cache/")
    assert group.channels() == ["rgba.red", "rgba.green", "rgba.blue", "rgba.alpha", "rrtn_mask.Y"]
    assert not np.any(group.render(1003).pixels)  # outside the requested range: black
    result = Path(nuke.filename(read)).parent
    assert result.parent == shots / "rrtn_cache"
    assert (result / RECORD).is_file()
    assert not (result / "input").exists()  # the rendered input is removed once restored
    assert nuke.ProgressTask.instances[-1].messages

    # The restore worked on the format: the result lines up with the plate's frame.
    padded = padded_to_display_window(
        plates / "plate.####.exr", tmp_path / "padded", range(1001, 1011)
    )
    reference = bundled_reference(padded, tmp_path / "reference", [1004, 1005, 1006], handles=2)
    for f in (1004, 1005, 1006):
        ours = group.render(f)
        assert (ours.bbox.x, ours.bbox.y, ours.bbox.r, ours.bbox.t) == (0, 0, 72, 56)
        _, ref = read_pixels(reference / f"plate.{f}.exr")
        assert np.allclose(ours.pixels, ref, rtol=2**-10, atol=1e-4), f

    # Pressed again with nothing changed, or after moving a node: no render, no server work.
    executed = len(nuke.executed)
    assert press(nuke, group).startswith("Up to date: frames 1004-1006")
    plate.setXYpos(400, -50)
    nuke.update_ui(group)
    assert group["status"].value().startswith("Up to date")
    assert press(nuke, group).startswith("Up to date: frames 1004-1006")
    assert len(nuke.executed) == executed

    # Another artist opens the script elsewhere, without the plugin: the Read still works.
    moved = tmp_path / "elsewhere" / "ab010"
    shutil.move(shots, moved)
    nuke.root()["name"].setValue(str(moved / "ab010.nk"))
    sys.modules.pop("rrtn_nuke")
    nuke.update_ui_callbacks.clear()
    assert np.allclose(
        group.render(1005).pixels, read_pixels(reference / "plate.1005.exr")[1], atol=1e-4
    )


def test_the_node_knows_when_its_input_changed(nuke, tmp_path: Path) -> None:
    exr_sequence(tmp_path / "plates", range(1, 6), size=(32, 24), seed=1)
    plate = nuke.nodes.Read(file=str(tmp_path / "plates" / "plate.####.exr"), first=1, last=5)
    controls = nuke.nodes.NoOp(name="Controls", gain=1.5)
    grade = nuke.nodes.Multiply(name="Grade1")
    grade["value"].setExpression("Controls.gain")
    grade.setInput(0, plate)
    wrapper = nuke.nodes.Group(name="Wrapper")
    with wrapper:
        inner_in = nuke.nodes.Input()
        move = nuke.nodes.Transform(name="Move", translate=(1, 0))
        move.setInput(0, inner_in)
        nuke.nodes.Output().setInput(0, move)
    wrapper.setInput(0, grade)
    nuke.selection.append(wrapper)
    group = nuke.menu("Nodes").commands["RRTN/RRTN Restore"]()
    import rrtn_nuke

    def key() -> str:
        return rrtn_nuke._job(group)[0].key()

    first = key()
    group["rrtn_key"].setValue(first)  # as if its frames had been restored
    group["status"].setValue("Restored frames 1-5 in 1.0 s")
    for node in (plate, controls, grade, wrapper, move):
        node.setXYpos(node.xpos() + 300, node.ypos() - 120)  # positions do not count
    assert key() == first
    nuke.update_ui(group)
    assert group["status"].value().startswith("Restored")

    controls["gain"].setValue(2.0)  # an expression's source changed: Grade1's text did not
    assert key() != first
    nuke.update_ui(group)
    assert group["status"].value().startswith("Out of date")
    assert group["label"].value() == "out of date"
    controls["gain"].setValue(1.5)
    nuke.update_ui(group)
    assert group["status"].value() == "Up to date"

    move["translate"].setValue((2, 0))  # an edit inside an upstream group
    assert key() != first
    move["translate"].setValue((1, 0))
    assert key() == first
    path = tmp_path / "plates" / "plate.0003.exr"  # a file rewritten
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert key() != first


def test_the_restore_knobs_reach_the_server_and_outdate_the_result(
    nuke, tmp_path: Path, opened_sessions: list
) -> None:
    plates = dusty_sequence(tmp_path / "plates", range(1, 6), dust_frame=3)
    plate = nuke.nodes.Read(file=str(plates), first=1, last=5)
    nuke.selection.append(plate)
    group = nuke.menu("Nodes").commands["RRTN/RRTN Restore"]()
    # Menus, a 0-1 slider and a checkbox at the engine's defaults; tooltips say when to use
    # which.
    knobs = {name: group[name] for name in ("repair_mode", "tone_guard", "repair_strength")}
    knobs["cuts"] = group["cuts"]
    assert {name: knob.Class() for name, knob in knobs.items()} == {
        "repair_mode": "Enumeration_Knob",
        "tone_guard": "Enumeration_Knob",
        "repair_strength": "Double_Knob",
        "cuts": "Boolean_Knob",
    }
    assert (knobs["repair_mode"].values(), knobs["repair_mode"].value()) == (
        ["full", "defects"],
        "full",
    )
    assert (knobs["tone_guard"].values(), knobs["tone_guard"].value()) == (
        ["deflicker", "keep", "off"],
        "deflicker",
    )
    assert (knobs["repair_strength"].value(), knobs["repair_strength"].range) == (1.0, (0, 1))
    assert knobs["cuts"].value() is True
    assert f"defects: {CHOICE_HELP['defects']}." in knobs["repair_mode"].tooltip()
    assert f"keep: {CHOICE_HELP['keep']}." in knobs["tone_guard"].tooltip()
    assert knobs["repair_strength"].tooltip().startswith("How much of the repair is mixed")
    assert "turn it off only for one continuous shot" in knobs["cuts"].tooltip()

    group["first"].setValue(2)
    group["last"].setValue(4)
    group["handles"].setValue(1)
    knobs["repair_mode"].setValue("defects")
    knobs["repair_strength"].setValue(0.5)
    knobs["tone_guard"].setValue("keep")
    knobs["cuts"].setValue(False)
    status = press(nuke, group)
    assert status.startswith("Restored frames 2-4 in "), status
    (spec,) = opened_sessions  # the OpenSession request, as the server parsed it
    assert (spec.options.repair_mode, spec.options.repair_strength) == ("defects", 0.5)
    assert (spec.options.tone_guard, spec.options.cuts) == ("keep", False)

    # Only the dust is repaired, half way: every pixel away from it is the plate's.
    def plate_frame(frame: int) -> np.ndarray:
        return read_pixels(str(plates).replace("####", f"{frame:04d}"))[1]

    ours = group.render(3).pixels[:, :, :3]
    assert np.array_equal(ours[away_from_dust()], plate_frame(3)[away_from_dust()])
    assert ours[DUST].mean() < plate_frame(3)[DUST].mean()
    assert np.array_equal(group.render(2).pixels[:, :, :3], plate_frame(2))

    # Any knob changed: the node says its frames are out of date; changed back: up to date.
    for name, value in (("repair_mode", "full"), ("repair_strength", 0.25), ("tone_guard", "off")):
        before = knobs[name].value()
        knobs[name].setValue(value)
        nuke.update_ui(group)
        assert group["status"].value().startswith("Out of date"), name
        assert group["label"].value() == "out of date"
        knobs[name].setValue(before)
        nuke.update_ui(group)
        assert group["status"].value() == "Up to date", name
    knobs["cuts"].setValue(True)
    nuke.update_ui(group)
    assert group["status"].value().startswith("Out of date")
    knobs["cuts"].setValue(False)

    # A strength typed outside the slider's range is refused, saying what to type; nothing is
    # rendered or sent.
    executed = len(nuke.executed)
    knobs["repair_strength"].setValue(1.5)
    assert press(nuke, group) == (
        "Error: repair strength must be a number from 0 to 1 (0 keeps the plate, 1 gives the "
        "whole repair), not 1.5"
    )
    assert "repair strength must be a number from 0 to 1" in nuke.messages[-1]
    assert len(nuke.executed) == executed
    assert len(opened_sessions) == 1


def test_the_input_is_written_on_the_format(nuke, tmp_path: Path) -> None:
    """Overscan and a Transform move the bbox; the Write inside the node still writes frames
    whose data window is the format, shifted as the Transform says."""
    folder = tmp_path / "overscan"
    folder.mkdir()
    rng = np.random.default_rng(3)
    full = rng.uniform(0, 1, (40 + 8, 48 + 8, 4)).astype(np.float32)  # 4 px overscan
    for f in (1, 2, 3):
        spec = oiio.ImageSpec(56, 48, 4, "float")
        spec.x, spec.y, spec.full_width, spec.full_height = -4, -4, 48, 40
        spec.channelnames = ("R", "G", "B", "A")
        out = oiio.ImageOutput.create("openexr")
        out.open(str(folder / f"plate.{f:04d}.exr"), spec)
        out.write_image(full)
        out.close()
    plate = nuke.nodes.Read(file=str(folder / "plate.####.exr"), first=1, last=3)
    move = nuke.nodes.Transform(translate=(5, 3))
    move.setInput(0, plate)
    nuke.selection.append(move)
    group = nuke.menu("Nodes").commands["RRTN/RRTN Restore"]()
    import rrtn_nuke

    job, cache, _ = rrtn_nuke._job(group)
    assert (job.width, job.height) == (48, 40)
    rrtn_nuke._render_input(group, job, cache)
    for f in (1, 2, 3):
        image = oiio.ImageInput.open(job.rendered_input(cache).replace("####", f"{f:04d}"))
        spec = image.spec()
        written = image.read_image(format="float")
        image.close()
        assert (spec.x, spec.y, spec.width, spec.height) == (0, 0, 48, 40)
        assert (spec.full_width, spec.full_height) == (48, 40)
        # Moved right 5 and up 3: frame pixel (row, col) shows plate pixel (row + 3, col - 5);
        # the overscan (4 px each side) fills the bottom rows, nothing the first column.
        assert np.array_equal(written[:, 1:], full[4 + 3 : 4 + 43, 4 - 4 : 4 + 43])
        assert not np.any(written[:, 0])


def test_a_working_space_role_is_sent_as_nukes_colour_space(
    nuke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install = tmp_path / "Nuke16.0v6"
    configs = install / "plugins" / "OCIOConfigs" / "configs"
    (configs / "studio-lin709").mkdir(parents=True)
    config = ocio.Config.CreateFromFile("ocio://cg-config-latest")
    config.setRole("scene_linear", "Linear Rec.709 (sRGB)")  # not ACEScg, as the server's is
    (configs / "studio-lin709" / "config.ocio").write_text(config.serialize())
    monkeypatch.setattr(nuke, "EXE_PATH", str(install / "Nuke16.0"))
    root = nuke.root()
    root["colorManagement"].setValue("OCIO")
    root["OCIO_config"].setValue("studio-lin709")
    assert root["workingSpaceLUT"].value() == "scene_linear"  # a role, not a space
    group = nuke.menu("Nodes").commands["RRTN/RRTN Restore"]()
    assert group["colorspace"].value() == "Linear Rec.709 (sRGB)"
    import rrtn_nuke

    group["colorspace"].setValue("scene_linear")  # typed by the user: resolved as well
    assert rrtn_nuke._settings(group).input_colorspace == "Linear Rec.709 (sRGB)"
    custom = tmp_path / "custom.ocio"
    config.setRole("scene_linear", "ACEScg")
    custom.write_text(config.serialize())
    root["OCIO_config"].setValue("custom")
    root["customOCIOConfigPath"].setValue(str(custom))
    assert rrtn_nuke._settings(group).input_colorspace == "ACEScg"
    group["colorspace"].setValue("a space only the server knows")
    assert rrtn_nuke._settings(group).input_colorspace == "a space only the server knows"


def test_farm_button_writes_an_openjd_bundle(
    nuke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRTN_PLUGIN", str(Path(sys.executable).parent / "rrtn-plugin"))
    exr_sequence(tmp_path / "plates", range(1, 9), size=(32, 24), seed=5)
    plate = nuke.nodes.Read(file=str(tmp_path / "plates" / "plate.####.exr"), first=1, last=8)
    nuke.selection.append(plate)
    group = nuke.menu("Nodes").commands["RRTN/RRTN Restore"]()
    group["first"].setValue(3)
    group["last"].setValue(6)
    group["handles"].setValue(2)
    group["repair_mode"].setValue("defects")
    group["tone_guard"].setValue("off")
    status = press(nuke, group, "farm")
    assert status.startswith("Farm job written: submit it with 'deadline bundle submit "), status
    import rrtn_nuke

    job, cache, _ = rrtn_nuke._job(group)
    bundle = job.folder(cache) / "openjd"
    template = json.loads((bundle / "template.json").read_text())
    assert template["specificationVersion"] == "jobtemplate-2023-09"
    # The knobs that differ from the defaults go to the farm program, and on to every task.
    record = json.loads((job.folder(cache) / FARM_RECORD).read_text())
    assert record["command"][-4:] == ["--repair-mode", "defects", "--tone-guard", "off"]
    (step,) = template["steps"]
    args = step["script"]["actions"]["onRun"]["args"]
    assert args[args.index("--repair-mode") + 1] == "defects"
    assert args[args.index("--tone-guard") + 1] == "off"
    values = json.loads((bundle / "parameter_values.json").read_text())
    given = {v["name"]: v["value"] for v in values["parameterValues"]}
    assert given["Input"] == job.rendered_input(cache)
    assert len(list(Path(job.rendered_input(cache)).parent.glob("*.exr"))) == 8  # 1-8 kept
    assert group.node("Restored")["file"].value().endswith(Path(job.output_pattern(cache)).name)
    assert (job.folder(cache) / FARM_RECORD).is_file()
    assert finished_result(job, cache) is None  # until the farm has written every frame
    for f in range(3, 7):
        shutil.copy(
            Path(job.rendered_input(cache).replace("####", f"{f:04d}")),
            Path(job.output_pattern(cache).replace("####", f"{f:04d}")),
        )
    assert finished_result(job, cache) is not None


def test_proxy_unconnected_and_cancel(nuke, tmp_path: Path) -> None:
    plates = tmp_path / "plates"
    exr_sequence(plates, range(1, 9), size=(48, 32), seed=2)
    plate = nuke.nodes.Read(file=str(plates / "plate.%04d.exr"), first=1, last=8)
    group = nuke.menu("Nodes").commands["RRTN/RRTN Restore"]()
    assert group.input(0) is None  # nothing was selected
    assert press(nuke, group) == "Error: connect the node's input to the plate to restore"
    group.setInput(0, plate)
    group["first"].setValue(1)
    group["last"].setValue(8)

    nuke.root()["proxy"].setValue(True)
    assert press(nuke, group).startswith("Error: proxy mode is on")
    assert "proxy mode is on" in nuke.messages[-1]
    nuke.root()["proxy"].setValue(False)

    nuke.ProgressTask.cancel_when = staticmethod(lambda task: True)
    assert press(nuke, group) == "Error: restore cancelled"
    assert group.node("Output1").input(0).Class() == "Input"  # still passing through
    assert not list((tmp_path / "cache").rglob(RECORD))


def test_a_saved_script_needs_the_script_saved_or_a_shared_cache(
    nuke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RRTN_CACHE")
    exr_sequence(tmp_path / "plates", range(1, 4), size=(16, 16), seed=2)
    plate = nuke.nodes.Read(file=str(tmp_path / "plates" / "plate.####.exr"), first=1, last=3)
    nuke.selection.append(plate)
    group = nuke.menu("Nodes").commands["RRTN/RRTN Restore"]()
    assert press(nuke, group).startswith("Error: save the nuke document first")
    group["cache"].setValue(str(tmp_path / "shared"))  # a folder the farm reads
    import rrtn_nuke

    _, cache, text = rrtn_nuke._job(group)
    assert (cache, text) == (tmp_path / "shared", str(tmp_path / "shared"))


def test_the_client_runs_on_the_python_of_nuke_15_and_16() -> None:
    """Nuke 15 ships Python 3.10 (16: 3.11). Nuke 14's Python 3.9 cannot load the client:
    the generated gRPC code requires grpcio >= 1.85.1 and protobuf >= 7.35.1, which publish no
    Python 3.9 wheels (the newest for 3.9: grpcio 1.80, protobuf 6.33), so the README says
    Nuke 15+ and this keeps the client's syntax within Python 3.10."""
    files = [
        REPO / "rrtn_plugin" / name
        for name in (
            "__init__.py",
            "errors.py",
            "atomic.py",
            "progress.py",
            "options.py",
            "client/__init__.py",
            "client/library.py",
            *(f"client/{name}.py" for name in CLIENT_MODULES),
            "protocol/__init__.py",
            "protocol/framing.py",
        )
    ] + sorted(NUKE_HOST.glob("*.py"))
    for path in files:
        if path.is_file():
            ast.parse(path.read_text(), str(path), feature_version=(3, 10))
    generated = (REPO / "rrtn_plugin/protocol/rrtn/v1/restorer_pb2_grpc.py").read_text()
    assert "GRPC_GENERATED_VERSION = '1.85" in generated
    heading = next(line for line in (REPO / "README.md").open() if line.startswith("### Nuke"))
    assert "Nuke 15" in heading
    assert "13" not in heading
