"""What several test files share: sample frame sequences, the in-process reference a host's
result must equal, and the plumbing that runs real Blender (bpy as a module) in a child
process. Test files import these from here, never from each other."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from platform import machine
from typing import Any

import numpy as np
import OpenImageIO as oiio
import pytest
import torch

from rrtn_plugin.engine import ClipSession, RestoreOptions, WorkCache
from rrtn_plugin.frames.aovs import Aov
from rrtn_plugin.frames.restore import JobSettings, restore_sequence
from rrtn_plugin.model import RRTN, RRTNConfig
from rrtn_plugin.weights import load_bundled


def network_options(**values: Any) -> RestoreOptions:
    """Options that run the network alone: no shot detection, no tone guard (the repair mode's
    defaults, full at strength 1, leave the network's output as it is). For tests of the
    network and its scheduling, which compare outputs with the network's own."""
    return RestoreOptions(cuts=False, tone_guard="off", **values)


def session_for(
    model: RRTN,
    clip: torch.Tensor,
    *,
    options: RestoreOptions,
    cache: WorkCache | None = None,
    first_frame: int = 1001,
    given: Iterable[int] | None = None,
) -> ClipSession:
    """A session for the (T, H, W) ``clip``, numbered from ``first_frame``, holding the frames
    numbered in ``given`` (None: every frame), with a cache of its own unless given one."""
    session = ClipSession(
        first_frame=first_frame,
        num_frames=clip.shape[0],
        height=clip.shape[1],
        width=clip.shape[2],
        first=model,
        options=options,
        cache=cache or WorkCache(device=torch.device("cpu"), device_budget=1 << 30),
    )
    numbers = range(first_frame, first_frame + clip.shape[0]) if given is None else given
    for number in numbers:
        session.put_frame(number, clip[number - first_frame])
    return session


def exr_sequence(
    folder: Path,
    frames: range,
    *,
    size: tuple[int, int] = (48, 40),
    channels: tuple[str, ...] = ("R", "G", "B", "A"),
    seed: int = 0,
) -> Path:
    """Half-float tiled PIZ EXR frames with HDR, negatives, a data window and metadata.

    The picture is one shot, as a plate is: a smooth pattern drifting 2 px a frame with a little
    grain (values 0.05–0.65, a few negatives, a highlight of 6), so that flows are real and no
    frame is a cut."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = size
    for f in frames:
        spec = oiio.ImageSpec(width, height, len(channels), "half")
        spec.channelnames = channels
        spec.tile_width = spec.tile_height = 16
        spec.x, spec.y, spec.full_width, spec.full_height = 2, 3, width + 8, height + 8
        spec.attribute("compression", "piz")
        spec.attribute("FramesPerSecond", oiio.TypeDesc("rational2i"), (24, 1))
        spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), [0x01000000 + f, 0])
        spec.attribute("PixelAspectRatio", 2.0)
        spec.attribute("studio:note", f"frame {f}")
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        pattern = 0.35 + 0.3 * np.sin((xs - 2 * f) / 5.0) * np.cos((ys + f) / 7.0)
        grain = rng.normal(0.0, 0.01, (height, width, len(channels)))
        pixels = (pattern[..., None] * np.linspace(1.0, 0.8, len(channels)) + grain).astype(
            np.float32
        )
        pixels[:2, :3] = -0.2  # a few negatives, as comp plates have
        pixels[-3:, -4:] = 6.0  # and a highlight
        out = oiio.ImageOutput.create("openexr")
        out.open(str(folder / f"plate.{f:04d}.exr"), spec)
        out.write_image(pixels)
        out.close()
    return folder / "plate.####.exr"


DUST = (slice(18, 21), slice(20, 23))
"""Where :func:`dusty_sequence` puts its speck of dust (rows, columns)."""


def dusty_sequence(folder: Path, frames: range, *, dust_frame: int) -> Path:
    """A still shot on film, 48 x 40 RGB float EXRs of a smooth gradient, with a speck of dust
    (:data:`DUST`, far brighter) on ``dust_frame`` alone: what the repair modes tell apart
    (the damage mask finds the speck and nothing else)."""
    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:40, 0:48].astype(np.float32)
    grey = 0.05 + 0.4 * x / 48 + 0.2 * y / 40
    for f in frames:
        pixels = np.stack([grey, grey * 0.9, grey * 0.8], axis=-1)
        if f == dust_frame:
            pixels[DUST] = 3.0
        spec = oiio.ImageSpec(48, 40, 3, "float")
        spec.channelnames = ("R", "G", "B")
        out = oiio.ImageOutput.create("openexr")
        out.open(str(folder / f"plate.{f:04d}.exr"), spec)
        out.write_image(pixels)
        out.close()
    return folder / "plate.####.exr"


def away_from_dust(margin: int = 6) -> np.ndarray:
    """(40, 48) True where a pixel is ``margin`` px or more from :data:`DUST` (beyond the
    repair's feathered edge)."""
    far = np.ones((40, 48), bool)
    rows, cols = DUST
    far[rows.start - margin : rows.stop + margin, cols.start - margin : cols.stop + margin] = False
    return far


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


HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
VERSIONS = ("5.0.1", "4.5.15")
_homes = itertools.count()


def install_bpy(version: str) -> Path:
    """A folder holding bpy ``version`` (and its own dependencies only)."""
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


def drive(blender: Path, scenario: str, args: dict[str, Any], tmp_path: Path, **env: str) -> Any:
    """Run a scenario of tests/blender_driver.py in that Blender, as a fresh user (its own
    home folder: no preferences, no extensions but those it installs); returns its report."""
    home = tmp_path / f"home-{next(_homes)}"
    home.mkdir()
    done = subprocess.run(
        [sys.executable, "-S", str(HERE / "blender_driver.py"), scenario, json.dumps(args)],
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "PYTHONPATH": str(blender),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    log = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, log  # a segfault is -11
    lines = [line for line in done.stdout.splitlines() if line.startswith("RRTN-REPORT ")]
    assert lines, log
    return json.loads(lines[0].removeprefix("RRTN-REPORT "))


def this_platform() -> str:
    return {
        "linux": "linux-x64",
        "darwin": "macos-arm64" if machine() == "arm64" else "macos-x64",
        "win32": "windows-x64",
    }[sys.platform]


def builder() -> Any:
    """hosts/blender/build_extension.py as a module."""
    sys.path.insert(0, str(ROOT / "hosts" / "blender"))
    try:
        import build_extension
    finally:
        sys.path.pop(0)
    return build_extension


def build_extension(platforms: list[str], out: Path, *, strict: bool = True) -> Path:
    return Path(builder().build(platforms, out, strict=strict))


def read_toml(text: str) -> dict[str, Any]:
    tomllib = pytest.importorskip("tomllib", reason="reading TOML needs Python 3.11")
    return dict(tomllib.loads(text))


TINY_DIS_CONFIG = RRTNConfig(
    num_feat=4,
    embed_dim=16,
    depths=(1,),
    num_heads=1,
    mlp_hidden=16,
    deform_groups=2,
    extract_blocks=1,
    reconstruct_blocks=1,
    flow_source="dis",
)
"""The smallest RRTN with OpenCV's DIS flow: every code path, next to no compute."""
