"""Training and fine-tuning RRTN checkpoints on clean footage with synthetic film damage.

Each step draws clean clips (``frames`` × ``crop`` × ``crop``), damages them with
:func:`~rrtn_plugin.synth.degrade_clip`, runs the network (flow and noise mask included, as at
inference) and minimises the squared (or Charbonnier, or L1) distance to the damage's target
with Adam and a cosine learning-rate decay. The target is the clean clip with the print's own
look (:attr:`~rrtn_plugin.synth.DamagedClip.target`: its fade and softness), so the network
learns to remove damage and flicker around the clip's level, never to re-grade it. The built-in
footage (:func:`~rrtn_plugin.synth.footage.training_clip`) films every offline still with a
moving camera, objects moving on their own and a drawn exposure (dark, low-key, low-contrast,
high-key or normal). The second-pass network is trained on the first pass's
outputs, as in the paper. Every step's data is drawn from a generator seeded by (seed, step),
so a resumed run sees the same data as an uninterrupted one.

Files in the output folder: ``last.safetensors`` (the network, our format, with metadata: what
it was trained on, flow source, steps), ``state.pt`` (optimizer and step, tensors only) and, at
the end, ``rrtn_<stage>.safetensors``.
"""

from __future__ import annotations

import datetime
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from rrtn_plugin import __version__
from rrtn_plugin.atomic import atomic_output
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.frames.pipeline import FramePipeline
from rrtn_plugin.frames.plan import check_headers
from rrtn_plugin.frames.sequence import FramePattern
from rrtn_plugin.model import (
    RRTN,
    RRTNConfig,
    build_rrtn,
    load_rrtn,
    read_metadata,
    save_rrtn,
)
from rrtn_plugin.synth import degrade_clip
from rrtn_plugin.synth.footage import TRAINING_STILLS, training_clip
from rrtn_plugin.training.choices import LOSSES as LOSSES
from rrtn_plugin.training.choices import STAGES as STAGES

SMALL_CONFIG = RRTNConfig(
    num_feat=8,
    embed_dim=32,
    depths=(2,),
    num_heads=2,
    mlp_hidden=64,
    deform_groups=8,
    extract_blocks=2,
    reconstruct_blocks=2,
    flow_source="dis",
)
"""The bundled model's size: trainable on two CPU cores in about an hour."""
PAPER_CONFIG = RRTNConfig(flow_source="dis")
"""The released checkpoints' size, with the classical flow source (a fresh RAFT is untrained)."""


@dataclass
class TrainSettings:
    """What ``rrtn-plugin train`` does.

    Attributes:
        out: folder for checkpoints and the training state.
        stage: ``first`` (damaged → clean) or ``second`` (first pass's output → clean).
        steps: optimizer steps in all (a resumed run continues up to this).
        batch, frames, crop: clips per step, frames per clip, crop side in px.
        lr: Adam's initial learning rate (decays to 1 % by cosine).
        loss: ``mse``, ``charbonnier`` (the paper's) or ``l1``.
        init: checkpoint to fine-tune (official or ours); None: a fresh ``config`` network.
        config: hyper-parameters of a fresh network.
        first_model: the first-pass checkpoint (stage ``second`` only).
        clean: clean footage, sequence patterns; empty: the built-in training stills filmed by
            a synthetic camera.
        input_colorspace: colour space of ``clean`` frames (None: the OCIO scene_linear role).
        seed, device, save_every, resume: as named; ``resume`` continues from ``out/state.pt``.
    """

    out: Path
    stage: str = "first"
    steps: int = 1000
    batch: int = 4
    frames: int = 7
    crop: int = 128
    lr: float = 2e-4
    loss: str = "mse"
    init: Path | None = None
    config: RRTNConfig = field(default_factory=lambda: SMALL_CONFIG)
    first_model: Path | None = None
    clean: Sequence[FramePattern] = ()
    input_colorspace: str | None = None
    seed: int = 0
    device: str = "cpu"
    save_every: int = 100
    resume: bool = False

    def check(self) -> None:
        """Raise RRTNError naming the first setting that cannot work."""
        if self.stage not in STAGES:
            raise RRTNError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.loss not in LOSSES:
            raise RRTNError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.stage == "second" and self.first_model is None:
            raise RRTNError(
                "the second pass is trained on the first pass's output: "
                "give the first-pass checkpoint (--first-model)"
            )
        if min(self.steps, self.batch, self.save_every) < 1 or self.frames < 3:
            raise RRTNError("steps, batch and save-every must be ≥ 1 and frames ≥ 3")
        if self.lr <= 0:
            raise RRTNError(f"lr must be positive, got {self.lr}")
        if self.init is None and not self.resume and self.config.flow_source == "raft":
            raise RRTNError(
                "a fresh network's RAFT would be untrained: fine-tune a checkpoint "
                "that has RAFT weights (--init rrtn_128_first.pth) or use the "
                "dis flow source"
            )


