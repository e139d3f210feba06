"""The Store contract, run against SQLite and PostgreSQL alike (see the `store` fixture)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from ingest.errors import ConfigError, NotFound, StoreError
from ingest.models import Alert, Article, ArticleFilter, Feed, Subscription
from ingest.store import open_store
from ingest.store.base import Store
from ingest.store.migrations import LATEST
from ingest.store.postgres import PostgresStore
from ingest.store.sqlite import SQLiteStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def art(
    n: int,
    *,
    feed_id: int = 1,
    story: str | None = None,
    fetched: datetime | None = None,
    text: str | None = None,
    url: str | None = None,
    key: str | None = None,
) -> Article:
    return Article(
        id=f"a{n}",
        feed_id=feed_id,
        feed_url=f"https://feed{feed_id}.example/rss",
        entry_key=key or f"k{n}",
        url=url or f"https://news.example/{n}",
        title=f"Title {n}",
        text=text or f"Body of article number {n}.",
        summary=None,
        language="en",
        language_confidence=0.9,
        published_at=T0 - timedelta(hours=n),
        story_id=story or f"s{n}",
        content_hash=f"h{n}",
        fetched_at=fetched or T0 + timedelta(seconds=n),
        author="Ann",
    )


def search(store: Store, query: str, limit: int = 50) -> list[Article]:
    return store.search_articles_page(query, ArticleFilter(), limit=limit)


def sub(n: int) -> Subscription:
    return Subscription(
        id=f"sub{n}",
        name=f"topic {n}",
        query="climate AND policy",
        webhook=f"https://hooks.example/{n}",
        secret="whsec_c2VjcmV0",
    )


def alert(n: int, *, sub_id: str = "sub1", story: str = "s1", due: datetime | None = None) -> Alert:
    return Alert(
        id=f"msg_{n}",
        subscription_id=sub_id,
        story_id=story,
        article_id=f"a{n}",
        matched_terms=["climate", "policy"],
        next_attempt_at=due,
    )


# -- feeds ----------------------------------------------------------------------


def test_add_feed_returns_existing_for_same_url(store: Store) -> None:
    """Adding a URL twice yields one feed with one id."""
    first = store.add_feed("https://a.example/rss", interval=300, title="A")
    again = store.add_feed("https://a.example/rss")
    assert again.id == first.id and again.interval == 300 and again.title == "A"
    assert first.status == "active" and first.created_at is not None and first.next_poll_at is None
    assert [f.url for f in store.list_feeds()] == ["https://a.example/rss"]


def test_get_feed_missing_raises_not_found_with_id(store: Store) -> None:
    """A missing feed is NotFound, and the message names the id."""
    with pytest.raises(NotFound, match="no feed with id 7"):
        store.get_feed(7)


def test_remove_feed_deletes_it_and_its_seen_keys(store: Store) -> None:
    """Removing a feed removes it from the list and forgets its seen entries."""
    feed = store.add_feed("https://a.example/rss")
    other = store.add_feed("https://b.example/rss")
    store.add_batches(feed.id, [], {"x": "hx"})
    store.remove_feed(feed.id)
    assert [f.id for f in store.list_feeds()] == [other.id]
    with pytest.raises(NotFound):
        store.remove_feed(feed.id)
    again = store.add_feed("https://a.example/rss")
    assert store.seen_entry_hashes(again.id, ["x"]) == {}


def test_due_feeds_selects_active_feeds_whose_time_has_come(store: Store) -> None:
    """Never-polled and overdue active feeds are due, never-polled first; future and disabled are not."""
    overdue = store.add_feed("https://overdue.example/rss")
    future = store.add_feed("https://future.example/rss")
    disabled = store.add_feed("https://disabled.example/rss")
    fresh = store.add_feed("https://fresh.example/rss")
    store.record_fetch(replace(overdue, last_polled_at=T0, next_poll_at=T0 - timedelta(minutes=1)))
    store.record_fetch(replace(future, last_polled_at=T0, next_poll_at=T0 + timedelta(minutes=1)))
    store.record_fetch(replace(disabled, status="disabled"))
    assert [f.id for f in store.due_feeds(T0)] == [fresh.id, overdue.id]
    assert {f.id for f in store.due_feeds(T0 + timedelta(minutes=1))} == {fresh.id, overdue.id, future.id}


def test_record_fetch_persists_fetch_state(store: Store) -> None:
    """Every fetch-state field written by record_fetch reads back unchanged."""
    feed = store.add_feed("https://a.example/rss")
    updated = replace(
        feed,
        title="A feed",
        etag='"v2"',
        last_modified="Wed, 01 May 2024 12:00:00 GMT",
        status="gone",
        last_polled_at=T0,
        last_success_at=T0 - timedelta(hours=1),
        last_error="HTTP 410",
        consecutive_errors=3,
        next_poll_at=T0 + timedelta(hours=2),
    )
    store.record_fetch(updated)
    assert store.get_feed(feed.id) == updated


def test_record_fetch_of_unknown_feed_raises_not_found(store: Store) -> None:
    """Recording a fetch for a feed that was removed is NotFound, not a silent no-op."""
    with pytest.raises(NotFound, match="no feed with id 99"):
        store.record_fetch(Feed(id=99, url="https://gone.example/rss"))


# -- seen entries -------------------------------------------------------------------


def test_seen_entries_are_per_feed_with_their_latest_hash(store: Store) -> None:
    """Entries marked seen (with the batches they go in) report their last content hash, per feed."""
    a = store.add_feed("https://a.example/rss")
    b = store.add_feed("https://b.example/rss")
    assert store.seen_entry_hashes(a.id, ["k1", "k2", "k3"]) == {}
    store.add_batches(a.id, [[{"entry_key": "k1"}]], {"k1": "h1", "k2": "h2"})
    store.add_batches(a.id, [], {"k2": "h2b"})
    assert store.seen_entry_hashes(a.id, ["k1", "k2", "k3", "k1"]) == {"k1": "h1", "k2": "h2b"}
    assert store.seen_entry_hashes(b.id, ["k1"]) == {}


def test_seen_entries_in_large_batches(store: Store) -> None:
    """More keys than one chunk of parameters are marked and looked up completely."""
    feed = store.add_feed("https://a.example/rss")
    keys = [f"key-{i}" for i in range(1200)]
    store.add_batches(feed.id, [], {k: f"h-{k}" for k in keys[:1100]})
    assert set(store.seen_entry_hashes(feed.id, keys)) == set(keys[:1100])


# -- articles -------------------------------------------------------------------------


def test_add_articles_returns_only_new_rows_in_input_order(store: Store) -> None:
    """A batch returns what it inserted; the same batch again returns []; a mix returns only the new."""
    batch = [art(3), art(1), art(2)]
    assert store.add_articles(batch) == batch
    assert store.add_articles(batch) == []
    assert store.add_articles([art(4), art(1), art(5)]) == [art(4), art(5)]
    assert store.add_articles([]) == []


def test_add_articles_skips_same_entry_under_another_id(store: Store) -> None:
    """(feed_id, entry_key) is unique: a re-processed entry with a new id is not stored again."""
    store.add_articles([art(1)])
    clash = replace(art(2), entry_key="k1")
    assert store.add_articles([clash, art(3)]) == [art(3)]
    assert store.get_article_by_entry(1, "k1") == art(1)


def test_add_articles_counts_a_repeated_id_once(store: Store) -> None:
    """Duplicates inside one batch are inserted and returned once."""
    assert store.add_articles([art(1), art(1), art(2)]) == [art(1), art(2)]


def test_add_articles_large_batch(store: Store) -> None:
    """A batch bigger than one multi-row INSERT is stored whole."""
    batch = [art(i) for i in range(1100)]
    assert len(store.add_articles(batch)) == 1100
    assert store.add_articles(batch[-3:]) == []


def test_article_lookups(store: Store) -> None:
    """get_article, get_article_by_entry and list_articles agree with what was stored."""
    store.add_articles([art(1, url="https://same.example/x"), art(2, url="https://same.example/x"), art(3)])
    assert store.get_article("a3") == art(3)
    assert store.get_article_by_entry(1, "k2") == art(2, url="https://same.example/x")
    assert store.get_article_by_entry(2, "k2") is None
    assert [a.id for a in store.list_articles()] == ["a3", "a2", "a1"]
    assert [a.id for a in store.list_articles(limit=1)] == ["a3"]
    with pytest.raises(NotFound, match="no article with id 'zz'"):
        store.get_article("zz")


def test_get_articles_reads_many_ids_and_leaves_out_the_absent(store: Store) -> None:
    """get_articles (a sender's claim) returns each stored id once, over more ids than one IN list holds."""
    store.add_articles([art(n) for n in range(1, 4)])
    wanted = ["a2", "zz", "a1", "a2", *[f"missing{n}" for n in range(600)]]
    found = store.get_articles(wanted)
    assert found == {"a1": art(1), "a2": art(2)}
    assert store.get_articles([]) == {}


def test_articles_in_story_oldest_first(store: Store) -> None:
    """A story lists its articles from the original on; other stories are left out."""
    store.add_articles([art(2, story="st"), art(1, story="st"), art(3, story="other")])
    assert [a.id for a in store.articles_in_story("st")] == ["a1", "a2"]
    assert store.articles_in_story("none") == []


def test_update_article_keeps_identity_and_marks_updated(store: Store) -> None:
    """An updated entry keeps its id and story, gets the new content and updated=True."""
    store.add_articles([art(1, story="orig", text="old words here")])
    changed = replace(art(99, story="other", text="fresh revised wording"), entry_key="k1", title="New")
    store.update_article(changed)
    stored = store.get_article("a1")
    assert (stored.id, stored.story_id, stored.updated) == ("a1", "orig", True)
    assert (stored.title, stored.text, stored.content_hash) == ("New", "fresh revised wording", "h99")
    assert [a.id for a in search(store, "revised")] == ["a1"]
    assert search(store, "old") == []
    with pytest.raises(NotFound):
        store.update_article(replace(changed, entry_key="missing"))


# -- full-text search -----------------------------------------------------------------


def test_search_articles_requires_every_word(store: Store) -> None:
    """Search matches title or text, needs all words, ignores case, and is safe from query syntax."""
    store.add_articles(
        [
            art(1, text="The climate summit agreed on new policy."),
            art(2, text="Football results from the weekend."),
            art(3, text="Climate scientists publish a report."),
        ]
    )
    assert {a.id for a in search(store, "CLIMATE")} == {"a1", "a3"}
    assert [a.id for a in search(store, "climate policy")] == ["a1"]
    assert [a.id for a in search(store, "title 2")] == ["a2"]
    assert [a.id for a in search(store, 'policy" (-summit*')] == ["a1"]
    assert search(store, "  ...  ") == []
    assert len(search(store, "climate", limit=1)) == 1


# -- subscriptions --------------------------------------------------------------------


def test_subscription_roundtrip_and_duplicate_id(store: Store) -> None:
    """A subscription reads back as added (with created_at); adding its id again is a StoreError."""
    added = store.add_subscription(sub(1))
    assert added == replace(sub(1), created_at=added.created_at) and added.created_at is not None
    assert store.get_subscription("sub1") == added and store.list_subscriptions() == [added]
    with pytest.raises(StoreError, match="already exists"):
        store.add_subscription(sub(1))
    with pytest.raises(NotFound, match="no subscription with id 'nope'"):
        store.get_subscription("nope")


def test_subscriptions_version_changes_on_every_change(store: Store) -> None:
    """Add, status change, update and remove each give a new version; reads do not."""
    versions = [store.subscriptions_version()]
    store.add_subscription(sub(1))
    versions.append(store.subscriptions_version())
    store.set_subscription_status("sub1", "paused", "receiver down")
    versions.append(store.subscriptions_version())
    store.update_subscription("sub1", query="solar")
    versions.append(store.subscriptions_version())
    store.list_subscriptions()
    assert store.subscriptions_version() == versions[-1]
    store.remove_subscription("sub1")
    versions.append(store.subscriptions_version())
    assert len(set(versions)) == 5


def test_update_subscription_changes_only_given_fields(store: Store) -> None:
    """Fields passed as None keep their value; status changes carry their reason."""
    store.add_subscription(sub(1))
    changed = store.update_subscription("sub1", name="renamed", webhook="https://hooks.example/new")
    assert (changed.name, changed.webhook, changed.query, changed.secret) == (
        "renamed",
        "https://hooks.example/new",
        "climate AND policy",
        "whsec_c2VjcmV0",
    )
    store.set_subscription_status("sub1", "disabled", "410 Gone")
    got = store.get_subscription("sub1")
    assert (got.status, got.status_reason, got.name) == ("disabled", "410 Gone", "renamed")
    with pytest.raises(NotFound):
        store.update_subscription("nope", name="x")
    with pytest.raises(NotFound):
        store.set_subscription_status("nope", "paused", None)


def test_remove_subscription_removes_its_alerts(store: Store) -> None:
    """Removing a subscription drops its outbox rows and leaves others alone."""
    store.add_subscription(sub(1))
    store.add_subscription(sub(2))
    store.add_alerts([alert(1, sub_id="sub1"), alert(2, sub_id="sub2")])
    store.remove_subscription("sub1")
    assert [a.id for a in store.list_alerts()] == ["msg_2"]
    with pytest.raises(NotFound):
        store.remove_subscription("sub1")


# -- alerts ---------------------------------------------------------------------------


def test_alerts_unique_per_subscription_and_story(store: Store) -> None:
    """A second alert for the same (subscription, story) is not stored, whatever its id."""
    store.add_subscription(sub(1))
    store.add_subscription(sub(2))
    first = store.add_alerts([alert(1)])
    assert [a.id for a in first] == ["msg_1"] and first[0].created_at is not None
    assert store.add_alerts([alert(2), alert(1)]) == []
    again = store.add_alerts([alert(3, story="s2"), alert(4, sub_id="sub2"), alert(5, story="s2")])
    assert [a.id for a in again] == ["msg_3", "msg_4"]
    stored = store.get_alert("msg_1")
    assert stored.matched_terms == ["climate", "policy"] and stored.status == "pending"
    with pytest.raises(NotFound, match="no alert with id 'msg_9'"):
        store.get_alert("msg_9")


def test_record_attempt_updates_delivery_state(store: Store) -> None:
    """A failed attempt stores its error and retry time; delivery sets delivered_at and filters by status."""
    store.add_subscription(sub(1))
    store.add_alerts([alert(1), alert(2, story="s2")])
    retry = T0 + timedelta(minutes=5)
    store.record_attempt("msg_1", status="pending", attempts=1, next_attempt_at=retry, error="timeout")
    pending = store.get_alert("msg_1")
    assert (pending.attempts, pending.next_attempt_at, pending.last_error) == (1, retry, "timeout")
    assert pending.delivered_at is None
    store.record_attempt("msg_1", status="delivered", attempts=2, next_attempt_at=None, error=None)
    done = store.get_alert("msg_1")
    assert done.status == "delivered" and done.delivered_at is not None and done.last_error is None
    assert [a.id for a in store.list_alerts(status="delivered")] == ["msg_1"]
    assert [a.id for a in store.list_alerts(status="pending")] == ["msg_2"]
    with pytest.raises(NotFound):
        store.record_attempt("nope", status="failed", attempts=1, next_attempt_at=None, error="x")


# -- timestamps, schema, lifecycle ----------------------------------------------------------


def test_timestamps_round_trip_as_aware_utc(store: Store) -> None:
    """A datetime given in another zone (or naive, taken as UTC) comes back as the same instant in UTC."""
    cest = timezone(timedelta(hours=2))
    local = datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=cest)
    store.add_articles([replace(art(1), published_at=local, fetched_at=datetime(2024, 5, 1, 9, 0))])
    got = store.get_article("a1")
    assert got.published_at == local and got.published_at is not None
    assert got.published_at.tzinfo is not None and got.published_at.utcoffset() == timedelta(0)
    assert got.published_at.hour == 12 and got.published_at.microsecond == 123456
    assert got.fetched_at == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    feed = store.add_feed("https://a.example/rss")
    assert feed.created_at is not None and feed.created_at.utcoffset() == timedelta(0)


