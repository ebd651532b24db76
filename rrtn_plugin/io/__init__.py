"""Files in and out. Every output is written atomically (:func:`atomic_output`)."""

from rrtn_plugin.io.atomic import atomic_output

__all__ = ["atomic_output"]
