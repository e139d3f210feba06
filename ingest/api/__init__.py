"""The HTTP API (Starlette, served by uvicorn through `ingest api`)."""

from ingest.api.app import create_app
from ingest.api.deps import ApiDeps, deps_from_context

__all__ = ["ApiDeps", "create_app", "deps_from_context"]
