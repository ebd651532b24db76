"""Whether a result placed in a host's document is still what its source would give.

A host keeps each result's recipe beside it (:func:`new_recipe`: what it was made from, as
JSON data: the source's inputs, the frames, their context, the source files' stamps, the
settings). :func:`stale_reasons` compares a recipe with its source as it is now and says, in
the user's words, what changed: the source's files, frame range, place in time or colour
space (:data:`SOURCE_CHANGES`), its restored frames gone, its files rewritten on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rrtn_plugin.client.library import frame_path
from rrtn_plugin.client.sequences import files_identity

SOURCE_CHANGES = {
    "files": "the source's files changed",
    "numbers": "the source's frame range changed",
    "scene_frame": "the source moved in time",
    "colorspace": "the source's colour space changed",
}
"""Each part of a source's inputs → what to tell the user when it differs."""
REWRITTEN = "the source's files were rewritten"
MISSING = "its restored frames are missing"


def new_recipe(
    *,
    kind: str,
    source: str,
    inputs: Mapping[str, object],
    frames: tuple[int, int],
    context: tuple[int, int],
    files: str,
    settings: Mapping[str, object],
) -> dict[str, Any]:
    """What a result of ``source`` (a ``kind`` of host item, by name) is made from: its
    ``inputs`` (see :func:`what_changed`), ``frames``, ``context``, the ``settings``, and the
    stamps of the source's ``files`` (an absolute pattern) over the context, without their
    folder, so a project moved as a whole stays up to date."""
    low, high = context
    return {
        "kind": kind,
        "source": source,
        "inputs": dict(inputs),
        "frames": list(frames),
        "context": list(context),
        "stamps": files_identity(files, range(low, high + 1), folder=False),
        "settings": dict(settings),
    }


def what_changed(
    saved: Mapping[str, object],
    now: Mapping[str, object],
    resolve: Callable[[str], str],
) -> list[str]:
    """What differs between a result's saved inputs and its source's inputs now, as lines for
    the user (empty: up to date). File paths are compared once ``resolve``d (a relative and
    an absolute path to the same files are the same files)."""
    reasons = []
    for part, reason in SOURCE_CHANGES.items():
        before, after = saved.get(part), now.get(part)
        if part == "files" and isinstance(before, str) and isinstance(after, str):
            before, after = resolve(before), resolve(after)
        if before != after:
            reasons.append(reason)
    return reasons


def stale_reasons(
    recipe: Mapping[str, Any],
    now: Mapping[str, object],
    resolve: Callable[[str], str],
    *,
    files: str | None = None,
) -> list[str]:
    """Why the result of ``recipe`` is out of date, its source's inputs being ``now`` (empty:
    up to date). Given the source's ``files`` (an absolute pattern), their stamps are read and
    compared too; otherwise a rewrite found by an earlier check stands. ``resolve`` makes the
    recipe's paths absolute."""
    reasons = what_changed(recipe.get("inputs", {}), now, resolve)
    first, last = recipe["frames"]
    restored = resolve(recipe["result"])
    if not all(frame_path(restored, f).is_file() for f in (first, last)):
        reasons.append(MISSING)
    if files is not None and not reasons:
        low, high = recipe["context"]
        if files_identity(files, range(low, high + 1), folder=False) != recipe.get("stamps"):
            reasons.append(REWRITTEN)
    elif REWRITTEN in recipe.get("stale", []) and REWRITTEN not in reasons:
        reasons.append(REWRITTEN)
    return reasons
