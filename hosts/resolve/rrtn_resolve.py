"""RRTN Restore for DaVinci Resolve: restore a timeline range and import it into the media pool.

Run from Workspace > Scripts (copy or link this file into Resolve's ``Scripts/Edit`` folder) or
from a terminal (``python rrtn_resolve.py --help``, Resolve running, ``-nogui`` works too).
External scripting needs DaVinci Resolve Studio (the free version has no scripting API since
Resolve 21.1) with Preferences > System > General > External scripting using: Local.

What it restores: the timeline's video in/out range when one is marked (with ``--handles``
frames of context either side, within the timeline), else the clip under the playhead (its
context stays inside the clip, so no other shot leaks in). It renders that range plus handles
to EXR (half float, ZIP) with a render job, restores it on the rrtn-plugin server, imports
exactly the requested frames into the media-pool bin "RRTN", attaches the damage mask as the
clip's matte, and with ``--append`` lays the result on a new video track above the original.
Everything that is not Resolve's API is in :mod:`rrtn_plugin.client.host_job`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rrtn_plugin.client.host_job import (
    HostSettings,
    JobResult,
    JobThread,
    RestoreJob,
    default_cache_root,
    files_identity,
)
from rrtn_plugin.errors import ErrorKind, RRTNError

if TYPE_CHECKING:
    from fusionscript import (
        MediaPoolClipInfo,
        MediaPoolItem,
        Project,
        RenderSettings,
        Resolve,
        Timeline,
    )

BIN = "RRTN"
EXR_CODEC = "RGBHalfZIP"
DEFAULT_COLORSPACE = "Gamma 2.4 Encoded Rec.709"
"""What a render of an unmanaged (DaVinci YRGB) Rec.709 project holds; pass --colorspace when
the project's output colour space is another."""


@dataclass(frozen=True)
class Span:
    """Timeline frames to restore and the frames around them that may serve as context."""

    first: int
    last: int
    low: int
    high: int
    name: str


def connect() -> Resolve:
    """The running Resolve (the ``resolve`` Resolve hands menu scripts, else the script API)."""
    given = globals().get("resolve")
    if given is not None:
        return cast("Resolve", given)
    try:
        import DaVinciResolveScript
    except ImportError:
        raise RRTNError(
            "DaVinciResolveScript is not importable: set RESOLVE_SCRIPT_API and "
            "RESOLVE_SCRIPT_LIB and add $RESOLVE_SCRIPT_API/Modules to PYTHONPATH "
            "(see the README)",
            kind=ErrorKind.NOT_FOUND,
        ) from None
    app = DaVinciResolveScript.scriptapp("Resolve")
    if app is None:
        raise RRTNError(
            "Resolve does not answer: start DaVinci Resolve Studio and set "
            "Preferences > System > General > External scripting using: Local",
            kind=ErrorKind.NOT_FOUND,
        )
    return cast("Resolve", app)


def timeline_span(timeline: Timeline, handles: int) -> Span:
    """The marked video in/out range (marks count from the timeline's start), else the clip
    under the playhead; ``low``/``high`` bound the context."""
    start, end = timeline.GetStartFrame(), timeline.GetEndFrame()
    marks = timeline.GetMarkInOut().get("video")
    if marks is not None:
        first, last = start + marks["in"], start + marks["out"]
        if not start <= first <= last <= end:
            raise RRTNError(
                f"the marked range {first}-{last} is not inside the timeline {start}-{end}"
            )
        return Span(
            first,
            last,
            max(start, first - handles),
            min(end, last + handles),
            f"{timeline.GetName()} {first}-{last}",
        )
    item = timeline.GetCurrentVideoItem()
    if item is None:
        raise RRTNError("mark an in/out range on the timeline or put the playhead on a clip")
    first, last = int(item.GetStart(False)), int(item.GetEnd(False)) - 1
    return Span(first, last, first, last, item.GetName())


