"""A host's version, as the fields its API reports, checked against what an adapter needs."""

from __future__ import annotations

from collections.abc import Sequence


def version_at_least(version: Sequence[object] | None, wanted: tuple[int, ...]) -> bool:
    """Whether a host's version fields (``[19, 1, 3, 7, ""]``) reach ``wanted``."""
    numbers = []
    for part in version or ():
        try:
            numbers.append(int(str(part)))
        except ValueError:
            break
    return tuple(numbers[: len(wanted)]) >= wanted
