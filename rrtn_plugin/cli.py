"""The ``rrtn-plugin`` command line.

Subcommands: ``demo`` (restore a clip made on the fly and write a before/after sheet) and
``info`` (what a checkpoint holds). Errors the user can act on print one line and exit non-zero:
2 bad input, 3 out of memory, 130 cancelled.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from rrtn_plugin import __version__
from rrtn_plugin.engine import Progress, RestoreOptions, restore_clip
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.io import atomic_output
from rrtn_plugin.model import RRTN, build_identity_rrtn, load_rrtn, read_metadata
from rrtn_plugin.samples import panning_clip

EXIT_CODES = {ErrorKind.INVALID_INPUT: 2, ErrorKind.NOT_FOUND: 2, ErrorKind.OUT_OF_MEMORY: 3,
              ErrorKind.CANCELLED: 130}


class ProgressPrinter:
    """A one-line progress bar on a terminal, plain log lines (at most one per second) otherwise."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def __call__(self, event: Progress) -> None:
        done = event.done >= event.total
        if self.tty:
            width = 30
            filled = width * event.done // max(event.total, 1)
            self.stream.write(f"\rpass {event.pass_number} {event.stage:<7} "
                              f"[{'#' * filled}{'.' * (width - filled)}] "
                              f"{event.done}/{event.total}")
            if done and event.stage == "restore":
                self.stream.write("\n")
            self.stream.flush()
        elif done or time.monotonic() - self.last >= 1.0:
            self.last = time.monotonic()
            print(f"pass {event.pass_number} {event.stage} {event.done}/{event.total}",
                  file=self.stream, flush=True)


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got '{text}'") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got '{text}'")
    return width, height


def _load_models(first: Path | None, second: Path | None, device: str) -> tuple[RRTN, RRTN | None]:
    if first is None:
        print("note: no --model given and no trained weights are bundled yet: using a network "
              "that passes frames through unchanged (flow and mask still run)", file=sys.stderr)
        return build_identity_rrtn(), None
    return load_rrtn(first), (load_rrtn(second) if second else None)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def _contact_sheet(columns: Sequence[torch.Tensor], rows: Sequence[int]) -> torch.Tensor:
    """(1, H·rows, W·columns) uint8: one row per frame, one column per clip."""
    gap = 4
    strips = []
    for t in rows:
        cells = []
        for clip in columns:
            cells.append(clip[t].clamp(0, 1))
            cells.append(torch.ones(clip.shape[1], gap))
        strips.append(torch.cat(cells[:-1], dim=1))
        strips.append(torch.ones(gap, strips[-1].shape[1]))
    sheet = torch.cat(strips[:-1], dim=0)
    return (sheet * 255).round().to(torch.uint8).unsqueeze(0)


def cmd_demo(args: argparse.Namespace) -> int:
    from torchvision.io import encode_png

    width, height = args.size
    clean = panning_clip(args.frames, height, width, seed=args.seed, specks=0)
    damaged = panning_clip(args.frames, height, width, seed=args.seed, specks=8)
    first, second = _load_models(args.model, args.model_second, args.device)
    options = RestoreOptions(device=args.device, max_passes=args.max_passes)
    result = restore_clip(damaged, first=first, second=second, options=options,
                          progress=ProgressPrinter())
    args.out.mkdir(parents=True, exist_ok=True)
    sheet_path = args.out / "before_after.png"
    mask = (result.noise_mask / max(float(result.noise_mask.max()), 1e-6))
    rows = sorted({0, args.frames // 3, (2 * args.frames) // 3, args.frames - 1})
    with atomic_output(sheet_path) as tmp:
        tmp.write_bytes(encode_png(_contact_sheet([damaged, result.frames, mask], rows))
                        .numpy().tobytes())
    print(f"restored {args.frames} frames of {width}x{height} in {result.seconds:.1f} s "
          f"({result.seconds / args.frames:.2f} s/frame) on {options.device}")
    print("passes: " + ", ".join(f"{p:.1f} dB" for p in result.pass_psnr)
          + " (PSNR between each pass's input and output)")
    print(f"PSNR against the clean clip: damaged {_psnr(damaged, clean):.2f} dB, restored "
          f"{_psnr(result.frames, clean):.2f} dB")
    print(f"noise mask: {float((result.noise_mask > 0.05).float().mean()) * 100:.2f} % of "
          "pixels above 0.05")
    print(f"wrote {sheet_path} (columns: damaged, restored, noise mask)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rrtn-plugin", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rrtn-plugin {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="restore a synthetic damaged clip made on the fly")
    demo.add_argument("--model", type=Path, help="checkpoint for the first pass (and later ones)")
    demo.add_argument("--model-second", type=Path, help="checkpoint for passes 2 and later")
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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_grad_enabled(False)
    try:
        return args.run(args)
    except RRTNError as exc:
        print(f"rrtn-plugin: error: {exc}", file=sys.stderr)
        return EXIT_CODES[exc.kind]
    except KeyboardInterrupt:
        print("rrtn-plugin: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
