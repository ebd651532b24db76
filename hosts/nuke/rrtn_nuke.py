"""RRTN Restore for Nuke: a Group node that restores its input through an rrtn-plugin server.

Nuke cannot run Python per pixel, so the node's Restore button renders the input range with its
handles to linear EXR through a Write inside the Group (raw: the working space's values as
they are), restores it on the server from a worker thread (``nuke.ProgressTask`` shows progress
and cancels), and points the Group's Read at the restored frames: exactly the requested range,
with the AOVs as layers (``rrtn_mask.Y``). Results live in a folder keyed by the input (the
upstream nodes' knobs and files) and the settings, so pressing Restore again with nothing
changed does no work. Everything that is not Nuke's API is in :mod:`rrtn_plugin.client.host_job`.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import replace
from pathlib import Path

import nuke

from rrtn_plugin.client.host_job import (
    HostSettings,
    JobResult,
    JobThread,
    RestoreJob,
    default_cache_root,
    files_identity,
    finished_result,
    server_choices,
)
from rrtn_plugin.errors import RRTNError

SERVER_DEFAULT_MODEL = "(server default)"
AOVS = ("mask", "repair", "motion")
CALL = "import rrtn_nuke; rrtn_nuke."
"""Button commands run in Nuke's script namespace: they import this module themselves."""
_running: dict[str, JobThread] = {}


def create_node() -> nuke.Group:
    """Nodes > RRTN > RRTN Restore: the Group with its knobs and inner nodes."""
    source = nuke.selectedNode() if nuke.selectedNodes() else None
    group = nuke.nodes.Group(name="RRTNRestore")
    if source is not None:
        group.setInput(0, source)
    settings = HostSettings()
    first, last = _input_range(group)
    knobs = [
        nuke.Tab_Knob("rrtn", "RRTN"),
        nuke.String_Knob("server", "server", settings.server),
        nuke.PyScript_Knob("refresh", "Refresh", f"{CALL}refresh_choices(nuke.thisNode())"),
        nuke.Enumeration_Knob("model", "model", [SERVER_DEFAULT_MODEL]),
        nuke.Int_Knob("first", "frame range"),
        nuke.Int_Knob("last", ""),
        nuke.Int_Knob("handles", "handles"),
        nuke.Int_Knob("passes", "passes (0: model default)"),
        *[nuke.Boolean_Knob(f"aov_{aov}", aov) for aov in AOVS],
        nuke.String_Knob("colorspace", "input colour space", _working_space()),
        nuke.File_Knob("cache", "cache folder"),
        nuke.PyScript_Knob("restore", "Restore", f"{CALL}restore(nuke.thisNode())"),
        nuke.Text_Knob("status", "", "Not restored yet: the input passes through."),
    ]
    for knob in knobs:
        group.addKnob(knob)
    group["last"].clearFlag(nuke.STARTLINE)
    group["restore"].setFlag(nuke.STARTLINE)
    group["first"].setValue(first)
    group["last"].setValue(last)
    group["handles"].setValue(8)
    group["aov_mask"].setValue(True)
    group["cache"].setValue(str(default_cache_root() / "nuke"))
    with group:
        plate = nuke.nodes.Input(name="Input1")
        write = nuke.nodes.Write(
            name="RenderInput", file_type="exr", raw=True, disable=True, create_directories=True
        )
        write["datatype"].setValue("32 bit float")
        write["compression"].setValue("Zip (1 scanline)")
        write["channels"].setValue("rgba")
        write.setInput(0, plate)
        nuke.nodes.Read(name="Restored", raw=True, before="black", after="black")
        nuke.nodes.Output(name="Output1").setInput(0, plate)
    refresh_choices(group)
    return group


def refresh_choices(group: nuke.Node) -> None:
    """Fill the model menu from the server, or say in the status why it could not."""
    try:
        choices = server_choices(_settings(group))
    except RRTNError as exc:
        _status(group, f"Server: {exc}")
        return
    model = group["model"]
    assert isinstance(model, nuke.Enumeration_Knob)
    current = model.value()
    model.setValues([SERVER_DEFAULT_MODEL, *choices.models])
    if current in choices.models:
        model.setValue(current)
    _status(group, f"Server {choices.version} on {choices.device}: {', '.join(choices.models)}")


def restore(group: nuke.Node) -> None:
    """The Restore button: reuse a finished identical result, or render, send and read back."""
    name = group.fullName()
    if name in _running and not _running[name].finished():
        nuke.message(f"{name} is already restoring; cancel it in the progress bar first.")
        return
    try:
        job, cache = _job(group)
        write = _inner(group, "RenderInput")
    except RRTNError as exc:
        _status(group, f"Error: {exc}")
        nuke.message(f"RRTN Restore: {exc}")
        return
    done = finished_result(job, cache)
    if done is not None:
        _show(group, job, done)
        _status(group, f"Up to date: frames {job.first}-{job.last} (nothing changed)")
        return
    write["file"].setValue(job.rendered_input(cache).replace("\\", "/"))
    write["disable"].setValue(False)
    try:
        nuke.execute(write, job.context_first, job.context_last)
    except RuntimeError as exc:
        _status(group, f"Error: rendering the input failed: {exc}")
        return
    finally:
        write["disable"].setValue(True)
    thread = JobThread(job, cache).start()
    _running[name] = thread
    _status(group, f"Restoring frames {job.first}-{job.last} on {job.settings.server}")
    threading.Thread(target=_watch, args=(group, job, thread), daemon=True).start()


