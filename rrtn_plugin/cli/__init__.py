"""The ``rrtn-plugin`` command line: a thin translation of arguments into the core's calls.

Subcommands: ``restore`` (a frame sequence in, restored frames and AOVs out, here or on a
server), ``serve`` (the gRPC server), ``demo`` (a clip made on the fly, through the same
pipeline), ``degrade`` (synthetic film damage on a sequence), ``train`` (train or fine-tune
checkpoints), ``evaluate`` (quality table against a classical baseline) and ``info`` (what a
checkpoint holds). Without ``--model`` the bundled small model is used. Errors the user can act
on print one line and exit non-zero: 2 bad input, 3 out of memory, 130 cancelled or
interrupted, 143 terminated. Exit 0 means every requested frame was written.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from types import FrameType
from typing import TextIO

import torch

from rrtn_plugin import __version__
from rrtn_plugin.cli.demo import run_demo
from rrtn_plugin.color import ColorMode
from rrtn_plugin.engine import Progress, RestoreOptions
from rrtn_plugin.engine.device import compile_models, resolve_device
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.farm.chunks import plan_chunks
from rrtn_plugin.farm.openjd import FarmJob, parameter_values, write_bundle
from rrtn_plugin.frames.aovs import parse_aovs
from rrtn_plugin.frames.image import read_info
from rrtn_plugin.frames.plan import plan_frames
from rrtn_plugin.frames.restore import JobSettings, restore_sequence
from rrtn_plugin.frames.sequence import parse_frames, parse_pattern
from rrtn_plugin.model import RRTN, load_rrtn, read_metadata
from rrtn_plugin.model.flow import FLOW_SOURCES
from rrtn_plugin.protocol.framing import DEFAULT_ADDRESS
from rrtn_plugin.synth.damage_files import degrade_sequence
from rrtn_plugin.training.evaluate import (
    clean_warp_error,
    evaluate,
    format_table,
    held_out_clips,
    identity_method,
    median_method,
    model_method,
    sequence_pair,
)
from rrtn_plugin.training.train import (
    LOSSES,
    PAPER_CONFIG,
    SMALL_CONFIG,
    STAGES,
    TrainProgress,
    TrainSettings,
    train,
)
from rrtn_plugin.weights import PASSES as BUNDLED_PASSES
from rrtn_plugin.weights import load_bundled

EXIT_CODES = {
    ErrorKind.INVALID_INPUT: 2,
    ErrorKind.NOT_FOUND: 2,
    ErrorKind.OUT_OF_MEMORY: 3,
    ErrorKind.CANCELLED: 130,
}
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
            self.stream.write(
                f"\r{label:<16} [{'#' * filled}{'.' * (30 - filled)}] "
                f"{event.done}/{event.total}" + ("\n" if finished else "")
            )
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
    """``--model`` (a checkpoint, or a folder with the official pair) and ``--model-second``;
    without ``--model``, the bundled small model (for both passes unless ``--model-second``)."""
    if model is None:
        first, second = load_bundled()
        return first, load_rrtn(model_second) if model_second else second
    if model.is_dir():
        first_path, second_path = (model / name for name in OFFICIAL_NAMES)
        if not first_path.is_file():
            raise RRTNError(f"folder {model} has no {OFFICIAL_NAMES[0]}", kind=ErrorKind.NOT_FOUND)
        model_second = model_second or (second_path if second_path.is_file() else None)
        model = first_path
    return load_rrtn(model), (load_rrtn(model_second) if model_second else None)


def max_passes(args: argparse.Namespace, default: int) -> int:
    """``--max-passes``, else the bundled model's pass count when it is used, else ``default``."""
    if getattr(args, "max_passes", None) is not None:
        return args.max_passes
    return BUNDLED_PASSES if args.model is None and args.model_second is None else default


