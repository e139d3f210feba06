"""A loopback webhook receiver that records when each alert arrived.

    .venv/bin/python benchmarks/receiver.py [--port 0] [--secret whsec_...]

Every POST is answered 204 at once. Each signature is verified (one HMAC-SHA256 over
"{id}.{timestamp}.{body}" per request with the one secret all benchmark subscriptions share,
no timestamp tolerance check): cheap, a few microseconds, and a wrong signature is counted, not
refused. Recorded per arrival: epoch seconds, webhook-id, subscription id, article URL.

Control routes (GET): `/_recv/dump` (JSON list of [time, webhook_id, subscription_id, article_url]
plus the bad-signature count), `/_recv/reset` (forget everything). Runs in its own process
(asyncio, keep-alive).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import multiprocessing
import sys
import time
from collections.abc import Callable


class Recorder:
    """Arrivals and signature checks."""

    def __init__(self, secret: str) -> None:
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.arrivals: list[tuple[float, str, str, str]] = []
        self.bad_signatures = 0

    def record(self, headers: dict[str, str], body: bytes) -> None:
        now = time.time()
        msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
        expected = base64.b64encode(
            hmac.new(self.key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        ).decode()
        given = [s.partition(",")[2] for s in headers.get("webhook-signature", "").split()]
        if not any(hmac.compare_digest(expected, s) for s in given):
            self.bad_signatures += 1
        try:
            data = json.loads(body)["data"]
            sub, url = data.get("subscription_id", ""), data.get("article", {}).get("url", "")
        except (ValueError, KeyError, TypeError, AttributeError):
            sub, url = "", ""
        self.arrivals.append((now, msg_id, sub, url))


async def _serve(recorder: Recorder, port: int, ready: Callable[[int], None]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                pairs = (ln.partition(":") for ln in lines[1:] if ln)
                headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                if method == "POST":
                    recorder.record(headers, body)
                    writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                else:
                    if target.startswith("/_recv/reset"):
                        recorder.arrivals.clear()
                        recorder.bad_signatures = 0
                    out = json.dumps(
                        {"arrivals": recorder.arrivals, "bad_signatures": recorder.bad_signatures}
                    ).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        + f"Content-Length: {len(out)}\r\n\r\n".encode()
                        + out
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    ready(server.sockets[0].getsockname()[1])
    await server.serve_forever()


def run(secret: str, port: int = 0, ready: Callable[[int], None] | None = None) -> None:
    """Receive until the process is stopped."""
    asyncio.run(
        _serve(
            Recorder(secret),
            port,
            ready or (lambda p: print(f"receiver on http://127.0.0.1:{p}/hook", flush=True)),
        )
    )


def _child(secret: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    run(secret, 0, out.put)


def start(secret: str) -> tuple[multiprocessing.Process, int]:
    """Receive in a child process; returns it and the port."""
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    proc = multiprocessing.Process(target=_child, args=(secret, out), daemon=True, name="receiver")
    proc.start()
    return proc, int(out.get(timeout=30))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--secret", default="whsec_" + base64.b64encode(b"benchmark").decode())
    args = parser.parse_args()
    run(args.secret, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
