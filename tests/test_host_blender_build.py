"""The Blender extension's build for every platform, checked by Blender's own validator
(what ``blender --command extension validate`` runs, and the extensions platform enforces).

grpcio ships macOS wheels only as universal2 (one binary for x86_64 and arm64): the build
takes them for both Macs after reading the architectures their native libraries hold.
"""

from __future__ import annotations

import shutil
import struct
import zipfile
from pathlib import Path

import pytest
from helpers import (
    ROOT,
    VERSIONS,
    build_extension,
    builder,
    drive,
    install_bpy,
    read_toml,
)

ADDON = ROOT / "hosts" / "blender" / "rrtn_restore"
X86_64, ARM64 = 0x01000007, 0x0100000C


@pytest.fixture(scope="module")
def every_platform(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip built as ``build_extension.py`` builds it without ``--platform``."""
    platforms = sorted(builder().PLATFORMS)
    return build_extension(platforms, tmp_path_factory.mktemp("every"), strict=False)


def test_the_default_build_holds_every_platform(every_platform: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(every_platform) as archive:
        manifest = read_toml(archive.read("blender_manifest.toml").decode())
        archive.extractall(tmp_path)
    assert manifest["platforms"] == ["linux-x64", "macos-arm64", "macos-x64", "windows-x64"]
    grpcio = sorted(Path(w).name for w in manifest["wheels"] if "grpcio" in w)
    assert [name.split("-")[-1] for name in grpcio] == [
        "macosx_11_0_universal2.whl",
        "manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        "win_amd64.whl",
    ]
    universal = tmp_path / "wheels" / grpcio[0]
    build = builder()
    for platform in ("macos-arm64", "macos-x64"):  # both architectures' code in the binary
        assert build.missing_architecture([universal], platform) is None
    with zipfile.ZipFile(universal) as wheel:
        library = next(n for n in wheel.namelist() if n.endswith(".so"))
        with wheel.open(library) as file:
            assert build.macho_cpu_types(file.read(4096)) == {X86_64, ARM64}


@pytest.mark.parametrize("version", VERSIONS)
def test_blenders_validator_accepts_the_manifest_and_the_zip(
    version: str, every_platform: Path, tmp_path: Path
) -> None:
    blender = install_bpy(version)
    too_long = tmp_path / "too_long"
    shutil.copytree(ADDON, too_long)
    manifest = too_long / "blender_manifest.toml"
    text = manifest.read_text()
    manifest.write_text(text.replace('files = "', 'files = "' + "x" * 60))
    report = drive(
        blender, "validate", {"paths": [str(ADDON), str(every_platform), str(too_long)]}, tmp_path
    )
    assert report == {str(ADDON): 0, str(every_platform): 0, str(too_long): 1}


def test_mach_o_headers_name_their_architectures() -> None:
    build = builder()
    thin_arm = b"\xcf\xfa\xed\xfe" + struct.pack("<I", ARM64) + bytes(24)
    thin_x86 = b"\xcf\xfa\xed\xfe" + struct.pack("<I", X86_64) + bytes(24)
    fat = b"\xca\xfe\xba\xbe" + struct.pack(">I", 2)
    fat += struct.pack(">5I", X86_64, 3, 4096, 10, 12) + struct.pack(">5I", ARM64, 0, 8192, 10, 14)
    fat64 = (
        b"\xca\xfe\xba\xbf" + struct.pack(">I", 1) + struct.pack(">IIQQII", ARM64, 0, 1, 2, 3, 0)
    )
    assert build.macho_cpu_types(thin_arm) == {ARM64}
    assert build.macho_cpu_types(thin_x86) == {X86_64}
    assert build.macho_cpu_types(fat) == {X86_64, ARM64}
    assert build.macho_cpu_types(fat64) == {ARM64}
    assert build.macho_cpu_types(b"\x7fELF" + bytes(60)) == set()


def test_a_wheel_without_the_platforms_code_is_named(tmp_path: Path) -> None:
    wheel = tmp_path / "native-1.0-cp311-cp311-macosx_11_0_arm64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("native/fast.so", b"\xcf\xfa\xed\xfe" + struct.pack("<I", ARM64))
    build = builder()
    assert build.missing_architecture([wheel], "macos-arm64") is None
    assert build.missing_architecture([wheel], "macos-x64") == (
        f"native/fast.so in {wheel.name} holds no x64 code"
    )
    assert build.missing_architecture([wheel], "linux-x64") is None  # pip's choice stands
