"""Packages whose names load on first use: :func:`lazy_names`.

``rrtn_plugin.model`` and ``rrtn_plugin.color`` re-export names from modules that import torch
and OpenColorIO. A front end that only needs a light module of theirs (the flow sources, the
colour modes) must not pay for those imports, so the packages give their heavy names through
a module ``__getattr__`` (PEP 562) made here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_names(package: str, names: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``package.<module>`` for each name
    in ``names`` (name → module) when the name is first asked for, and keeps it in the
    package's namespace so the next lookup is a plain one."""

    def load(name: str) -> object:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        setattr(importlib.import_module(package), name, value)
        return value

    return load
