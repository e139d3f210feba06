"""Hostile feeds: fuzzed real feeds through parse -> clean -> store, and named attacks, each with
bounded time (pytest-timeout) and bounded memory (a cap on what is read), a clear per-feed error,
and the rest of the poll pass going on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.poller import poll_once
from app.runtime import Runtime
from ingest.errors import ParseError
from ingest.language.detect import LanguageDetector
from ingest.models import Article, FetchResult, article_id, utcnow
from ingest.parse import MAX_AUTHOR_CHARS, parse_feed
from ingest.services.process import Preparer
from ingest.settings import Settings
from ingest.store.sqlite import SQLiteStore
from tests.conftest import FIXTURES, LoopbackServer, Response

RSS = "application/rss+xml"
FEEDS = sorted((FIXTURES / "feeds").iterdir())
HOSTILE_SNIPPETS = [
    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    b'<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    b"&xxe;",
    b"&b;",
    b"<link>javascript:alert(1)</link>",
    b"<link>data:text/html,<script>x</script></link>",
    b"<pubDate>0000-00-00</pubDate>",
    b"<updated>0000-00-00T00:00:00Z</updated>",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\x00",
    b"<![CDATA[",
    b"]]>",
    b"</channel>",
    b"<author>" + b"a" * 5000 + b"</author>",
    b"<item>",
    b"</item>",
    b"<entry>",
]


def rss(items: str, *, head: str = "", decl: str = '<?xml version="1.0" encoding="utf-8"?>') -> bytes:
    return f'{decl}{head}<rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()


def item(
    guid: str, title: str = "Title", body: str = "<p>Armenia ceasefire body text.</p>", extra: str = ""
) -> str:
    return (
        f'<item><guid isPermaLink="false">{guid}</guid><title>{title}</title>'
        f"<description><![CDATA[{body}]]></description>{extra}</item>"
    )


def parse(content: bytes, **kwargs: object) -> object:
    return parse_feed(
        FetchResult(url="https://example.com/feed", status=200, content=content, headers={}),
        feed_id=1,
        feed_url="https://example.com/feed",
        **kwargs,
    )


@pytest.fixture(scope="module")
def preparer() -> Preparer:
    """Clean + language, loaded once."""
    return Preparer(LanguageDetector())


@st.composite
def mutated_feed(draw: st.DrawFn) -> bytes:
    """A real fixture feed with byte flips, deletions, hostile insertions and truncation."""
    data = bytearray(draw(st.sampled_from(FEEDS)).read_bytes())
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "delete", "insert"]))
        if action == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif action == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        else:
            data[pos:pos] = draw(st.sampled_from(HOSTILE_SNIPPETS))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@pytest.mark.slow
@pytest.mark.timeout(300)
@hsettings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=mutated_feed())
def test_fuzzed_feeds_parse_clean_and_store_or_fail_cleanly(
    doc: bytes, preparer: Preparer, tmp_path: Path
) -> None:
    """Mutated real feeds either raise ParseError or yield entries that clean and store safely."""
    try:
        parsed = parse(doc, max_entries=50)
    except ParseError as exc:
        assert str(exc).startswith("not a feed")
        return
    store = SQLiteStore(tmp_path / "fuzz.db")
    try:
        articles = []
        for entry in parsed.entries:
            assert entry.url is None or entry.url.startswith(("http://", "https://"))
            assert entry.author is None or len(entry.author) <= MAX_AUTHOR_CHARS
            doc_ = preparer.prepare(entry)
            aid = article_id(entry.feed_id, entry.entry_key)
            articles.append(
                Article(
                    id=aid,
                    feed_id=1,
                    feed_url=entry.feed_url,
                    entry_key=entry.entry_key,
                    url=doc_.clean.url,
                    title=doc_.clean.title,
                    text=doc_.clean.text,
                    summary=doc_.clean.summary,
                    language=doc_.language.code,
                    language_confidence=doc_.language.confidence,
                    published_at=entry.published_at,
                    story_id=aid,
                    content_hash="h",
                    fetched_at=utcnow(),
                    author=entry.author,
                )
            )
        store.add_articles(articles)
        for stored in store.list_articles(limit=1000):
            assert stored.url is None or stored.url.startswith(("http://", "https://"))
            assert "root:x:0:0" not in stored.text
    finally:
        store.close()


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "author",
    [
        "<author>{a}</author>",
        "<author>x<b/>{a}</author>",
        "<author>x<![CDATA[y]]>{a}</author>",
        "<dc:creator>{a}</dc:creator>",
        "<managingEditor>{a}@example.com</managingEditor>",
    ],
)
def test_32kb_author_field_is_bounded(author: str) -> None:
    """A 32 KB author (even split by child tags or CDATA) parses fast and is cut to MAX_AUTHOR_CHARS."""
    head = ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
    doc = rss(item("g1", extra=author.format(a="a" * 32_768))).replace(
        b'<rss version="2.0">', f'<rss version="2.0"{head}>'.encode()
    )
    [entry] = parse(doc).entries
    assert entry.author is not None and len(entry.author) <= MAX_AUTHOR_CHARS


@pytest.mark.parametrize(
    "date",
    [
        "<pubDate>0000-00-00</pubDate>",
        "<pubDate>0000-00-00T00:00:00Z</pubDate>",
        "<pubDate>Sun, 00 Jan 0000 00:00:00 +0000</pubDate>",
        "<pubDate>99999-99-99</pubDate>",
    ],
)
def test_impossible_dates_become_none(date: str) -> None:
    """Dates like 0000-00-00 leave the entry undated instead of failing it."""
    [entry] = parse(rss(item("g1", extra=date))).entries
    assert entry.published_at is None


def test_json_feed_impossible_date() -> None:
    """A JSON Feed item dated 0000-00-00 is kept, undated."""
    doc = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "J",
            "items": [{"id": "1", "content_text": "x", "date_published": "0000-00-00"}],
        }
    )
    [entry] = parse(doc.encode()).entries
    assert entry.published_at is None


@pytest.mark.parametrize(
    "content",
    [
        b"\xef\xbb\xbf" + rss(item("g1")).replace(b"utf-8", b"utf-16"),  # UTF-8 BOM, UTF-16 declared
        b"\xff\xfe" + rss(item("g1")),  # UTF-16 LE BOM on UTF-8 bytes
        b"\xfe\xff" + rss(item("g1")),  # UTF-16 BE BOM on UTF-8 bytes
        rss(item("g1", title="Bad \xff\xfe bytes")).replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe\xc3\x28"),
        b"\xef\xbb\xbf\xef\xbb\xbf" + rss(item("g1")),  # two BOMs
    ],
)
def test_invalid_utf8_and_contradictory_boms(content: bytes) -> None:
    """Broken encodings give entries with text or a clear 'not a feed' error, never a crash."""
    try:
        parsed = parse(content)
    except ParseError as exc:
        assert str(exc).startswith("not a feed")
        return
    assert all(isinstance(e.title, str) for e in parsed.entries)


@pytest.fixture()
def ctx(settings: Settings, redis_client: object) -> Iterator[Runtime]:
    """A worker context on the test's Redis db and SQLite file, taking 200 entries per feed."""
    context = Runtime(settings.replace(max_entries=200))
    yield context
    context.close()