def restore_options(args: argparse.Namespace) -> RestoreOptions:
    return RestoreOptions(
        window=args.window,
        overlap=args.overlap,
        max_passes=max_passes(args, 4),
        stop_psnr=args.stop_psnr,
        flow_max_pixels=args.flow_max_pixels or None,
        tile=args.tile,
        memory_budget=int(args.memory_budget * 2**30) if args.memory_budget else None,
        device=args.device,
        precision=args.precision,
        quantize_between_passes=args.quantize_between_passes,
        fixed_window=args.fixed_window,
    )


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
        if args.skip_existing:
            raise RRTNError("--skip-existing works for jobs run here, not with --server")
        if args.compile:
            raise RRTNError(
                "--compile works for jobs run here; a server compiles its models "
                "when started with serve --compile"
            )
        return restore_through_server(args)
    first, second = load_models(args.model, args.model_second)
    if args.compile:
        compile_models(first, second)
    settings = JobSettings(
        frames=parse_frames(args.frames) if args.frames else None,
        handles=args.handles,
        input_colorspace=args.input_colorspace,
        working_colorspace=args.working_colorspace,
        ocio_config=args.ocio_config,
        color_mode=ColorMode(args.color_mode),
        aovs=parse_aovs(args.aovs),
        restore=restore_options(args),
        skip_existing=args.skip_existing,
    )
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


def cmd_farm_openjd(args: argparse.Namespace) -> int:
    """``farm openjd``: plan the chunks, write the job bundle."""
    options = restore_options(args)
    options.check()
    inp = parse_pattern(args.input, must_exist=True)
    reach = options.max_passes * (options.window + 1)  # the most context a frame can need
    plan = plan_frames(inp, parse_frames(args.frames) if args.frames else None, reach)
    chunks = plan_chunks(
        plan.write[0],
        plan.write[-1],
        size=args.chunk,
        available=(plan.read[0], plan.read[-1]),
        window=options.window,
        overlap=options.window_overlap,
        passes=options.max_passes,
    )
    task_options = []
    for action in args.job_actions:
        value = getattr(args, action.dest)
        if (
            action.dest in ("model", "model_second", "max_passes", "stop_psnr", "fixed_window")
            or value == action.default
        ):
            continue
        flag = action.option_strings[0]
        task_options += [flag] if action.nargs == 0 else [flag, str(value)]
    # Every task runs exactly the same passes: an automatic stop, decided on each task's own
    # frames, could differ between neighbouring chunks and show at their border.
    task_options += ["--max-passes", str(options.max_passes), "--stop-psnr", "inf"]
    # The chunks' context was planned for these windows: a task whose worker has too little
    # memory for them must fail (and be retried elsewhere), not restore other windows.
    task_options += ["--fixed-window"]
    models = {
        flag: path.absolute()
        for flag, path in (("--model", args.model), ("--model-second", args.model_second))
        if path is not None
    }
    job = FarmJob(
        name=args.name or f"RRTN restore {Path(args.output).name}",
        input=str(Path(args.input).absolute()),
        output=str(Path(args.output).absolute()),
        chunks=chunks,
        options=task_options,
        models=models,
        gpu=options.device != "cpu",
    )
    template = write_bundle(args.bundle, job)
    read = sum(c.read_last - c.read_first + 1 for c in chunks)
    print(
        f"wrote {args.bundle}: {len(chunks)} tasks of up to {args.chunk} frames "
        f"({chunks[0].first}-{chunks[-1].last}), handles "
        f"{max(c.handles for c in chunks)}, {read / len(plan.write):.2f} frames read per "
        f"frame written"
    )
    if options.tile is None and options.memory_budget is None:
        print(
            "note: with neither --memory-budget nor --tile, each task picks its tiles from "
            "its worker's free memory, so frames at chunk borders may differ slightly between "
            "workers; give one of them to make every task tile alike"
        )
    values = " ".join(f"-p {k}={v}" for k, v in parameter_values(job).items())
    print(
        f"submit: deadline bundle submit {args.bundle}\n"
        f"run here: openjd run {template} --step Restore {values}"
    )
    return 0


