"""What the engine is asked to do: :class:`RestoreOptions`, and the one description of each of
its options (:data:`OPTIONS`). Imports nothing heavy (no torch), so that a front end can show
and check options at once (``rrtn-plugin --help``) before the engine is loaded.

Every field of :class:`RestoreOptions` carries its description in its metadata: type, default,
allowed range or choices, and a help line. :data:`OPTIONS` lists them as :class:`OptionSpec`
values, and everything that shows or takes an option is made from them: the ranges
:meth:`RestoreOptions.check` enforces, the command line's arguments (``rrtn_plugin.cli``), the
options a server advertises and the values it accepts (``rrtn_plugin.server``), and the flags
farm tasks run with (``rrtn_plugin.farm``). Front ends write some values their own way (0 for
"unset" where ``zero_unsets``; GiB for bytes where ``unit``): :func:`options_from` and
:meth:`OptionSpec.to_front` translate.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, cast

from rrtn_plugin.errors import RRTNError

MAX_WINDOW = 120
PRECISIONS = ("fp32", "bf16", "fp16")
"""The arithmetic precisions the engine runs at (``engine.device`` maps them to dtypes)."""
FLOW_MIN_SIDE = 128
"""RAFT's smallest frame side (``model.flow.RAFT_MIN_SIDE``; a test keeps the two equal)."""
REPAIR_MODES = ("full", "defects")
"""How much of the network's output a restore keeps (``engine.repair``)."""
TONE_GUARDS = ("off", "keep", "deflicker")
"""What the tone guard holds (``engine.tone``): nothing, the input's tone, or the input's tone
smoothed in time."""
FLOW_MAX_PIXELS_LIMIT = 1 << 26
"""The largest ``flow_max_pixels``: 8192 × 8192 (0 on the command line: full size)."""


def _option(kind: type, default: Any, help: str, **description: Any) -> Any:
    """A :class:`RestoreOptions` field described as an option (see :class:`OptionSpec`)."""
    return field(default=default, metadata={"type": kind, "help": help, **description})


