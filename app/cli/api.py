"""`ingest api`: serve the HTTP API with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress

from ingest.errors import ConfigError
from ingest.log import get_logger

log = get_logger(__name__)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api(args: argparse.Namespace) -> int:
    """Refuse to serve without INGEST_API_TOKEN unless only this machine can connect."""
    import uvicorn

    from app.api import create_app, deps_from_runtime
    from app.api.websub import websub_routes
    from app.runtime import Runtime

    ctx = Runtime.from_env()
    settings = ctx.settings
    if not settings.api_token:
        if not is_loopback(args.host):
            raise ConfigError(
                f"INGEST_API_TOKEN is not set: refusing to serve the API on {args.host} "
                "without authentication (set a token, or bind to 127.0.0.1)"
            )
        log.warning(
            "api.no_token",
            host=args.host,
            detail="INGEST_API_TOKEN is not set: the API is open to anyone on this machine",
        )
    try:
        app = create_app(
            deps_from_runtime(ctx),
            token=settings.api_token,
            extra_routes=websub_routes(ctx.store, settings, ctx.intake.accept),
            public_prefixes=("/websub/",),
        )
        log.info("api.start", host=args.host, port=args.port)
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            server_header=False,
        )
    finally:
        ctx.close()
    return 0