@dataclass
class TrainProgress:
    step: int
    steps: int
    loss: float
    seconds_per_step: float


class Footage:
    """Clean clips to train on: frames of sequences, or built-in stills with camera motion."""

    def __init__(
        self, clean: Sequence[FramePattern], *, frames: int, crop: int, input_colorspace: str | None
    ) -> None:
        self.frames, self.crop = frames, crop
        self.sequences: list[tuple[FramePattern, list[int], FramePipeline]] = []
        for pattern in clean:
            numbers = pattern.frames_on_disk()
            if len(numbers) < frames:
                raise RRTNError(
                    f"{pattern.display()}: {len(numbers)} frames on disk, need at "
                    f"least {frames} per clip",
                    kind=ErrorKind.INVALID_INPUT,
                )
            info = check_headers(pattern, numbers)[0]
            if min(info.height, info.width) < crop:
                raise RRTNError(
                    f"{pattern.display()}: frames are {info.width}x{info.height}, "
                    f"smaller than the {crop} px crop"
                )
            pipeline = FramePipeline(info.channels, input_colorspace=input_colorspace)
            self.sequences.append((pattern, numbers, pipeline))

    def describe(self) -> str:
        if not self.sequences:
            return (
                "scikit-image stills " + ",".join(TRAINING_STILLS) + " with synthetic camera, "
                "moving objects and drawn exposures"
            )
        return "; ".join(p.display() for p, _, _ in self.sequences)

    def clip(self, generator: torch.Generator) -> torch.Tensor:
        """(frames, crop, crop) clean luminance in [0, 1]."""
        if not self.sequences:
            return training_clip(generator, frames=self.frames, height=self.crop, width=self.crop)
        pick = int(torch.randint(len(self.sequences), (), generator=generator))
        pattern, numbers, pipeline = self.sequences[pick]
        start = int(torch.randint(len(numbers) - self.frames + 1, (), generator=generator))
        clip = pipeline.read_clip(pattern, numbers[start : start + self.frames])
        top = int(torch.randint(clip.shape[1] - self.crop + 1, (), generator=generator))
        left = int(torch.randint(clip.shape[2] - self.crop + 1, (), generator=generator))
        clip = clip[:, top : top + self.crop, left : left + self.crop]
        if float(torch.rand((), generator=generator)) < 0.5:
            clip = clip.flip(-1)
        return clip


