"""The store methods behind the HTTP API, on SQLite and PostgreSQL alike (the `store` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.errors import NotFound
from ingest.models import Alert, Article, ArticleFilter, Subscription
from ingest.store.base import Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def art(
    n: int,
    *,
    feed_id: int = 1,
    story: str | None = None,
    language: str = "en",
    text: str | None = None,
    fetched: datetime | None = None,
) -> Article:
    return Article(
        id=f"a{n}",
        feed_id=feed_id,
        feed_url=f"https://feed{feed_id}.example/rss",
        entry_key=f"k{n}",
        url=f"https://news.example/{n}",
        title=f"Title {n}",
        text=text or f"Body of article number {n}.",
        summary=None,
        language=language,
        language_confidence=0.9,
        published_at=None,
        story_id=story or f"s{n}",
        content_hash=f"h{n}",
        fetched_at=fetched or T0 + timedelta(seconds=n),
    )


def sub(n: int, created: datetime | None = None) -> Subscription:
    return Subscription(
        id=f"sub{n}",
        name=f"topic {n}",
        query="climate",
        webhook=f"https://hooks.example/{n}",
        secret="whsec_c2VjcmV0",
        created_at=created or T0 + timedelta(seconds=n),
    )


def test_feed_pages_and_lookup_by_url(store: Store) -> None:
    """Feeds page by id after a key; a URL finds its feed or None."""
    ids = [store.add_feed(f"https://f{n}.example/rss").id for n in range(5)]
    assert [f.id for f in store.list_feeds_page(limit=2)] == ids[:2]
    assert [f.id for f in store.list_feeds_page(limit=10, after_id=ids[1])] == ids[2:]
    found = store.find_feed_by_url("https://f3.example/rss")
    assert found is not None and found.id == ids[3]
    assert store.find_feed_by_url("https://none.example/rss") is None


def test_article_pages_filter_and_resume_after_key(store: Store) -> None:
    """Newest first; every filter narrows; a page resumes strictly after the last key, ties by id."""
    same = T0 + timedelta(minutes=5)
    store.add_articles(
        [
            art(1),
            art(2, story="s1"),
            art(3, language="de", feed_id=2),
            art(4, fetched=same),
            art(5, fetched=same),
        ]
    )
    everything = store.list_articles_page(ArticleFilter(), limit=10)
    assert [a.id for a in everything] == ["a5", "a4", "a3", "a2", "a1"]
    first = store.list_articles_page(ArticleFilter(), limit=1)
    rest = store.list_articles_page(ArticleFilter(), limit=10, after=(first[0].fetched_at, first[0].id))
    assert [a.id for a in first + rest] == ["a5", "a4", "a3", "a2", "a1"]
    ids = lambda f: [a.id for a in store.list_articles_page(f, limit=10)]  # noqa: E731
    assert ids(ArticleFilter(language="de")) == ["a3"]
    assert ids(ArticleFilter(feed_id=2)) == ["a3"]
    assert ids(ArticleFilter(story_id="s1")) == ["a2", "a1"]
    window = ArticleFilter(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4))
    assert ids(window) == ["a3", "a2"]


def test_search_pages_by_offset_within_filters(store: Store) -> None:
    """Search returns every word's articles within the filters, page by page without repeats."""
    store.add_articles(
        [art(n, text=f"climate policy note {n}", language="de" if n == 3 else "en") for n in range(1, 6)]
    )
    pages = [
        store.search_articles_page("climate policy", ArticleFilter(), limit=2, offset=o) for o in (0, 2, 4)
    ]
    assert sorted(a.id for page in pages for a in page) == ["a1", "a2", "a3", "a4", "a5"]
    german = store.search_articles_page("climate", ArticleFilter(language="de"), limit=5)
    assert [a.id for a in german] == ["a3"]
    assert store.search_articles_page("!!!", ArticleFilter(), limit=5) == []


def test_subscription_pages_oldest_first(store: Store) -> None:
    """Subscriptions page by (created_at, id) after a key."""
    for n in range(4):
        store.add_subscription(sub(n))
    first = store.list_subscriptions_page(limit=3)
    rest = store.list_subscriptions_page(limit=3, after=(first[-1].created_at, first[-1].id))  # type: ignore[arg-type]
    assert [s.id for s in first + rest] == ["sub0", "sub1", "sub2", "sub3"]


