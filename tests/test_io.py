"""Frame sequences and image files: patterns, headers, metadata, atomic writes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from rrtn_plugin.atomic import atomic_output, remove_stale_temporaries
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.image import quantize_for, read_info, read_pixels, write_image
from rrtn_plugin.frames.sequence import parse_frames, parse_pattern


@pytest.fixture
def three_frames(tmp_path: Path) -> Path:
    for f in (1001, 1002, 1003):
        (tmp_path / f"shot.{f}.exr").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize(
    "spec",
    ["shot.####.exr", "shot.%04d.exr", "shot.@@@@.exr", "shot.1001-1003#.exr", "shot.1002.exr", ""],
)
def test_sequence_syntaxes(three_frames: Path, spec: str) -> None:
    pattern = parse_pattern(three_frames / spec if spec else three_frames)
    assert pattern.path(1002) == three_frames / "shot.1002.exr"
    assert pattern.frames_on_disk() == [1001, 1002, 1003]


def test_hash_is_one_digit_per_character(tmp_path: Path) -> None:
    pattern = parse_pattern(tmp_path / "a.#.exr")
    assert pattern.path(7) == tmp_path / "a.7.exr"
    assert parse_pattern(tmp_path / "a.##.exr").path(7) == tmp_path / "a.07.exr"


def test_sidecar_pattern(tmp_path: Path) -> None:
    pattern = parse_pattern(tmp_path / "scan.####.dpx")
    assert pattern.with_suffix("rrtn_aovs", "exr").path(5) == tmp_path / "scan_rrtn_aovs.0005.exr"


def test_frame_ranges() -> None:
    assert parse_frames("1001-1004") == [1001, 1002, 1003, 1004]
    assert parse_frames("5") == [5]
    with pytest.raises(RRTNError, match="bad frame range 'ten'"):
        parse_frames("ten")


def test_patterns_without_frame_numbers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RRTNError, match="no frame number"):
        parse_pattern(tmp_path / "plate.exr")
    with pytest.raises(RRTNError, match="exactly one image sequence") as info:
        parse_pattern(tmp_path)
    assert info.value.kind is ErrorKind.NOT_FOUND


def test_atomic_output_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "frame.0001.exr"

    def interrupted_write() -> None:
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half a frame")
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        interrupted_write()
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as tmp:
        tmp.write_bytes(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["frame.0001.exr"]


def test_atomic_output_has_ordinary_permissions(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "frame.exr") as tmp:
        tmp.write_bytes(b"frame")
    umask = os.umask(0)
    os.umask(umask)
    # what a plain open() would give, not the temporary file's owner-only 0600
    assert stat.S_IMODE((tmp_path / "frame.exr").stat().st_mode) == 0o666 & ~umask


@pytest.mark.skipif(sys.platform == "win32", reason="no process liveness check on Windows")
def test_temporaries_of_killed_writers_are_removed(tmp_path: Path) -> None:
    # A writer killed mid-write (SIGKILL: no clean-up runs) leaves its temporary file.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time\n"
                "from rrtn_plugin.atomic import atomic_output, remove_stale_temporaries\n"
                f"with atomic_output({str(tmp_path / 'frame.0001.exr')!r}) as tmp:\n"
                "    tmp.write_bytes(b'half a frame'); print(tmp.name, flush=True)\n"
                "    time.sleep(60)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    left = tmp_path / child.stdout.readline().strip()
    child.kill()
    child.wait()
    assert left.is_file()
    with atomic_output(tmp_path / "frame.0002.exr") as tmp:  # a live writer's, kept
        tmp.write_bytes(b"writing")
        foreign = tmp_path / ".frame.0003.0123abcd-1.x.exr.tmp"  # another machine's, kept
        foreign.write_bytes(b"")
        assert remove_stale_temporaries(tmp_path) == [left]
        assert tmp.is_file()
        assert foreign.is_file()
    assert not left.exists()


def test_exr_keeps_pixels_channels_and_header(tmp_path: Path) -> None:
    spec = oiio.ImageSpec(32, 16, 5, "half")
    spec.channelnames = ("R", "G", "B", "A", "depth.Z")
    spec.tile_width = spec.tile_height = 16
    spec.x, spec.y, spec.full_width, spec.full_height = 4, 2, 48, 24
    spec.attribute("compression", "piz")
    spec.attribute("FramesPerSecond", oiio.TypeDesc("rational2i"), (24000, 1001))
    spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), [0x01020304, 0])
    spec.attribute("studio:shot", "ab010")
    pixels = np.random.default_rng(0).uniform(-2, 30, (16, 32, 5)).astype(np.float32)
    pixels[3, 4, 0] = np.nan
    source = tmp_path / "in.exr"
    out = oiio.ImageOutput.create(str(source))
    out.open(str(source), spec)
    out.write_image(pixels)
    out.close()

    info, read = read_pixels(source)
    assert info.channels == ("R", "G", "B", "A", "depth.Z")
    write_image(
        tmp_path / "out.exr",
        np.concatenate([read, read[..., :1] * 0 + 0.25], axis=2),
        channels=[*info.channels, "rrtn_mask.Y"],
        template=info.spec,
        channel_formats=["half"] * 5 + ["float"],
    )
    again, back = read_pixels(tmp_path / "out.exr")
    assert np.array_equal(back[..., :5], read, equal_nan=True)
    assert again.channels[-1] == "rrtn_mask.Y"
    s = again.spec
    assert (s.x, s.y, s.full_width, s.full_height, s.tile_width) == (4, 2, 48, 24, 0)
    assert s.getattribute("FramesPerSecond") == (24000, 1001)
    assert s.getattribute("smpte:TimeCode") == (0x01020304, 0)
    assert s.get_string_attribute("studio:shot") == "ab010"
    assert s.get_string_attribute("compression") == "piz"
    assert [str(f) for f in s.channelformats] == ["half"] * 5 + ["float"]


def test_dpx_keeps_ten_bit_codes_and_film_header(tmp_path: Path) -> None:
    spec = oiio.ImageSpec(8, 4, 3, "uint16")
    spec.attribute("oiio:BitsPerSample", 10)
    spec.attribute("dpx:Transfer", "Printing density")
    spec.attribute("dpx:FrameRate", 24.0)
    spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), [0x10000000, 0])
    codes = np.arange(96).reshape(4, 8, 3) * 9 + 95
    write_image(
        tmp_path / "a.dpx",
        (codes / 1023).astype(np.float32),
        channels=("R", "G", "B"),
        template=spec,
        bits=10,
    )
    info, pixels = read_pixels(tmp_path / "a.dpx")
    write_image(tmp_path / "b.dpx", pixels, channels=info.channels, template=info.spec, bits=10)
    again, back = read_pixels(tmp_path / "b.dpx")
    assert np.array_equal(np.round(back * 1023), codes)
    assert again.bits == 10
    assert again.spec.get_string_attribute("dpx:Transfer") == "Printing density"
    assert again.spec.get_float_attribute("dpx:FrameRate") == 24.0
    assert again.spec.get_string_attribute("dpx:TimeCode") == "10:00:00:00"


def test_quantize_for_integer_formats() -> None:
    assert np.array_equal(
        quantize_for(np.array([0.5, 1.2, -1.0]), 8), np.array([128, 255, 0]) / 255
    )


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(RRTNError, match="missing frame") as info:
        read_info(tmp_path / "nope.exr")
    assert info.value.kind is ErrorKind.NOT_FOUND
    junk = tmp_path / "junk.exr"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(RRTNError, match=r"cannot read .*junk\.exr"):
        read_info(junk)
    spec = oiio.ImageSpec(64, 64, 3, "float")
    write_image(
        tmp_path / "full.exr",
        np.ones((64, 64, 3), np.float32),
        channels="RGB",
        template=spec,
        compression="none",
    )
    data = (tmp_path / "full.exr").read_bytes()
    (tmp_path / "cut.exr").write_bytes(data[: len(data) // 2])
    with pytest.raises(RRTNError, match=r"cut\.exr \(truncated or damaged\)"):
        read_pixels(tmp_path / "cut.exr")