def restore_through_server(args: argparse.Namespace) -> int:
    """``restore --server``: the same job run by a server, through the client library."""
    from rrtn_plugin.client.library import Client, ServerError

    inp = parse_pattern(args.input, must_exist=True)
    plan = plan_frames(inp, parse_frames(args.frames) if args.frames else None, args.handles)
    info = read_info(inp.path(plan.read[0]))
    if args.transport == "bytes" and not str(args.output).lower().endswith(".exr"):
        raise RRTNError("through a server with the bytes transport the output must be .exr")
    certificates = args.tls_ca.read_bytes() if args.tls_ca else None
    try:
        with Client(
            args.server, token=_token(args.token_file), root_certificates=certificates
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
                max_passes=args.max_passes,
                stop_psnr=args.stop_psnr,
                window=args.window,
                overlap=args.overlap,
                precision=args.precision,
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
        raise RRTNError(f"server {args.server}: {exc}") from exc
    print(
        f"wrote {len(summary.frames)} frames ({plan.write[0]}-{plan.write[-1]}) to "
        f"{args.output} through {args.server} in {summary.seconds:.1f} s "
        f"({summary.windows_computed} windows computed, {summary.windows_cached} cached)"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from rrtn_plugin.server.app import ServerSecurity, start_server
    from rrtn_plugin.server.service import RestoreService, ServedModel, ServiceLimits

    first, second = load_models(args.model, args.model_second)
    if args.compile:
        compile_models(first, second)
    limits = ServiceLimits(
        memory_budget=int((args.memory_budget or 0) * 2**30),
        host_budget=int((args.host_budget or 0) * 2**30),
        max_sessions=args.max_sessions,
        idle_timeout=args.idle_timeout,
        path_roots=tuple(args.root),
    )
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
        limits=limits,
        ocio_config=args.ocio_config,
    )
    server = start_server(
        service,
        address=args.listen,
        security=ServerSecurity(
            token=_token(args.token_file), tls_cert=args.tls_cert, tls_key=args.tls_key
        ),
    )
    print(
        f"rrtn-plugin {__version__} serving on {args.listen} ({service.device}); Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.wait()
    finally:
        server.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    first, second = load_models(args.model, args.model_second)
    width, height = args.size
    options = RestoreOptions(device=args.device, max_passes=max_passes(args, 2))
    report = run_demo(
        args.out,
        first=first,
        second=second,
        frames=args.frames,
        width=width,
        height=height,
        seed=args.seed,
        options=options,
        progress=ProgressPrinter(),
    )
    print(
        f"restored {args.frames} frames of {width}x{height} in {report.job.seconds:.1f} s "
        f"({report.job.seconds / args.frames:.2f} s/frame) into {args.out / 'restored'}"
    )
    print(
        "passes: "
        + ", ".join(f"{p:.1f} dB" for p in report.job.pass_psnr)
        + " (PSNR between each pass's input and output)"
    )
    print(
        f"PSNR against the clean clip: damaged {report.psnr_damaged:.2f} dB, restored "
        f"{report.psnr_restored:.2f} dB"
    )
    print(f"wrote {report.sheet} (columns: damaged, restored, clean, noise mask)")
    return 0


def cmd_degrade(args: argparse.Namespace) -> int:
    params = degrade_sequence(
        args.input,
        args.output,
        seed=args.seed,
        input_colorspace=args.input_colorspace,
        mask=args.mask,
    )
    print(
        f"wrote damaged frames to {args.output}"
        + (f" and masks to {args.mask}" if args.mask else "")
    )
    print(
        "damage: "
        + ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in asdict(params).items()
        )
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    settings = TrainSettings(
        out=args.out,
        stage=args.stage,
        steps=args.steps,
        batch=args.batch,
        frames=args.frames,
        crop=args.crop,
        lr=args.lr,
        loss=args.loss,
        init=args.init,
        config=replace(
            SMALL_CONFIG if args.size == "small" else PAPER_CONFIG, flow_source=args.flow
        ),
        first_model=args.first_model,
        clean=[parse_pattern(p, must_exist=True) for p in args.clean],
        input_colorspace=args.input_colorspace,
        seed=args.seed,
        device=str(resolve_device(args.device)),
        save_every=args.save_every,
        resume=args.resume,
    )
    tty = sys.stderr.isatty()

    def report(p: TrainProgress) -> None:
        if tty or p.step % 10 == 0 or p.step == p.steps:
            eta = (p.steps - p.step) * p.seconds_per_step
            start = "\r" if tty else ""
            print(
                f"{start}step {p.step}/{p.steps} loss {p.loss:.4f} "
                f"{p.seconds_per_step:.2f} s/step, {eta / 60:.0f} min left",
                end="" if tty and p.step < p.steps else "\n",
                file=sys.stderr,
                flush=True,
            )

    final = train(settings, report)
    print(f"wrote {final}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    first, second = load_models(args.model, args.model_second)
    if args.damaged or args.clean:
        if not (args.damaged and args.clean):
            raise RRTNError(
                "give both --damaged and --clean sequences (or neither, for the "
                "built-in held-out clips)"
            )
        clips = [
            sequence_pair(
                parse_pattern(args.damaged, must_exist=True),
                parse_pattern(args.clean, must_exist=True),
                mask=parse_pattern(args.mask, must_exist=True) if args.mask else None,
                input_colorspace=args.input_colorspace,
            )
        ]
    else:
        width, height = args.size
        clips = held_out_clips(
            frames=args.frames, height=height, width=width, per_still=args.per_still, seed=args.seed
        )
    options = RestoreOptions(device=args.device, max_passes=max_passes(args, 2))
    methods = {
        "damaged input": identity_method,
        "temporal median ±1 (DIS)": median_method(1),
        f"RRTN ({args.model.name if args.model else 'bundled'})": model_method(
            first, second, options
        ),
    }
    rows = evaluate(clips, methods)
    print(f"{len(clips)} clip(s), {sum(c.clean.shape[0] for c in clips)} frames")
    print(format_table(rows, clean_warp_error(clips)))
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
    parser.add_argument(
        "--model",
        type=Path,
        help="checkpoint for all passes, or a folder holding the authors' "
        f"{' and '.join(OFFICIAL_NAMES)}",
    )
    parser.add_argument("--model-second", type=Path, help="checkpoint for passes 2 and later")


def _add_job_arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options a restore job runs with (models, colour, AOVs, engine); returns them, so
    ``farm openjd`` can hand the same options to its tasks."""
    before = len(parser._actions)
    _add_model_arguments(parser)
    parser.add_argument(
        "--input-colorspace",
        help="colour space of the frames (default: the scene_linear role; film scans e.g. ADX10)",
    )
    parser.add_argument("--working-colorspace", help=argparse.SUPPRESS)
    parser.add_argument(
        "--ocio-config", help="OpenColorIO config (default: $OCIO or the built-in studio config)"
    )
    parser.add_argument(
        "--color-mode", choices=[m.value for m in ColorMode], default=ColorMode.KEEP_CHROMA.value
    )
    parser.add_argument("--aovs", default="", help="comma-separated: mask,repair,motion")
    parser.add_argument("--window", type=int, default=30, help="frames per network run")
    parser.add_argument("--overlap", type=int, help="frames shared by windows (default half)")
    parser.add_argument(
        "--max-passes",
        type=int,
        help="recursion passes at most (default 4; 1 with the bundled model)",
    )
    parser.add_argument("--stop-psnr", type=float, default=43.0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--tile", type=int, help="tile side (default: chosen by memory)")
    parser.add_argument("--memory-budget", type=float, help="GiB the engine may use")
    parser.add_argument(
        "--flow-max-pixels",
        type=int,
        default=RestoreOptions.flow_max_pixels,
        help="estimate flow at about this many pixels (0: full size)",
    )
    parser.add_argument(
        "--quantize-between-passes",
        action="store_true",
        help="round to 8 bits between passes, as the reference does",
    )
    parser.add_argument(
        "--fixed-window",
        action="store_true",
        help="never shorten --window to fit the memory budget; fail instead "
        "(farm tasks, whose chunks were planned for the window)",
    )
    _add_compile_argument(parser)
    return parser._actions[before:]


def _add_compile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network's per-frame parts: the first window of "
        "each size compiles (tens of seconds); meant for GPUs (on CPU it "
        "was slower); needs a C++ compiler",
    )


def _add_access_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token-file", type=Path, help="file holding the access token (default: $RRTN_TOKEN)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rrtn-plugin", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rrtn-plugin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    restore = sub.add_parser(
        "restore",
        help="restore a frame sequence",
        description="Restore INPUT (shot.####.exr, shot.%%04d.dpx, a "
        "folder) into OUTPUT (a pattern; its extension picks "
        "the format).",
    )
    restore.add_argument("input")
    restore.add_argument("output")
    restore.add_argument("--frames", help="frames to write, e.g. 1001-1100 (default: all)")
    restore.add_argument(
        "--handles",
        type=int,
        default=0,
        help="extra frames read on each side for context, not written",
    )
    _add_job_arguments(restore)
    restore.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave frames already written in full and restore the rest "
        "(what a farm task's retry does)",
    )
    restore.add_argument(
        "--server",
        help="run the job on a server (host:port or unix:///path.sock) instead of in this process",
    )
    restore.add_argument(
        "--transport",
        choices=["bytes", "paths"],
        default="bytes",
        help="with --server: send the frames (bytes), or let the server "
        "read and write the files on shared storage (paths)",
    )
    _add_access_arguments(restore)
    restore.add_argument(
        "--tls-ca",
        type=Path,
        help="with --server: trust this certificate (PEM) and connect with TLS",
    )
    restore.set_defaults(run=cmd_restore)

    farm = sub.add_parser("farm", help="restore whole reels on a render farm")
    farm_jobs = farm.add_subparsers(dest="farm_command", required=True)
    openjd = farm_jobs.add_parser(
        "openjd",
        help="write an Open Job Description job bundle (AWS Deadline Cloud)",
        description="Write BUNDLE (a folder: template.json, parameter_values.json): a job "
        "restoring INPUT into OUTPUT in chunks of --chunk frames, one farm task "
        "each, with the restore options given here.",
    )
    openjd.add_argument("bundle", type=Path, help="the job bundle folder to write")
    openjd.add_argument("input")
    openjd.add_argument("output")
    openjd.add_argument("--frames", help="frames to write, e.g. 1001-1100 (default: all)")
    openjd.add_argument("--chunk", type=int, default=100, help="frames per task")
    openjd.add_argument("--name", help="the job's name (default: the output's)")
    openjd.set_defaults(run=cmd_farm_openjd, job_actions=_add_job_arguments(openjd))

    serve = sub.add_parser("serve", help="run the restoration server")
    serve.add_argument(
        "--listen",
        default=DEFAULT_ADDRESS,
        help="host:port or unix:///path.sock (default: loopback only)",
    )
    _add_model_arguments(serve)
    serve.add_argument("--name", default="rrtn", help="the model's name for clients")
    _add_access_arguments(serve)
    serve.add_argument("--tls-cert", type=Path, help="certificate (PEM) for TLS")
    serve.add_argument("--tls-key", type=Path, help="private key (PEM) for TLS")
    serve.add_argument(
        "--root",
        type=Path,
        action="append",
        default=[],
        help="a folder the path transport may read and write (repeatable); "
        "without one the server reads and writes no files",
    )
    serve.add_argument(
        "--memory-budget",
        type=float,
        help="GiB for cached work on the device (default 80%% of free)",
    )
    serve.add_argument(
        "--host-budget",
        type=float,
        help="GiB of host memory for sessions' frames (default 50%% of free)",
    )
    serve.add_argument("--max-sessions", type=int, default=16)
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=1800.0,
        help="seconds before an unused session is closed",
    )
    serve.add_argument("--device", default="auto")
    _add_compile_argument(serve)
    serve.add_argument("--ocio-config", help="OpenColorIO config (default: $OCIO or built-in)")
    serve.set_defaults(run=cmd_serve)

    demo = sub.add_parser("demo", help="restore a synthetic damaged clip made on the fly")
    _add_model_arguments(demo)
    demo.add_argument("--out", type=Path, default=Path("rrtn-demo"), help="output folder")
    demo.add_argument("--frames", type=int, default=12)
    demo.add_argument("--size", type=_size, default=(160, 128), help="WIDTHxHEIGHT")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--max-passes", type=int, help="default 2; 1 with the bundled model")
    demo.add_argument("--device", default="auto")
    demo.set_defaults(run=cmd_demo)

    degrade = sub.add_parser(
        "degrade",
        help="add synthetic film damage to a sequence",
        description="Damage INPUT into OUTPUT (patterns) with dust, dirt, "
        "hairs, scratches, flicker, fading, grain, blur and "
        "compression drawn from --seed.",
    )
    degrade.add_argument("input")
    degrade.add_argument("output")
    degrade.add_argument("--seed", type=int, default=0)
    degrade.add_argument("--mask", help="also write the true damage mask to this pattern")
    degrade.add_argument(
        "--input-colorspace", help="colour space of the frames (default: the scene_linear role)"
    )
    degrade.set_defaults(run=cmd_degrade)

    training = sub.add_parser(
        "train",
        help="train or fine-tune a checkpoint",
        description="Train on clean footage with synthetic damage; resumable with --resume.",
    )
    training.add_argument("--out", type=Path, required=True, help="folder for checkpoints")
    training.add_argument(
        "--stage",
        choices=STAGES,
        default="first",
        help="first pass, or second pass (trained on the first's outputs)",
    )
    training.add_argument(
        "--first-model", type=Path, help="the first-pass checkpoint (for --stage second)"
    )
    training.add_argument(
        "--init", type=Path, help="checkpoint to fine-tune (default: a fresh small network)"
    )
    training.add_argument(
        "--size",
        choices=["small", "paper"],
        default="small",
        help="a fresh network's size: the bundled model's or the paper's",
    )
    training.add_argument(
        "--flow",
        choices=FLOW_SOURCES,
        default="dis",
        help="flow source of a fresh network (raft needs --init)",
    )
    training.add_argument(
        "--clean",
        action="append",
        default=[],
        help="clean footage, a sequence pattern (repeatable; default: the "
        "built-in stills with a synthetic camera)",
    )
    training.add_argument("--input-colorspace", help="colour space of --clean frames")
    training.add_argument("--steps", type=int, default=2000)
    training.add_argument("--batch", type=int, default=4)
    training.add_argument("--frames", type=int, default=7)
    training.add_argument("--crop", type=int, default=128)
    training.add_argument("--lr", type=float, default=2e-4)
    training.add_argument(
        "--loss",
        choices=LOSSES,
        default="mse",
        help="mse (default), or the paper's charbonnier, or l1",
    )
    training.add_argument("--seed", type=int, default=0)
    training.add_argument("--save-every", type=int, default=100)
    training.add_argument("--resume", action="store_true", help="continue from --out")
    training.add_argument("--device", default="auto")
    training.set_defaults(run=cmd_train)

    evaluation = sub.add_parser(
        "evaluate",
        help="measure quality against a baseline",
        description="PSNR, SSIM, warp error and damage-mask precision/"
        "recall of the damaged input, a motion-compensated "
        "temporal median and the model, on the held-out "
        "clips or on --damaged/--clean sequences.",
    )
    _add_model_arguments(evaluation)
    evaluation.add_argument("--damaged", help="damaged sequence pattern")
    evaluation.add_argument("--clean", help="its clean original")
    evaluation.add_argument("--mask", help="true damage mask sequence (optional)")
    evaluation.add_argument("--input-colorspace", help="colour space of the sequences")
    evaluation.add_argument("--frames", type=int, default=12, help="frames per held-out clip")
    evaluation.add_argument("--size", type=_size, default=(160, 128), help="WIDTHxHEIGHT")
    evaluation.add_argument(
        "--per-still", type=int, default=4, help="held-out clips per held-out still"
    )
    evaluation.add_argument("--seed", type=int, default=0)
    evaluation.add_argument("--max-passes", type=int, help="default 2; 1 with the bundled model")
    evaluation.add_argument("--device", default="auto")
    evaluation.set_defaults(run=cmd_evaluate)

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
