"""``rrtn-plugin train``: train or fine-tune a checkpoint on clean footage with synthetic damage
(:func:`~rrtn_plugin.training.train.train`), resumable."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from rrtn_plugin.cli.arguments import add_engine_arguments, command_parser
from rrtn_plugin.model.choices import FLOW_SOURCES
from rrtn_plugin.training.choices import LOSSES, STAGES


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = command_parser(
        commands,
        "train",
        help="train or fine-tune a checkpoint",
        description="Train on clean footage with synthetic damage; resumable with --resume.",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for checkpoints")
    parser.add_argument(
        "--stage",
        choices=STAGES,
        default="first",
        help="first pass, or second pass (trained on the first's outputs)",
    )
    parser.add_argument(
        "--first-model",
        type=Path,
        help="the first-pass checkpoint (default: none; needed for --stage second)",
    )
    parser.add_argument(
        "--init", type=Path, help="checkpoint to fine-tune (default: a fresh small network)"
    )
    parser.add_argument(
        "--size",
        choices=["small", "paper"],
        default="small",
        help="a fresh network's size: the bundled model's or the paper's",
    )
    parser.add_argument(
        "--flow",
        choices=FLOW_SOURCES,
        default="dis",
        help="flow source of a fresh network (raft needs --init)",
    )
    parser.add_argument(
        "--clean",
        action="append",
        default=[],
        help="clean footage, a sequence pattern (repeatable; default: the "
        "built-in stills with a synthetic camera)",
    )
    parser.add_argument(
        "--input-colorspace",
        help="colour space of --clean frames (default: the scene_linear role)",
    )
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps in all")
    parser.add_argument("--batch", type=int, default=4, help="clips per step")
    parser.add_argument("--frames", type=int, default=7, help="frames per clip")
    parser.add_argument("--crop", type=int, default=128, help="crop side in pixels")
    parser.add_argument(
        "--lr", type=float, default=2e-4, help="initial learning rate (decays by cosine)"
    )
    parser.add_argument(
        "--loss", choices=LOSSES, default="mse", help="mse, or the paper's charbonnier, or l1"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the clips and the damage")
    parser.add_argument(
        "--save-every", type=int, default=100, help="steps between saved checkpoints"
    )
    parser.add_argument("--resume", action="store_true", help="continue from --out")
    add_engine_arguments(parser, ["device"])
    parser.set_defaults(run=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from rrtn_plugin.engine.device import resolve_device
    from rrtn_plugin.frames.sequence import parse_pattern
    from rrtn_plugin.training.train import (
        PAPER_CONFIG,
        SMALL_CONFIG,
        TrainProgress,
        TrainSettings,
        train,
    )

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
