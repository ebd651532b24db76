"""A host's colour-space name made concrete for the server.

A host may name its working space by a role (``scene_linear``) or an alias, which the
server's OpenColorIO config may map elsewhere: :func:`concrete_colorspace` turns it into the
space's own name in the host's config (:func:`ocio_config`, read with the PyOpenColorIO the
host ships, imported only when asked for).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

_OCIO_CONFIGS: dict[tuple[str, int], Any] = {}


def concrete_colorspace(config: Any, name: str) -> str:
    """The colour space ``name`` means in the host's OpenColorIO ``config`` (a role such as
    ``scene_linear`` or an alias becomes the space's own name), so the server, whose config
    may map the role elsewhere, converts what the host holds. Unchanged when the host's config
    is unknown (None) or does not know ``name``.

    OpenColorIO's ``Config.getColorSpace`` accepts "a color space name, role name, or alias"
    and returns None when the name is not found (OCIO 2 API docs, Config)."""
    if config is None or not name:
        return name
    try:
        space = config.getColorSpace(name)
    except Exception:  # a broken host config: the name as given
        return name
    return str(space.getName()) if space is not None else name


def ocio_config(path: str) -> Any:
    """The OpenColorIO config at ``path`` (a file or an ``ocio://`` built-in name), read with
    the PyOpenColorIO the host ships and kept while the file is unchanged; None when the host
    has no PyOpenColorIO or the config cannot be read."""
    try:
        ocio = importlib.import_module("PyOpenColorIO")
    except ImportError:
        return None
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        stamp = 0  # a built-in config, or a file that is not there (then None below)
    if (path, stamp) not in _OCIO_CONFIGS:
        try:
            _OCIO_CONFIGS[(path, stamp)] = ocio.Config.CreateFromFile(path)
        except Exception:  # PyOpenColorIO's errors share no base class with Python's
            _OCIO_CONFIGS[(path, stamp)] = None
    return _OCIO_CONFIGS[(path, stamp)]
