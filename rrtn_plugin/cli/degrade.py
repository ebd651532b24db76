"""``rrtn-plugin degrade``: synthetic film damage on a frame sequence
(:func:`~rrtn_plugin.synth.damage_files.degrade_sequence`)."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from rrtn_plugin.cli.arguments import command_parser

DESCRIPTION = """\
Damage INPUT into OUTPUT (patterns) with dust, dirt, hairs, scratches, flicker,
fading, grain, blur and compression drawn from --seed."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = command_parser(
        commands,
        "degrade",
        help="add synthetic film damage to a sequence",
        description=DESCRIPTION,
    )
    parser.add_argument("input", help="the clean frames: a pattern, a file of it, a folder")
    parser.add_argument("output", help="where the damaged frames go: a pattern")
    parser.add_argument("--seed", type=int, default=0, help="seed the damage is drawn from")
    parser.add_argument(
        "--mask", help="also write the true damage mask to this pattern (default: no mask)"
    )
    parser.add_argument(
        "--input-colorspace", help="colour space of the frames (default: the scene_linear role)"
    )
    parser.set_defaults(run=cmd_degrade)


def cmd_degrade(args: argparse.Namespace) -> int:
    from rrtn_plugin.synth.damage_files import degrade_sequence

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
