"""Build the Blender extension zip: the add-on, its manifest, and the wheels it needs.

    python hosts/blender/build_extension.py [--platform linux-x64 ...] [--out dist]

Blender installs an extension's wheels itself (Edit > Preferences > Get Extensions > Install from
Disk), so the zip carries the rrtn-plugin client library (a wheel of this project; only its
client modules are imported in Blender) and grpcio, protobuf and typing_extensions built for
Blender's Python 3.11 on each platform asked for. numpy comes with Blender.

grpcio ships macOS wheels only as ``universal2`` (one binary holding both x86_64 and arm64
code) for macOS 11 and later, which is what Blender 4.2+ needs anyway; the build checks that
the native libraries of every macOS wheel hold the platform's architecture. Without ``--platform``
every platform is tried, and one without fitting wheels is left out (the build says why); a
platform asked for by name must succeed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ADDON = HERE / "rrtn_restore"
PLATFORMS = {
    "linux-x64": "manylinux_2_17_x86_64",
    "windows-x64": "win_amd64",
    # macOS 11 (Blender 4.2+ needs 11.2): pip takes universal2 wheels for these tags too.
    "macos-arm64": "macosx_11_0_arm64",
    "macos-x64": "macosx_11_0_x86_64",
}
"""Blender's platform names → the pip platform tag whose wheels they run."""
MACHO_CPU = {"macos-arm64": 0x0100000C, "macos-x64": 0x01000007}
"""The Mach-O CPU type each macOS platform's native code must be built for."""
DEPENDENCIES = ("grpcio", "protobuf", "typing_extensions")
"""The client library's needs beyond numpy (grpcio imports typing_extensions)."""
PYTHON = "3.11"
"""Blender 4.2 to 5.0 embed Python 3.11."""


def build(platforms: list[str], out: Path, *, strict: bool = True) -> Path:
    """Write ``out/rrtn_restore-<version>.zip`` for ``platforms``; returns its path.

    With ``strict`` a platform without fitting wheels fails the build; else it is left out
    with a message on stderr (and the build fails only when no platform is left)."""
    unknown = sorted(set(platforms) - set(PLATFORMS))
    if unknown:
        raise SystemExit(f"unknown platform {unknown[0]} (choose from {', '.join(PLATFORMS)})")
    with tempfile.TemporaryDirectory() as tmp:
        wheels = Path(tmp) / "wheels"
        pip = [sys.executable, "-m", "pip", "-q"]
        subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
        pins = [f"{name}=={importlib.metadata.version(name)}" for name in DEPENDENCIES]
        kept = []
        for platform in dict.fromkeys(platforms):
            folder = Path(tmp) / platform
            done = subprocess.run(
                [
                    *pip,
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--python-version",
                    PYTHON,
                    "--platform",
                    PLATFORMS[platform],
                    "-d",
                    str(folder),
                    *pins,
                ],
                capture_output=True,
                text=True,
            )
            problem = (
                _last_error(done.stderr)
                if done.returncode != 0
                else missing_architecture(sorted(folder.glob("*.whl")), platform)
            )
            if problem is not None:
                if strict:
                    raise SystemExit(f"no {platform} build: {problem}")
                print(f"{platform} left out: {problem}", file=sys.stderr)
                continue
            kept.append(platform)
            for wheel in folder.glob("*.whl"):  # a universal2 wheel serves both Macs: once
                shutil.copy(wheel, wheels / wheel.name)
        if not kept:
            raise SystemExit("no platform has the wheels the extension needs")
        manifest = (ADDON / "blender_manifest.toml").read_text()
        listed = ", ".join(f'"./wheels/{w.name}"' for w in sorted(wheels.glob("*.whl")))
        targets = ", ".join(f'"{p}"' for p in kept)
        manifest = re.sub(
            r"^wheels = \[\]$",
            f"wheels = [{listed}]\nplatforms = [{targets}]",
            manifest,
            flags=re.MULTILINE,
        )
        version = re.search(r'^version = "(.+)"$', manifest, re.MULTILINE)
        out.mkdir(parents=True, exist_ok=True)
        target = out / f"rrtn_restore-{version.group(1) if version else 'dev'}.zip"
        partial = target.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("blender_manifest.toml", manifest)
            for module in sorted(ADDON.glob("*.py")):
                archive.write(module, module.name)
            for wheel in sorted(wheels.glob("*.whl")):
                archive.write(wheel, f"wheels/{wheel.name}")
        shutil.move(partial, target)
    return target


def missing_architecture(wheels: Iterable[Path], platform: str) -> str | None:
    """Why ``wheels`` cannot run on a macOS ``platform`` (a native library without its
    architecture's code), or None. Other platforms' wheels are taken as pip chose them."""
    cpu = MACHO_CPU.get(platform)
    if cpu is None:
        return None
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.endswith((".so", ".dylib")):
                    with archive.open(name) as library:
                        header = library.read(4096)
                    if cpu not in macho_cpu_types(header):
                        return f"{name} in {wheel.name} holds no {platform.split('-')[1]} code"
    return None


def macho_cpu_types(header: bytes) -> set[int]:
    """The CPU types a Mach-O file's start says it holds: one for a thin binary, one per
    architecture for a universal (fat) one; empty for anything else."""
    magic = header[:4]
    if magic in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf"):  # fat: big-endian table
        (count,) = struct.unpack(">I", header[4:8])
        size = 20 if magic == b"\xca\xfe\xba\xbe" else 32  # fat_arch, fat_arch_64
        entries = [header[8 + i * size : 12 + i * size] for i in range(count)]
        return {struct.unpack(">I", entry)[0] for entry in entries if len(entry) == 4}
    if magic in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):  # thin, little-endian
        return {struct.unpack("<I", header[4:8])[0]}
    return set()


def _last_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("ERROR")]
    return (lines[-1] if lines else stderr.strip()[-300:]) or "pip failed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--platform",
        action="append",
        choices=sorted(PLATFORMS),
        help="repeat for several (default: every platform with fitting wheels)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    print(build(args.platform or sorted(PLATFORMS), args.out, strict=bool(args.platform)))


if __name__ == "__main__":
    main()
