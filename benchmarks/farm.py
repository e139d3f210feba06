"""A loopback feed farm: N feeds x M items of real article text, syndicated copies, ETags, growth.

    .venv/bin/python benchmarks/farm.py [--corpus DIR] [--feeds 100] [--items 25] [--hosts 10]
                                        [--port 0] [--syndicated 0.1] [--rate 0]

`--corpus DIR` is either a directory with a `ground-truth.json` ({id: {"articleBody", "url"}},
the layout of the article-extraction-benchmark data set) or a directory of `*.txt` files (first
line: title; paragraphs separated by blank lines). Default: the project's own fixtures (the demo
articles under `app/demo/feeds`).

Each item is built from real sentences: three consecutive sentences of one corpus article (whose
title it takes) and nine drawn from the corpus articles of the same language (py3langid), in four
paragraphs, so every item is distinct and no two unrelated items are near-duplicates (2,500 items
from ~180 articles could not be whole articles without being duplicates of each other). A share `--syndicated`
of items are syndicated copies of an item of another feed: new title, a header line, the last
paragraph trimmed and a footer (the near-duplicate detector must join them to the original's story).

Feed `f` lives at `http://127.0.0.{1 + f % hosts}:PORT/feed/f` (RSS 2.0 with content:encoded),
newest item first, with an ETag that a conditional GET answers with 304. New items appear over
time at `--rate` items/s in all, round robin over the feeds, once growth is started. The server
runs in its own process (asyncio, keep-alive), so it is never the bottleneck of one client.

Control routes (GET, any host): `/_farm/reset` (initial items only, growth stopped, records
cleared), `/_farm/grow?rate=R` (start growth now), `/_farm/stop` (freeze), `/_farm/seen`
(JSON: item link -> first time, epoch seconds, a 200 response carried it), `/_farm/stats`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT / "app" / "demo" / "feeds"
BASE_TIME = 1_714_564_800.0  # 2024-05-01 12:00 UTC: the initial items are dated before this


@dataclass(frozen=True)
class Doc:
    """One corpus article: a title and its paragraphs."""

    title: str
    paragraphs: tuple[str, ...]


def _paragraphs(text: str) -> list[str]:
    parts = re.split(r"\n\s*\n", text) if "\n\n" in text else text.split("\n")
    return [" ".join(p.split()) for p in parts if len(p.strip()) >= 40]


def _title_from_url(url: str, fallback: str) -> str:
    slug = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    slug = re.sub(r"\.\w+$", "", slug)
    words = [w for w in re.split(r"[-_]+", slug) if w.isalpha()]
    if len(words) >= 3:
        return " ".join(words).capitalize()
    return fallback[:90].rsplit(" ", 1)[0] if len(fallback) > 90 else fallback


def load_corpus(directory: Path | None = None) -> list[Doc]:
    """Articles of `directory` (ground-truth.json layout or *.txt files), default the demo fixtures."""
    directory = directory or DEFAULT_CORPUS
    docs: list[Doc] = []
    truth = directory / "ground-truth.json"
    if truth.exists():
        for record in json.loads(truth.read_text(encoding="utf-8")).values():
            paras = _paragraphs(record.get("articleBody") or "")
            if len(paras) >= 2:
                docs.append(Doc(_title_from_url(record.get("url") or "", paras[0]), tuple(paras)))
    for path in sorted(directory.rglob("*.txt")):
        title, _, body = path.read_text(encoding="utf-8", errors="replace").partition("\n")
        paras = _paragraphs(body)
        if title.strip() and len(paras) >= 2:
            docs.append(Doc(title.strip(), tuple(paras)))
    bundled = directory / "articles.json"  # the demo's own articles
    if bundled.exists():
        for feed in json.loads(bundled.read_text(encoding="utf-8")).get("feeds", []):
            for item in feed.get("items", []):
                if item.get("title") and len(item.get("paragraphs") or []) >= 2:
                    docs.append(Doc(item["title"], tuple(item["paragraphs"])))
    if not docs:
        raise SystemExit(f"no articles in {directory} (want ground-truth.json or *.txt files)")
    return docs


def _sentences(doc: Doc) -> list[str]:
    return [s for p in doc.paragraphs for s in re.split(r"(?<=[.!?\u3002])\s+", p) if len(s) >= 20]


def _languages(docs: list[Doc]) -> list[str]:
    """Each article's language (py3langid), so filler paragraphs come from the same language."""
    import py3langid

    return [py3langid.classify(" ".join(d.paragraphs)[:3000])[0] for d in docs]


@dataclass(frozen=True)
class Item:
    """One feed item as served."""

    guid: str
    link: str
    title: str
    paragraphs: tuple[str, ...]
    published: float


