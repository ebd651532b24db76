"""A restore planned for a farm: its chunks, and the options every task runs with.

:func:`plan_farm_job` turns a restore (input, output, :class:`JobSettings`) into a
:class:`~rrtn_plugin.farm.openjd.FarmJob`: it finds the frames, splits them into chunks with
the context the job's windows and passes need (:func:`~rrtn_plugin.farm.chunks.plan_chunks`),
and gives every task the job's settings as ``rrtn-plugin restore`` flags
(:func:`task_options`), made from the restore options' description
(:data:`~rrtn_plugin.options.OPTIONS`) under the farm's policy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from rrtn_plugin.farm.chunks import plan_chunks
from rrtn_plugin.farm.openjd import FarmJob
from rrtn_plugin.frames.plan import plan_frames
from rrtn_plugin.frames.restore import JobSettings
from rrtn_plugin.frames.sequence import parse_pattern
from rrtn_plugin.options import OPTIONS, option_flag

COLOR_SETTINGS = ("input_colorspace", "working_colorspace", "ocio_config")
"""The job settings a task is given as they are (names of colour spaces and configs)."""


def task_options(settings: JobSettings, *, compile: bool = False) -> list[str]:
    """The ``rrtn-plugin restore`` flags, models aside, every task of a chunked ``settings``
    runs with: the settings that differ from the defaults, under the farm's policy.

    The policy: every task runs exactly ``max_passes`` passes (``--stop-psnr inf``; an
    automatic stop, decided on each task's own frames, could differ between neighbouring
    chunks and show at their border), always named since a task's default depends on its
    model; and ``--fixed-window``: the chunks' context was planned for these windows, so a task
    whose worker has too little memory for them must fail (and be retried elsewhere), not
    restore other windows. ``compile`` adds ``--compile``.
    """
    defaults = JobSettings()
    flags: list[str] = []
    for name in COLOR_SETTINGS:
        value = getattr(settings, name)
        if value is not None:
            flags += [option_flag(name), value]
    if settings.color_mode != defaults.color_mode:
        flags += [option_flag("color_mode"), settings.color_mode.value]
    if settings.aovs != defaults.aovs:
        flags += [option_flag("aovs"), ",".join(a.value for a in settings.aovs)]
    options = replace(settings.restore, stop_psnr=math.inf, fixed_window=True)
    for spec in OPTIONS:
        value = getattr(options, spec.name)
        if not spec.cli or (value == spec.default and not spec.per_model):
            continue
        if spec.type is bool:  # a switch that is on by default is turned off with --no-
            flags.append(spec.flag if value else f"--no-{spec.flag[2:]}")
        else:
            flags += [spec.flag, str(spec.to_front(value))]
    if compile:
        flags.append("--compile")
    return flags


def plan_farm_job(
    input: str | Path,
    output: str | Path,
    settings: JobSettings,
    *,
    chunk: int,
    name: str | None = None,
    models: Mapping[str, Path | None] | None = None,
    compile: bool = False,
) -> FarmJob:
    """A chunked restore of ``input`` into ``output``: chunks of ``chunk`` frames of
    ``settings.frames`` (default: every frame on disk), each reading the context its windows
    need.

    Args:
        models: ``--model`` and ``--model-second`` to their files (None: not given).
        name: the job's name (default: "RRTN restore" and the output's name).
        compile: tasks ``torch.compile`` the network.

    Raises:
        RRTNError: options out of range, missing frames, a chunk size below 1.
    """
    options = settings.restore
    options.check()
    pattern = parse_pattern(input, must_exist=True)
    reach = options.max_passes * (options.window + 1)  # the most context a frame can need
    plan = plan_frames(pattern, settings.frames, reach)
    chunks = plan_chunks(
        plan.write[0],
        plan.write[-1],
        size=chunk,
        available=(plan.read[0], plan.read[-1]),
        options=options,
    )
    return FarmJob(
        name=name or f"RRTN restore {Path(output).name}",
        input=str(Path(input).absolute()),
        output=str(Path(output).absolute()),
        chunks=chunks,
        options=task_options(settings, compile=compile),
        models={flag: path.absolute() for flag, path in (models or {}).items() if path},
        gpu=options.device != "cpu",
    )
