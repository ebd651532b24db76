"""The ``rrtn-plugin`` command line: a thin translation of arguments into the core's calls.

Subcommands: ``restore`` (a frame sequence in, restored frames and AOVs out, here or on a
server), ``serve`` (the gRPC server), ``demo`` (a clip made on the fly, through the same
pipeline) and ``info`` (what a checkpoint holds). Errors the
user can act on print one line and exit non-zero: 2 bad input, 3 out of memory, 130 cancelled
or interrupted, 143 terminated. Exit 0 means every requested frame was written.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

import torch

from rrtn_plugin import __version__
from rrtn_plugin.aovs import parse_aovs
from rrtn_plugin.color import ColorMode
from rrtn_plugin.demo import run_demo
from rrtn_plugin.engine import Progress, RestoreOptions
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.io.image import read_info
from rrtn_plugin.io.sequence import parse_frames, parse_pattern
from rrtn_plugin.job import JobSettings, plan_frames, restore_sequence
from rrtn_plugin.model import RRTN, build_identity_rrtn, load_rrtn, read_metadata

EXIT_CODES = {ErrorKind.INVALID_INPUT: 2, ErrorKind.NOT_FOUND: 2, ErrorKind.OUT_OF_MEMORY: 3,
              ErrorKind.CANCELLED: 130}
OFFICIAL_NAMES = ("rrtn_128_first.pth", "rrtn_128_second.pth")


class ProgressPrinter:
    """A one-line progress bar on a terminal; otherwise plain log lines, one when a stage
    starts or ends and at most one a second in between."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last = 0.0
        self.label = ""

    def __call__(self, event: Progress) -> None:
        label = f"pass {event.pass_number} {event.stage}" if event.pass_number else event.stage
        finished = event.done >= event.total
        if self.tty:
            filled = 30 * event.done // max(event.total, 1)
            self.stream.write(f"\r{label:<16} [{'#' * filled}{'.' * (30 - filled)}] "
                              f"{event.done}/{event.total}" + ("\n" if finished else ""))
            self.stream.flush()
        elif finished or label != self.label or time.monotonic() - self.last >= 1.0:
            self.last = time.monotonic()
            print(f"{label} {event.done}/{event.total}", file=self.stream, flush=True)
        self.label = label


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got '{text}'") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got '{text}'")
    return width, height


def load_models(model: Path | None, model_second: Path | None) -> tuple[RRTN, RRTN | None]:
    """``--model`` (a checkpoint, or a folder with the official pair) and ``--model-second``."""
    if model is None:
        raise RRTNError("no model: pass --model with the authors' rrtn_128_first.pth (or a "
                        f"folder holding {' and '.join(OFFICIAL_NAMES)})")
    if model.is_dir():
        first_path, second_path = (model / name for name in OFFICIAL_NAMES)
        if not first_path.is_file():
            raise RRTNError(f"folder {model} has no {OFFICIAL_NAMES[0]}",
                            kind=ErrorKind.NOT_FOUND)
        model_second = model_second or (second_path if second_path.is_file() else None)
        model = first_path
    return load_rrtn(model), (load_rrtn(model_second) if model_second else None)


def restore_options(args: argparse.Namespace) -> RestoreOptions:
    return RestoreOptions(
        window=args.window, overlap=args.overlap, max_passes=args.max_passes,
        stop_psnr=args.stop_psnr, flow_max_pixels=args.flow_max_pixels or None, tile=args.tile,
        memory_budget=int(args.memory_budget * 2**30) if args.memory_budget else None,
        device=args.device, precision=args.precision,
        quantize_between_passes=args.quantize_between_passes)


def _token(path: Path | None) -> str | None:
    """The token from ``--token-file``, else ``$RRTN_TOKEN``, else None."""
    if path is not None:
        try:
            return path.read_text().strip() or None
        except OSError as exc:
            raise RRTNError(f"cannot read the token file {path}: {exc}") from exc
    return os.environ.get("RRTN_TOKEN") or None


def cmd_restore(args: argparse.Namespace) -> int:
    if args.server:
        return restore_through_server(args)
    first, second = load_models(args.model, args.model_second)
    settings = JobSettings(
        frames=parse_frames(args.frames) if args.frames else None, handles=args.handles,
        input_colorspace=args.input_colorspace, working_colorspace=args.working_colorspace,
        ocio_config=args.ocio_config, color_mode=ColorMode(args.color_mode),
        aovs=parse_aovs(args.aovs), restore=restore_options(args))
    report = restore_sequence(args.input, args.output, first=first, second=second,
                              settings=settings, progress=ProgressPrinter())
    print(f"wrote {len(report.frames)} frames ({report.frames[0]}-{report.frames[-1]}, read "
          f"{report.read_frames[0]}-{report.read_frames[-1]}) to {args.output} in "
          f"{report.seconds:.1f} s")
    print("passes: " + ", ".join(f"{p:.1f} dB" for p in report.pass_psnr)
          + "; noise mask above 0.05 on " + f"{report.mask_coverage * 100:.2f} % of pixels")
    return 0


