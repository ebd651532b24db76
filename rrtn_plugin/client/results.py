"""Where a host's restored frames live, and how its document names them.

A result is read wherever the host's document is opened: on this machine, by another artist,
on a render farm. So every host puts results by one rule (:func:`result_root`): the folder the
user configured, else ``$RRTN_CACHE`` (a shared folder), else :data:`CACHE_FOLDER` beside the
saved document, which moves with it; never a cache folder only this user reads, except for a
host whose documents are no files (Resolve keeps projects in a database). The document keeps a
result's path relative to its own folder when it can (:func:`document_path`). Inside the root,
a result's folder and files are named by :func:`slug` and :func:`digest`
(:func:`sequence_in`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from rrtn_plugin.errors import ErrorKind, RRTNError

CACHE_FOLDER = "rrtn_cache"
"""The folder beside a host's saved document that holds its results."""
RELATIVE = "//"
"""How a configured folder says it is relative to the document's folder (Blender's way)."""


@dataclass(frozen=True)
class ResultRule:
    """How a host takes part in :func:`result_root`.

    ``document``: what its user saves (".blend", "nuke document"); empty for a host whose
    documents are no files, whose results then go to the user's cache folder. ``setting``:
    where its user names a shared folder. ``subfolder``: the host's folder under
    ``$RRTN_CACHE`` (none: the folder itself).
    """

    document: str
    setting: str
    subfolder: str = ""


def result_root(configured: str, environment: str, document: str, rule: ResultRule) -> Path:
    """The folder that holds a host's results.

    ``configured`` (the host's own setting) wins, then ``environment`` (``$RRTN_CACHE``, in
    ``rule.subfolder``); either may be absolute, ``~``, or relative to the document's folder
    (``//``). Else the results go beside the saved ``document`` in :data:`CACHE_FOLDER`. A
    host without document files uses :func:`user_cache_root`; an unsaved document with
    nothing configured has no such place (RRTNError saying what to do).
    """
    base = Path(os.path.abspath(document)).parent if document else None
    what = rule.document or "document"
    for folder, subfolder in ((configured.strip(), ""), (environment.strip(), rule.subfolder)):
        if not folder:
            continue
        if folder.startswith(RELATIVE):
            if base is None:
                raise RRTNError(
                    f"the cache folder '{folder}' is relative to the {what}: save the {what} first",
                    kind=ErrorKind.INVALID_INPUT,
                )
            root = Path(os.path.normpath(base / folder[len(RELATIVE) :]))
        else:
            root = Path(folder).expanduser().absolute()
        return root / subfolder if subfolder else root
    if base is not None:
        return base / CACHE_FOLDER
    if not rule.document:
        return user_cache_root() / rule.subfolder
    raise RRTNError(
        f"save the {what} first: the restored frames are written beside it (in "
        f"{CACHE_FOLDER}/), where other artists and a render farm find them; or name a "
        f"shared folder in {rule.setting} or $RRTN_CACHE",
        kind=ErrorKind.INVALID_INPUT,
    )


def user_cache_root() -> Path:
    """This user's cache folder (``~/.cache/rrtn-plugin`` on Linux): only this user on this
    machine reads it."""
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "rrtn-plugin"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "rrtn-plugin"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rrtn-plugin"


def document_path(path: str | os.PathLike[str], document: str, *, prefix: str) -> str:
    """``path`` as a document should keep it: ``prefix`` and the path relative to the
    document's folder when it lies in that folder, so it moves with the document; else
    absolute (a shared folder, another drive)."""
    absolute = os.path.abspath(path)
    if document:
        base = os.path.dirname(os.path.abspath(document))
        try:
            relative = os.path.relpath(absolute, base)
        except ValueError:  # another drive (Windows)
            return absolute
        if relative != ".." and not relative.startswith(".." + os.sep):
            return prefix + relative.replace(os.sep, "/")
    return absolute


def slug(name: str) -> str:
    """A name safe in file names."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "rrtn"


def digest(described: object) -> str:
    """A short digest of ``described`` (JSON data): the part of a result's folder name that
    changes whenever what decides the result does."""
    text = json.dumps(described, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def sequence_in(folder: Path, name: str, last: int, *, suffix: str = "") -> str:
    """The EXR sequence ``name`` (slugged, with ``suffix``) in ``folder``: a ``####`` pattern
    with at least four digits, enough for frame ``last``."""
    digits = max(4, len(str(abs(last))))
    return str(folder / f"{slug(name)}{suffix}.{'#' * digits}.exr")
