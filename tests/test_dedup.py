"""Exact and near-duplicate story assignment against a real Redis."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import redis

from ingest.dedup.fingerprint import DedupItem, canonical_url, fingerprint, similarity
from ingest.dedup.index import Deduplicator

ORIGINAL = [
    "Dock workers at the Port of Rotterdam walked off the job on Monday morning, halting container "
    "traffic at Europe's largest port for the first time in more than three decades, union leaders said.",
    "The strike, called by the FNV Havens union after talks with terminal operators collapsed late on "
    "Sunday, affects about 4,000 workers at the Maasvlakte terminals and could last until Thursday.",
    "Niek Stam, the union's lead negotiator, told reporters outside the ECT Delta terminal that employers "
    "had refused to guarantee jobs as the port automates its cranes and straddle carriers in coming years.",
    "Shipping lines including Maersk and MSC said they were diverting vessels to Antwerp and Hamburg, "
    "where dock capacity was already stretched by a surge in imports ahead of the holiday season.",
    "Economists at ING estimated that every day of the stoppage costs the Dutch economy roughly 50 million "
    "euros, with the chemical and food industries most exposed to delays in raw material deliveries.",
    "The port authority urged both sides to return to the table and said emergency cargo such as medicine "
    "would still be handled by a skeleton crew under an agreement reached with the union on Saturday.",
    "Terminal operators said in a joint statement that they regretted the action and remained open to "
    "dialogue, but insisted that automation was essential to keep Rotterdam competitive with rival ports.",
    "A previous walkout in 1979 lasted six weeks and led to a lasting overhaul of labour relations in the "
    "Dutch ports sector, historians say, and memories of that dispute still shape negotiations today.",
]
SAME_TOPIC = [
    "Container ships queued off the Dutch coast on Wednesday as the strike at the Port of Rotterdam entered "
    "its third day, with no sign of a breakthrough between the FNV Havens union and terminal operators.",
    "Niek Stam said the union would consider a mediator proposed by the Dutch labour minister, but only if "
    "employers dropped plans to cut 800 jobs linked to automation at the Maasvlakte terminals by 2027.",
    "Retailers warned of empty shelves before Christmas. The Dutch supermarket association said fresh fruit "
    "imports from South America were stuck on vessels waiting at anchor in the North Sea.",
    "Maersk said it had rerouted eleven ships to Antwerp and Hamburg this week and would add surcharges for "
    "cargo bound for the Netherlands, a move that freight forwarders called opportunistic.",
    "In Antwerp, port officials reported record volumes and said workers there had agreed to extra shifts, "
    "while Belgian unions expressed solidarity with their Dutch colleagues but ruled out sympathy strikes.",
    "Analysts at ING raised their estimate of the cost of the stoppage to 70 million euros a day, citing "
    "knock-on effects on chemical plants in the Botlek area that rely on just-in-time deliveries.",
]
CHINESE = [
    "新华社北京10月31日电 国家统计局31日发布数据显示，10月份中国制造业采购经理指数为51.4%，"
    "比上月上升0.3个百分点，制造业继续保持稳步恢复态势，市场需求逐步回暖。",
    "国家统计局服务业调查中心高级统计师赵庆河表示，本月在调查的21个行业中，有16个行业采购经理指数位于临界点以上，"
    "制造业景气面较上月有所扩大，企业生产经营活动总体活跃。",
    "从企业规模看，大型企业采购经理指数为52.6%，比上月上升0.1个百分点；中型企业为50.6%，上升0.5个百分点；"
    "小型企业为50.1%，比上月上升0.4个百分点，重回扩张区间。",
    "从分类指数看，生产指数和新订单指数分别为53.9%和52.8%，比上月上升0.9和0.5个百分点，表明制造业生产扩张加快，"
    "市场需求持续改善，新出口订单指数也有所回升。",
    "专家认为，随着一系列稳增长政策效果持续显现，国内经济循环加快畅通，预计四季度经济运行将继续保持恢复向好态势，"
    "但外部环境依然复杂严峻，仍需巩固经济回升基础。",
]
CHINESE_OTHER = [
    "中新网上海11月2日电 第六届中国国际进口博览会将于11月5日至10日在上海举行，目前各项筹备工作已基本就绪，"
    "来自154个国家和地区的企业将参展，展览面积超过36万平方米。",
    "进博会新闻发言人孙成海介绍，本届进博会企业商业展世界500强和行业龙头企业数量再创新高，首发新产品、新技术、"
    "新服务预计超过400项，涵盖食品、汽车、医疗器械等多个领域。",
    "上海市有关部门表示，已经完成场馆改造和交通保障方案，地铁和公交将在展会期间延长运营时间，"
    "并增加临时接驳线路，方便观众和参展商往返国家会展中心。",
    "业内人士认为，进博会为各国企业进入中国市场提供了重要平台，也体现了中国坚持高水平对外开放的决心，"
    "有助于推动世界经济复苏和全球贸易增长。",
]


def syndicated(paras: list[str], title: str) -> str:
    """A partner-site copy: other title, header, footer; last 30 % cut; paragraphs reordered."""
    kept = paras[: int(len(paras) * 0.7)]
    kept[0], kept[2] = kept[2], kept[0]
    kept[1], kept[3] = kept[3], kept[1]
    return "\n\n".join(
        [
            title,
            "By Wire Staff | Published via partner network",
            *kept,
            "This story originally appeared on a partner site. All rights reserved. "
            "Sign up for our newsletter.",
        ]
    )


def item(
    article_id: str, text: str, url: str | None = None, published_at: datetime | None = None
) -> DedupItem:
    return DedupItem(article_id, fingerprint(text, url), published_at)


def make(client: redis.Redis, **kwargs: object) -> Deduplicator:
    return Deduplicator(client, prefix="t:", **kwargs)  # type: ignore[arg-type]


def test_fingerprint_normalizes_body_and_url() -> None:
    """Case, punctuation and whitespace do not change the hash; tracking parameters leave the URL."""
    a = fingerprint("Hello,  World!\n\nSecond   paragraph.", "https://www.example.com/a/?utm_source=x#top")
    b = fingerprint("hello world -- second paragraph", "http://example.com/a")
    assert a.content_hash == b.content_hash
    assert a.canonical_url == b.canonical_url == "example.com/a"
    assert canonical_url("https://example.com/a?id=2&x=1") != canonical_url("https://example.com/a?id=3&x=1")


def test_short_text_gets_no_signature() -> None:
    """Under 30 words there is no MinHash signature: exact dedup only."""
    short = fingerprint("Only a handful of words here, far too few for shingles.", None)
    assert short.signature is None and short.bands == ()
    assert fingerprint(" ".join(ORIGINAL), None).signature is not None


def test_similarity_separates_copy_from_same_topic() -> None:
    """A syndicated copy scores above 0.5; a different story on the same subject well below."""
    original = fingerprint("\n\n".join(ORIGINAL), None)
    copy = fingerprint(syndicated(ORIGINAL, "Rotterdam port paralysed"), None)
    other = fingerprint("\n\n".join(SAME_TOPIC), None)
    assert similarity(original, copy) >= 0.6
    assert similarity(original, other) < 0.3


def test_exact_url_duplicate(redis_client: redis.Redis) -> None:
    """The same canonical URL is an exact duplicate even with another body."""
    dedup = make(redis_client)
    first = dedup.assign([item("a1", "\n\n".join(ORIGINAL), "https://news.example/strike")])
    again = dedup.assign(
        [item("a2", "Updated: " + ORIGINAL[0], "https://news.example/strike?utm_medium=rss")]
    )
    assert first[0].kind == "new" and first[0].story_id == "a1"
    assert again[0].kind == "exact" and again[0].story_id == "a1" and again[0].duplicate_of == "a1"


def test_exact_body_duplicate_other_url(redis_client: redis.Redis) -> None:
    """The same normalized body under another URL is an exact duplicate."""
    dedup = make(redis_client)
    dedup.assign([item("a1", "\n\n".join(ORIGINAL), "https://one.example/x")])
    result = dedup.assign([item("a2", "\n".join(ORIGINAL).upper(), "https://two.example/y")])
    assert result[0].kind == "exact" and result[0].duplicate_of == "a1"


def test_syndicated_copy_joins_story(redis_client: redis.Redis) -> None:
    """Other title, header, footer, 30 % trimmed and reordered paragraphs: same story, kind near."""
    dedup = make(redis_client)
    dedup.assign([item("orig", "\n\n".join(ORIGINAL), "https://one.example/strike")])
    result = dedup.assign(
        [item("copy", syndicated(ORIGINAL, "Strike halts Rotterdam"), "https://two.example/s")]
    )
    assert result[0].kind == "near" and result[0].story_id == "orig" and result[0].duplicate_of == "orig"
    assert result[0].similarity is not None and result[0].similarity >= 0.5
    third = dedup.assign(
        [item("copy2", syndicated(ORIGINAL, "Strike halts Rotterdam"), "https://three.example/s")]
    )
    assert third[0].kind == "exact" and third[0].story_id == "orig" and third[0].duplicate_of == "copy"


def test_same_topic_other_story_is_new(redis_client: redis.Redis) -> None:
    """A different article on the same subject, sharing names and phrases, starts its own story."""
    dedup = make(redis_client)
    dedup.assign([item("orig", "\n\n".join(ORIGINAL), "https://one.example/strike")])
    result = dedup.assign([item("day3", "\n\n".join(SAME_TOPIC), "https://one.example/strike-day-3")])
    assert result[0].kind == "new" and result[0].story_id == "day3"


def test_batch_internal_duplicates(redis_client: redis.Redis) -> None:
    """Items of one batch dedup against earlier items of the same batch."""
    dedup = make(redis_client)
    results = dedup.assign(
        [
            item("orig", "\n\n".join(ORIGINAL), "https://one.example/strike"),
            item("copy", syndicated(ORIGINAL, "Strike"), "https://two.example/strike"),
            item("same-url", "Something else entirely.", "https://one.example/strike"),
            item("other", "\n\n".join(SAME_TOPIC), None),
        ]
    )
    assert [r.kind for r in results] == ["new", "near", "exact", "new"]
    assert [r.story_id for r in results] == ["orig", "orig", "orig", "other"]


def test_near_copy_of_copy_keeps_root_story(redis_client: redis.Redis) -> None:
    """A copy matching a near-duplicate joins the original's story, not a story of the copy."""
    dedup = make(redis_client)
    dedup.assign([item("orig", "\n\n".join(ORIGINAL)), item("copy", syndicated(ORIGINAL, "Strike"))])
    trimmed = "\n\n".join(["Rotterdam latest", *ORIGINAL[1:6], "Copyright the wire."])
    result = dedup.assign([item("copy2", trimmed)])
    assert result[0].kind == "near" and result[0].story_id == "orig"


