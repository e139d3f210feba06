"""Stories beyond plain near-duplicates: a brief joins its wire story, a site's boilerplate is no
overlap, templated texts with other numbers are other stories, syndicated copies still join."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from ingest.dedup import index
from ingest.dedup.features import sentence_keys, site
from ingest.dedup.fingerprint import DedupItem, fingerprint, story_similarity
from ingest.dedup.index import Deduplicator
from ingest.language.detect import LanguageDetector
from ingest.models import RawEntry
from ingest.services.prepare import Preparer
from ingest.services.process import Pipeline
from ingest.store.base import Store

FIXTURES = Path(__file__).parent / "fixtures" / "stories"
WIRE = (FIXTURES / "wire_story.txt").read_text()
BRIEF = (FIXTURES / "brief.txt").read_text()
BOILERPLATE = (FIXTURES / "press_boilerplate.txt").read_text()
RELEASES = [
    r.strip() + "\n\n" + BOILERPLATE for r in (FIXTURES / "press_releases.txt").read_text().split("---")
]
EARNINGS_A = (FIXTURES / "earnings_a.txt").read_text()
EARNINGS_B = (FIXTURES / "earnings_b.txt").read_text()


def _assign(dedup: Deduplicator, *bodies: str, tag: str = "a") -> list[tuple[str, str]]:
    items = [DedupItem(f"{tag}{i}", fingerprint(body, None), None) for i, body in enumerate(bodies)]
    return [(r.kind, r.story_id) for r in dedup.assign(items)]


@pytest.mark.parametrize("order", ["wire first", "brief first"])
def test_a_brief_joins_its_wire_story(redis_client: redis.Redis, order: str) -> None:
    """Six times shorter than the story: the MinHash estimate alone (Jaccard ~0.16) misses it."""
    first, second = (WIRE, BRIEF) if order == "wire first" else (BRIEF, WIRE)
    dedup = Deduplicator(redis_client, prefix=f"t:brief:{order}:")
    assert _assign(dedup, first) == [("new", "a0")]
    assert _assign(dedup, second, tag="b") == [("near", "a0")]


def test_templated_reports_with_other_numbers_are_other_stories(redis_client: redis.Redis) -> None:
    a, b = fingerprint(EARNINGS_A, None), fingerprint(EARNINGS_B, None)
    dedup = Deduplicator(redis_client, prefix="t:templated:")
    assert [k for k, _ in _assign(dedup, EARNINGS_A, EARNINGS_B)] == ["new", "new"]
    assert story_similarity(a, b) == 0.0
    # the same report with only the names changed states the same numbers: one story
    renamed = EARNINGS_A.replace("Harbor Lane Foods", "Harbour Lane Group").replace(
        "Marion Kessler", "M. Kessler"
    )
    assert _assign(dedup, renamed, tag="b") == [("near", "a0")]


def _entries(feed_id: int, feed_url: str, host: str, bodies: list[str], tag: str) -> list[RawEntry]:
    return [
        RawEntry(
            feed_id,
            feed_url,
            f"{tag}{i}",
            f"https://{host}/{tag}/{i}",
            f"Release {tag}{i}",
            body,
            is_html=False,
        )
        for i, body in enumerate(bodies)
    ]


def _pipeline(store: Store, redis_client: redis.Redis, prefix: str) -> Pipeline:
    return Pipeline(store, Deduplicator(redis_client, prefix=prefix), Preparer(LanguageDetector()))


def test_press_releases_sharing_the_sites_boilerplate_are_not_one_story(
    store: Store, redis_client: redis.Redis
) -> None:
    """Once the site has repeated its "About / forward-looking statements / media contact" block in
    two stories, the block is left out: the next releases are stories of their own."""
    pipeline = _pipeline(store, redis_client, "t:press:")
    feed = store.add_feed("https://press.example/rss")
    earlier = pipeline.process(_entries(feed.id, feed.url, "press.example", RELEASES[:2], "old")).stored
    later = pipeline.process(_entries(feed.id, feed.url, "press.example", RELEASES[2:], "new")).stored
    assert len(later) == 2
    assert [a.story_id for a in later] == [a.id for a in later]  # each its own story
    assert not {a.story_id for a in later} & {a.story_id for a in earlier}
    # a feed's first batch: the releases of the batch count for each other
    first = _pipeline(store, redis_client, "t:press-batch:")
    site_feed = store.add_feed("https://releases.example/rss")
    together = first.process(_entries(site_feed.id, site_feed.url, "releases.example", RELEASES, "r")).stored
    assert [a.story_id for a in together] == [a.id for a in together]
    # without the site's history the shared block alone makes them one story: the counts matter
    fresh = Deduplicator(redis_client, prefix="t:press-fresh:")
    assert _assign(fresh, RELEASES[2], RELEASES[3])[1][0] == "near"


def test_a_syndicated_copy_still_joins(store: Store, redis_client: redis.Redis) -> None:
    """Another site, a header of its own, the last paragraphs cut: one story, also when the wire's
    site has a boilerplate history."""
    pipeline = _pipeline(store, redis_client, "t:syndicated:")
    wire = store.add_feed("https://wire.example/rss")
    paper = store.add_feed("https://paper.example/rss")
    footer = "\n\nThis story was distributed by the Wire Service. All rights reserved by the agency."
    pipeline.process(
        _entries(wire.id, wire.url, "wire.example", ["An earlier story on the weather." * 8 + footer], "w")
    )
    pipeline.process(
        _entries(wire.id, wire.url, "wire.example", ["Another story about the markets." * 8 + footer], "x")
    )
    original = pipeline.process(_entries(wire.id, wire.url, "wire.example", [WIRE + footer], "y")).stored[0]
    paragraphs = WIRE.split("\n\n")
    copy = "By our staff | Updated 14:32 GMT\n\n" + "\n\n".join(paragraphs[:-3])
    stored = pipeline.process(_entries(paper.id, paper.url, "paper.example", [copy], "p")).stored
    assert stored[0].story_id == original.story_id == original.id


def test_sentence_counts_stay_bounded(redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index, "BOILERPLATE_KEYS", 20)
    dedup = Deduplicator(redis_client, prefix="t:bounded:")
    keys = sentence_keys(WIRE)
    assert len(keys) > 5 and site("https://www.press.example/a") == "press.example"
    for round_ in range(6):
        dedup.count_sentences([("press.example", [k + round_ * 1000 for k in keys])])
        assert redis_client.hlen("t:bounded:dedup:s:press.example") <= 20 + len(keys)
    dedup.count_sentences([("press.example", keys), ("press.example", keys)])
    once = dict.fromkeys(keys, 1)
    assert dedup.boilerplate({"press.example": once})["press.example"] == frozenset(keys)
    assert dedup.boilerplate({"other.example": once})["other.example"] == frozenset()
    thrice = dict.fromkeys(keys, 3)  # three stories of the batch hold them: two others each
    assert dedup.boilerplate({"other.example": thrice})["other.example"] == frozenset(keys)


def test_records_written_before_the_sketches_still_match(redis_client: redis.Redis) -> None:
    """A record in the earlier layout (ts, id, story, size, signature) is still compared by MinHash."""
    dedup = Deduplicator(redis_client, prefix="t:oldrec:")
    assert _assign(dedup, WIRE) == [("new", "a0")]
    key = "t:oldrec:dedup:d:1"
    record = redis_client.get(key)
    assert record is not None and record.startswith(b"v2\n")
    ts, aid, story, size, _nsig, _meta, rest = record[3:].split(b"\n", 6)
    signature = fingerprint(WIRE, None).signature
    assert signature is not None and rest.startswith(signature)
    redis_client.set(key, b"\n".join([ts, aid, story, size, signature]))
    copy = "\n\n".join(WIRE.split("\n\n")[:-2])
    assert _assign(dedup, copy, tag="b") == [("near", "a0")]
