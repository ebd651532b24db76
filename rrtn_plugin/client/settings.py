"""What a host's user chooses for a restore, and what a server offers to choose from.

:class:`HostSettings` holds the choices (server, token, model, passes, AOVs, input colour
space, and the restore knobs: cuts, tone guard, repair mode and strength; the server and token
default to ``$RRTN_SERVER`` and ``$RRTN_TOKEN``), also as a host script's command-line options
(:func:`add_options`, :func:`from_options`). :data:`KNOBS` describes the restore knobs once for
every host (label, choices, default, range, tooltip), from the engine's own description of the
options (:data:`rrtn_plugin.options.OPTIONS`). :func:`server_choices` asks a server for its
models, colour spaces and AOVs, for host menus; :func:`user_error` says what a server's failure
means to the user.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from rrtn_plugin.client.library import DEFAULT_ADDRESS, Client, ServerError
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.options import RestoreOptions, option_flag, option_spec

AOVS = ("mask", "repair", "motion")
"""The AOVs a server can write beside the picture, in its order."""
CHOICE_HELP = {
    "full": "the restored picture everywhere: for heavy damage, or one clean look throughout",
    "defects": "only the dust and blotches the damage mask finds, feathered; every other pixel "
    "stays the plate's, bit for bit, so grain and detail are untouched: for light damage on a "
    "plate whose texture must stay",
    "deflicker": "hold the plate's tone in every frame and even out each frame's overall "
    "level over a few frames, which removes flicker: for most film",
    "keep": "hold the plate's own tone in every frame, flicker included, undoing any "
    "re-grade by the network: when light changes within a shot are meant, such as a lamp "
    "switched on",
    "off": "the network's output as it is, which may shift the tone: when you grade "
    "afterwards anyway, or to see what the network alone does",
}
"""What each choice of a restore knob does and when to use it, for tooltips; in the order
hosts list them, each knob's default first."""


@dataclass(frozen=True)
class Knob:
    """A restore option as every host shows it: the :class:`HostSettings` field (and the
    server's session option) ``name``, its ``label``, and the rest from the engine's own
    description: ``type``, ``default``, ``choices``, ``minimum``/``maximum``.
    ``summary`` says what it does, ``hint`` briefly what to choose (for error messages)."""

    name: str
    label: str
    summary: str
    hint: str

    @property
    def type(self) -> type:
        return option_spec(self.name).type

    @property
    def default(self) -> object:
        return option_spec(self.name).default

    @property
    def choices(self) -> tuple[str, ...]:
        """The engine's choices in the order of :data:`CHOICE_HELP` (the default first)."""
        return tuple(c for c in CHOICE_HELP if c in option_spec(self.name).choices)

    @property
    def minimum(self) -> float:
        return option_spec(self.name).minimum or 0.0

    @property
    def maximum(self) -> float:
        return option_spec(self.name).maximum or 0.0

    @property
    def flag(self) -> str:
        """The host scripts' command-line option (``--repair-mode``)."""
        return option_flag(self.name)

    @property
    def tooltip(self) -> str:
        """What it does and, for a choice, what each choice does and when to use it."""
        lines = [self.summary, *(f"{c}: {CHOICE_HELP[c]}." for c in self.choices)]
        return "\n".join(lines)

    def check(self, value: object) -> None:
        """Raise RRTNError saying what to choose when ``value`` is not allowed."""
        spec = option_spec(self.name)
        try:
            spec.validate(value, RestoreOptions())
        except RRTNError:
            raise RRTNError(
                f"{self.label} must be {spec.allowed()} ({self.hint}), not {value!r}",
                kind=ErrorKind.INVALID_INPUT,
            ) from None


KNOBS = (
    Knob(
        "repair_mode",
        "repair mode",
        "Where the restore changes the picture.",
        "full repairs the whole picture, defects only dust and blotches",
    ),
    Knob(
        "repair_strength",
        "repair strength",
        "How much of the repair is mixed over the plate: 1 the whole repair, 0 the plate as "
        "it is. Lower it when the repair looks too clean next to untouched shots.",
        "0 keeps the plate, 1 gives the whole repair",
    ),
    Knob(
        "tone_guard",
        "tone guard",
        "What holds the picture's overall tone after the network.",
        "deflicker evens out flicker, keep holds the plate's own tone, off leaves the "
        "network's output",
    ),
    Knob(
        "cuts",
        "find cuts",
        "Find cuts and one-frame flashes and restore each shot on its own, so nothing is "
        "aligned or carried across a cut. Leave it on; turn it off only for one continuous "
        "shot whose sudden light changes (a strobe, lightning) are taken for cuts.",
        "on restores each shot apart",
    ),
)
"""The restore knobs every host offers, in the order hosts show them."""


@dataclass(frozen=True)
class HostSettings:
    """The choices a host offers. ``passes`` 0 and empty strings mean the server's defaults
    (they depend on the server's models and colour configuration); the restore knobs
    (:data:`KNOBS`) hold their values, the engine's defaults unless chosen, checked here."""

    server: str = field(default_factory=lambda: os.environ.get("RRTN_SERVER", DEFAULT_ADDRESS))
    token: str = field(default_factory=lambda: os.environ.get("RRTN_TOKEN", ""), repr=False)
    model: str = ""
    passes: int = 0
    aovs: tuple[str, ...] = ("mask",)
    input_colorspace: str = ""
    cuts: bool = RestoreOptions.cuts
    tone_guard: str = RestoreOptions.tone_guard
    repair_mode: str = RestoreOptions.repair_mode
    repair_strength: float = RestoreOptions.repair_strength

    def __post_init__(self) -> None:
        if not self.server.strip():
            raise RRTNError("no server address: give host:port, e.g. 127.0.0.1:50051")
        if self.passes < 0:
            raise RRTNError(f"passes must be 0 (the model's default) or more, not {self.passes}")
        for knob in KNOBS:
            knob.check(getattr(self, knob.name))
        object.__setattr__(self, "repair_strength", float(self.repair_strength))  # 1 == 1.0

    def result_fields(self) -> dict[str, object]:
        """What changes the restored pixels (the server's address and token do not)."""
        return {
            "model": self.model,
            "passes": self.passes,
            "aovs": sorted(self.aovs),
            "input_colorspace": self.input_colorspace,
            **{knob.name: getattr(self, knob.name) for knob in KNOBS},
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
    for knob in KNOBS:
        text = knob.tooltip.replace("%", "%%").replace("\n", " ")
        if knob.type is bool:
            parser.add_argument(
                knob.flag,
                action=argparse.BooleanOptionalAction,
                default=knob.default,
                help=f"{text} (default: on)",
            )
        else:
            parser.add_argument(
                knob.flag,
                type=knob.type,
                choices=knob.choices or None,
                default=knob.default,
                help=f"{text} (default: {knob.default})",
            )
    parser.add_argument("--cache", type=Path, default=cache, help="where results go")


def from_options(options: argparse.Namespace) -> HostSettings:
    """The settings :func:`add_options`' options give."""
    return HostSettings(
        server=options.server,
        model=options.model,
        passes=options.passes,
        input_colorspace=options.colorspace,
        aovs=tuple(name.strip() for name in options.aovs.split(",") if name.strip()),
        **{knob.name: getattr(options, knob.name) for knob in KNOBS},
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