def test_chinese_copies(redis_client: redis.Redis) -> None:
    """Chinese text without spaces: a trimmed, re-headed copy joins; another story does not."""
    dedup = make(redis_client)
    copy = "\n".join(["统计局：制造业景气回升", "来源：合作媒体", *CHINESE[:4], "（责任编辑：王明）"])
    results = dedup.assign(
        [item("zh1", "\n".join(CHINESE)), item("zh2", copy), item("zh3", "\n".join(CHINESE_OTHER))]
    )
    assert [r.kind for r in results] == ["new", "near", "new"]
    assert results[1].story_id == "zh1"


def test_short_texts_only_exact(redis_client: redis.Redis) -> None:
    """Short bodies match when identical and never by similarity."""
    dedup = make(redis_client)
    results = dedup.assign(
        [
            item("s1", "Markets closed higher on Friday after a volatile week of trading in Asia."),
            item("s2", "Markets closed higher on Friday after a volatile week of trading in Europe."),
            item("s3", "markets closed higher on friday, after a volatile week of trading in asia"),
        ]
    )
    assert [r.kind for r in results] == ["new", "new", "exact"]


def test_keys_carry_ttl(redis_client: redis.Redis) -> None:
    """Every dedup key expires within the window plus one bucket (one window), so memory is bounded."""
    dedup = make(redis_client, window_days=2)
    dedup.assign(
        [
            item("a1", "\n\n".join(ORIGINAL), "https://one.example/x"),
            item("a2", "\n\n".join(CHINESE), "https://two.example/y"),
        ]
    )
    keys = [k for k in redis_client.scan_iter("t:dedup:*") if k != b"t:dedup:seq"]
    assert len(keys) > 10
    ttls = [redis_client.ttl(k) for k in keys]
    assert all(0 < t <= 4 * 86400 for t in ttls)


