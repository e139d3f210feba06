"""/healthz (the process answers), /readyz (Redis and the database answer), /metrics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.common import call, deps
from ingest import metrics
from ingest.log import get_logger
from ingest.models import utcnow

log = get_logger(__name__)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """503 naming what does not answer, so an orchestrator stops routing here until it does."""
    d = deps(request)
    checks: dict[str, str] = {}
    for name, ping in (("redis", d.redis.ping), ("database", d.store.ping)):
        try:
            await call(ping)
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; the reason goes into the answer
            checks[name] = f"{type(exc).__name__}: {exc}"
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        log.warning("api.not_ready", **checks)
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status_code=200 if ready else 503
    )


async def metrics_endpoint(request: Request) -> Response:
    d = deps(request)

    def collect() -> bytes:
        now = utcnow()
        stats = d.store.delivery_stats(now)
        oldest = (now - stats.oldest_due_at).total_seconds() if stats.oldest_due_at else 0.0
        gauges = metrics.OutboxGauges(stats.due, stats.in_flight, max(0.0, oldest), stats.held, stats.failed,
                                      stats.open_circuits)  # fmt: skip
        return metrics.render(d.redis, d.settings.redis_prefix, d.queue_stats(), gauges)

    return Response(await call(collect), media_type=metrics.CONTENT_TYPE)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
]
