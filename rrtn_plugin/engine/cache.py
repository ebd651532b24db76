"""A memory-bounded store for the engine's intermediate results, shared by all sessions.

Entries are tensors keyed by everything they depend on (content hashes of the frames, the model,
the parameters), so an entry is valid wherever its key matches, in any session. The store keeps
a byte budget on the compute device and one in host memory: when the device budget is exceeded
the least recently used entries move to host memory, and when that is full they are dropped.
With no host budget (the CPU case, where both are the same memory) evicted entries are dropped
at once. A closed session's entries may be kept for later sessions (:meth:`WorkCache.release`
with ``keep``), owned by no one. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import torch

SHARED = ""
"""The owner of entries kept after their session closed (:meth:`WorkCache.release`)."""


@dataclass
class CacheUsage:
    """Bytes and entries held for one owner (or in all), and how lookups went."""

    device_bytes: int = 0
    host_bytes: int = 0
    entries: int = 0
    hits: int = 0
    misses: int = 0


@dataclass
class _Entry:
    value: torch.Tensor
    owner: str
    size: int
    on_device: bool


class WorkCache:
    """LRU tensor store with a device budget and a host budget (bytes)."""

    def __init__(self, *, device: torch.device, device_budget: int, host_budget: int = 0) -> None:
        self.device = device
        self.device_budget = device_budget
        self.host_budget = host_budget
        self.two_tiers = host_budget > 0
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._usage: dict[str, CacheUsage] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, *, owner: str) -> torch.Tensor | None:
        """The entry for ``key`` on the device (brought back from host memory), or None."""
        with self._lock:
            usage = self._usage.setdefault(owner, CacheUsage())
            entry = self._entries.get(key)
            if entry is None:
                usage.misses += 1
                return None
            usage.hits += 1
            self._entries.move_to_end(key)
            if not entry.on_device:
                self._account(entry, -1)
                entry.value = entry.value.to(self.device, non_blocking=True)
                entry.on_device = True
                self._account(entry, +1)
                self._fit()
            return entry.value

    def put(self, key: Hashable, value: torch.Tensor, *, owner: str) -> None:
        """Store ``value`` (on the device) under ``key``, evicting as the budgets require."""
        size = value.element_size() * value.nelement()
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._account(old, -1)
            entry = _Entry(value.detach(), owner, size, on_device=True)
            self._entries[key] = entry
            self._account(entry, +1)
            self._fit()

    def release(self, owner: str, *, keep: bool = False) -> None:
        """Let go of every entry stored by ``owner`` (a closed session): drop them, or with
        ``keep`` leave them to whichever session asks for the same work (keys name content, so
        they stay valid), owned by :data:`SHARED` and evicted like any other entry."""
        with self._lock:
            for key in [k for k, e in self._entries.items() if e.owner == owner]:
                entry = self._entries[key]
                self._account(entry, -1)
                if keep:
                    entry.owner = SHARED
                    self._account(entry, +1)
                else:
                    del self._entries[key]
            gone = self._usage.pop(owner, None)
            if gone is not None and owner != SHARED:  # the totals keep counting its lookups
                shared = self._usage.setdefault(SHARED, CacheUsage())
                shared.hits += gone.hits
                shared.misses += gone.misses

    def usage(self, owner: str | None = None) -> CacheUsage:
        """Figures for ``owner``, or the sum over all owners."""
        with self._lock:
            if owner is not None:
                u = self._usage.get(owner, CacheUsage())
                return CacheUsage(u.device_bytes, u.host_bytes, u.entries, u.hits, u.misses)
            total = CacheUsage()
            for u in self._usage.values():
                total.device_bytes += u.device_bytes
                total.host_bytes += u.host_bytes
                total.entries += u.entries
                total.hits += u.hits
                total.misses += u.misses
            return total

    def _account(self, entry: _Entry, sign: int) -> None:
        usage = self._usage.setdefault(entry.owner, CacheUsage())
        if entry.on_device:
            usage.device_bytes += sign * entry.size
        else:
            usage.host_bytes += sign * entry.size
        usage.entries += sign

    def _total(self, on_device: bool) -> int:
        return sum(e.size for e in self._entries.values() if e.on_device == on_device)

    def _fit(self) -> None:
        """Demote least recently used device entries to host memory (or drop them) until the
        device budget holds, then drop least recently used host entries until that holds."""
        device_bytes = self._total(True)
        for key in list(self._entries):
            if device_bytes <= self.device_budget:
                break
            entry = self._entries[key]
            if not entry.on_device:
                continue
            self._account(entry, -1)
            device_bytes -= entry.size
            if self.two_tiers and entry.size <= self.host_budget:
                entry.value = entry.value.to("cpu")
                entry.on_device = False
                self._account(entry, +1)
            else:
                del self._entries[key]
        host_bytes = self._total(False)
        for key in list(self._entries):
            if host_bytes <= self.host_budget:
                break
            entry = self._entries[key]
            if entry.on_device:
                continue
            self._account(entry, -1)
            host_bytes -= entry.size
            del self._entries[key]
