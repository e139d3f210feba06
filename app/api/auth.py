"""Bearer-token authentication and a structlog access log, as pure ASGI middleware.

Health checks stay open (orchestrators probe them without secrets);
`/metrics` is open only with INGEST_METRICS_PUBLIC=1. With no token
configured (allowed only on loopback, see `ingest api`) nothing is checked.
Routes that authenticate their callers themselves (e.g. WebSub callbacks,
signed by the hub) are mounted under a public prefix.
"""

from __future__ import annotations

import hmac
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.common import error_response
from ingest.log import get_logger

log = get_logger("app.api")

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})


class BearerAuth:
    """401 unless `Authorization: Bearer <token>` matches (constant-time compare)."""

    def __init__(
        self,
        app: ASGIApp,
        token: str | None,
        *,
        metrics_public: bool = False,
        public_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.public = PUBLIC_PATHS | ({"/metrics"} if metrics_public else set())
        self.public_prefixes = public_prefixes

    def _is_public(self, path: str) -> bool:
        return path in self.public or any(path.startswith(p) for p in self.public_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None or self._is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    given = credentials.strip()
        if not given or not hmac.compare_digest(given, self.token):
            message = "missing bearer token" if not given else "invalid bearer token"
            response = error_response(
                401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="ingest"'}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


QUIET_PATHS = frozenset({"/healthz", "/readyz"})  # probed every few seconds by orchestrators


class AccessLog:
    """One structured log line per request (health probes left out): method, path, status, milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in QUIET_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            log.info(
                "api.request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.monotonic() - started) * 1000, 1),
            )
