"""The compose check's outside world, on the host: a feed site and a webhook receiver.

Both listen on the Compose network's gateway address, which the containers reach. The feed is
built from the demo articles (the seed article among them) with the demo's own RSS writer; the
receiver verifies each delivery with the `standardwebhooks` library, as a subscriber would, and can
be told to fail (503) for a while so that deliveries are retried.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from importlib import resources
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.demo import rss_document


def demo_items() -> dict[str, dict[str, Any]]:
    """Every demo feed item by guid."""
    spec = json.loads((resources.files("app.demo") / "feeds" / "articles.json").read_text(encoding="utf-8"))
    return {item["guid"]: item for feed in spec["feeds"] for item in feed["items"]}


class _Server:
    def __init__(self, host: str, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.httpd = http.server.ThreadingHTTPServer((host, 0), handler)
        self.httpd.daemon_threads = True
        self.host, self.port = host, self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FeedSite(_Server):
    """One RSS feed at /feed.xml whose items are published one by one."""

    def __init__(self, host: str) -> None:
        self.items: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/feed.xml":
                    self.send_error(404)
                    return
                body = site.document()
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(host, Handler)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/feed.xml"

    def publish(self, item: dict[str, Any]) -> None:
        """Put the item first in the feed, published now."""
        with self.lock:
            self.items.insert(0, {**item, "published": formatdate(usegmt=True)})

    def document(self) -> bytes:
        with self.lock:
            items = list(self.items)
        return rss_document({"title": "Check wire", "link": "https://check.example/", "items": items})


@dataclass(frozen=True)
class Attempt:
    """One webhook POST as the receiver saw it."""

    webhook_id: str
    at: float
    verified: bool
    status: int
    payload: dict[str, Any] | None


class Receiver(_Server):
    """Verifies Standard Webhooks signatures against the subscriptions' secrets; 204, or 503 when failing."""

    def __init__(self, host: str) -> None:
        self.secrets: list[str] = []
        self.attempts: list[Attempt] = []
        self.failing = False
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                payload = receiver.verified(body, headers)
                status = 401 if payload is None else 503 if receiver.failing else 204
                self.send_response(status)
                self.end_headers()
                attempt = Attempt(
                    headers.get("webhook-id", ""), time.time(), payload is not None, status, payload
                )
                with receiver.lock:
                    receiver.attempts.append(attempt)

        super().__init__(host, Handler)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    def verified(self, body: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
        for secret in self.secrets:
            try:
                return Webhook(secret).verify(body, headers)  # type: ignore[no-any-return]
            except WebhookVerificationError:
                continue
        return None

    def seen(self) -> list[Attempt]:
        with self.lock:
            return list(self.attempts)

    def delivered(self) -> dict[str, Attempt]:
        """The first accepted delivery of each webhook-id."""
        out: dict[str, Attempt] = {}
        for attempt in self.seen():
            if attempt.status == 204:
                out.setdefault(attempt.webhook_id, attempt)
        return out
