"""The Blender extension (hosts/blender) in real Blender: bpy 5.0.1 and 4.5.15 LTS as Python
modules, against a real server. The operator restores a plate sequence from a compositor Image
node; the compositor is rendered to EXR and must show exactly the restored frames and mask.

bpy needs numpy < 2 (this project needs numpy 2), so each version is installed into its own
folder beside the virtual environment on first use and runs in a child process with nothing
else on its path. The extension zip is built (hosts/blender/build_extension.py) and installed
into that Blender as a user would, so the client library, grpcio and protobuf come from its
bundled wheels. The test skips, saying why, only when bpy cannot be installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from platform import machine

import numpy as np
import pytest
from test_job import exr_sequence
from test_remote import bundled_reference

from rrtn_plugin.frames.image import read_pixels

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@pytest.fixture(scope="session", params=["5.0.1", "4.5.15"])
def blender(request: pytest.FixtureRequest) -> Path:
    """A folder holding bpy ``request.param`` (and its own dependencies only)."""
    version = request.param
    target = Path(sys.prefix) / "rrtn-hosts" / f"bpy-{version}"
    if not (target / ".complete").is_file():
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--target",
                str(target),
                f"bpy=={version}",
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            pytest.skip(f"bpy {version} cannot be installed here: {done.stderr[-500:]}")
        (target / ".complete").touch()
    return target


@pytest.fixture(scope="session")
def extension(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extension zip for this machine's platform."""
    sys.path.insert(0, str(ROOT / "hosts" / "blender"))
    try:
        import build_extension
    finally:
        sys.path.pop(0)
    platform = {
        "linux": "linux-x64",
        "darwin": "macos-arm64" if machine() == "arm64" else "macos-x64",
        "win32": "windows-x64",
    }[sys.platform]
    return build_extension.build([platform], tmp_path_factory.mktemp("extension"))


def test_extension_zip_lists_the_wheels_it_holds(extension: Path) -> None:
    tomllib = pytest.importorskip("tomllib", reason="reading TOML needs Python 3.11")
    with zipfile.ZipFile(extension) as archive:
        names = set(archive.namelist())
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
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
    assert manifest["blender_version_min"] == "4.2.0"


def test_operator_result_renders_as_the_restored_frames(
    blender: Path, extension: Path, bundled_server: str, tmp_path: Path
) -> None:
    plates = tmp_path / "plates"
    exr_sequence(plates, range(1001, 1011), size=(64, 48), channels=("R", "G", "B"), seed=9)
    out = tmp_path / "renders"
    out.mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(blender),
        "RRTN_SERVER": bundled_server,
        "RRTN_CACHE": str(tmp_path / "cache"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-S",
            str(HERE / "blender_driver.py"),
            str(extension),
            str(plates / "plate.1001.exr"),
            "1004",
            "1006",
            "2",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RRTN-REPORT ")]
    log = done.stdout[-2000:] + done.stderr[-2000:]
    assert done.returncode == 0, log
    assert lines, log
    report = json.loads(lines[0].removeprefix("RRTN-REPORT "))
    assert report["version"][:2] == [int(v) for v in blender.name[4:].split(".")[:2]]
    assert report["installed"] == ["FINISHED"]
    assert str(tmp_path) in report["client_from"]  # from the extension's wheel, not the repo
    assert "no Image node 'Nope'" in report["error"]
    assert report["result"] == ["FINISHED"]
    assert report["outputs"] == ["Image", "rrtn_mask"]
    assert report["sink_from"] == "CompositorNodeRRTNRestore"  # put in the plate's place

    restored = Path(report["restored"])
    reference = tmp_path / "reference"
    bundled_reference(plates / "plate.####.exr", reference, [1004, 1005, 1006], handles=2)
    for frame in (1004, 1005, 1006):
        ours_info, ours = read_pixels(restored.with_name(restored.name.replace("1004", str(frame))))
        _, ref = read_pixels(reference / f"plate.{frame}.exr")
        assert ours_info.channels == ("R", "G", "B", "rrtn_mask.Y")
        assert np.allclose(ours, ref, rtol=2**-10, atol=1e-4), frame
        info, shown = read_pixels(out / f"render.{frame}.exr")
        assert info.channels == ("R", "G", "B", "A")
        assert np.array_equal(shown[:, :, :3], ours[:, :, :3]), frame  # bit for bit
        assert np.all(shown[:, :, 3] == 1.0)
    for outside in (1003, 1007):  # exactly the range: transparent black outside it
        _, shown = read_pixels(out / f"render.{outside}.exr")
        assert not np.any(shown), outside
    # The strip holds files 1001-1010 from scene frame 1; all ten restored, at the same frames.
    assert report["strip_result"] == ["FINISHED"]
    assert report["strip_read"] == [1, 11, 1000]
    _, mask = read_pixels(out / "mask.exr")
    _, frame_1005 = read_pixels(restored.with_name(restored.name.replace("1004", "1005")))
    assert np.array_equal(mask[:, :, 0], frame_1005[:, :, 3])
    assert mask.max() > 0
