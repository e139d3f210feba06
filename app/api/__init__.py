"""The HTTP API (Starlette, served by uvicorn through `ingest api`)."""

from app.api.app import create_app
from app.api.deps import ApiDeps, deps_from_runtime

__all__ = ["ApiDeps", "create_app", "deps_from_runtime"]
