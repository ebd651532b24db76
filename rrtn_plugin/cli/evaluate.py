"""``rrtn-plugin evaluate``: quality of the model against the damaged input and a classical
baseline (:mod:`rrtn_plugin.training.evaluate`), on held-out clips or given sequences."""

from __future__ import annotations

import argparse
from pathlib import Path

from rrtn_plugin.cli.arguments import add_engine_arguments, command_parser, restore_options, size
from rrtn_plugin.cli.models import add_model_arguments, load_models
from rrtn_plugin.errors import RRTNError

EVALUATE_PASSES = 2
"""Passes with models other than the bundled one (which runs its own count)."""

DESCRIPTION = """\
PSNR, SSIM, warp error and damage-mask precision/recall of the damaged input,
a motion-compensated temporal median and the model, on the held-out clips, on
--damaged/--clean sequences, or (--real-film) on real old film from ../shared/clips:
damage drawn several times, the films undamaged (tone shift, median change, warp
error), and clips with a cut and a flash."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = command_parser(
        commands,
        "evaluate",
        help="measure quality against a baseline",
        description=DESCRIPTION,
    )
    add_model_arguments(parser)
    parser.add_argument("--damaged", help="damaged sequence pattern (default: the held-out clips)")
    parser.add_argument("--clean", help="its clean original (default: none; needed with --damaged)")
    parser.add_argument("--mask", help="true damage mask sequence (default: none)")
    parser.add_argument(
        "--input-colorspace",
        help="colour space of the sequences (default: the scene_linear role)",
    )
    parser.add_argument("--frames", type=int, default=12, help="frames per held-out clip")
    parser.add_argument(
        "--size", type=size, default=(160, 128), help="WIDTHxHEIGHT (default: 160x128)"
    )
    parser.add_argument(
        "--per-still", type=int, default=4, help="held-out clips per held-out still"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out clips")
    parser.add_argument(
        "--real-film",
        action="store_true",
        help="evaluate on the real films in ../shared/clips (or $RRTN_SHARED/clips)",
    )
    parser.add_argument(
        "--strip",
        type=Path,
        help="with --real-film: write a before/after strip PNG here, and one of a film with "
        "no damage added beside it (NAME-no-damage.png; default: none)",
    )
    add_engine_arguments(
        parser,
        ["max_passes", "device", "cuts", "tone_guard", "repair_mode", "repair_strength"],
        passes=EVALUATE_PASSES,
    )
    parser.set_defaults(run=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rrtn_plugin.frames.sequence import parse_pattern
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

    options = restore_options(args, passes=EVALUATE_PASSES)
    first, second = load_models(args.model, args.model_second)
    if args.real_film:
        from rrtn_plugin.training.evaluate import real_film_report

        width, height = args.size
        report = real_film_report(
            first,
            second,
            options,
            frames=args.frames,
            height=height,
            width=width,
            seed=args.seed,
            strip=args.strip,
        )
        print(report.table)
        return 0
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
