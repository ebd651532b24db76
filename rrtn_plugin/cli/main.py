"""The ``rrtn-plugin`` command: the parser, assembled from each command module's
``add_parser``, and :func:`main`, which runs a command and turns the core's errors into one line
and an exit status (:data:`EXIT_CODES`)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import textwrap
from collections.abc import Sequence
from types import FrameType

from rrtn_plugin import __version__
from rrtn_plugin.cli import degrade, demo, evaluate, farm, info, restore, serve, train
from rrtn_plugin.cli.arguments import HelpFormatter
from rrtn_plugin.errors import ErrorKind, RRTNError

COMMANDS = (restore, farm, serve, demo, degrade, train, evaluate, info)
"""The command modules, in the order ``--help`` lists them."""

EXIT_CODES = {
    ErrorKind.INVALID_INPUT: 2,
    ErrorKind.NOT_FOUND: 2,
    ErrorKind.PERMISSION_DENIED: 2,
    ErrorKind.OUT_OF_MEMORY: 3,
    ErrorKind.CANCELLED: 130,
}
"""The exit status of each kind of error."""

EXIT_STATUS = (
    (0, "done: every requested frame was written"),
    (
        2,
        "bad input: an option, a file or frame that is missing or unreadable, a path the "
        "server may not use",
    ),
    (3, "out of memory: the work does not fit the device or the memory budget"),
    (130, "cancelled or interrupted (Ctrl-C)"),
    (143, "terminated (SIGTERM); temporary files are removed"),
)

DESCRIPTION = """\
Old-film restoration with RRTN: restore frame sequences here or on a server,
serve hosts, plan farm jobs, and make, damage, train and measure models.
Without --model the bundled small model is used."""


def epilog() -> str:
    """The exit statuses, as ``--help`` ends."""
    lines = ["exit status:"]
    lines += [
        textwrap.fill(meaning, 79, initial_indent=f"  {code:<5}", subsequent_indent=" " * 7)
        for code, meaning in EXIT_STATUS
    ]
    lines.append("Errors the user can act on print one line.")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rrtn-plugin",
        description=DESCRIPTION,
        epilog=epilog(),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rrtn-plugin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds, so temporary files are removed


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` names (default: the process's arguments); its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="rrtn-plugin: %(levelname)s: %(message)s", level=logging.INFO)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        status: int = args.run(args)
        return status
    except RRTNError as exc:
        print(f"rrtn-plugin: error: {exc}", file=sys.stderr)
        return EXIT_CODES[exc.kind]
    except KeyboardInterrupt:
        print("rrtn-plugin: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
