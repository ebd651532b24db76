"""Building and running the gRPC server: address, TLS, token, health, reflection, idle reaping.

The server listens on loopback (``127.0.0.1:50051``) unless told otherwise; listening on any
other TCP address requires a token, which clients send as ``authorization: Bearer <token>``
metadata (the standard health check is exempt, for load balancers). Unix sockets
(``unix:///path.sock``) are guarded by file permissions. TLS is on when a certificate and key are
given.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
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
from rrtn_plugin.protocol.rrtn.v1 import restorer_pb2_grpc as pb_grpc
from rrtn_plugin.server.service import RestoreService
from rrtn_plugin.server.servicer import Servicer

log = logging.getLogger("rrtn_plugin.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Restorer"].full_name
HEALTH_PREFIX = "/grpc.health.v1.Health/"


@dataclass(frozen=True)
class ServerSecurity:
    """Who may talk to the server: a bearer token, and a TLS certificate and key (PEM)."""

    token: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None


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
    """Refuses calls without ``authorization: Bearer <token>`` (UNAUTHENTICATED)."""

    def __init__(self, token: str) -> None:
        self.expected = f"Bearer {token}"

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

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
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
    """A started server; :meth:`stop` ends it (and its idle-session reaper)."""

    def __init__(
        self, server: grpc.Server, service: RestoreService, address: str, port: int
    ) -> None:
        self.server, self.service, self.address, self.port = server, service, address, port
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
        self.server.stop(grace).wait()


def start_server(
    service: RestoreService,
    *,
    address: str = DEFAULT_ADDRESS,
    security: ServerSecurity | None = None,
    workers: int = 16,
) -> RunningServer:
    """Start serving ``service`` on ``address`` (``host:port`` or ``unix:///path.sock``).

    Raises:
        RRTNError: a non-loopback address without a token, unreadable TLS files, a port in use.
    """
    security = security or ServerSecurity()
    if not is_loopback(address) and not security.token:
        raise RRTNError(
            f"refusing to listen on {address} without a token: give --token-file "
            "or set RRTN_TOKEN (or listen on 127.0.0.1 or a unix socket)"
        )
    interceptors = [TokenInterceptor(security.token)] if security.token else []
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    pb_grpc.add_RestorerServicer_to_server(Servicer(service), server)
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
                [(security.tls_key.read_bytes(), security.tls_cert.read_bytes())]
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
    return RunningServer(server, service, address, port)
