"""Building and running the gRPC server: address, TLS, token, health, reflection, idle reaping,
metrics, structured logs and the drain on shutdown.

The server listens on loopback (``127.0.0.1:50051``) unless told otherwise; listening on any
other TCP address requires a token, which clients send as ``authorization: Bearer <token>``
metadata (the standard health check is exempt, for load balancers). Unix sockets
(``unix:///path.sock``) are guarded by file permissions. TLS is on when a certificate and key are
given. It runs more threads than it admits Restore calls (their slots), so health checks and
the short calls always find one. :meth:`RunningServer.drain` is the graceful stop: it reports
NOT_SERVING, refuses new calls, lets running ones finish within a bound, then cancels them.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rrtn_plugin.errors import RRTNError
from rrtn_plugin.protocol.framing import DEFAULT_ADDRESS, MAX_MESSAGE_BYTES
from rrtn_plugin.protocol.rrtn.v1 import restorer_pb2 as pb
from rrtn_plugin.server.metrics import ServerMetrics
from rrtn_plugin.server.service import RestoreService
from rrtn_plugin.server.servicer import Servicer, add_to_server, log_call

log = logging.getLogger("rrtn_plugin.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Restorer"].full_name
SPARE_WORKERS = 8
"""Threads beyond the Restore slots: for health checks, server info and sessions."""
HEALTH_PREFIX = "/grpc.health.v1.Health/"


@dataclass(frozen=True)
class ServerSecurity:
    """Who may talk to the server: a bearer token, and a TLS certificate and key (PEM)."""

    token: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None


def tls_pair(cert: Path, key: Path) -> tuple[bytes, bytes]:
    """(key, certificate chain) PEM bytes, checked to be a certificate, a private key, and a
    matching pair, so that a wrong file is named here rather than reported by gRPC as a failure
    to bind.

    Raises:
        RRTNError: a file is unreadable, holds the other kind of PEM block (swapped options),
            or the key does not belong to the certificate.
    """
    try:
        cert_pem, key_pem = cert.read_bytes(), key.read_bytes()
    except OSError as exc:
        raise RRTNError(f"cannot read the TLS files: {exc}") from exc
    if b"PRIVATE KEY-----" in cert_pem and b"CERTIFICATE-----" in key_pem:
        raise RRTNError(
            f"--tls-cert {cert} holds a private key and --tls-key {key} a certificate: "
            "the two are swapped"
        )
    if b"-----BEGIN CERTIFICATE-----" not in cert_pem:
        raise RRTNError(f"--tls-cert {cert} holds no PEM certificate (BEGIN CERTIFICATE)")
    if b"PRIVATE KEY-----" not in key_pem:
        raise RRTNError(f"--tls-key {key} holds no PEM private key (BEGIN ... PRIVATE KEY)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise RRTNError(
            f"--tls-key {key} does not belong to the certificate {cert}, or one of them is "
            f"damaged ({exc.reason or exc})"
        ) from exc
    return key_pem, cert_pem


def is_loopback(address: str) -> bool:
    """Whether a listen address only accepts local connections (loopback or Unix socket)."""
    if address.startswith("unix:"):
        return True
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without ``authorization: Bearer <token>`` (UNAUTHENTICATED), logging each
    refusal (method and peer; never the token sent) and counting it in ``metrics``."""

    def __init__(self, token: str, metrics: ServerMetrics | None = None) -> None:
        self.expected = f"Bearer {token}"
        self.metrics = metrics

    def intercept_service(
        self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        if details.method.startswith(HEALTH_PREFIX):
            return continuation(details)
        metadata = dict(details.invocation_metadata or ())
        if metadata.get("authorization") == self.expected:
            return continuation(details)
        handler = continuation(details)
        if handler is None:
            return None

        method = details.method.rsplit("/", 1)[-1]

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            log_call(method, context.peer(), "UNAUTHENTICATED", 0.0, "missing or wrong token")
            if self.metrics is not None:
                self.metrics.record_call(method, "UNAUTHENTICATED")
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or wrong token (send 'authorization: Bearer <token>')",
            )

        # A refusal must be a handler of the same kind as the method's.
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(deny)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(deny)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(deny)
        return grpc.unary_unary_rpc_method_handler(deny)


