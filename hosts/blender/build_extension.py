"""Build the Blender extension zip: the add-on, its manifest, and the wheels it needs.

    python hosts/blender/build_extension.py [--platform linux-x64 ...] [--out dist]

Blender installs an extension's wheels itself (Edit > Preferences > Get Extensions > Install from
Disk), so the zip carries the rrtn-plugin client library (a wheel of this project; only its
client modules are imported in Blender) and grpcio, protobuf and typing_extensions built for
Blender's Python 3.11 on each platform asked for. numpy comes with Blender.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ADDON = HERE / "rrtn_restore"
PLATFORMS = {
    "linux-x64": "manylinux_2_17_x86_64",
    "windows-x64": "win_amd64",
    "macos-arm64": "macosx_11_0_arm64",
    "macos-x64": "macosx_10_14_x86_64",
}
DEPENDENCIES = ("grpcio", "protobuf", "typing_extensions")
"""The client library's needs beyond numpy (grpcio imports typing_extensions)."""
PYTHON = "3.11"
"""Blender 4.2 to 5.0 embed Python 3.11."""


def build(platforms: list[str], out: Path) -> Path:
    """Write ``out/rrtn_restore-<version>.zip``; returns its path."""
    unknown = sorted(set(platforms) - set(PLATFORMS))
    if unknown:
        raise SystemExit(f"unknown platform {unknown[0]} (choose from {', '.join(PLATFORMS)})")
    with tempfile.TemporaryDirectory() as tmp:
        wheels = Path(tmp) / "wheels"
        pip = [sys.executable, "-m", "pip", "-q"]
        subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
        pins = [f"{name}=={importlib.metadata.version(name)}" for name in DEPENDENCIES]
        for platform in platforms:
            subprocess.run(
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
                    str(wheels),
                    *pins,
                ],
                check=True,
            )
        manifest = (ADDON / "blender_manifest.toml").read_text()
        listed = ", ".join(f'"./wheels/{w.name}"' for w in sorted(wheels.glob("*.whl")))
        targets = ", ".join(f'"{p}"' for p in platforms)
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
            archive.write(ADDON / "__init__.py", "__init__.py")
            for wheel in sorted(wheels.glob("*.whl")):
                archive.write(wheel, f"wheels/{wheel.name}")
        shutil.move(partial, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--platform",
        action="append",
        choices=sorted(PLATFORMS),
        help="repeat for several (default: all)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    args = parser.parse_args()
    print(build(args.platform or sorted(PLATFORMS), args.out))


if __name__ == "__main__":
    main()
