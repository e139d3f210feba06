"""Demo feeds and a demo webhook receiver on loopback, so `ingest up --demo` shows real flow.

The feeds are built from bundled articles, the seed article among them (as
scraped, residue included) and a syndicated copy of it on another site.
The receiver verifies each webhook's signature as a subscriber would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Callable
from email.utils import formatdate
from importlib import resources
from typing import Any
from xml.sax.saxutils import escape

FEEDS_DIR = resources.files("app.demo") / "feeds"


def _seed(name: str) -> tuple[str, list[str]]:
    """Title line and paragraphs of a scraped text article, residue kept."""
    raw = (FEEDS_DIR / name).read_text(encoding="utf-8")
    title, _, body = raw.partition("\n")
    paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
    return title.strip(), paragraphs


def _item_body(item: dict[str, Any]) -> tuple[str, list[str]]:
    if "seed" in item:
        return _seed(item["seed"])
    if "seed_copy" in item:
        _, paragraphs = _seed(item["seed_copy"])
        kept = [p for p in paragraphs if p.startswith(("China News", "According", "The ", "On "))]
        kept[-1] = kept[-1].split(" (End up)")[0]
        return item["title"], [item["header"], *kept, *item["footer"]]
    return item["title"], item["paragraphs"]


def rss_document(feed: dict[str, Any]) -> bytes:
    """An RSS 2.0 document with content:encoded bodies, as real sites publish them."""
    items = []
    for item in feed["items"]:
        title, paragraphs = _item_body(item)
        html = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
        items.append(
            f"<item><title>{escape(title)}</title><link>{escape(item['link'])}</link>"
            f'<guid isPermaLink="false">{escape(item["guid"])}</guid>'
            f"<pubDate>{item['published']}</pubDate>"
            f"<description>{escape(paragraphs[1] if len(paragraphs) > 1 else '')}</description>"
            f"<content:encoded><![CDATA[{html}]]></content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>{escape(feed['title'])}</title><link>{escape(feed['link'])}</link>"
        f"<description>{escape(feed['title'])} demo feed</description>" + "".join(items) + "</channel></rss>"
    ).encode()


def demo_feeds() -> dict[str, bytes]:
    """Path -> RSS document for every bundled demo feed."""
    spec = json.loads((FEEDS_DIR / "articles.json").read_text(encoding="utf-8"))
    return {f"/demo/{feed['slug']}.xml": rss_document(feed) for feed in spec["feeds"]}


class _Server:
    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], port: int) -> None:
        try:
            self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError:
            self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FeedServer(_Server):
    """Serves the demo feeds with ETags, answering 304 to a matching If-None-Match."""

    def __init__(self, port: int = 9180) -> None:
        documents = demo_feeds()
        self.paths = sorted(documents)

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = documents.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", formatdate(usegmt=True))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(Handler, port)


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, as a receiver would write it."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(expected, sig.split(",", 1)[1]) for sig in headers["webhook-signature"].split()
    )


class Receiver(_Server):
    """Accepts webhooks, verifies them, and hands each verified alert to `on_alert` once per webhook-id."""

    def __init__(self, secret: str, on_alert: Callable[[dict[str, Any]], None], port: int = 9182) -> None:
        seen: set[str] = set()
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = {"webhook-id", "webhook-timestamp", "webhook-signature"} <= headers.keys() and verify(
                    secret, headers, body
                )
                self.send_response(204 if ok else 401)
                self.end_headers()
                with lock:
                    fresh = ok and headers["webhook-id"] not in seen
                    seen.add(headers.get("webhook-id", ""))
                if fresh:
                    on_alert(json.loads(body))

        super().__init__(Handler, port)
