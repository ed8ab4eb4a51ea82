"""How much two texts (or two byte strings) share at their start and their end,
found by binary search over C comparisons: a large body sent again with a few
bytes changed is compared in microseconds, not character by character."""

from __future__ import annotations

from typing import AnyStr


def shared_start(a: AnyStr, b: AnyStr) -> int:
    """How many characters (bytes) ``a`` and ``b`` share from their start."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a.startswith(b[low:mid], low):
            low = mid
        else:
            high = mid - 1
    return low


def shared_end(a: AnyStr, b: AnyStr, at_most: int) -> int:
    """How many characters (bytes), up to ``at_most``, ``a`` and ``b`` share at
    their end."""
    low, high = 0, max(at_most, 0)
    while low < high:
        mid = (low + high + 1) // 2
        if a.endswith(b[len(b) - mid : len(b) - low], 0, len(a) - low):
            low = mid
        else:
            high = mid - 1
    return low
