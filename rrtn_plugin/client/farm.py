"""Farm jobs from a host: the ``rrtn-plugin farm openjd`` program writes an Open Job
Description bundle restoring a sequence, and the farm's workers run it with their own
rrtn-plugin (hosts' Pythons cannot run the engine).

:func:`find_program` finds the program, :func:`farm_command` says what to run,
:func:`run_farm_command` runs it outside the host's Python settings, :func:`farm_model` is the
checkpoint the workers load, and :func:`write_farm_bundle` does all that for a
:class:`~.jobs.RestoreJob` and records it, so the farm's frames count as its result.
:func:`require_shared` refuses a result folder the workers cannot reach, :func:`keep_input`
moves a render the host would remove to where the workers read it, :func:`farm_pending` says
how far the farm is, and :func:`farm_instructions` how to run the bundle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from rrtn_plugin.client.jobs import FARM_RECORD, RestoreJob, finished_result, write_record
from rrtn_plugin.client.library import frame_path
from rrtn_plugin.client.results import user_cache_root
from rrtn_plugin.client.settings import KNOBS
from rrtn_plugin.errors import ErrorKind, RRTNError
from rrtn_plugin.options import RestoreOptions

PROGRAM = "rrtn-plugin"
"""The command-line program that writes farm jobs."""
HOST_PYTHON = ("PYTHONPATH", "PYTHONHOME")
"""The host's Python settings, which the program (a Python of its own) must not inherit."""


def find_program(path: str | None = None, *, host: str = "the host") -> str:
    """The ``rrtn-plugin`` program: ``$RRTN_PLUGIN`` (a path, or a name on ``$PATH``), else
    the one on ``path`` (default ``$PATH``); or an error saying how to get it there."""
    named = os.environ.get("RRTN_PLUGIN", "")
    found = shutil.which(named or PROGRAM, path=None if named else path)
    if found is None:
        raise RRTNError(
            f"{named or PROGRAM} is not on PATH, and it writes the farm job: install it "
            f"('python3 -m pip install rrtn-plugin', Python 3.10+) and start {host} with "
            "that environment's bin folder on PATH, or set $RRTN_PLUGIN to the program",
            kind=ErrorKind.NOT_FOUND,
        )
    return found


def farm_model(chosen: str = "") -> str:
    """The checkpoint the farm's workers load: ``chosen``, else ``$RRTN_FARM_MODEL``; empty:
    their bundled model (a server's model name does not travel)."""
    return chosen or os.environ.get("RRTN_FARM_MODEL", "")


def farm_command(
    program: str,
    bundle: Path,
    source: str,
    output: str,
    *,
    first: int,
    last: int,
    name: str,
    chunk: int = 0,
    aovs: Iterable[str] = (),
    colorspace: str = "",
    passes: int = 0,
    model_file: str = "",
    cuts: bool = RestoreOptions.cuts,
    tone_guard: str = RestoreOptions.tone_guard,
    repair_mode: str = RestoreOptions.repair_mode,
    repair_strength: float = RestoreOptions.repair_strength,
) -> list[str]:
    """The ``rrtn-plugin farm openjd`` command writing a job bundle (the folder ``bundle``)
    that restores ``source``'s frames ``first``–``last`` into ``output`` (both absolute
    patterns), in tasks of ``chunk`` frames (0: the program's default). The restore knobs
    (:data:`~.settings.KNOBS`) are named when they differ from the engine's defaults."""
    command = [program, "farm", "openjd", str(bundle), source, output]
    command += ["--frames", f"{first}-{last}"]
    if chunk:
        command += ["--chunk", str(chunk)]
    command += ["--name", name]
    if aovs:
        command += ["--aovs", ",".join(sorted(aovs))]
    if colorspace:
        command += ["--input-colorspace", colorspace]
    if passes:
        command += ["--max-passes", str(passes)]
    if model_file:
        command += ["--model", model_file]
    knobs = {
        "cuts": cuts,
        "tone_guard": tone_guard,
        "repair_mode": repair_mode,
        "repair_strength": float(repair_strength),
    }
    for knob in KNOBS:
        value = knobs[knob.name]
        if value == knob.default:
            continue
        if knob.type is bool:
            command.append(knob.flag if value else f"--no-{knob.flag[2:]}")
        else:
            command += [knob.flag, str(value)]
    return command