def test_rotation_signs_with_both_secrets_during_grace(store: Store) -> None:
    """After rotation the new secret signs first, the old one too until its expiry, then not."""
    store.add_subscription(sub(1))
    version = store.subscriptions_version()
    until = T0 + timedelta(days=1)
    rotated = store.rotate_subscription_secret("sub1", "whsec_bmV3", previous_valid_until=until)
    assert rotated.secret == "whsec_bmV3" and store.subscriptions_version() != version
    assert store.get_signing_secrets("sub1", now=T0) == ["whsec_bmV3", "whsec_c2VjcmV0"]
    assert store.get_signing_secrets("sub1", now=until) == ["whsec_bmV3"]
    with pytest.raises(NotFound):
        store.rotate_subscription_secret("nope", "whsec_x", previous_valid_until=until)
    with pytest.raises(NotFound):
        store.get_signing_secrets("nope")


def test_new_subscription_signs_with_one_secret(store: Store) -> None:
    """Without a rotation there is one signing secret."""
    store.add_subscription(sub(1))
    assert store.get_signing_secrets("sub1") == ["whsec_c2VjcmV0"]


def test_alert_pages_filter_and_retry_failed(store: Store) -> None:
    """Alerts page newest first by status and subscription; only a failed alert goes back to pending."""
    store.add_subscription(sub(1))
    store.add_subscription(sub(2))
    store.add_alerts(
        [
            Alert(
                id=f"msg_{n}",
                subscription_id="sub1" if n < 3 else "sub2",
                story_id=f"s{n}",
                article_id=f"a{n}",
                matched_terms=["x"],
                created_at=T0 + timedelta(seconds=n),
            )
            for n in range(1, 5)
        ]
    )
    store.record_attempt("msg_2", status="failed", attempts=8, next_attempt_at=None, error="HTTP 500")
    first = store.list_alerts_page(limit=2)
    rest = store.list_alerts_page(limit=5, after=(first[-1].created_at, first[-1].id))  # type: ignore[arg-type]
    assert [a.id for a in first + rest] == ["msg_4", "msg_3", "msg_2", "msg_1"]
    assert [a.id for a in store.list_alerts_page(limit=5, subscription_id="sub2")] == ["msg_4", "msg_3"]
    assert [a.id for a in store.list_alerts_page(limit=5, status="failed")] == ["msg_2"]
    replayed = store.retry_failed_alert("msg_2", attempts=7, now=T0)
    assert replayed is not None and replayed.status == "pending" and replayed.attempts == 7
    assert replayed.next_attempt_at == T0
    assert store.retry_failed_alert("msg_2", attempts=7) is None  # pending now: nothing to replay
    with pytest.raises(NotFound):
        store.retry_failed_alert("msg_nope", attempts=1)


def test_articles_by_entries_in_one_lookup(store: Store) -> None:
    """Pairs of several feeds come back keyed by (feed_id, entry_key); unknown pairs are left out."""
    store.add_articles([art(1), art(2), art(3, feed_id=2)])
    found = store.get_articles_by_entries([(1, "k1"), (1, "k2"), (2, "k3"), (2, "k1"), (3, "k9"), (1, "k1")])
    assert found == {(1, "k1"): art(1), (1, "k2"): art(2), (2, "k3"): art(3, feed_id=2)}
    assert found[(1, "k1")] == store.get_article_by_entry(1, "k1")
    assert store.get_articles_by_entries([]) == {}


def test_subscription_delivery_health(store: Store) -> None:
    """A failure starts the failing clock (later ones keep it), a success stops it; unknown: NotFound."""
    store.add_subscription(sub(1))
    version = store.subscriptions_version()
    assert store.record_subscription_delivery("sub1", ok=False, at=T0) == T0
    assert store.record_subscription_delivery("sub1", ok=False, at=T0 + timedelta(hours=1)) == T0
    assert store.record_subscription_delivery("sub1", ok=True, at=T0 + timedelta(hours=2)) is None
    healthy = store.get_subscription("sub1")
    assert healthy.failing_since is None and healthy.last_success_at == T0 + timedelta(hours=2)
    assert store.subscriptions_version() == version  # not a change the matcher reloads for
    with pytest.raises(NotFound):
        store.record_subscription_delivery("nope", ok=True)
