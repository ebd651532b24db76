"""The Nuke adapter (hosts/nuke) driven through a working fake of Nuke's API and a real server.

The fake (tests/fakes/nuke) renders Writes to real EXR files and reads Reads from them, so what
is checked here is what a compositor would see: the frames rendered, the Read's range and
layers, the restored pixels, and what a second press, proxy mode and cancel do.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
from test_job import exr_sequence
from test_remote import bundled_reference

from rrtn_plugin.client.host_job import RECORD
from rrtn_plugin.frames.image import read_pixels

HERE = Path(__file__).resolve().parent
NUKE_HOST = HERE.parent / "hosts" / "nuke"


@pytest.fixture
def nuke(monkeypatch: pytest.MonkeyPatch, bundled_server: str, tmp_path: Path):
    """Nuke started with the adapter on its plugin path (init.py, then menu.py)."""
    monkeypatch.syspath_prepend(str(HERE / "fakes"))
    monkeypatch.syspath_prepend(str(NUKE_HOST))
    monkeypatch.setenv("RRTN_SERVER", bundled_server)
    monkeypatch.setenv("RRTN_CACHE", str(tmp_path / "cache"))
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


def test_restore_button_renders_restores_and_reads_back(nuke, tmp_path: Path) -> None:
    plates = tmp_path / "plates"
    exr_sequence(plates, range(1001, 1011), size=(64, 48), seed=4)
    plate = nuke.nodes.Read(file=str(plates / "plate.####.exr"), first=1001, last=1010)
    nuke.selection.append(plate)
    create = nuke.menu("Nodes").commands["RRTN/RRTN Restore"]
    group = create()
    assert group.input(0) is plate
    assert (group["first"].value(), group["last"].value()) == (1001, 1010)
    assert group["model"].items == ["(server default)", "bundled"]
    assert group["status"].value().startswith("Server 0.1.0 on cpu")
    assert group.render(1005)[1].shape == (48, 64, 4)  # not restored yet: passes through

    group["first"].setValue(1004)
    group["last"].setValue(1006)
    group["handles"].setValue(2)
    group["model"].setValue("bundled")
    status = press(nuke, group)
    assert status.startswith("Restored frames 1004-1006 in "), status
    assert [f for _, f in nuke.executed] == list(range(1002, 1009))  # range with handles
    read = group.node("Restored")
    assert (read["first"].value(), read["last"].value()) == (1004, 1006)
    assert group.channels() == ["rgba.red", "rgba.green", "rgba.blue", "rgba.alpha", "rrtn_mask.Y"]
    assert not np.any(group.render(1003)[1])  # outside the requested range: black
    result = Path(read["file"].value()).parent
    assert (result / RECORD).is_file()
    assert not (result / "input").exists()  # the rendered input is removed once restored
    assert nuke.ProgressTask.instances[-1].messages

    reference = tmp_path / "reference"
    bundled_reference(plates / "plate.####.exr", reference, [1004, 1005, 1006], handles=2)
    for f in (1004, 1005, 1006):
        _, ours = group.render(f)
        _, ref = read_pixels(reference / f"plate.{f}.exr")
        assert np.allclose(ours, ref, rtol=2**-10, atol=1e-4), f

    # Pressed again with nothing changed: no render, no server work.
    executed = len(nuke.executed)
    assert press(nuke, group).startswith("Up to date: frames 1004-1006")
    assert len(nuke.executed) == executed


def test_proxy_unconnected_and_cancel(nuke, tmp_path: Path) -> None:
    plates = tmp_path / "plates"
    exr_sequence(plates, range(1, 9), size=(48, 32), seed=2)
    plate = nuke.nodes.Read(file=str(plates / "plate.%04d.exr"), first=1, last=8)
    group = nuke.menu("Nodes").commands["RRTN/RRTN Restore"]()
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
