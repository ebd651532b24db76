"""Regenerate the committed Python code for the protocol (run from the repository root).

    python proto/generate.py [--out DIR]

Writes ``rrtn_plugin/protocol/rrtn/v1/restorer_pb2{,_grpc}.py`` and typed stubs (``.pyi``,
mypy-protobuf). The generated files are committed so that the client library needs only grpcio
and protobuf; a test regenerates them into a temporary folder and checks for no difference.
Needs the ``proto`` extra (grpcio-tools pinned to the version the files were made with).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO = "proto/rrtn/v1/restorer.proto"


def generate(out: Path) -> None:
    # Map proto/ to the package path so the generated imports are rrtn_plugin.protocol....
    plugin_dir = Path(sys.executable).parent
    os.environ["PATH"] = f"{plugin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    args = [
        "grpc_tools.protoc",
        f"-Irrtn_plugin/protocol={ROOT / 'proto'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        str(ROOT / PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT)
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
