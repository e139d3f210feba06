"""One exception root; expected outcomes are subclasses that carry their context."""

from __future__ import annotations


class IngestError(Exception):
    """Root of every error the service raises on purpose."""


class ConfigError(IngestError):
    """A setting or command-line value is invalid."""


class FetchError(IngestError):
    """A feed or page could not be fetched; the message says why in plain words."""

    def __init__(
        self,
        url: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        permanent: bool = False,
    ) -> None:
        super().__init__(f"fetch: {url}: {message}")
        self.url = url
        self.reason = message
        self.status = status
        self.retry_after = retry_after
        self.permanent = permanent


class UnsafeURLError(FetchError):
    """A URL points at a network the service refuses to reach (SSRF protection)."""


class ParseError(IngestError):
    """A fetched document is not a feed we can read."""


class QueryError(IngestError):
    """A subscription query is invalid; `position` is the 0-based character offset."""

    def __init__(self, message: str, position: int, query: str) -> None:
        pointer = f"\n  {query}\n  {' ' * position}^"
        super().__init__(f"query: {message} at position {position}{pointer}")
        self.reason = message
        self.position = position
        self.query = query


class StoreError(IngestError):
    """The database refused an operation."""


class NotFound(StoreError):
    """The requested feed, subscription, article or alert does not exist."""