def render_range(
    project: Project, span: Span, folder: Path, progress: Any = print
) -> tuple[str, int]:
    """Render ``span``'s context to EXR in ``folder``; returns the files' pattern (####) and
    the file number of the first frame."""
    if "exr" not in project.GetRenderFormats().values():
        raise RRTNError("this Resolve offers no EXR render format")
    codecs = project.GetRenderCodecs("exr")
    if EXR_CODEC not in codecs.values():
        raise RRTNError(
            f"Resolve offers no {EXR_CODEC} EXR codec (it has: {', '.join(codecs.values())})"
        )
    folder.mkdir(parents=True, exist_ok=True)
    project.SetCurrentRenderFormatAndCodec("exr", EXR_CODEC)
    project.SetCurrentRenderMode(1)  # one file per frame of the whole range, not per clip
    settings = {
        "SelectAllFrames": False,
        "MarkIn": span.low,
        "MarkOut": span.high,
        "TargetDir": str(folder),
        "CustomName": "rrtn_input",
        "ExportVideo": True,
        "ExportAudio": False,
    }
    if not project.SetRenderSettings(cast("RenderSettings", settings)):
        raise RRTNError("Resolve refused the render settings for the EXR render")
    job_id = project.AddRenderJob()
    try:
        project.StartRendering([job_id], isInteractiveMode=False)
        try:
            while project.IsRenderingInProgress():
                status = dict(project.GetRenderJobStatus(job_id))
                progress(f"Rendering EXR: {status.get('CompletionPercentage', 0)} %")
                time.sleep(0.5)
        except KeyboardInterrupt:
            project.StopRendering()
            raise RRTNError("render cancelled", kind=ErrorKind.CANCELLED) from None
        status = dict(project.GetRenderJobStatus(job_id))
        if status.get("JobStatus") != "Complete":
            raise RRTNError(
                f"the EXR render ended {status.get('JobStatus')}: "
                f"{status.get('Error', 'see the render queue')}"
            )
    finally:
        project.DeleteRenderJob(job_id)
    return rendered_sequence(folder, span.high - span.low + 1)


def rendered_sequence(folder: Path, count: int) -> tuple[str, int]:
    """The one EXR sequence a render left in ``folder``: its pattern and first number."""
    numbered = [re.fullmatch(r"(.*?)(\d+)\.exr", p.name) for p in sorted(folder.glob("*.exr"))]
    found = sorted((m.group(1), len(m.group(2)), int(m.group(2))) for m in numbered if m)
    stems = {(stem, digits) for stem, digits, _ in found}
    numbers = [n for *_, n in found]
    if len(stems) != 1 or numbers != list(range(numbers[0], numbers[0] + count)):
        raise RRTNError(
            f"the render left {len(found)} EXR files in {folder}, not one "
            f"sequence of {count} frames"
        )
    ((stem, digits),) = stems
    return str(folder / f"{stem}{'#' * digits}.exr"), numbers[0]


def import_result(
    resolve: Resolve, project: Project, result: JobResult, offset: int, append: bool
) -> MediaPoolItem:
    """Import the restored frames into the "RRTN" bin, the mask as the clip's matte."""
    pool = project.GetMediaPool()
    root = pool.GetRootFolder()
    folder = next((f for f in root.GetSubFolderList() if f.GetName() == BIN), None)
    pool.SetCurrentFolder(folder or pool.AddSubFolder(root, BIN))
    printf = re.sub(r"#+", lambda m: f"%0{len(m.group())}d", result.pattern)
    items = pool.ImportMedia(
        [{"FilePath": printf, "StartIndex": result.first, "EndIndex": result.last}]
    )
    if not items:
        raise RRTNError(f"Resolve did not import {printf} ({result.first}-{result.last})")
    item = items[0]
    mask = result.aov_patterns.get("mask")
    if mask is not None:
        storage = resolve.GetMediaStorage()
        if not storage.AddClipMattesToMediaPool(item, [str(Path(mask).parent)], None):
            raise RRTNError(f"Resolve did not attach the mask {Path(mask).parent} as a matte")
    if append:
        timeline = project.GetCurrentTimeline()
        timeline.AddTrack("video", cast(Any, {}))
        track = timeline.GetTrackCount("video")
        clip: MediaPoolClipInfo = {
            "mediaPoolItem": item,
            "startFrame": 0,
            "endFrame": result.last - result.first,
            "trackIndex": track,
            "recordFrame": result.first - offset,
        }
        # fusionscript-stubs 21.0 leaves this documented clip-info form off the overloads.
        if not pool.AppendToTimeline([clip]):  # type: ignore[arg-type]
            raise RRTNError(f"Resolve did not put {item.GetName()} on video track {track}")
    return item


