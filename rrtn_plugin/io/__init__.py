"""Files in and out. Every output is written atomically (:func:`atomic_output`)."""

from rrtn_plugin.io.atomic import atomic_output, remove_stale_temporaries

__all__ = ["atomic_output", "remove_stale_temporaries"]
