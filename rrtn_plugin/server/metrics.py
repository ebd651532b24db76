"""What a render box's operators watch: the server's figures in Prometheus' text format.

:class:`ServerMetrics` keeps the counters the servicer feeds (calls by method and status,
frames restored, seconds per stage of the work) and reads the rest from the service when it is
scraped (open and busy sessions, cache bytes, entries, hits and misses, the work kept from
closed sessions, frames held, the host bytes charged, the memory budgets, the process's resident
memory now and at its peak). :meth:`ServerMetrics.serve` exposes them over HTTP
(``rrtn-plugin serve --metrics-port``); each server has its own registry, so tests and several
servers in one process do not share figures.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from rrtn_plugin.engine.cache import SHARED

if TYPE_CHECKING:
    from rrtn_plugin.server.service import RestoreService

STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
"""Seconds: from a cached window (milliseconds) to a long 4K window on a CPU (minutes)."""


class ServerMetrics:
    """The figures of one server; thread-safe (prometheus_client's metrics are)."""

    def __init__(self, service: RestoreService) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "rrtn_requests",
            "gRPC calls handled, by method and final status (refused calls included)",
            ["method", "status"],
            registry=self.registry,
        )
        self.frames = Counter(
            "rrtn_frames_restored",
            "frames restored and returned or written",
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "rrtn_stage_seconds",
            "seconds spent per stage of a restore (read, flow, restore, write)",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ServiceCollector(service))
        self._http: object | None = None
        self._lock = threading.Lock()

    def record_call(self, method: str, status: str) -> None:
        """Count one finished call (``status``: a gRPC status name such as "OK")."""
        self.calls.labels(method=method, status=status).inc()

    def record_stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage=stage).observe(seconds)

    def record_frames(self, count: int) -> None:
        self.frames.inc(count)

    def serve(self, port: int, address: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` over HTTP on ``address:port`` (0: any free port); returns the port."""
        with self._lock:
            server, _thread = start_http_server(port, addr=address, registry=self.registry)
            self._http = server
            return int(server.server_port)

    def close(self) -> None:
        with self._lock:
            server, self._http = self._http, None
        if server is not None:
            server.shutdown()  # type: ignore[attr-defined]
            server.server_close()  # type: ignore[attr-defined]


class _ServiceCollector(Collector):
    """Figures read from the service at scrape time."""

    def __init__(self, service: RestoreService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        service = self.service
        sessions = service.sessions()
        usage = service.cache.usage()
        yield _gauge("rrtn_sessions_open", "sessions open", len(sessions))
        yield _gauge(
            "rrtn_sessions_busy", "sessions running a restore", sum(s.busy for s in sessions)
        )
        yield _gauge(
            "rrtn_session_frame_bytes",
            "host bytes held by sessions' frames",
            sum(s.given_bytes() for s in sessions),
        )
        shared = service.cache.usage(SHARED)
        yield _gauge(
            "rrtn_host_held_bytes",
            "host bytes charged to the host budget (sessions' plans and frames, frames arriving)",
            service.held_bytes(),
        )
        yield _gauge(
            "rrtn_cache_shared_bytes",
            "cached work kept from closed sessions for later ones (device and host)",
            shared.device_bytes + shared.host_bytes,
        )
        yield _gauge("rrtn_cache_device_bytes", "cached work on the device", usage.device_bytes)
        yield _gauge("rrtn_cache_host_bytes", "cached work moved to host memory", usage.host_bytes)
        yield _gauge("rrtn_cache_entries", "cached pieces of work", usage.entries)
        yield _gauge("rrtn_cache_hits", "cache lookups that found the work", usage.hits)
        yield _gauge("rrtn_cache_misses", "cache lookups that did not", usage.misses)
        yield _gauge("rrtn_memory_budget_bytes", "device budget for work", service.memory_budget)
        yield _gauge("rrtn_host_budget_bytes", "host budget for frames", service.host_budget)
        yield _gauge("rrtn_process_max_rss_bytes", "the process's peak resident memory", _max_rss())
        rss = _rss()
        if rss is not None:
            yield _gauge("rrtn_process_rss_bytes", "the process's resident memory now", rss)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _rss() -> int | None:
    """Resident set size now, in bytes (Linux; None elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _max_rss() -> int:
    """Peak resident set size in bytes (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)
