"""Several `ingest poll` processes against one database and one Redis, with a loopback farm on many
host addresses that counts every request: each feed fetched once per due time, the per-host cap
held across pollers, a killed poller's feeds taken over when its leases end, sweeps once per
period, a host's 429 honoured by every poller, and no fetching (but a prompt stop) without Redis."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.store import open_store
from ingest.store.base import Store
from ingest.store.postgres import PostgresStore
from testkit.farm import HostFarm
from testkit.rig import Service, service_env, wait_for
from tests.conftest import free_port

pytestmark = pytest.mark.slow


@pytest.fixture()
def farm_box() -> Iterator[list[HostFarm]]:
    made: list[HostFarm] = []
    yield made
    for farm in made:
        farm.close()


@pytest.fixture()
def services() -> Iterator[list[Service]]:
    made: list[Service] = []
    yield made
    for service in made:
        service.stop_all()


def database(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty, migrated database of `kind` for the test's processes."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'ingest.db'}"
        open_store(url).close()
        return url
    url = str(request.getfixturevalue("postgres_url"))
    store = PostgresStore(url)
    store.reset()
    store.close()
    return url


def start(services: list[Service], tmp_path: Path, db: str, redis_url: str, pollers: int,
          **extra: str) -> Service:  # fmt: skip
    """`pollers` pollers, each up (its `poller_started` logged) before this returns."""
    service = Service(tmp_path / "logs", service_env(tmp_path / "data", redis_url, db, **extra))
    services.append(service)
    for n in range(pollers):
        service.start(f"poller-{n}", "poll")
    wait_for(lambda: len(events(service, "poller_started")) == pollers, 60, service.tail)
    return service


def events(service: Service, name: str) -> list[dict[str, object]]:
    """Every JSON log line named `name`, of every process of `service`."""
    found = []
    for path in sorted(service.logdir.glob("*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                record = json.loads(line)
                if record.get("event") == name:
                    found.append({**record, "process": path.stem})
    return found


def seed(db: str, farm: HostFarm, interval: int = 3600) -> Store:
    """The farm's feeds, polled every `interval` seconds; the store stays open for the test's reads."""
    store = open_store(db)
    for url in farm.urls:
        store.add_feed(url, interval=interval)
    return store


def all_recorded(store: Store) -> bool:
    return all(f.last_polled_at is not None for f in store.list_feeds())


@pytest.mark.parametrize(("kind", "pollers"), [("postgresql", 2), ("postgresql", 3), ("sqlite", 2)])
def test_each_feed_fetched_once_cap_held_sweeps_once(
    kind: str, pollers: int, tmp_path: Path, redis_url: str, redis_client: object,
    request: pytest.FixtureRequest, farm_box: list[HostFarm], services: list[Service],
) -> None:  # fmt: skip
    """N pollers share 120 feeds on 6 hosts (slow answers): every feed is fetched exactly once, by
    pollers that each took a share; never more than INGEST_FETCH_PER_HOST requests at once to a host
    across all of them; the recovery sweep ran once per INGEST_SWEEP_INTERVAL, not once per poller."""
    farm = HostFarm(hosts=6, feeds=120, delay=0.3)
    farm_box.append(farm)
    db = database(kind, tmp_path, request)
    service = start(services, tmp_path, db, redis_url, pollers, INGEST_FETCH_PER_HOST="2",
                    INGEST_POLL_BATCH="8", INGEST_FETCH_TIMEOUT="5", INGEST_SWEEP_INTERVAL="2")  # fmt: skip
    store = seed(db, farm)
    try:
        wait_for(lambda: all_recorded(store), 90, service.tail)
        time.sleep(2.5)  # a second look: nothing is fetched again
        counts = farm.counts()
        assert set(counts.values()) == {1}, {u: c for u, c in counts.items() if c != 1}
        busiest = farm.max_active()
        assert max(busiest.values()) == 2, busiest  # the cap was reached and never passed
        fetched = {p: 0 for p in (f"poller-{n}" for n in range(pollers))}
        for record in events(service, "poll_pass"):
            fetched[str(record["process"])] += int(record["feeds"])  # type: ignore[call-overload]
        assert sum(fetched.values()) == 120 and all(fetched.values()), fetched
        ran = sorted(datetime.fromisoformat(str(r["timestamp"])) for r in events(service, "sweep_ran"))
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(ran)]
        assert len(ran) >= 2 and min(gaps) >= 1.7, (len(ran), gaps)
    finally:
        store.close()


def test_killed_pollers_feeds_are_taken_over_when_its_leases_end(
    tmp_path: Path, redis_url: str, redis_client: object, request: pytest.FixtureRequest,
    farm_box: list[HostFarm], services: list[Service],
) -> None:  # fmt: skip
    """A poller SIGKILLed mid-pass holds its claimed feeds until their leases end (2 x fetch timeout
    + 5 s), not longer: another poller then fetches them; every other feed is fetched once."""
    farm = HostFarm(hosts=4, feeds=40, delay=1.0)
    farm_box.append(farm)
    db = database("postgresql", tmp_path, request)
    env = {"INGEST_FETCH_PER_HOST": "2", "INGEST_POLL_BATCH": "8", "INGEST_FETCH_TIMEOUT": "3"}
    first = start(services, tmp_path / "a", db, redis_url, 1, **env)
    store = seed(db, farm)
    try:
        wait_for(lambda: sum(farm.counts().values()) >= 4, 30, first.tail)
        first.signal("poller-0", signal.SIGKILL)
        first.procs["poller-0"].wait(10)
        held = leased(store)
        assert held, "the killed poller held no lease"
        second = start(services, tmp_path / "b", db, redis_url, 1, **env)
        ends = max(until for until in held.values())
        wait_for(lambda: all_recorded(store), 60, second.tail)
        covered = time.time()
        assert covered <= ends + 20, (covered - ends, held)
        counts = farm.counts()
        for feed in store.list_feeds():
            times = farm.times(feed.url)
            if feed.id in held:  # fetched again only once its lease had ended
                assert times and times[-1] >= held[feed.id] - 0.5, (feed.id, times, held[feed.id])
                assert len(times) <= 2
            else:
                assert counts[feed.url] == 1, (feed.id, times)
    finally:
        store.close()


def leased(store: Store) -> dict[int, float]:
    """Feed id -> the end of its lease (epoch seconds), for every feed leased now."""
    assert isinstance(store, PostgresStore)
    with store._read() as cur:
        cur.execute("SELECT id, lease_until FROM feeds WHERE lease_owner IS NOT NULL")
        return {int(r[0]): r[1].astimezone(UTC).timestamp() for r in cur.fetchall()}


def test_a_429_backs_the_host_off_for_every_poller(
    tmp_path: Path, redis_url: str, redis_client: object, request: pytest.FixtureRequest,
    farm_box: list[HostFarm], services: list[Service],
) -> None:  # fmt: skip
    """A host answering 429 Retry-After: 30 is asked once by two pollers together; its other feeds
    are deferred past the back-off, the other hosts' feeds fetched."""
    farm = HostFarm(hosts=3, feeds=30, delay=0.2)
    farm_box.append(farm)
    throttled = farm.host_of(0)
    farm.throttled[throttled] = 30
    db = database("postgresql", tmp_path, request)
    service = start(services, tmp_path, db, redis_url, 2, INGEST_FETCH_PER_HOST="1", INGEST_POLL_BATCH="6")
    started = datetime.now(UTC)
    store = seed(db, farm)
    try:

        def settled() -> bool:
            return all(
                (f.last_success_at is not None) if throttled not in f.url
                else (f.next_poll_at is not None and (f.next_poll_at - started).total_seconds() >= 25)
                for f in store.list_feeds()
            )  # fmt: skip

        wait_for(settled, 60, service.tail)
        assert farm.tally.per_host[throttled] == 1, farm.tally.per_host
        assert len(events(service, "feed_deferred")) == 9
    finally:
        store.close()


def test_without_redis_nothing_is_fetched_and_sigterm_still_stops(
    tmp_path: Path, farm_box: list[HostFarm]
) -> None:
    """Redis unreachable: the poller gives its claims back unfetched (no politeness without the shared
    slots), keeps trying, and stops within seconds of SIGTERM."""
    farm = HostFarm(hosts=1, feeds=3)
    farm_box.append(farm)
    db = f"sqlite:///{tmp_path / 'ingest.db'}"
    store = seed(db, farm)
    service = Service(
        tmp_path / "logs", service_env(tmp_path / "data", f"redis://127.0.0.1:{free_port()}/0", db)
    )
    try:
        service.start("poller", "poll")
        wait_for(lambda: len(events(service, "host_slots_unavailable")) >= 2, 30, service.tail)
        began = time.monotonic()
        service.signal("poller", signal.SIGTERM)
        assert service.procs["poller"].wait(20) == 0
        assert time.monotonic() - began < 8.0
        assert sum(farm.counts().values()) == 0
        with store._read() as cur:  # type: ignore[attr-defined]
            cur.execute("SELECT count(*) FROM feeds WHERE lease_owner IS NOT NULL")
            assert cur.fetchone()[0] == 0
    finally:
        service.stop_all()
        store.close()
