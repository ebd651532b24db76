"""A working stand-in for DaVinci Resolve's scripting API (the calls the RRTN script makes).

``scriptapp("Resolve")`` returns a Resolve holding one project with one timeline whose video
track 1 cuts between image-sequence clips. What the documented API promises is done for real:
a render job renders the marked timeline frames to EXR files (OpenImageIO, the codec's pixel
type, one file per frame named ``<CustomName><8-digit timeline frame>.exr``) in a thread, with
status and percentage while it runs; ``ImportMedia`` checks every file of the sequence exists;
``AddClipMattesToMediaPool`` checks its paths exist; ``AppendToTimeline`` puts items on tracks.
Timeline marks count from the timeline's start, as in the API's documented example.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

CODECS = {"RGB half (ZIP)": "RGBHalfZIP", "RGB float (no compression)": "RGBFloat"}


def _frame_file(printf: str, frame: int) -> Path:
    match = re.search(r"%0?(\d*)d", printf)
    if match is None:
        raise ValueError(f"{printf} has no %d")
    return Path(
        printf[: match.start()] + f"{frame:0{int(match.group(1) or 1)}d}" + printf[match.end() :]
    )


class MediaPoolItem:
    def __init__(self, name: str, printf: str, first: int, last: int) -> None:
        self.name, self.printf, self.first, self.last = name, printf, first, last
        self.mattes: list[str] = []

    def GetName(self) -> str:
        return self.name

    def frame(self, number: int) -> np.ndarray:
        """The source file numbered ``number``."""
        image = oiio.ImageInput.open(str(_frame_file(self.printf, number)))
        pixels = image.read_image(format="float")
        image.close()
        return pixels


class TimelineItem:
    def __init__(self, item: MediaPoolItem, start: int, source_start: int, length: int) -> None:
        self.item, self.start, self.source_start, self.length = item, start, source_start, length

    def GetName(self) -> str:
        return self.item.GetName()

    def GetStart(self, subframe_precision: bool = False) -> int:
        return self.start

    def GetEnd(self, subframe_precision: bool = False) -> int:
        return self.start + self.length  # one past the last frame: start + duration

    def GetMediaPoolItem(self) -> MediaPoolItem:
        return self.item


class Timeline:
    def __init__(self, name: str, start: int) -> None:
        self.name, self.start = name, start
        self.tracks: list[list[TimelineItem]] = [[]]
        self.marks: dict[str, dict[str, int]] = {}
        self.playhead = start

    def GetName(self) -> str:
        return self.name

    def GetStartFrame(self) -> int:
        return self.start

    def GetEndFrame(self) -> int:
        return max(i.GetEnd() for track in self.tracks for i in track) - 1

    def GetMarkInOut(self) -> dict[str, dict[str, int]]:
        return dict(self.marks)

    def SetMarkInOut(self, mark_in: int, mark_out: int, type: str = "all") -> bool:
        self.marks["video"] = {"in": mark_in, "out": mark_out}
        return True

    def GetCurrentVideoItem(self) -> TimelineItem | None:
        return self.item_at(self.playhead)

    def item_at(self, frame: int, track: int = 0) -> TimelineItem | None:
        return next((i for i in self.tracks[track] if i.start <= frame < i.GetEnd()), None)

    def GetTrackCount(self, track_type: str) -> int:
        return len(self.tracks)

    def AddTrack(self, track_type: str, options: Any = None) -> bool:
        self.tracks.append([])
        return True

    def GetItemListInTrack(self, track_type: str, index: int) -> list[TimelineItem]:
        return list(self.tracks[index - 1])


class Folder:
    def __init__(self, name: str) -> None:
        self.name, self.clips, self.subfolders = name, [], []

    def GetName(self) -> str:
        return self.name

    def GetSubFolderList(self) -> list[Folder]:
        return list(self.subfolders)

    def GetClipList(self) -> list[MediaPoolItem]:
        return list(self.clips)


class MediaPool:
    def __init__(self, project: Project) -> None:
        self.project, self.root = project, Folder("Master")
        self.current = self.root

    def GetRootFolder(self) -> Folder:
        return self.root

    def AddSubFolder(self, folder: Folder, name: str) -> Folder:
        child = Folder(name)
        folder.subfolders.append(child)
        return child

    def SetCurrentFolder(self, folder: Folder) -> bool:
        self.current = folder
        return True

    def ImportMedia(self, clips: list[dict[str, Any]]) -> list[MediaPoolItem]:
        items = []
        for clip in clips:
            frames = range(clip["StartIndex"], clip["EndIndex"] + 1)
            if not all(_frame_file(clip["FilePath"], f).is_file() for f in frames):
                return []  # Resolve imports nothing and returns an empty list
            name = Path(clip["FilePath"]).name.replace("%", "")
            items.append(MediaPoolItem(name, clip["FilePath"], frames[0], frames[-1]))
        self.current.clips += items
        return items

    def AppendToTimeline(self, clips: list[dict[str, Any]]) -> list[TimelineItem]:
        timeline = self.project.timeline
        placed = []
        for clip in clips:
            length = clip["endFrame"] - clip["startFrame"] + 1
            item = TimelineItem(
                clip["mediaPoolItem"], clip["recordFrame"], clip["startFrame"], length
            )
            timeline.tracks[clip["trackIndex"] - 1].append(item)
            placed.append(item)
        return placed


class MediaStorage:
    def AddClipMattesToMediaPool(
        self, item: MediaPoolItem, paths: list[str], stereo_eye: str | None = None
    ) -> bool:
        if not all(Path(p).exists() for p in paths):
            return False
        item.mattes += paths
        return True


class Project:
    def __init__(self, timeline: Timeline, width: int, height: int) -> None:
        self.timeline, self.pool = timeline, MediaPool(self)
        self.settings = {
            "timelineResolutionWidth": str(width),
            "timelineResolutionHeight": str(height),
        }
        self.format, self.codec, self.mode = "mov", "H264", 0
        self.render_settings: dict[str, Any] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.rendered: list[tuple[int, int]] = []  # each job's timeline frames, for tests

    def GetCurrentTimeline(self) -> Timeline:
        return self.timeline

    def GetMediaPool(self) -> MediaPool:
        return self.pool

    def GetSetting(self, name: str) -> str:
        return self.settings[name]

    def GetRenderFormats(self) -> dict[str, str]:
        return {"QuickTime": "mov", "OpenEXR": "exr", "DPX": "dpx"}

    def GetRenderCodecs(self, render_format: str) -> dict[str, str]:
        return dict(CODECS) if render_format == "exr" else {"H.264": "H264"}

    def SetCurrentRenderFormatAndCodec(self, fmt: str, codec: str) -> bool:
        if codec not in self.GetRenderCodecs(fmt).values():
            return False
        self.format, self.codec = fmt, codec
        return True

    def SetCurrentRenderMode(self, mode: int) -> bool:
        self.mode = mode
        return True

    def SetRenderSettings(self, settings: dict[str, Any]) -> bool:
        known = {
            "SelectAllFrames",
            "MarkIn",
            "MarkOut",
            "TargetDir",
            "CustomName",
            "ExportVideo",
            "ExportAudio",
        }
        if not set(settings) <= known:
            return False
        self.render_settings.update(settings)
        return True

    def AddRenderJob(self) -> str:
        job_id = f"job-{len(self.jobs) + 1}"
        self.jobs[job_id] = {
            "settings": dict(self.render_settings),
            "format": self.format,
            "codec": self.codec,
            "mode": self.mode,
            "status": {"JobStatus": "Ready", "CompletionPercentage": 0},
        }
        return job_id

    def DeleteRenderJob(self, job_id: str) -> bool:
        return self.jobs.pop(job_id, None) is not None

    def StartRendering(self, job_ids: list[str], isInteractiveMode: bool = False) -> bool:
        self._stop.clear()
        self._thread = threading.Thread(target=self._render, args=(list(job_ids),))
        self._thread.start()
        return True

    def IsRenderingInProgress(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def StopRendering(self) -> None:
        self._stop.set()

    def GetRenderJobStatus(self, job_id: str) -> dict[str, Any]:
        return dict(self.jobs[job_id]["status"])

    def _render(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            job = self.jobs[job_id]
            settings, status = job["settings"], job["status"]
            first, last = settings["MarkIn"], settings["MarkOut"]
            self.rendered.append((first, last))
            pixel_type = "half" if "Half" in job["codec"] else "float"
            status["JobStatus"] = "Rendering"
            for n, frame in enumerate(range(first, last + 1)):
                if self._stop.is_set():
                    status["JobStatus"] = "Cancelled"
                    return
                item = self.timeline.item_at(frame)
                if item is None:
                    status.update(JobStatus="Failed", Error=f"no clip at frame {frame}")
                    return
                rgb = item.item.frame(item.source_start + frame - item.start)[:, :, :3]
                spec = oiio.ImageSpec(rgb.shape[1], rgb.shape[0], 3, pixel_type)
                spec.attribute("compression", "zip")
                target = Path(settings["TargetDir"]) / f"{settings['CustomName']}{frame:08d}.exr"
                out = oiio.ImageOutput.create(str(target))
                out.open(str(target), spec)
                out.write_image(np.ascontiguousarray(rgb))
                out.close()
                status["CompletionPercentage"] = int(100 * (n + 1) / (last - first + 1))
            status["JobStatus"] = "Complete"


class ProjectManager:
    def __init__(self, project: Project) -> None:
        self.project = project

    def GetCurrentProject(self) -> Project:
        return self.project


class Resolve:
    def __init__(self, project: Project) -> None:
        self.manager, self.storage = ProjectManager(project), MediaStorage()

    def GetProjectManager(self) -> ProjectManager:
        return self.manager

    def GetMediaStorage(self) -> MediaStorage:
        return self.storage


app: Resolve | None = None
"""What ``scriptapp("Resolve")`` returns: a test sets it (None: Resolve is not running)."""


def scriptapp(name: str) -> Resolve | None:
    return app if name == "Resolve" else None