def _serve(server: LoopbackServer, path: str, body: bytes | Callable[..., Response]) -> str:
    server.routes[path] = body if callable(body) else Response(200, body, {"Content-Type": RSS})
    return server.url(path)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_bad_feeds_among_good_feeds_in_one_pass(ctx: Runtime, http_server: LoopbackServer) -> None:
    """One pass over good and hostile feeds: good ones are queued, bad ones get a clear error each."""

    laughs = (
        '<!DOCTYPE rss [<!ENTITY l0 "lol">'
        + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
        + "]>"
    )  # 10**9 lols
    xxe = '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    huge = b"<p>" + b"x" * 50_000_000 + b"</p>"
    feeds = {
        "/good1": rss(item("g1", "Good one")),
        "/laughs": rss(item("l1", "Laughs &l9;", "<p>&l9;</p>"), head=laughs),
        "/xxe": rss(item("x1", "XXE &xxe;", "<p>&xxe; armenia</p>"), head=xxe),
        "/author": rss(item("a1", extra=f"<author>{'a' * 32_768}</author>")),
        "/dates": rss(item("d1", extra="<pubDate>0000-00-00</pubDate>")),
        "/bom": b"\xff\xfe" + rss(item("b1")),
        "/huge": rss(item("h1")).replace(
            b"</channel>", b"<item><guid>h2</guid><description>" + huge + b"</description></item></channel>"
        ),
        "/many": rss(
            "".join(
                f"<item><guid>m{i}</guid><title>t{i}</title><description>Armenia {i}</description></item>"
                for i in range(100_000)
            )
        ),
        "/links": rss(
            item("j1", extra="<link>javascript:alert(1)</link>")
            + item("j2", extra="<link>data:text/html;base64,PHNjcmlwdD4=</link>")
            + item("j3", body='<p><a href="javascript:alert(1)">click</a> armenia</p>')
        ),
        "/good2": rss(item("g2", "Good two")),
    }
    for path, body in feeds.items():
        ctx.store.add_feed(_serve(http_server, path, body))
    summary = poll_once(ctx, only_due=False)
    assert summary.feeds == len(feeds)
    state = {f.url.rsplit("/", 1)[-1]: f for f in ctx.store.list_feeds()}
    assert state["huge"].last_error == f"body larger than {ctx.settings.max_body_bytes} bytes"
    assert all(state[name].last_error is None for name in ("good1", "good2", "links", "dates", "author"))
    for job in ctx.batch_queue.queue.jobs:
        ctx.batch_runner.run(*job.args)
    articles = {a.entry_key: a for a in ctx.store.list_articles(limit=5000)}
    assert {"guid:g1", "guid:g2", "guid:j1", "guid:j2", "guid:j3", "guid:d1", "guid:a1"} <= set(articles)
    assert sum(key.startswith("guid:m") for key in articles) == ctx.settings.max_entries  # of 100,000
    assert articles["guid:d1"].published_at is None
    assert len(articles["guid:a1"].author or "") <= MAX_AUTHOR_CHARS
    for article in articles.values():
        assert article.url is None or article.url.startswith(("http://", "https://"))
        assert "root:x:0:0" not in article.text and "javascript:" not in article.text
        assert len(article.title) < 1000 and len(article.text) < 100_000  # expat's amplification limit