class RunningServer:
    """A started server; :meth:`stop` ends it (and its idle-session reaper), :meth:`drain`
    ends it gracefully."""

    def __init__(
        self,
        server: grpc.Server,
        service: RestoreService,
        address: str,
        port: int,
        metrics: ServerMetrics,
        metrics_port: int | None = None,
        health: health.HealthServicer | None = None,
    ) -> None:
        self.server, self.service, self.address, self.port = server, service, address, port
        self.metrics, self.metrics_port = metrics, metrics_port
        self.health = health
        self._stopped = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="rrtn-reaper", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        period = max(1.0, min(60.0, self.service.limits.idle_timeout / 4))
        while not self._stopped.wait(period):
            self.service.reap_idle()

    def wait(self) -> None:
        self.server.wait_for_termination()

    def stop(self, grace: float | None = 2.0) -> None:
        self._stopped.set()
        self.service.cancel_all()
        self.server.stop(grace).wait()
        self.metrics.close()

    def drain(self, seconds: float) -> bool:
        """Stop gracefully within about ``seconds`` + 1 s: health says NOT_SERVING, new calls
        are refused, running ones have ``seconds`` to finish, then they are cancelled and their
        work stops at its next step. Whether every restore had ended by then."""
        started = time.monotonic()
        busy = sum(s.busy for s in self.service.sessions())
        log.info("draining: %d restore(s) running, %g s to finish", busy, seconds)
        if self.health is not None:
            for name in ("", SERVICE_NAME):
                self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self._stopped.set()
        # New calls are refused now; those still running after ``seconds`` are cancelled.
        self.server.stop(seconds).wait(seconds + 0.5)
        self.service.cancel_all()
        idle = self.service.wait_idle(1.0)
        self.metrics.close()
        log.info(
            "drained in %.2f s%s",
            time.monotonic() - started,
            "" if idle else " (a restore was still stopping)",
        )
        return idle


def start_server(
    service: RestoreService,
    *,
    address: str = DEFAULT_ADDRESS,
    security: ServerSecurity | None = None,
    workers: int | None = None,
    metrics_port: int | None = None,
    metrics_address: str = "127.0.0.1",
) -> RunningServer:
    """Start serving ``service`` on ``address`` (``host:port`` or ``unix:///path.sock``), and
    its Prometheus metrics on ``metrics_address:metrics_port`` when a port is given (0: any).

    ``workers`` (threads for calls) defaults to the service's Restore slots plus
    :data:`SPARE_WORKERS`, so that Restore calls can never take every thread.

    Raises:
        RRTNError: a non-loopback address without a token, unreadable TLS files, a port in use.
    """
    security = security or ServerSecurity()
    if not is_loopback(address) and not security.token:
        raise RRTNError(
            f"refusing to listen on {address} without a token: give --token-file "
            "or set RRTN_TOKEN (or listen on 127.0.0.1 or a unix socket)"
        )
    metrics = ServerMetrics(service)
    interceptors = [TokenInterceptor(security.token, metrics)] if security.token else []
    workers = workers or service.limits.restore_slots + SPARE_WORKERS
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    add_to_server(Servicer(service, metrics), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    try:
        if security.tls_cert or security.tls_key:
            if not (security.tls_cert and security.tls_key):
                raise RRTNError("TLS needs both a certificate and a key")
            credentials = grpc.ssl_server_credentials(
                [tls_pair(security.tls_cert, security.tls_key)]
            )
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except OSError as exc:
        raise RRTNError(f"cannot read the TLS files: {exc}") from exc
    except RuntimeError as exc:
        raise RRTNError(f"cannot listen on {address}: {exc}") from exc
    if port == 0 and not address.startswith("unix:"):
        raise RRTNError(f"cannot listen on {address} (address in use or not available)")
    server.start()
    log.info(
        "serving on %s%s (%s), models: %s",
        address,
        " with TLS" if security.tls_cert else "",
        service.device,
        ", ".join(service.models),
    )
    served_metrics = None
    if metrics_port is not None:
        try:
            served_metrics = metrics.serve(metrics_port, metrics_address)
        except OSError as exc:
            server.stop(None)
            raise RRTNError(
                f"cannot serve metrics on {metrics_address}:{metrics_port}: {exc}"
            ) from exc
        log.info("metrics on http://%s:%d/metrics", metrics_address, served_metrics)
    return RunningServer(server, service, address, port, metrics, served_metrics, health_servicer)


class JsonLogFormatter(logging.Formatter):
    """Log records as JSON lines: time, level, logger, message, and a call's fields (method,
    peer, status, seconds, detail, session …) when the record is one (``serve --log-json``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "call", {}))
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry)
