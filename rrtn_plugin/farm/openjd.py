"""An Open Job Description job for a chunked restore, as a job bundle AWS Deadline Cloud
submits (``deadline bundle submit BUNDLE``) and ``openjd run`` runs locally.

The bundle is a folder: ``template.json``, one step "Restore" with one task per chunk (the task
parameter ``Frames`` takes the chunks' ``a-b`` values; each task runs ``rrtn-plugin restore
INPUT OUTPUT --frames a-b --handles h --skip-existing`` with the job's options), and
``parameter_values.json``, the job's values. The input and output patterns and the model
files are parameters of type PATH, so a farm maps them between operating systems; the
``RrtnPlugin`` parameter names the command on the workers. A GPU is asked for unless the job
runs on the CPU. The job is made from the template and values with ``openjd-model`` before
anything is written, so a bundle that is written is one a farm accepts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openjd.model import (
    DecodeValidationError,
    create_job,
    decode_job_template,
    preprocess_job_parameters,
)

from rrtn_plugin.atomic import atomic_output
from rrtn_plugin.errors import RRTNError
from rrtn_plugin.farm.chunks import Chunk

SPECIFICATION = "jobtemplate-2023-09"
MODEL_PARAMETERS = {"--model": "Model", "--model-second": "ModelSecond"}
MAX_TASKS = 1024
"""The most values a task parameter's list may hold (OpenJD 2023-09)."""


@dataclass(frozen=True)
class FarmJob:
    """A chunked restore: patterns, chunks, the tasks' options and the models they load.

    ``options`` are ``rrtn-plugin restore`` options other than the models (e.g.
    ``["--aovs", "mask", "--max-passes", "2"]``); ``models`` maps ``--model`` and
    ``--model-second`` to their files.
    """

    name: str
    input: str
    output: str
    chunks: Sequence[Chunk]
    options: Sequence[str]
    models: dict[str, Path]
    gpu: bool


def job_template(job: FarmJob) -> dict[str, Any]:
    """The template as a JSON-ready dict, checked against the specification."""
    if not job.chunks:
        raise RRTNError("a farm job needs at least one chunk")
    if len(job.chunks) > MAX_TASKS:
        raise RRTNError(
            f"{len(job.chunks)} chunks are more than the {MAX_TASKS} tasks an "
            "Open Job Description step may list: use longer chunks"
        )
    handles = max(chunk.handles for chunk in job.chunks)
    parameters: list[dict[str, Any]] = [
        {"name": "Input", "type": "PATH", "description": "The frames to restore (a pattern)."},
        {"name": "Output", "type": "PATH", "description": "Where the restored frames go."},
        {
            "name": "RrtnPlugin",
            "type": "STRING",
            "default": "rrtn-plugin",
            "description": "The rrtn-plugin command on the workers.",
        },
    ]
    model_args: list[str] = []
    for flag in job.models:
        name = MODEL_PARAMETERS[flag]
        parameters.append(
            {"name": name, "type": "PATH", "description": f"rrtn-plugin restore {flag}"}
        )
        model_args += [flag, f"{{{{Param.{name}}}}}"]
    args = [
        "restore",
        "{{Param.Input}}",
        "{{Param.Output}}",
        "--frames",
        "{{Task.Param.Frames}}",
        "--handles",
        str(handles),
        "--skip-existing",
        *job.options,
        *model_args,
    ]
    step: dict[str, Any] = {
        "name": "Restore",
        "parameterSpace": {
            "taskParameterDefinitions": [
                {"name": "Frames", "type": "STRING", "range": [c.frames for c in job.chunks]}
            ]
        },
        "script": {"actions": {"onRun": {"command": "{{Param.RrtnPlugin}}", "args": args}}},
    }
    if job.gpu:
        step["hostRequirements"] = {"amounts": [{"name": "amount.worker.gpu", "min": 1}]}
    return {
        "specificationVersion": SPECIFICATION,
        "name": job.name,
        "parameterDefinitions": parameters,
        "steps": [step],
    }


def parameter_values(job: FarmJob) -> dict[str, str]:
    """The job's values for the template's parameters."""
    values = {"Input": job.input, "Output": job.output}
    values.update({MODEL_PARAMETERS[flag]: str(path) for flag, path in job.models.items()})
    return values


def write_bundle(folder: Path, job: FarmJob) -> Path:
    """Write the job bundle (``template.json``, ``parameter_values.json``) into ``folder``,
    after making the job from them as a farm would; returns the template's path."""
    template, values = job_template(job), parameter_values(job)
    try:
        decoded = decode_job_template(template=template)
        create_job(
            job_template=decoded,
            job_parameter_values=preprocess_job_parameters(
                job_template=decoded,
                job_parameter_values=values,
                job_template_dir=folder.absolute(),
                current_working_dir=Path.cwd(),
            ),
        )
    except (DecodeValidationError, ValueError) as exc:
        raise RRTNError(f"the job is not valid Open Job Description: {exc}") from None
    folder.mkdir(parents=True, exist_ok=True)
    bundled = {"parameterValues": [{"name": k, "value": v} for k, v in values.items()]}
    for name, content in (("template.json", template), ("parameter_values.json", bundled)):
        with atomic_output(folder / name) as tmp:
            tmp.write_text(json.dumps(content, indent=2) + "\n")
    return folder / "template.json"
