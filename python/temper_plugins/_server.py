"""What every Temper plug-in server shares: the shared-token check, message limits, binding.

Callers must send the metadata `authorization: Bearer <token>`; anything else is answered
UNAUTHENTICATED before the service sees it. The token is compared in constant time and never
logged.
"""

from __future__ import annotations

import hmac
import logging
import os
from concurrent import futures
from typing import Callable, Optional

import grpc

log = logging.getLogger("temper_plugins")

#: The default limit on one message either way: 16 MiB, as on the Rust side.
DEFAULT_MAX_MESSAGE_BYTES = 16 << 20


def resolve_token(token: Optional[str], token_env: str) -> str:
    """`token`, else the value of `$token_env`; it must be non-empty visible ASCII."""
    if token is None:
        token = os.environ.get(token_env)
        if token is None:
            raise ValueError(
                f"no shared token: pass token=... or set ${token_env} to the token Temper uses"
            )
    if not token or not all(33 <= ord(ch) <= 126 for ch in token):
        raise ValueError(
            "invalid shared token: use a non-empty string of visible ASCII characters (no spaces)"
        )
    return token


class TokenCheck(grpc.ServerInterceptor):
    """Lets a call through only when it carries `authorization: Bearer <token>`."""

    def __init__(self, token: str):
        self._expected = f"Bearer {token}".encode()

    def intercept_service(self, continuation, handler_call_details):
        metadata = dict(handler_call_details.invocation_metadata or ())
        sent = metadata.get("authorization")
        if sent is not None and hmac.compare_digest(str(sent).encode(), self._expected):
            return continuation(handler_call_details)
        message = (
            "missing `authorization: Bearer <token>` metadata"
            if sent is None
            else "wrong shared token in `authorization` metadata"
        )

        def deny(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        # Every Temper plug-in method is unary-unary.
        return grpc.unary_unary_rpc_method_handler(deny)


class RunningServer:
    """A started plug-in server: its `port`, `wait()` and `stop()`."""

    def __init__(self, server: grpc.Server, host: str, port: int):
        self.server = server
        self.host = host
        self.port = port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def wait(self) -> None:
        """Blocks until the server stops; Ctrl-C stops it."""
        try:
            self.server.wait_for_termination()
        except KeyboardInterrupt:
            self.stop()

    def stop(self, grace: float = 1.0) -> None:
        """Stops accepting calls and lets running ones finish for `grace` seconds."""
        self.server.stop(grace).wait()


def start(
    register: Callable[[grpc.Server], None],
    *,
    host: str,
    port: int,
    token: str,
    max_message_bytes: int,
    max_workers: int,
) -> RunningServer:
    """Starts a server with the token check and limits; `register` adds the servicer."""
    if max_message_bytes < 1024:
        raise ValueError(f"max_message_bytes = {max_message_bytes}: must be >= 1024")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers),
        interceptors=[TokenCheck(token)],
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
    )
    register(server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as e:
        raise OSError(f"cannot listen on {host}:{port}: {e}") from None
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    log.info("listening on %s:%d", host, bound)
    return RunningServer(server, host, bound)
