"""``rrtn-plugin restore``: a frame sequence in, restored frames and AOVs out, in this process
(:func:`~rrtn_plugin.frames.restore.restore_sequence`) or on a server (the client library)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rrtn_plugin.cli.arguments import (
    add_access_arguments,
    add_job_arguments,
    command_parser,
    job_settings,
    read_token,
    restore_options,
    served_options,
)
from rrtn_plugin.cli.models import load_models
from rrtn_plugin.cli.progress import ProgressPrinter
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.sequence import parse_frames, parse_pattern

SERVER_ERRORS = {
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "PERMISSION_DENIED": ErrorKind.PERMISSION_DENIED,
    "UNAUTHENTICATED": ErrorKind.PERMISSION_DENIED,
    "RESOURCE_EXHAUSTED": ErrorKind.OUT_OF_MEMORY,
    "CANCELLED": ErrorKind.CANCELLED,
    "DEADLINE_EXCEEDED": ErrorKind.CANCELLED,
}
"""A server's gRPC status (by name) as the kind of error, hence the exit status, it gives here
(others: bad input)."""

DESCRIPTION = """\
Restore INPUT (shot.####.exr, shot.%04d.dpx, a folder) into OUTPUT (a pattern;
its extension picks the format)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = command_parser(
        commands, "restore", help="restore a frame sequence", description=DESCRIPTION
    )
    parser.add_argument("input", help="the frames to restore: a pattern, a file of it, a folder")
    parser.add_argument("output", help="where the restored frames go: a pattern")
    parser.add_argument("--frames", help="frames to write, e.g. 1001-1100 (default: all)")
    parser.add_argument(
        "--handles",
        type=int,
        default=0,
        help="extra frames read on each side for context, not written",
    )
    add_job_arguments(parser)
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave frames already written in full and restore the rest "
        "(what a farm task's retry does)",
    )
    parser.add_argument(
        "--server",
        help="run the job on a server (host:port or unix:///path.sock) instead of in this "
        "process (default: in this process)",
    )
    parser.add_argument(
        "--transport",
        choices=["bytes", "paths"],
        default="bytes",
        help="with --server: send the frames (bytes), or let the server "
        "read and write the files on shared storage (paths)",
    )
    add_access_arguments(parser)
    parser.add_argument(
        "--tls-ca",
        type=Path,
        help="with --server: trust this certificate (PEM) and connect with TLS (default: no TLS)",
    )
    parser.set_defaults(run=cmd_restore)


def cmd_restore(args: argparse.Namespace) -> int:
    if args.server:
        if args.skip_existing:
            raise RRTNError("--skip-existing works for jobs run here, not with --server")
        if args.compile:
            raise RRTNError(
                "--compile works for jobs run here; a server compiles its models "
                "when started with serve --compile"
            )
        return restore_through_server(args)
    from rrtn_plugin.engine.device import compile_models
    from rrtn_plugin.frames.restore import restore_sequence

    settings = job_settings(args, handles=args.handles, skip_existing=args.skip_existing)
    first, second = load_models(args.model, args.model_second)
    if args.compile:
        compile_models(first, second)
    report = restore_sequence(
        args.input,
        args.output,
        first=first,
        second=second,
        settings=settings,
        progress=ProgressPrinter(),
    )
    if report.skipped:
        print(
            f"skipped {len(report.skipped)} frames already written "
            f"({report.skipped[0]}-{report.skipped[-1]})"
        )
    if not report.frames:
        return 0
    print(
        f"wrote {len(report.frames)} frames ({report.frames[0]}-{report.frames[-1]}, read "
        f"{report.read_frames[0]}-{report.read_frames[-1]}) to {args.output} in "
        f"{report.seconds:.1f} s"
    )
    print(
        "passes: "
        + ", ".join(f"{p:.1f} dB" for p in report.pass_psnr)
        + "; noise mask above 0.05 on "
        + f"{report.mask_coverage * 100:.2f} % of pixels"
    )
    return 0


def restore_through_server(args: argparse.Namespace) -> int:
    """``restore --server``: the same job run by a server, through the client library."""
    from rrtn_plugin.client.library import Client, ServerError
    from rrtn_plugin.frames.aovs import parse_aovs
    from rrtn_plugin.frames.image import read_info
    from rrtn_plugin.frames.plan import check_target, plan_frames

    restore_options(args)  # the ranges a server checks, checked before connecting
    inp = parse_pattern(args.input, must_exist=True)
    plan = plan_frames(inp, parse_frames(args.frames) if args.frames else None, args.handles)
    info = read_info(inp.path(plan.read[0]))
    if args.transport == "bytes" and not str(args.output).lower().endswith(".exr"):
        raise RRTNError("through a server with the bytes transport the output must be .exr")
    if args.transport == "bytes":
        check_target(parse_pattern(args.output), inp)  # written here: checked before the work
    certificates = args.tls_ca.read_bytes() if args.tls_ca else None
    try:
        with Client(
            args.server, token=read_token(args.token_file), root_certificates=certificates
        ) as client:
            session = client.open_session(
                first_frame=plan.read[0],
                last_frame=plan.read[-1],
                width=info.width,
                height=info.height,
                name=Path(args.input).name,
                aovs=[a.value for a in parse_aovs(args.aovs)],
                color_mode=args.color_mode,
                input_colorspace=args.input_colorspace or "",
                **served_options(args),
            )
            try:
                restore = (
                    session.restore_paths if args.transport == "paths" else session.restore_files
                )
                summary = restore(
                    plan.write[0],
                    plan.write[-1],
                    input=str(Path(inp.display()).absolute()),
                    output=str(Path(args.output).absolute()),
                    progress=ProgressPrinter(),
                )
            finally:
                session.close()
    except ServerError as exc:
        kind = SERVER_ERRORS.get(exc.code.name, ErrorKind.INVALID_INPUT)
        raise RRTNError(f"server {args.server}: {exc}", kind=kind) from exc
    print(
        f"wrote {len(summary.frames)} frames ({plan.write[0]}-{plan.write[-1]}) to "
        f"{args.output} through {args.server} in {summary.seconds:.1f} s "
        f"({summary.windows_computed} windows computed, {summary.windows_cached} cached)"
    )
    return 0