def run_farm_command(command: list[str], *, timeout: float = 600.0) -> None:
    """Run a :func:`farm_command` as the program of its own Python it is (none of the host's
    :data:`HOST_PYTHON` settings); raises RRTNError with its complaint."""
    program = command[0]
    env = {k: v for k, v in os.environ.items() if k not in HOST_PYTHON}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except OSError as exc:
        raise RRTNError(f"{program} cannot run: {exc}", kind=ErrorKind.NOT_FOUND) from None
    except subprocess.TimeoutExpired:
        raise RRTNError(f"'{program} farm openjd' took over {timeout:.0f} s") from None
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        raise RRTNError(f"'{program} farm openjd' failed: {said[-1] if said else done.returncode}")


def write_farm_bundle(
    job: RestoreJob, cache_root: Path, *, program: str, model: str = "", timeout: float = 600.0
) -> Path:
    """Write the bundle (``openjd`` in the job's folder) restoring ``job`` from its input
    (``job.input``, or the frames the host rendered to :meth:`RestoreJob.rendered_input`,
    which must stay) into its folder with ``program``, and record the job there, so the
    finished frames count as its result. The workers restore with ``model`` (default: the
    bundled model). Returns the bundle's folder."""
    settings = job.settings
    bundle = job.folder(cache_root) / "openjd"
    command = farm_command(
        program,
        bundle,
        job.input or job.rendered_input(cache_root),
        job.output_pattern(cache_root),
        first=job.first,
        last=job.last,
        name=f"RRTN {job.name}",
        aovs=settings.aovs,
        colorspace=settings.input_colorspace,
        passes=settings.passes,
        model_file=model,
        cuts=settings.cuts,
        tone_guard=settings.tone_guard,
        repair_mode=settings.repair_mode,
        repair_strength=settings.repair_strength,
    )
    run_farm_command(command, timeout=timeout)
    write_record(job, cache_root, FARM_RECORD, command=command)
    return bundle


def require_shared(cache_root: Path, *, setting: str = "the cache folder") -> None:
    """Refuse a result root inside this user's cache folder (:func:`user_cache_root`, where a
    host without document files puts results by default): the farm's workers neither read
    the input there nor write the results."""
    root = Path(os.path.abspath(Path(cache_root).expanduser()))
    user = Path(os.path.abspath(user_cache_root()))
    if root == user or user in root.parents:
        raise RRTNError(
            f"the results would go to {root}, a per-user folder the farm's workers cannot "
            f"reach: set $RRTN_CACHE or {setting} to shared storage",
            kind=ErrorKind.INVALID_INPUT,
        )


def keep_input(job: RestoreJob, cache_root: Path) -> RestoreJob:
    """Move the folder of the frames a host rendered for ``job`` (``job.input``, a staging
    folder the host removes) to the job's folder (:meth:`RestoreJob.rendered_input`'s), where
    the farm reads them; returns the job reading them there (the same key)."""
    source = Path(job.input).parent
    target = Path(job.rendered_input(cache_root)).parent
    if source != target:
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(source), str(target))
    return replace(job, input=str(target / Path(job.input).name))


def farm_pending(job: RestoreJob, cache_root: Path) -> tuple[int, int] | None:
    """``(written, total)`` frames while a farm job written for ``job`` has not written every
    frame yet; None with no farm job, or once its result is complete."""
    if not (job.folder(cache_root) / FARM_RECORD).is_file():
        return None
    if finished_result(job, cache_root) is not None:
        return None
    frames = range(job.first, job.last + 1)
    output = job.output_pattern(cache_root)
    return sum(frame_path(output, f).is_file() for f in frames), len(frames)


def farm_instructions(job: RestoreJob, cache_root: Path, bundle: Path, program: str) -> str:
    """What to tell the user once the bundle is written: where it and the results are, and
    the commands that run it (on AWS Deadline Cloud, or here with openjd-cli)."""
    source = job.input or job.rendered_input(cache_root)
    output = job.output_pattern(cache_root)
    return (
        f"Farm job written: {bundle}\n"
        f"Results (frames {job.first}-{job.last}): {output}\n"
        f"Submit it: deadline bundle submit {bundle}\n"
        f"Or run it here: openjd run {bundle / 'template.json'} --step Restore "
        f"-p Input={source} -p Output={output} -p RrtnPlugin={program}"
    )
