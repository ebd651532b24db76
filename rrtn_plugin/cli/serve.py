"""``rrtn-plugin serve``: the restoration server (:mod:`rrtn_plugin.server`) for one model.

Its settings come from flags or from a TOML file (``--config``; flags given on the command line
win), its metrics from ``--metrics-port``, and SIGTERM (or Ctrl-C) drains it: new calls are
refused, running restores have ``--drain-seconds`` to finish, then they are stopped and it exits.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrtn_plugin import __version__
from rrtn_plugin.cli.arguments import (
    add_access_arguments,
    add_compile_argument,
    add_engine_arguments,
    command_parser,
    read_token,
)
from rrtn_plugin.cli.models import add_model_arguments, load_models, max_passes
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.options import RestoreOptions
from rrtn_plugin.protocol.framing import DEFAULT_ADDRESS

if TYPE_CHECKING:
    from rrtn_plugin.server.service import ServiceLimits

DESCRIPTION = """\
Serve restorations over gRPC (service rrtn.v1.Restorer) to hosts and to
`rrtn-plugin restore --server`. Settings come from the flags, or from a TOML
file (--config) whose keys are the flags' names with underscores (for
--no-share-work: share_work = false), e.g.

  listen = "0.0.0.0:50051"
  token_file = "/etc/rrtn/token"
  root = ["/show"]
  memory_budget = 60
  metrics_port = 9464

Flags given on the command line override the file. SIGTERM drains the server."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = command_parser(
        commands, "serve", help="run the restoration server", description=DESCRIPTION
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="a TOML file of settings, keys named as the flags (default: none; flags win)",
    )
    parser.add_argument(
        "--listen",
        default=DEFAULT_ADDRESS,
        help="host:port or unix:///path.sock (default: loopback only, %(default)s)",
    )
    add_model_arguments(parser)
    parser.add_argument("--name", default="rrtn", help="the model's name for clients")
    add_access_arguments(parser)
    parser.add_argument("--tls-cert", type=Path, help="certificate (PEM) for TLS (default: none)")
    parser.add_argument("--tls-key", type=Path, help="private key (PEM) for TLS (default: none)")
    parser.add_argument(
        "--root",
        type=Path,
        action="append",
        default=[],
        help="a folder the path transport may read and write (repeatable; default: none, "
        "and the server reads and writes no files)",
    )
    parser.add_argument(
        "--memory-budget",
        type=float,
        help="GiB for cached work on the device (default: 80%% of free)",
    )
    parser.add_argument(
        "--host-budget",
        type=float,
        help="GiB of host memory for sessions' frames (default: 50%% of free)",
    )
    parser.add_argument("--max-sessions", type=int, default=16, help="sessions open at once")
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=1800.0,
        help="seconds before an unused session is closed",
    )
    parser.add_argument(
        "--max-restores",
        type=int,
        default=0,
        help="restore calls running at once; more are refused at once (default: twice "
        "--max-sessions)",
    )
    parser.add_argument(
        "--stream-idle-timeout",
        type=float,
        default=60.0,
        help="seconds a restore call may wait on its client (its next message, or to take a "
        "reply) before the server ends it",
    )
    parser.add_argument(
        "--no-share-work",
        dest="share_work",
        action="store_false",
        help="drop a closed session's cached work instead of keeping it for later sessions "
        "that ask for the same work (default: kept, within the memory budgets; in --config: "
        "share_work = false)",
    )
    parser.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help="on SIGTERM or Ctrl-C, seconds running restores have to finish before they are "
        "stopped",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus metrics on http://ADDRESS:PORT/metrics (default: none)",
    )
    parser.add_argument(
        "--metrics-address",
        default="127.0.0.1",
        help="the address the metrics listen on",
    )
    parser.add_argument(
        "--log-json", action="store_true", help="log JSON lines (one per call) instead of text"
    )
    add_engine_arguments(parser, ["device"])
    add_compile_argument(parser)
    parser.add_argument(
        "--ocio-config", help="OpenColorIO config (default: $OCIO or the built-in one)"
    )
    parser.set_defaults(run=cmd_serve, serve_parser=parser)


