"""``rrtn-plugin info``: what a checkpoint holds (size, configuration, training metadata): a
file, a folder of the authors' pair, or, without an argument, the bundled model."""

from __future__ import annotations

import argparse
from pathlib import Path

from rrtn_plugin.cli.arguments import command_parser


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = command_parser(commands, "info", help="show what a checkpoint holds")
    parser.add_argument(
        "checkpoint",
        type=Path,
        nargs="?",
        help="a checkpoint file, or a folder holding the authors' pair or checkpoints "
        "(default: the bundled model)",
    )
    parser.set_defaults(run=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from rrtn_plugin.errors import ErrorKind, RRTNError
    from rrtn_plugin.weights import PASSES, bundled_path

    if args.checkpoint is None:
        show(bundled_path(), f"the bundled model, run for {PASSES} pass(es) unless asked")
        return 0
    if not args.checkpoint.is_dir():
        show(args.checkpoint)
        return 0
    found = sorted(
        p for p in args.checkpoint.iterdir() if p.suffix in (".pth", ".safetensors", ".pt")
    )
    if not found:
        raise RRTNError(
            f"folder {args.checkpoint} holds no checkpoint (.pth, .safetensors)",
            kind=ErrorKind.NOT_FOUND,
        )
    for path in found:
        show(path)
    return 0


def show(path: Path, note: str = "") -> None:
    """Print what the checkpoint ``path`` holds."""
    from rrtn_plugin.model import load_rrtn, read_metadata

    model = load_rrtn(path)
    params = sum(p.numel() for p in model.parameters())
    print(f"{path}: RRTN, {params:,} parameters" + (f" ({note})" if note else ""))
    for key, value in model.config.__dict__.items():
        print(f"  {key}: {value}")
    for key, value in read_metadata(path).items():
        if key != "config":
            print(f"  metadata {key}: {value}")