def _watch(group: nuke.Node, job: RestoreJob, thread: JobThread) -> None:
    """Worker: mirror the job's progress in a ProgressTask; hand the end to the main thread."""
    task = nuke.ProgressTask(f"RRTN Restore {group.name()}")
    while not thread.finished(0.2):
        task.setProgress(int(100 * thread.progress.fraction))
        task.setMessage(thread.progress.text)
        if task.isCancelled():
            thread.cancel()
    del task
    nuke.executeInMainThread(_finish, args=(group, job, thread))


def _finish(group: nuke.Node, job: RestoreJob, thread: JobThread) -> None:
    if thread.error is not None or thread.result is None:
        _status(group, f"Error: {thread.error}")
        return
    _show(group, job, thread.result)
    result = thread.result
    warning = (
        f"; NaN/Inf in frames {list(result.nonfinite_frames)}" if result.nonfinite_frames else ""
    )
    _status(group, f"Restored frames {job.first}-{job.last} in {result.seconds:.1f} s{warning}")


def _show(group: nuke.Node, job: RestoreJob, result: JobResult) -> None:
    """Point the inner Read at the restored frames and the Output at the Read."""
    read = _inner(group, "Restored")
    read["file"].setValue(result.pattern.replace("\\", "/"))
    for knob in ("first", "origfirst"):
        read[knob].setValue(job.first)
    for knob in ("last", "origlast"):
        read[knob].setValue(job.last)
    # No reload needed: a result's folder is named by its key, so new content has a new path.
    _inner(group, "Output1").setInput(0, read)


def _inner(group: nuke.Node, name: str) -> nuke.Node:
    node = group.node(name) if isinstance(group, nuke.Group) else None
    if node is None:
        raise RRTNError(
            f"{group.name()} has lost its inner node {name}: create a new RRTN Restore node"
        )
    return node


def _job(group: nuke.Node) -> tuple[RestoreJob, Path]:
    """The restore the knobs describe; raises RRTNError for what the user must change."""
    source = group.input(0)
    if source is None:
        raise RRTNError("connect the node's input to the plate to restore")
    if nuke.root()["proxy"].value():
        raise RRTNError(
            "proxy mode is on: RRTN restores full-resolution frames only; "
            "switch proxy off and press Restore again"
        )
    available = (source.firstFrame(), source.lastFrame())
    first, last = int(group["first"].value()), int(group["last"].value())
    job = RestoreJob.with_handles(
        first=first,
        last=last,
        handles=int(group["handles"].value()),
        available=available,
        name=group.name(),
        input="",
        width=source.width(),
        height=source.height(),
        identity=_upstream_identity(source, available),
        settings=_settings(group),
    )
    return job, Path(group["cache"].value() or default_cache_root() / "nuke")


def _settings(group: nuke.Node) -> HostSettings:
    model = group["model"].value()
    return replace(
        HostSettings(),
        server=group["server"].value().strip(),
        model="" if model == SERVER_DEFAULT_MODEL else model,
        passes=int(group["passes"].value()),
        aovs=tuple(aov for aov in AOVS if group[f"aov_{aov}"].value()),
        input_colorspace=group["colorspace"].value().strip(),
    )


def _upstream_identity(node: nuke.Node, frames: tuple[int, int]) -> str:
    """What the input's pixels depend on: every upstream node's knobs, and Reads' files."""
    digest = hashlib.blake2b(digest_size=16)
    seen: set[str] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if current.fullName() in seen:
            continue
        seen.add(current.fullName())
        digest.update(f"{current.Class()} {current.fullName()}\n".encode())
        digest.update(current.writeKnobs(nuke.WRITE_ALL | nuke.TO_SCRIPT).encode())
        if current.Class() == "Read":
            digest.update(
                files_identity(current["file"].value(), range(frames[0], frames[1] + 1)).encode()
            )
        pending += current.dependencies(nuke.INPUTS | nuke.HIDDEN_INPUTS)
    return digest.hexdigest()


def _input_range(group: nuke.Node) -> tuple[int, int]:
    source = group.input(0)
    if source is not None:
        return source.firstFrame(), source.lastFrame()
    root = nuke.root()
    return int(root["first_frame"].value()), int(root["last_frame"].value())


def _working_space() -> str:
    """The script's working space: the frames are written raw, so they are in it."""
    root = nuke.root()
    if root["colorManagement"].value() == "OCIO":
        return str(root["workingSpaceLUT"].value())
    return "lin_rec709"  # Nuke's own colour management works in linear sRGB primaries


def _status(group: nuke.Node, text: str) -> None:
    group["status"].setValue(text)