class Farm:
    """The content: item `i` of feed `f` is a pure function of (seed, f, i); growth is a clock."""

    def __init__(
        self,
        docs: list[Doc],
        *,
        feeds: int = 100,
        items: int = 25,
        hosts: int = 10,
        port: int = 0,
        syndicated: float = 0.1,
        seed: int = 7,
    ) -> None:
        self.docs, self.feeds, self.items, self.hosts, self.port = docs, feeds, items, hosts, port
        self.syndicated, self.seed = syndicated, seed
        self.languages = _languages(docs)
        self.sentences = [_sentences(d) for d in docs]
        self.pools: dict[str, list[str]] = {}
        for sentences, lang in zip(self.sentences, self.languages, strict=True):
            self.pools.setdefault(lang, []).extend(sentences)
        self._cache: dict[tuple[int, int], Item] = {}
        self.rate = 0.0
        self.grow_started: float | None = None
        self.frozen_new = 0  # new items made visible by growth periods already stopped
        self.generation = 0
        self.appeared: dict[str, float] = {}  # guid of a new item -> first time served

    # -- content -------------------------------------------------------------
    def feed_url(self, f: int) -> str:
        return f"http://127.0.0.{1 + f % self.hosts}:{self.port}/feed/{f}"

    def item(self, f: int, i: int) -> Item:
        key = (f, i)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._make(f, i)
        return found

    def _published(self, i: int) -> float:
        return BASE_TIME + (i - self.items) * 600.0

    def _make(self, f: int, i: int) -> Item:
        rng = random.Random(f"{self.seed}-{f}-{i}")
        link = f"https://site{f}.example/news/{i}/story-{f}-{i}.html"
        if self.feeds > 1 and rng.random() < self.syndicated:
            g = (f + 1 + rng.randrange(self.feeds - 1)) % self.feeds
            original = self._original(g, i)
            dated = formatdate(self._published(i), usegmt=True)
            header = f"Site {f} Wire - Syndicated from Site {g}, {dated}."
            body = list(original.paragraphs)
            kept = body[:-1] if len(body) > 3 else body
            footer = f"Copyright Site {f}. All rights reserved. More news at site{f}.example."
            return Item(
                f"f{f}-{i}", link, f"{original.title} | Site {f}", (header, *kept, footer), self._published(i)
            )
        base = self._original(f, i)
        return Item(f"f{f}-{i}", link, base.title, base.paragraphs, self._published(i))

    def _original(self, f: int, i: int) -> Item:
        """The non-syndicated content slot (f, i): two paragraphs of one article, three from the pool."""
        rng = random.Random(f"{self.seed}-orig-{f}-{i}")
        index = rng.randrange(len(self.docs))
        own, pool = self.sentences[index], self.pools[self.languages[index]]
        start = rng.randrange(max(1, len(own) - 2))
        picked = own[start : start + 3] + [pool[rng.randrange(len(pool))] for _ in range(9)]
        paras = tuple(" ".join(picked[k : k + 3]) for k in range(0, len(picked), 3))
        return Item(f"f{f}-{i}", "", self.docs[index].title, paras, self._published(i))

    # -- time ----------------------------------------------------------------
    def total_new(self, now: float) -> int:
        running = 0 if self.grow_started is None else int(self.rate * (now - self.grow_started))
        return self.frozen_new + running

    def count(self, f: int, now: float) -> int:
        """Items feed `f` has published so far (the newest `items` of them are served)."""
        total = self.total_new(now)
        return self.items + (total - f + self.feeds - 1) // self.feeds if total > f else self.items

    def document(self, f: int, n: int) -> bytes:
        """RSS 2.0 of feed `f` with its items [n - items, n), newest first."""
        parts = []
        for i in range(n - 1, max(0, n - self.items) - 1, -1):
            it = self.item(f, i)
            published = self.published_at(it, i)
            html = "".join(f"<p>{escape(p)}</p>" for p in it.paragraphs)
            parts.append(
                f"<item><title>{escape(it.title)}</title><link>{escape(it.link)}</link>"
                f'<guid isPermaLink="false">{it.guid}</guid>'
                f"<pubDate>{formatdate(published, usegmt=True)}</pubDate>"
                f"<description>{escape(it.paragraphs[0][:300])}</description>"
                f"<content:encoded><![CDATA[{html}]]></content:encoded></item>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
            f"<title>Site {f}</title><link>https://site{f}.example/</link>"
            f"<description>Farm feed {f}</description>{''.join(parts)}</channel></rss>"
        ).encode()

    def published_at(self, item: Item, i: int) -> float:
        """Initial items carry their fixed dates; new ones the time they first appeared."""
        return item.published if i < self.items else self.appeared.get(item.guid, item.published)