@dataclass(frozen=True)
class RestoreOptions:
    """How :func:`restore_clip` schedules the work. Defaults follow the authors' usage.

    Attributes:
        window: frames per network run (30).
        overlap: frames shared by consecutive windows (None: half the window, 15).
        max_passes: recursion passes at most, the first included (4).
        stop_psnr: stop when PSNR(pass input, pass output) on 8-bit frames reaches this (43 dB;
            infinity: always run ``max_passes``, as farm tasks do so that chunks agree).
        flow_max_pixels: estimate flow on frames downscaled to about this many pixels
            (None: full resolution; RAFT's memory grows with the square of the pixel count).
        tile: tile side for the network; None chooses from ``memory_budget`` (whole frames when
            they fit), 0 forbids tiling.
        tile_overlap: pixels shared by neighbouring tiles (32).
        memory_budget: bytes the engine may use on the device; None: 80 % of what is free.
        device: "auto" (CUDA when present), "cpu", "cuda", "cuda:N".
        precision: "fp32"; "bf16" autocast (CUDA, or CPUs with AVX512-BF16/AMX); "fp16"
            autocast on CUDA.
        quantize_between_passes: round each pass's output to 8 bits before the next pass, as
            the reference does through its PNG files (off: only clamped to [0, 1]).
        keep_motion: also return per-frame motion vectors of the first pass.
        fixed_window: never shorten the window to fit ``memory_budget``; fail instead (farm
            tasks: their chunks were planned for this window).
        cuts: find cuts and one-frame flashes and restore each shot on its own: no window,
            flow, mask or propagation crosses them (``engine.cuts``).
        tone_guard: after the network, hold the input's large-area tone: "keep" gives every
            frame the input's own tone (as shot, flicker included), "deflicker" does that and
            then evens out each frame's overall level over a few frames (flicker removed, the
            clip's level kept), "off" leaves the network's output as it is (``engine.tone``).
        repair_mode: "full" (the restored picture everywhere) or "defects" (only where the
            damage mask finds defects, feathered; every other pixel is the input's)
            (``engine.repair``).
        repair_strength: the repair mixed with the input: 0 gives the input, 1 the repair.

    The ranges each accepts are in the fields' descriptions (:data:`OPTIONS`).
    """

    window: int = _option(
        int, 30, "frames per network run", minimum=3, maximum=MAX_WINDOW, served=True
    )
    overlap: int | None = _option(
        int,
        None,
        "frames shared by consecutive windows",
        minimum=0,
        maximum=MAX_WINDOW - 1,
        below="window",
        unset="half the window",
        served=True,
    )
    max_passes: int = _option(
        int,
        4,
        "recursion passes at most, the first included",
        minimum=1,
        maximum=8,
        per_model=True,
        served=True,
    )
    stop_psnr: float = _option(
        float,
        43.0,
        "stop recursing once a pass changes the frames less than this PSNR, in dB on 8-bit "
        "frames (inf: always run max_passes)",
        minimum=0,
        maximum=1000,
        also=(math.inf,),
        served=True,
    )
    flow_max_pixels: int | None = _option(
        int,
        1 << 20,
        "estimate flow on frames downscaled to about this many pixels (0: full size)",
        minimum=FLOW_MIN_SIDE**2,
        maximum=FLOW_MAX_PIXELS_LIMIT,
        zero_unsets=True,
        served=True,
    )
    tile: int | None = _option(
        int,
        None,
        "tile side in pixels for the network (0: never tile)",
        minimum=128,
        maximum=8192,
        step=16,
        also=(0,),
        unset="chosen from the memory budget",
        served=True,
    )
    tile_overlap: int = _option(
        int, 32, "pixels shared by neighbouring tiles", minimum=0, step=2, cli=False
    )
    memory_budget: int | None = _option(
        int,
        None,
        "memory the engine may use on the device",
        minimum=1,
        unit=("GiB", 1 << 30),
        zero_unsets=True,
        unset="80 % of what is free",
    )
    device: str = _option(
        str, "auto", "where to compute: auto (CUDA when present), cpu, cuda, cuda:N"
    )
    precision: str = _option(
        str,
        "fp32",
        "arithmetic precision: bf16 needs CUDA or a CPU with AVX-512, fp16 needs CUDA",
        choices=PRECISIONS,
        served=True,
    )
    quantize_between_passes: bool = _option(
        bool, False, "round to 8 bits between passes, as the reference does"
    )
    keep_motion: bool = _option(
        bool, False, "also return the first pass's motion vectors", cli=False
    )
    fixed_window: bool = _option(
        bool,
        False,
        "never shorten the window to fit the memory budget; fail instead (farm tasks, whose "
        "chunks were planned for the window)",
    )

    cuts: bool = _option(
        bool,
        True,
        "find cuts and one-frame flashes and restore each shot on its own (nothing is aligned "
        "or propagated across them)",
        served=True,
    )
    tone_guard: str = _option(
        str,
        "deflicker",
        "after the network, hold the input's large-area tone: keep (each frame's tone as shot, "
        "flicker included), deflicker (as shot, with each frame's overall level evened out over "
        "a few frames: flicker removed), off (the network's output as it is)",
        choices=TONE_GUARDS,
        served=True,
    )
    repair_mode: str = _option(
        str,
        "full",
        "full (the restored picture everywhere) or defects (only where the damage mask finds "
        "dust and blotches, feathered: grain and detail elsewhere stay as they are)",
        choices=REPAIR_MODES,
        served=True,
    )
    repair_strength: float = _option(
        float,
        1.0,
        "the repair mixed with the input (0: the input, 1: the repair)",
        minimum=0,
        maximum=1,
        served=True,
    )

    @property
    def window_overlap(self) -> int:
        return self.window // 2 if self.overlap is None else self.overlap

    def check(self) -> None:
        """Raise RRTNError naming the first option that is out of range, its value and the
        range (:data:`OPTIONS`)."""
        for spec in OPTIONS:
            spec.validate(getattr(self, spec.name), self)