def test_window_expiry_and_published_gap(redis_client: redis.Redis) -> None:
    """After the window a copy starts a new story; so does a copy published beyond the window."""
    now = [time.time()]  # the real clock: Redis expires keys by its own
    dedup = make(redis_client, window_days=2, clock=lambda: now[0])
    dedup.assign([item("orig", "\n\n".join(ORIGINAL))])
    now[0] += 4 * 86400
    late = dedup.assign([item("late", syndicated(ORIGINAL, "Strike"))])
    assert late[0].kind == "new"
    published = datetime.fromtimestamp(now[0], UTC)
    dedup.assign([item("p1", "\n\n".join(SAME_TOPIC), published_at=published)])
    later = published + timedelta(days=5)
    gap = dedup.assign([item("p2", syndicated(SAME_TOPIC, "Day 3"), published_at=later)])
    soon = published + timedelta(days=1)
    near = dedup.assign([item("p3", syndicated(SAME_TOPIC, "Third day"), published_at=soon)])
    assert gap[0].kind == "new"
    assert near[0].kind == "near" and near[0].story_id == "p1"


def test_concurrent_workers_do_not_both_start_a_story(redis_url: str, redis_client: redis.Redis) -> None:
    """Two workers assigning copies at the same moment: exactly one of them starts the story."""
    copies = [
        item(f"w{i}", syndicated(ORIGINAL, f"Title {i}") if i % 2 else "\n\n".join(ORIGINAL))
        for i in range(8)
    ]
    results: dict[str, str] = {}

    def work(part: list[DedupItem]) -> None:
        client = redis.Redis.from_url(redis_url)
        for one in part:
            results[one.article_id] = make(client).assign([one])[0].story_id
        client.close()

    threads = [threading.Thread(target=work, args=(copies[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results.values())) == 1