def apply_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Take settings from the TOML file ``args.config`` for every flag not given on the
    command line (its value is still the default).

    Raises:
        RRTNError: an unreadable file, invalid TOML, an unknown key or a value of the wrong type.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise RRTNError("--config needs Python 3.11 or later (tomllib)") from None
    try:
        settings = tomllib.loads(args.config.read_text())
    except OSError as exc:
        raise RRTNError(f"cannot read the config file {args.config}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RRTNError(f"config file {args.config} is not valid TOML: {exc}") from None
    actions = {
        a.dest: a for a in parser._actions if a.option_strings and a.dest not in ("help", "config")
    }
    for key, value in settings.items():
        dest = key.replace("-", "_")
        action = actions.get(dest)
        if action is None:
            raise RRTNError(
                f"config file {args.config}: unknown setting '{key}' (settings: "
                f"{', '.join(sorted(actions))})"
            )
        if getattr(args, dest) != action.default:
            continue  # given on the command line
        setattr(args, dest, _config_value(args.config, key, value, action))


def _config_value(path: Path, key: str, value: Any, action: argparse.Action) -> Any:
    """A config file's ``value`` for the flag ``action``, converted as the flag would be."""
    convert = action.type if callable(action.type) else (lambda v: v)
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise RRTNError(f"config file {path}: '{key}' must be true or false, got {value!r}")
        return value
    if isinstance(action, argparse._AppendAction):
        values = value if isinstance(value, list) else [value]
        return [convert(str(v)) for v in values]
    if isinstance(value, (list, dict, bool)):
        raise RRTNError(f"config file {path}: '{key}' must be a single value, got {value!r}")
    try:
        converted = convert(str(value) if action.type in (Path, str, None) else value)
    except (TypeError, ValueError):
        raise RRTNError(f"config file {path}: '{key}' has a bad value {value!r}") from None
    if action.choices is not None and converted not in action.choices:
        raise RRTNError(
            f"config file {path}: '{key}' must be one of {', '.join(map(str, action.choices))}"
        )
    return converted


def service_limits(args: argparse.Namespace) -> ServiceLimits:
    """The server's limits from the command's settings (flags, or ``--config``'s keys)."""
    from rrtn_plugin.server.service import ServiceLimits

    return ServiceLimits(
        memory_budget=int((args.memory_budget or 0) * 2**30),
        host_budget=int((args.host_budget or 0) * 2**30),
        max_sessions=args.max_sessions,
        idle_timeout=args.idle_timeout,
        path_roots=tuple(args.root),
        max_restores=args.max_restores,
        stream_idle_timeout=args.stream_idle_timeout,
        share_work=args.share_work,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    from rrtn_plugin.engine.device import compile_models
    from rrtn_plugin.server.app import JsonLogFormatter, ServerSecurity, start_server
    from rrtn_plugin.server.service import RestoreService, ServedModel

    if args.config is not None:
        apply_config(args, args.serve_parser)
    if args.log_json:
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLogFormatter())
    first, second = load_models(args.model, args.model_second)
    if args.compile:
        compile_models(first, second)
    service = RestoreService(
        [
            ServedModel(
                args.name,
                first,
                second,
                description=str(args.model or "bundled small model"),
                max_passes=max_passes(args, RestoreOptions.max_passes),
            )
        ],
        device=args.device,
        limits=service_limits(args),
        ocio_config=args.ocio_config,
    )
    server = start_server(
        service,
        address=args.listen,
        security=ServerSecurity(
            token=read_token(args.token_file), tls_cert=args.tls_cert, tls_key=args.tls_key
        ),
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
    )
    address = args.listen
    if not address.startswith("unix:") and address.rsplit(":", 1)[-1] == "0":
        address = f"{address.rsplit(':', 1)[0]}:{server.port}"
    metrics = (
        f", metrics on http://{args.metrics_address}:{server.metrics_port}/metrics"
        if server.metrics_port
        else ""
    )
    print(
        f"rrtn-plugin {__version__} serving on {address} ({service.device}){metrics}; "
        "Ctrl-C or SIGTERM to stop",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.wait()
    except BaseException as stopping:  # SIGTERM (SystemExit) or Ctrl-C: drain, then exit
        if not server.drain(args.drain_seconds):
            logging.shutdown()
            code = stopping.code if isinstance(stopping, SystemExit) else 130
            os._exit(code if isinstance(code, int) else 1)  # a restore would not stop
        raise
    return 0