def restore_through_server(args: argparse.Namespace) -> int:
    """``restore --server``: the same job run by a server, through the client library."""
    from rrtn_plugin.client import Client, ServerError

    inp = parse_pattern(args.input, must_exist=True)
    plan = plan_frames(inp, parse_frames(args.frames) if args.frames else None, args.handles)
    info = read_info(inp.path(plan.read[0]))
    if args.transport == "bytes" and not str(args.output).lower().endswith(".exr"):
        raise RRTNError("through a server with the bytes transport the output must be .exr")
    certificates = args.tls_ca.read_bytes() if args.tls_ca else None
    try:
        with Client(args.server, token=_token(args.token_file),
                    root_certificates=certificates) as client:
            session = client.open_session(
                first_frame=plan.read[0], last_frame=plan.read[-1], width=info.width,
                height=info.height, name=Path(args.input).name,
                aovs=[a.value for a in parse_aovs(args.aovs)], color_mode=args.color_mode,
                input_colorspace=args.input_colorspace or "", max_passes=args.max_passes,
                stop_psnr=args.stop_psnr, window=args.window, overlap=args.overlap,
                precision=args.precision)
            try:
                restore = (session.restore_paths if args.transport == "paths"
                           else session.restore_files)
                summary = restore(plan.write[0], plan.write[-1],
                                  input=str(Path(inp.display()).absolute()),
                                  output=str(Path(args.output).absolute()),
                                  progress=ProgressPrinter())
            finally:
                session.close()
    except ServerError as exc:
        raise RRTNError(f"server {args.server}: {exc}") from exc
    print(f"wrote {len(summary.frames)} frames ({plan.write[0]}-{plan.write[-1]}) to "
          f"{args.output} through {args.server} in {summary.seconds:.1f} s "
          f"({summary.windows_computed} windows computed, {summary.windows_cached} cached)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from rrtn_plugin.server.app import ServerSecurity, start_server
    from rrtn_plugin.service import RestoreService, ServedModel, ServiceLimits

    first, second = load_models(args.model, args.model_second)
    limits = ServiceLimits(
        memory_budget=int((args.memory_budget or 0) * 2**30),
        host_budget=int((args.host_budget or 0) * 2**30), max_sessions=args.max_sessions,
        idle_timeout=args.idle_timeout, path_roots=tuple(args.root))
    service = RestoreService([ServedModel(args.name, first, second,
                                          description=str(args.model))],
                             device=args.device, limits=limits, ocio_config=args.ocio_config)
    server = start_server(service, address=args.listen, security=ServerSecurity(
        token=_token(args.token_file), tls_cert=args.tls_cert, tls_key=args.tls_key))
    print(f"rrtn-plugin {__version__} serving on {args.listen} ({service.device}); "
          "Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        server.wait()
    finally:
        server.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.model is None:
        print("note: no --model given and no trained weights are bundled yet: using a network "
              "that passes frames through unchanged (flow and mask still run)", file=sys.stderr)
        first, second = build_identity_rrtn(), None
    else:
        first, second = load_models(args.model, args.model_second)
    width, height = args.size
    options = RestoreOptions(device=args.device, max_passes=args.max_passes)
    report = run_demo(args.out, first=first, second=second, frames=args.frames, width=width,
                      height=height, seed=args.seed, options=options,
                      progress=ProgressPrinter())
    print(f"restored {args.frames} frames of {width}x{height} in {report.job.seconds:.1f} s "
          f"({report.job.seconds / args.frames:.2f} s/frame) into {args.out / 'restored'}")
    print("passes: " + ", ".join(f"{p:.1f} dB" for p in report.job.pass_psnr)
          + " (PSNR between each pass's input and output)")
    print(f"PSNR against the clean clip: damaged {report.psnr_damaged:.2f} dB, restored "
          f"{report.psnr_restored:.2f} dB")
    print(f"wrote {report.sheet} (columns: damaged, restored, noise mask)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    model = load_rrtn(args.checkpoint)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.checkpoint}: RRTN, {params:,} parameters")
    for key, value in model.config.__dict__.items():
        print(f"  {key}: {value}")
    for key, value in read_metadata(args.checkpoint).items():
        if key != "config":
            print(f"  metadata {key}: {value}")
    return 0


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path,
                        help="checkpoint for all passes, or a folder holding the authors' "
                             f"{' and '.join(OFFICIAL_NAMES)}")
    parser.add_argument("--model-second", type=Path, help="checkpoint for passes 2 and later")


def _add_access_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token-file", type=Path,
                        help="file holding the access token (default: $RRTN_TOKEN)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rrtn-plugin", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rrtn-plugin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    restore = sub.add_parser("restore", help="restore a frame sequence",
                             description="Restore INPUT (shot.####.exr, shot.%%04d.dpx, a "
                                         "folder) into OUTPUT (a pattern; its extension picks "
                                         "the format).")
    restore.add_argument("input")
    restore.add_argument("output")
    restore.add_argument("--frames", help="frames to write, e.g. 1001-1100 (default: all)")
    restore.add_argument("--handles", type=int, default=0,
                         help="extra frames read on each side for context, not written")
    _add_model_arguments(restore)
    restore.add_argument("--input-colorspace",
                         help="colour space of the frames (default: the scene_linear role; "
                              "film scans e.g. ADX10)")
    restore.add_argument("--working-colorspace", help=argparse.SUPPRESS)
    restore.add_argument("--ocio-config", help="OpenColorIO config (default: $OCIO or the "
                                               "built-in studio config)")
    restore.add_argument("--color-mode", choices=[m.value for m in ColorMode],
                         default=ColorMode.KEEP_CHROMA.value)
    restore.add_argument("--aovs", default="", help="comma-separated: mask,repair,motion")
    restore.add_argument("--window", type=int, default=30, help="frames per network run")
    restore.add_argument("--overlap", type=int, help="frames shared by windows (default half)")
    restore.add_argument("--max-passes", type=int, default=4)
    restore.add_argument("--stop-psnr", type=float, default=43.0)
    restore.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    restore.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    restore.add_argument("--tile", type=int, help="tile side (default: chosen by memory)")
    restore.add_argument("--memory-budget", type=float, help="GiB the engine may use")
    restore.add_argument("--flow-max-pixels", type=int, default=RestoreOptions.flow_max_pixels,
                         help="estimate flow at about this many pixels (0: full size)")
    restore.add_argument("--quantize-between-passes", action="store_true",
                         help="round to 8 bits between passes, as the reference does")
    restore.add_argument("--server", help="run the job on a server (host:port or "
                                          "unix:///path.sock) instead of in this process")
    restore.add_argument("--transport", choices=["bytes", "paths"], default="bytes",
                         help="with --server: send the frames (bytes), or let the server "
                              "read and write the files on shared storage (paths)")
    _add_access_arguments(restore)
    restore.add_argument("--tls-ca", type=Path, help="with --server: trust this certificate "
                                                     "(PEM) and connect with TLS")
    restore.set_defaults(run=cmd_restore)

    serve = sub.add_parser("serve", help="run the restoration server")
    serve.add_argument("--listen", default="127.0.0.1:50051",
                       help="host:port or unix:///path.sock (default: loopback only)")
    _add_model_arguments(serve)
    serve.add_argument("--name", default="rrtn", help="the model's name for clients")
    _add_access_arguments(serve)
    serve.add_argument("--tls-cert", type=Path, help="certificate (PEM) for TLS")
    serve.add_argument("--tls-key", type=Path, help="private key (PEM) for TLS")
    serve.add_argument("--root", type=Path, action="append", default=[],
                       help="a folder the path transport may read and write (repeatable); "
                            "without one the server reads and writes no files")
    serve.add_argument("--memory-budget", type=float,
                       help="GiB for cached work on the device (default 80%% of free)")
    serve.add_argument("--host-budget", type=float,
                       help="GiB of host memory for sessions' frames (default 50%% of free)")
    serve.add_argument("--max-sessions", type=int, default=16)
    serve.add_argument("--idle-timeout", type=float, default=1800.0,
                       help="seconds before an unused session is closed")
    serve.add_argument("--device", default="auto")
    serve.add_argument("--ocio-config", help="OpenColorIO config (default: $OCIO or built-in)")
    serve.set_defaults(run=cmd_serve)

    demo = sub.add_parser("demo", help="restore a synthetic damaged clip made on the fly")
    _add_model_arguments(demo)
    demo.add_argument("--out", type=Path, default=Path("rrtn-demo"), help="output folder")
    demo.add_argument("--frames", type=int, default=12)
    demo.add_argument("--size", type=_size, default=(160, 128), help="WIDTHxHEIGHT")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--max-passes", type=int, default=2)
    demo.add_argument("--device", default="auto")
    demo.set_defaults(run=cmd_demo)

    info = sub.add_parser("info", help="show what a checkpoint holds")
    info.add_argument("checkpoint", type=Path)
    info.set_defaults(run=cmd_info)
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds, so temporary files are removed


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="rrtn-plugin: %(levelname)s: %(message)s", level=logging.INFO)
    torch.set_grad_enabled(False)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except RRTNError as exc:
        print(f"rrtn-plugin: error: {exc}", file=sys.stderr)
        return EXIT_CODES[exc.kind]
    except KeyboardInterrupt:
        print("rrtn-plugin: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
