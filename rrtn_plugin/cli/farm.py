"""``rrtn-plugin farm openjd``: a restore planned as chunks for a render farm
(:func:`~rrtn_plugin.farm.job.plan_farm_job`), written as an Open Job Description bundle."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rrtn_plugin.cli.arguments import add_job_arguments, command_parser, job_settings

DESCRIPTION = """\
Write BUNDLE (a folder: template.json, parameter_values.json): a job restoring
INPUT into OUTPUT in chunks of --chunk frames, one farm task each, with the
restore options given here."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    farm = command_parser(commands, "farm", help="restore whole reels on a render farm")
    jobs = farm.add_subparsers(dest="farm_command", required=True)
    openjd = command_parser(
        jobs,
        "openjd",
        help="write an Open Job Description job bundle (AWS Deadline Cloud)",
        description=DESCRIPTION,
    )
    openjd.add_argument("bundle", type=Path, help="the job bundle folder to write")
    openjd.add_argument("input", help="the frames to restore: a pattern, a file of it, a folder")
    openjd.add_argument("output", help="where the restored frames go: a pattern")
    openjd.add_argument("--frames", help="frames to write, e.g. 1001-1100 (default: all)")
    openjd.add_argument("--chunk", type=int, default=100, help="frames per task")
    openjd.add_argument("--name", help="the job's name (default: the output's)")
    add_job_arguments(openjd)
    openjd.set_defaults(run=cmd_farm_openjd)


def cmd_farm_openjd(args: argparse.Namespace) -> int:
    """``farm openjd``: plan the chunks, write the job bundle."""
    from rrtn_plugin.farm.job import plan_farm_job
    from rrtn_plugin.farm.openjd import parameter_values, write_bundle

    settings = job_settings(args)
    job = plan_farm_job(
        args.input,
        args.output,
        settings,
        chunk=args.chunk,
        name=args.name,
        models={"--model": args.model, "--model-second": args.model_second},
        compile=args.compile,
    )
    template = write_bundle(args.bundle, job)
    chunks = job.chunks
    read = sum(c.read_last - c.read_first + 1 for c in chunks)
    written = sum(c.last - c.first + 1 for c in chunks)
    print(
        f"wrote {args.bundle}: {len(chunks)} tasks of up to {args.chunk} frames "
        f"({chunks[0].first}-{chunks[-1].last}), handles "
        f"{max(c.handles for c in chunks)}, {read / written:.2f} frames read per "
        f"frame written"
    )
    if settings.restore.tile is None and settings.restore.memory_budget is None:
        print(
            "note: with neither --memory-budget nor --tile, each task picks its tiles from "
            "its worker's free memory, so frames at chunk borders may differ slightly between "
            "workers; give one of them to make every task tile alike"
        )
    values = " ".join(f"-p {k}={v}" for k, v in parameter_values(job).items())
    # Run here, the tasks use this installation's command (it need not be on PATH).
    here = Path(sys.executable).with_name("rrtn-plugin")
    command = here if here.is_file() else Path(shutil.which("rrtn-plugin") or "rrtn-plugin")
    print(
        f"submit: deadline bundle submit {args.bundle}\n"
        f"run here: openjd run {template} --step Restore {values} -p RrtnPlugin={command}"
    )
    return 0