def option_flag(name: str) -> str:
    """The command line's flag for an option or job setting: ``max_passes`` → ``--max-passes``."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class OptionSpec:
    """One option of :class:`RestoreOptions`, described once for every front end.

    Attributes:
        name: the field; the command line's flag is :func:`option_flag` of it, and a served
            option is the protocol's ``SessionOptions`` field of the same name.
        type: ``int``, ``float``, ``str`` or ``bool`` (a switch).
        default: the field's default.
        help: one line for ``--help`` and for hosts' knobs.
        minimum, maximum: the allowed range, both included (None: open).
        step: values must be multiples of it (tile: 16).
        also: values allowed outside the range (stop_psnr: inf; tile: 0).
        below: the option this one must stay below (overlap: window).
        choices: the values a ``str`` option takes (none: any).
        unset: what None means, for options that may be None.
        zero_unsets: front ends write None as 0 (flow_max_pixels 0: full size).
        unit: (name, size): front ends give the value in this unit (memory_budget: GiB).
        per_model: the model in use brings its own default (max_passes: the bundled model's).
        cli: a ``rrtn-plugin restore`` option.
        served: a session option a server takes and advertises.
    """

    name: str
    type: type
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    step: int = 1
    also: tuple[float, ...] = ()
    below: str | None = None
    choices: tuple[str, ...] = ()
    unset: str = ""
    zero_unsets: bool = False
    unit: tuple[str, int] | None = None
    per_model: bool = False
    cli: bool = True
    served: bool = False

    @property
    def flag(self) -> str:
        return option_flag(self.name)

    def allowed(self, options: RestoreOptions | None = None) -> str:
        """The values accepted, in words: ``a whole number from 1 to 8``. Given ``options``,
        a ``below`` bound names its current value."""
        if self.type is bool:
            return "true or false"
        if self.type is str:
            return f"one of {', '.join(self.choices)}" if self.choices else "a name"
        if self.type is float:
            kind = "a number"
        elif self.step == 1:
            kind = "a whole number"
        else:
            kind = "an even number" if self.step == 2 else f"a multiple of {self.step}"
        if self.minimum is not None and self.maximum is not None:
            kind += f" from {_number(self.minimum)} to {_number(self.maximum)}"
        elif self.minimum is not None:
            kind += f" of at least {_number(self.minimum)}"
        elif self.maximum is not None:
            kind += f" of at most {_number(self.maximum)}"
        if self.below:
            current = f" ({getattr(options, self.below)})" if options is not None else ""
            kind += f", below {self.below}{current}"
        if self.also:
            kind = " or ".join([*(_number(v) for v in self.also), kind])
        return kind

    def describe(self) -> str:
        """The help line with the values accepted, as front ends show it."""
        if self.unit is not None:
            return f"{self.help}, in {self.unit[0]}"
        if self.type is bool or (self.type is str and not self.choices):
            return self.help
        return f"{self.help}; {self.allowed()}"

    def validate(self, value: Any, options: RestoreOptions) -> None:
        """Raise RRTNError naming the option, ``value`` and the range if ``value`` is not
        allowed; ``options`` holds the values ``below`` refers to."""
        if value is None and (self.unset or self.zero_unsets):
            return
        if _fits(self, value, options):
            return
        raise RRTNError(f"{self.name} must be {self.allowed(options)}, got {value!r}")

    def from_front(self, value: Any) -> Any:
        """A front end's value (not None) as :class:`RestoreOptions` holds it."""
        if self.zero_unsets and value == 0:
            return None
        if self.unit is not None:
            return int(value * self.unit[1])
        return value

    def to_front(self, value: Any) -> Any:
        """A :class:`RestoreOptions` value as front ends write it (inverse of
        :meth:`from_front`; None stays None unless the option writes it as 0)."""
        if value is None:
            return 0 if self.zero_unsets else None
        if self.unit is not None:
            return value / self.unit[1]  # exact: a power of two
        return value


def _fits(spec: OptionSpec, value: Any, options: RestoreOptions) -> bool:
    if spec.type is bool:
        return isinstance(value, bool)
    if spec.type is str:
        return isinstance(value, str) and (not spec.choices or value in spec.choices)
    kind = numbers.Integral if spec.type is int else numbers.Real
    if not isinstance(value, kind) or isinstance(value, bool) or math.isnan(value):
        return False
    value = cast(float, value)  # a real number; typeshed's numbers.Real has no >=
    if value in spec.also:
        return True
    return (
        (spec.minimum is None or value >= spec.minimum)
        and (spec.maximum is None or value <= spec.maximum)
        and (spec.step == 1 or value % spec.step == 0)
        and (spec.below is None or value < getattr(options, spec.below))
    )


def _number(value: float) -> str:
    return str(int(value)) if math.isfinite(value) and value == int(value) else str(value)


OPTIONS: tuple[OptionSpec, ...] = tuple(
    OptionSpec(name=f.name, default=f.default, **f.metadata)
    for f in fields(RestoreOptions)
    if f.metadata
)
"""Every option of :class:`RestoreOptions`, in field order: each field declared with
``_option`` (one without is no front end's, and :meth:`RestoreOptions.check` leaves it alone)."""


def option_spec(name: str) -> OptionSpec:
    """The description of the option ``name``; RRTNError if there is none."""
    for spec in OPTIONS:
        if spec.name == name:
            return spec
    raise RRTNError(f"no restore option '{name}' (options: {', '.join(s.name for s in OPTIONS)})")


def options_from(values: Mapping[str, Any], base: RestoreOptions | None = None) -> RestoreOptions:
    """``base`` (default: the defaults) with the options in ``values`` as a front end gives
    them (see :meth:`OptionSpec.from_front`; None: base's value), checked.

    Raises:
        RRTNError: an unknown option, or a value out of its range (named, with the range).
    """
    changes = {
        name: option_spec(name).from_front(value)
        for name, value in values.items()
        if value is not None
    }
    options = replace(base or RestoreOptions(), **changes)
    options.check()
    return options
