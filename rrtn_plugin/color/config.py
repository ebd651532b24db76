"""Finding the OpenColorIO config and naming colour spaces in it.

``$OCIO`` is honoured; without it the built-in ``ocio://studio-config-latest`` is used (OCIO's
``CreateFromEnv`` would silently give a bare config instead). Names may be colour-space names,
aliases or roles; an unknown name is an error listing the closest ones.
"""

from __future__ import annotations

import difflib
import os

import PyOpenColorIO as ocio

from rrtn_plugin.errors import RRTNError

BUILTIN_CONFIG = "ocio://studio-config-latest"
WORKING_SPACE = "sRGB Encoded Rec.709 (sRGB)"
_WORKING_ALIASES = (
    WORKING_SPACE,
    "srgb_tx",
    "sRGB - Texture",
    "Utility - sRGB - Texture",
    "srgb_texture",
    "sRGB",
)


def load_config(source: str | None = None) -> ocio.Config:
    """The config at ``source`` (a path or ``ocio://`` URI), else ``$OCIO``, else built-in."""
    chosen = source or os.environ.get("OCIO") or BUILTIN_CONFIG
    try:
        return ocio.Config.CreateFromFile(chosen)
    except Exception as exc:  # OCIO's ExceptionMissingFile is not an ocio.Exception
        origin = "--ocio-config" if source else ("$OCIO" if os.environ.get("OCIO") else "built-in")
        raise RRTNError(f"cannot load the OpenColorIO config {chosen} ({origin}): {exc}") from exc


def resolve_colorspace(config: ocio.Config, name: str) -> str:
    """The canonical name of colour space, alias or role ``name`` in ``config``."""
    space = config.getColorSpace(name)
    if space is None:
        known = [cs.getName() for cs in config.getColorSpaces()]
        known += [role for role, _ in config.getRoles()]
        close = difflib.get_close_matches(name, known, n=4, cutoff=0.4)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise RRTNError(
            f"colour space '{name}' is not in the OpenColorIO config '{config.getName()}'{hint}"
        )
    canonical: str = space.getName()
    return canonical


def working_colorspace(config: ocio.Config, name: str | None = None) -> str:
    """The sRGB-encoded Rec.709 space the network works in (or ``name`` when given)."""
    if name:
        return resolve_colorspace(config, name)
    for candidate in _WORKING_ALIASES:
        space = config.getColorSpace(candidate)
        if space is not None:
            found: str = space.getName()
            return found
    raise RRTNError(
        f"the OpenColorIO config '{config.getName()}' has no sRGB-encoded Rec.709 "
        "space: name the config's equivalent with --working-colorspace"
    )