def charbonnier(prediction: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    return torch.sqrt((prediction - target) ** 2 + eps**2).mean()


@torch.enable_grad()
def train(settings: TrainSettings, progress: Callable[[TrainProgress], None] | None = None) -> Path:
    """Train; returns the final checkpoint's path. Raises RRTNError on bad settings."""
    settings.check()
    out = settings.out
    out.mkdir(parents=True, exist_ok=True)
    state_path, last_path = out / "state.pt", out / "last.safetensors"
    device = torch.device(settings.device)
    footage = Footage(
        settings.clean,
        frames=settings.frames,
        crop=settings.crop,
        input_colorspace=settings.input_colorspace,
    )

    model = _starting_model(settings, last_path, device)
    first = (
        load_rrtn(settings.first_model, device)
        if settings.stage == "second" and settings.first_model is not None
        else None
    )
    if settings.crop % model.config.size_multiple or settings.crop < model.config.min_side:
        raise RRTNError(
            f"crop must be a multiple of {model.config.size_multiple} and at least "
            f"{model.config.min_side} for this network, got {settings.crop}"
        )

    model.train()
    model.flow_net.eval()
    model.flow_net.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=settings.lr, betas=(0.9, 0.99))
    start = 0
    if settings.resume:
        state = torch.load(state_path, map_location=device, weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
    metadata = {
        "stage": settings.stage,
        "trained_on": footage.describe() + " + rrtn_plugin.synth synthetic damage",
        "target": "the clip's own tone (fade and softness kept; flicker, damage, grain removed)",
        "flow_source": model.config.flow_source,
        "training": f"{settings.frames} frames, {settings.crop} px crops, batch "
        f"{settings.batch}, Adam {settings.lr:g} cosine, {settings.loss}",
        "base": settings.init.name if settings.init else "fresh",
        "first_model": settings.first_model.name if settings.first_model else "",
        "rrtn_plugin": __version__,
    }

    def save(step: int) -> None:
        save_rrtn(
            model,
            last_path,
            metadata={**metadata, "steps": str(step), "saved": datetime.datetime.now().isoformat()},
        )
        with atomic_output(state_path) as tmp:
            torch.save({"optimizer": optimizer.state_dict(), "step": torch.tensor(step)}, tmp)

    losses: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "mse": torch.nn.functional.mse_loss,
        "charbonnier": charbonnier,
        "l1": torch.nn.functional.l1_loss,
    }
    loss_fn = losses[settings.loss]
    for step in range(start, settings.steps):
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(settings.lr, step, settings.steps)
        lq, target = training_batch(footage, settings, step, first)
        loss = loss_fn(model(lq.to(device)), target.to(device))
        value = float(loss.detach())
        if not math.isfinite(value):
            raise RRTNError(
                f"training diverged at step {step + 1} (loss {value}); "
                f"resume from the last save with a lower --lr"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        optimizer.step()
        if (step + 1) % settings.save_every == 0 or step + 1 == settings.steps:
            save(step + 1)
        if progress is not None:
            progress(TrainProgress(step + 1, settings.steps, value, time.perf_counter() - started))
    final = out / f"rrtn_{settings.stage}.safetensors"
    model.eval()
    save_rrtn(model, final, metadata={**read_metadata(last_path), "final": "true"})
    return final


def _starting_model(settings: TrainSettings, last_path: Path, device: torch.device) -> RRTN:
    """The last save (resuming), the ``init`` checkpoint, or a fresh identity network."""
    if settings.resume:
        if not (last_path.is_file() and (last_path.parent / "state.pt").is_file()):
            raise RRTNError(
                f"nothing to resume in {last_path.parent} (no state.pt and last.safetensors)",
                kind=ErrorKind.NOT_FOUND,
            )
        return load_rrtn(last_path, device)
    if settings.init is not None:
        return load_rrtn(settings.init, device)
    # Seeded, so a run is reproducible. (Not the identity start: with a zero last conv the
    # network behind it gets no gradient and learned only a global offset in 800 steps.)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        return build_rrtn(settings.config).to(device)


def cosine_lr(base: float, step: int, steps: int) -> float:
    """Learning rate at ``step``: cosine from ``base`` down to 1 % of it at the last step."""
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1))))


def training_batch(
    footage: Footage, settings: TrainSettings, step: int, first: RRTN | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The network input and the target of one step, each (B, T, 1, crop, crop) in [-1, 1].

    Drawn from a generator seeded by (seed, step): the same step always gets the same data.
    The target is the damage's :attr:`~rrtn_plugin.synth.DamagedClip.target`: the clean clip
    with its own tone, not a re-graded one.
    """
    generator = torch.Generator().manual_seed(
        random.Random(f"{settings.seed}:{step}").getrandbits(63)
    )
    clean, damaged = [], []
    for _ in range(settings.batch):
        result = degrade_clip(footage.clip(generator), generator=generator)
        clean.append(result.target)
        damaged.append(result.frames)
    target = torch.stack(clean).unsqueeze(2) * 2 - 1
    lq = torch.stack(damaged).unsqueeze(2) * 2 - 1
    if first is not None:
        with torch.no_grad():
            lq = first(lq.to(next(first.parameters()).device)).clamp(-1, 1).cpu()
    return lq, target
