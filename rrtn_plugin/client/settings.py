"""What a host's user chooses for a restore, and what a server offers to choose from.

:class:`HostSettings` holds the choices (server, token, model, passes, AOVs, input colour
space; the server and token default to ``$RRTN_SERVER`` and ``$RRTN_TOKEN``), also as a host
script's command-line options (:func:`add_options`, :func:`from_options`);
:func:`server_choices` asks a server for its models, colour spaces and AOVs, for host menus;
:func:`user_error` says what a server's failure means to the user.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from rrtn_plugin.client.library import DEFAULT_ADDRESS, Client, ServerError
from rrtn_plugin.errors import ErrorKind, RRTNError

AOVS = ("mask", "repair", "motion")
"""The AOVs a server can write beside the picture, in its order."""


@dataclass(frozen=True)
class HostSettings:
    """The choices a host offers. ``passes`` 0 and empty strings mean the server's defaults."""

    server: str = field(default_factory=lambda: os.environ.get("RRTN_SERVER", DEFAULT_ADDRESS))
    token: str = field(default_factory=lambda: os.environ.get("RRTN_TOKEN", ""), repr=False)
    model: str = ""
    passes: int = 0
    aovs: tuple[str, ...] = ("mask",)
    input_colorspace: str = ""

    def __post_init__(self) -> None:
        if not self.server.strip():
            raise RRTNError("no server address: give host:port, e.g. 127.0.0.1:50051")
        if self.passes < 0:
            raise RRTNError(f"passes must be 0 (the model's default) or more, not {self.passes}")

    def result_fields(self) -> dict[str, object]:
        """What changes the restored pixels (the server's address and token do not)."""
        return {
            "model": self.model,
            "passes": self.passes,
            "aovs": sorted(self.aovs),
            "input_colorspace": self.input_colorspace,
        }


def add_options(parser: argparse.ArgumentParser, *, colorspace: str, cache: Path) -> None:
    """A host script's command-line options: the settings, the handles, the result folder."""
    parser.add_argument("--server", default=HostSettings().server)
    parser.add_argument(
        "--model", default="", help="a model the server offers (default: its first)"
    )
    parser.add_argument("--passes", type=int, default=0, help="0: the model's default")
    parser.add_argument("--handles", type=int, default=8)
    parser.add_argument(
        "--colorspace",
        default=colorspace,
        help=f"what the input frames hold (default {colorspace!r})",
    )
    parser.add_argument("--aovs", default="mask", help=f"comma-separated: {', '.join(AOVS)}")
    parser.add_argument("--cache", type=Path, default=cache, help="where results go")


def from_options(options: argparse.Namespace) -> HostSettings:
    """The settings :func:`add_options`' options give."""
    return HostSettings(
        server=options.server,
        model=options.model,
        passes=options.passes,
        input_colorspace=options.colorspace,
        aovs=tuple(name.strip() for name in options.aovs.split(",") if name.strip()),
    )


@dataclass(frozen=True)
class ServerChoices:
    """What a server offers, for a host's menus."""

    version: str
    device: str
    models: tuple[str, ...]
    colorspaces: tuple[str, ...]
    aovs: tuple[str, ...]


def server_choices(settings: HostSettings, *, timeout: float = 5.0) -> ServerChoices:
    """Ask the server for its models, colour spaces and AOVs."""
    try:
        with Client(settings.server, token=settings.token or None, timeout=timeout) as client:
            info = client.info()
    except ServerError as exc:
        raise user_error(exc, settings.server) from None
    aovs = next((tuple(o.choices) for o in info.options if o.name == "aovs"), ())
    return ServerChoices(
        info.version, info.device, tuple(m.name for m in info.models), tuple(info.colorspaces), aovs
    )


def user_error(exc: ServerError, server: str) -> RRTNError:
    """A server's failure as a message saying what the user can do about it."""
    if exc.code == grpc.StatusCode.UNAVAILABLE:
        return RRTNError(
            f"no rrtn-plugin server answers at {server}: start one with "
            "'rrtn-plugin serve' or check the server address",
            kind=ErrorKind.NOT_FOUND,
        )
    if exc.code == grpc.StatusCode.CANCELLED:
        return RRTNError("restore cancelled", kind=ErrorKind.CANCELLED)
    if exc.code == grpc.StatusCode.UNAUTHENTICATED:
        return RRTNError(
            f"the server at {server} refused the token: set the token "
            "(or $RRTN_TOKEN) to the one it was started with",
            kind=ErrorKind.PERMISSION_DENIED,
        )
    return RRTNError(f"the server at {server} says: {exc.message}")