class FarmServer:
    """The farm's HTTP side: conditional GET, control routes, first-served times."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm
        self.seen: dict[str, float] = {}
        self.served: list[int] = [0] * farm.feeds  # highest item count served per feed
        self.stats = {"requests": 0, "ok": 0, "not_modified": 0, "first_request": 0.0}
        self._docs: dict[tuple[int, int], bytes] = {}

    def reset(self) -> None:
        farm = self.farm
        farm.generation += 1
        farm.rate, farm.grow_started, farm.frozen_new = 0.0, None, 0
        self.seen.clear()
        farm.appeared.clear()
        self.served = [0] * farm.feeds
        self.stats = {"requests": 0, "ok": 0, "not_modified": 0, "first_request": 0.0}

    def control(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes]:
        farm, now = self.farm, time.time()
        if path == "/_farm/reset":
            self.reset()
        elif path == "/_farm/grow":
            farm.frozen_new = farm.total_new(now)
            farm.rate, farm.grow_started = float(query.get("rate", ["10"])[0]), now
        elif path == "/_farm/stop":
            farm.frozen_new, farm.grow_started = farm.total_new(now), None
        elif path == "/_farm/seen":
            return 200, json.dumps(self.seen).encode()
        elif path != "/_farm/stats":
            return 404, b"{}"
        return 200, json.dumps(
            {**self.stats, "new_items": farm.total_new(now), "generation": farm.generation}
        ).encode()

    def feed(self, f: int, if_none_match: str | None) -> tuple[int, bytes, str]:
        farm, now = self.farm, time.time()
        n = farm.count(f, now)
        etag = f'"{farm.generation}-{f}-{n}"'
        self.stats["requests"] += 1
        self.stats["first_request"] = self.stats["first_request"] or now
        if if_none_match == etag:
            self.stats["not_modified"] += 1
            return 304, b"", etag
        for i in range(max(self.served[f], farm.items), n):
            farm.appeared.setdefault(farm.item(f, i).guid, now)
        key = (farm.generation * 1_000_000 + f, n)
        body = self._docs.get(key)
        if body is None:
            body = self._docs[key] = farm.document(f, n)
        for i in range(max(0, n - farm.items), n):
            self.seen.setdefault(farm.item(f, i).link, now)
        self.served[f] = max(self.served[f], n)
        self.stats["ok"] += 1
        return 200, body, etag


def _feed_index(path: str, feeds: int) -> int | None:
    tail = path[6:] if path.startswith("/feed/") else ""
    return int(tail) if tail.isdigit() and int(tail) < feeds else None


async def _serve(server: FarmServer, ready: Callable[[int], None]) -> None:
    farm = server.farm

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                pairs = (ln.partition(":") for ln in lines[1:] if ln)
                headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                parts = urlsplit(target)
                extra = ""
                if parts.path.startswith("/_farm/"):
                    status, body = server.control(parts.path, parse_qs(parts.query))
                    ctype = "application/json"
                elif (index := _feed_index(parts.path, farm.feeds)) is not None:
                    status, body, etag = server.feed(index, headers.get("if-none-match"))
                    ctype, extra = "application/rss+xml; charset=utf-8", f"ETag: {etag}\r\n"
                else:
                    status, body, ctype = 404, b"not found", "text/plain"
                reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}[status]
                writer.write(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n{extra}"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, IndexError):
            pass
        finally:
            writer.close()

    first = await asyncio.start_server(handle, "127.0.0.1", farm.port, backlog=1024)
    farm.port = first.sockets[0].getsockname()[1]
    servers = [first] + [
        await asyncio.start_server(handle, f"127.0.0.{h + 1}", farm.port, backlog=1024)
        for h in range(1, farm.hosts)
    ]
    ready(farm.port)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def run(
    corpus: Path | None,
    feeds: int,
    items: int,
    hosts: int,
    port: int,
    syndicated: float,
    rate: float = 0.0,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Build the farm and serve it until the process is stopped."""
    farm = Farm(load_corpus(corpus), feeds=feeds, items=items, hosts=hosts, port=port, syndicated=syndicated)
    server = FarmServer(farm)
    if rate:
        farm.rate, farm.grow_started = rate, time.time()
    asyncio.run(_serve(server, ready or (lambda p: print(f"farm on port {p}", flush=True))))


def _child(
    corpus: Path | None,
    feeds: int,
    items: int,
    hosts: int,
    syndicated: float,
    port_out: multiprocessing.Queue,
) -> None:  # type: ignore[type-arg]
    run(corpus, feeds, items, hosts, 0, syndicated, ready=port_out.put)


def start(
    corpus: Path | None, *, feeds: int, items: int, hosts: int = 10, syndicated: float = 0.1
) -> tuple[multiprocessing.Process, int]:
    """Serve the farm from a child process; returns it and the port."""
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    proc = multiprocessing.Process(
        target=_child, args=(corpus, feeds, items, hosts, syndicated, out), daemon=True, name="farm"
    )
    proc.start()
    return proc, int(out.get(timeout=60))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=25)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--syndicated", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=0.0, help="new items per second from the start")
    args = parser.parse_args()
    run(args.corpus, args.feeds, args.items, args.hosts, args.port, args.syndicated, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