def restore(
    resolve: Resolve,
    settings: HostSettings,
    *,
    handles: int,
    cache: Path,
    append: bool = False,
    progress: Any = print,
) -> JobResult:
    """Render, restore on the server, import: the whole script."""
    project = resolve.GetProjectManager().GetCurrentProject()
    timeline = project.GetCurrentTimeline() if project else None
    if timeline is None:
        raise RRTNError("open a project with a timeline first")
    span = timeline_span(timeline, handles)
    width = int(project.GetSetting("timelineResolutionWidth"))
    height = int(project.GetSetting("timelineResolutionHeight"))
    staging = cache / "renders" / f"{timeline.GetName()}-{span.low}-{span.high}"
    pattern, number = render_range(project, span, staging, progress)
    offset = number - span.low  # file number minus timeline frame
    job = RestoreJob(
        name=span.name,
        input=pattern,
        first=span.first + offset,
        last=span.last + offset,
        context_first=span.low + offset,
        context_last=span.high + offset,
        width=width,
        height=height,
        settings=settings,
        aov_files=True,
        identity=files_identity(
            pattern, range(span.low + offset, span.high + offset + 1), by_content=True
        ),
    )
    thread = JobThread(job, cache).start()
    try:
        while not thread.finished(1.0):
            progress(thread.progress.text)
    except KeyboardInterrupt:
        thread.cancel()
        thread.finished(60)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if thread.result is None:
        raise thread.error or RRTNError("the restore ended without a result")
    item = import_result(resolve, project, thread.result, offset, append)
    progress(
        f"Imported {item.GetName()} into the {BIN} bin "
        f"(frames {span.first}-{span.last}, {thread.result.seconds:.1f} s)"
    )
    return thread.result


def main(argv: list[str] | None = None) -> int:
    defaults = HostSettings()
    parser = argparse.ArgumentParser(description="Restore a Resolve timeline range with RRTN.")
    parser.add_argument("--server", default=defaults.server)
    parser.add_argument(
        "--model", default="", help="a model the server offers (default: its first)"
    )
    parser.add_argument("--passes", type=int, default=0, help="0: the model's default")
    parser.add_argument("--handles", type=int, default=8)
    parser.add_argument(
        "--colorspace",
        default=DEFAULT_COLORSPACE,
        help=f"what the rendered EXRs hold (default {DEFAULT_COLORSPACE!r})",
    )
    parser.add_argument("--aovs", default="mask", help="comma-separated: mask, repair, motion")
    parser.add_argument("--cache", type=Path, default=default_cache_root() / "resolve")
    parser.add_argument("--append", action="store_true", help="put the result on a new track")
    args = parser.parse_args(argv)
    try:
        settings = HostSettings(
            server=args.server,
            token=defaults.token,
            model=args.model,
            passes=args.passes,
            input_colorspace=args.colorspace,
            aovs=tuple(a.strip() for a in args.aovs.split(",") if a.strip()),
        )
        restore(connect(), settings, handles=args.handles, cache=args.cache, append=args.append)
    except RRTNError as exc:
        print(f"RRTN Restore: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] if getattr(sys, "argv", None) else []))