def test_upgrade_is_idempotent(store: Store) -> None:
    """Applying migrations again changes nothing and reports the latest version; data survives."""
    store.add_feed("https://a.example/rss")
    assert store.upgrade() == LATEST
    assert store.upgrade() == LATEST
    assert len(store.list_feeds()) == 1
    store.ping()


def _open_concurrently(factory: Callable[[], Store], count: int = 4) -> tuple[list, list]:
    """Open `count` stores from as many threads at once; returns (stores, errors)."""
    stores: list = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(factory())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stores, errors


def test_sqlite_reopen_and_concurrent_open(tmp_path: Path) -> None:
    """Several stores opening one new file at once migrate it once and then share its data."""
    path = tmp_path / "shared.db"
    stores, errors = _open_concurrently(lambda: SQLiteStore(path))
    assert errors == [] and len(stores) == 4
    stores[0].add_feed("https://a.example/rss")
    assert [f.url for f in stores[3].list_feeds()] == ["https://a.example/rss"]
    for s in stores:
        assert s.upgrade() == LATEST
        s.close()


def test_postgres_concurrent_open_of_new_database(postgres_url: str) -> None:
    """Several stores opening one empty PostgreSQL database at once migrate it exactly once."""
    admin = postgres_url.rsplit("/", 1)[0] + "/postgres"
    name = postgres_url.rsplit("/", 1)[1] + "_fresh"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
    stores, errors = _open_concurrently(lambda: PostgresStore(url))
    try:
        assert errors == [] and len(stores) == 4
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (LATEST,)
    finally:
        for s in stores:
            s.close()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_threads_share_one_store(store: Store) -> None:
    """Writes from several threads through one store all land."""

    def write(base: int) -> None:
        for i in range(20):
            store.add_articles([art(base + i)])

    threads = [threading.Thread(target=write, args=(n * 100,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.list_articles(limit=1000)) == 80


def test_postgres_reconnects_after_connection_loss(postgres_url: str) -> None:
    """When the server drops the connection, the interrupted call fails as StoreError and the next works."""
    store = PostgresStore(postgres_url)
    try:
        pid = store._conn.info.backend_pid
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreError):
            store.ping()
        store.ping()
        assert store._conn.info.backend_pid != pid
    finally:
        store.close()


# -- open_store -----------------------------------------------------------------------------


def test_open_store_picks_backend_by_scheme(tmp_path: Path, postgres_url: str) -> None:
    """sqlite:/// opens a file store, postgresql:// and postgres:// open PostgreSQL."""
    lite = open_store(f"sqlite:///{tmp_path / 'sub' / 'x.db'}")
    assert isinstance(lite, SQLiteStore) and (tmp_path / "sub" / "x.db").exists()
    lite.close()
    for url in (postgres_url, postgres_url.replace("postgresql://", "postgres://", 1)):
        pg = open_store(url)
        assert isinstance(pg, PostgresStore)
        pg.ping()
        pg.close()


@pytest.mark.parametrize("url", ["mysql://db/x", "sqlite:///:memory:", "sqlite:///", "ingest.db"])
def test_open_store_rejects_unsupported_urls(url: str) -> None:
    """Other schemes and in-memory SQLite are a ConfigError naming the problem."""
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        open_store(url)
