"""A loopback feed farm on many host addresses (127.0.0.2, 127.0.0.3, ...) that counts what pollers do:
requests per feed (with their times), requests in flight per host and the most ever seen at once.

Feed `/f/<n>` answers an RSS document with an ETag (304 to a conditional GET for it) after
`delay` seconds; a host listed in `throttled` answers 429 with `Retry-After` instead.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import cast


@dataclass
class Tally:
    """What the farm saw; read under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # url -> times
    active: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))  # host -> in flight
    max_active: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    per_host: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))


def _rss(n: int) -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Farm feed {n}</title>'
        f'<item><guid isPermaLink="false">farm-{n}-1</guid><title>Item of feed {n}</title>'
        f"<description>Body of the one item of feed {n}.</description></item></channel></rss>"
    ).encode()


class HostFarm:
    """`hosts` HTTP servers, one per loopback address, `feeds` feeds spread over them round-robin."""

    def __init__(self, hosts: int, feeds: int, *, delay: float = 0.0, first_host: int = 2) -> None:
        self.tally = Tally()
        self.delay = delay
        self.throttled: dict[str, float] = {}  # host address -> Retry-After seconds of its 429s
        self.servers: list[http.server.ThreadingHTTPServer] = []
        for h in range(hosts):
            self.servers.append(self._serve(f"127.0.0.{first_host + h}"))
        self.urls = [self._url(self.servers[n % hosts], n) for n in range(feeds)]

    @staticmethod
    def _url(server: http.server.ThreadingHTTPServer, n: int) -> str:
        host, port = server.server_address[:2]
        return f"http://{host!s}:{port}/f/{n}"

    def _serve(self, address: str) -> http.server.ThreadingHTTPServer:
        farm = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                t = farm.tally
                url = f"http://{address}:{cast(tuple[str, int], self.server.server_address)[1]}{self.path}"
                with t.lock:
                    t.requests[url].append(time.time())
                    t.per_host[address] += 1
                    t.active[address] += 1
                    t.max_active[address] = max(t.max_active[address], t.active[address])
                try:
                    time.sleep(farm.delay)
                    self._answer(address)
                finally:
                    with t.lock:
                        t.active[address] -= 1

            def _answer(self, address: str) -> None:
                n = int(self.path.rsplit("/", 1)[-1])
                etag = f'"farm-{n}"'
                retry = farm.throttled.get(address)
                if retry is not None:
                    status, body, headers = 429, b"slow down", {"Retry-After": str(int(retry))}
                elif self.headers.get("If-None-Match") == etag:
                    status, body, headers = 304, b"", {"ETag": etag}
                else:
                    status, body = 200, _rss(n)
                    headers = {"ETag": etag, "Content-Type": "application/rss+xml"}
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = http.server.ThreadingHTTPServer((address, 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def counts(self) -> dict[str, int]:
        """Requests per feed URL (every feed listed, 0 if never asked)."""
        with self.tally.lock:
            return {url: len(self.tally.requests.get(url, [])) for url in self.urls}

    def times(self, url: str) -> list[float]:
        with self.tally.lock:
            return list(self.tally.requests.get(url, []))

    def host_of(self, index: int) -> str:
        return str(self.servers[index].server_address[0])

    def max_active(self) -> dict[str, int]:
        with self.tally.lock:
            return dict(self.tally.max_active)

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
