"""Arguments several commands share, and their translation into the core's settings.

The engine's options are made from their one description
(:data:`~rrtn_plugin.options.OPTIONS`: flag, type, default, choices, range and help) by
:func:`add_engine_arguments`, and :func:`restore_options` turns the parsed values back into
checked :class:`RestoreOptions`. A restore job's other settings (colour, AOVs) are
:func:`add_job_arguments` and :func:`job_settings`. Also here: access (``--token-file``),
``--compile``, ``WIDTHxHEIGHT`` sizes, and the help layout every command uses.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rrtn_plugin.cli.models import add_model_arguments, max_passes
from rrtn_plugin.color import ColorMode
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.frames.aovs import Aov, parse_aovs
from rrtn_plugin.frames.sequence import parse_frames
from rrtn_plugin.frames.settings import JobSettings
from rrtn_plugin.options import OPTIONS, RestoreOptions, option_flag, options_from
from rrtn_plugin.weights import PASSES as BUNDLED_PASSES


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; an option's help ends with its default unless it
    says the default itself, or the default is nothing (None, off, empty)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        nothing = (
            action.default is None
            or action.default is False
            or action.default is argparse.SUPPRESS
            or action.default in ([], "")
        )
        if "default" in text or not action.option_strings or nothing:
            return text
        return f"{text} (default: %(default)s)"


def command_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """A command's parser, laid out as every command's help is."""
    return commands.add_parser(name, formatter_class=HelpFormatter, **kwargs)


def add_engine_arguments(
    parser: argparse.ArgumentParser,
    names: Sequence[str] | None = None,
    *,
    passes: int = RestoreOptions.max_passes,
) -> None:
    """The engine's options (``names``; None: every command-line one), made from their
    description: the flag, type, choices, default and help (with the values accepted).

    ``passes`` is the command's ``--max-passes`` default for models other than the bundled one.
    """
    for spec in OPTIONS:
        if not spec.cli or (names is not None and spec.name not in names):
            continue
        text = spec.describe()
        if spec.type is bool and spec.default:
            parser.add_argument(
                spec.flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=_escape(f"{text} (default: on)"),
            )
            continue
        if spec.type is bool:
            parser.add_argument(spec.flag, action="store_true", help=_escape(text))
            continue
        default = None if spec.per_model or spec.default is None else spec.to_front(spec.default)
        if spec.per_model:
            text += f" (default: {passes}; {BUNDLED_PASSES} with the bundled model)"
        elif spec.default is None:
            text += f" (default: {spec.unset})"
        parser.add_argument(
            spec.flag,
            type=float if spec.unit else spec.type,
            default=default,
            choices=spec.choices or None,
            help=_escape(text),
        )


def _escape(text: str) -> str:
    return text.replace("%", "%%")  # argparse %-formats help texts


def restore_options(
    args: argparse.Namespace, *, passes: int = RestoreOptions.max_passes
) -> RestoreOptions:
    """The engine's options as given to the command, checked (RRTNError names one out of
    range). Options not given keep their defaults; ``--max-passes`` falls back to the bundled
    model's count when it is used, else to ``passes``."""
    given = {spec.name: getattr(args, spec.name) for spec in OPTIONS if hasattr(args, spec.name)}
    return options_from(given, RestoreOptions(max_passes=max_passes(args, passes)))


def served_options(args: argparse.Namespace) -> dict[str, Any]:
    """The engine's options a server takes, as given to the command (the server's defaults
    apply to the rest), for :meth:`~rrtn_plugin.client.library.Client.open_session`."""
    return {
        spec.name: getattr(args, spec.name)
        for spec in OPTIONS
        if spec.served and getattr(args, spec.name, None) is not None
    }


def add_job_arguments(parser: argparse.ArgumentParser) -> None:
    """The settings a restore job runs with: models, colour, AOVs, the engine, ``--compile``."""
    add_model_arguments(parser)
    parser.add_argument(
        option_flag("input_colorspace"),
        help="colour space of the frames (default: the scene_linear role; film scans e.g. ADX10)",
    )
    parser.add_argument(option_flag("working_colorspace"), help=argparse.SUPPRESS)
    parser.add_argument(
        option_flag("ocio_config"),
        help="OpenColorIO config (default: $OCIO or the built-in studio config)",
    )
    parser.add_argument(
        option_flag("color_mode"),
        choices=[m.value for m in ColorMode],
        default=JobSettings.color_mode.value,
        help="keep the frames' chroma around the restored luminance, or write the restored "
        "luminance alone",
    )
    parser.add_argument(
        option_flag("aovs"),
        default="",
        help=f"extra channels, comma-separated: {','.join(a.value for a in Aov)} (default: none)",
    )
    add_engine_arguments(parser)
    add_compile_argument(parser)


def job_settings(
    args: argparse.Namespace, *, handles: int = 0, skip_existing: bool = False
) -> JobSettings:
    """A restore job's settings from :func:`add_job_arguments`' values and ``--frames``."""
    return JobSettings(
        frames=parse_frames(args.frames) if args.frames else None,
        handles=handles,
        input_colorspace=args.input_colorspace,
        working_colorspace=args.working_colorspace,
        ocio_config=args.ocio_config,
        color_mode=ColorMode(args.color_mode),
        aovs=parse_aovs(args.aovs),
        restore=restore_options(args),
        skip_existing=skip_existing,
    )


def add_compile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network's per-frame parts: the first window of "
        "each size compiles (tens of seconds); meant for GPUs (on CPU it "
        "was slower); needs a C++ compiler",
    )


def add_access_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token-file", type=Path, help="file holding the access token (default: $RRTN_TOKEN)"
    )


def read_token(path: Path | None) -> str | None:
    """The token from ``--token-file``, else ``$RRTN_TOKEN``, else None."""
    if path is not None:
        try:
            return path.read_text().strip() or None
        except OSError as exc:
            raise RRTNError(f"cannot read the token file {path}: {exc}") from exc
    return os.environ.get("RRTN_TOKEN") or None


def size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` as (width, height), for ``type=``."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got '{text}'") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got '{text}'")
    return width, height
