"""Soak: run the service (poller + 2 workers, real processes) against a loopback farm with new items
arriving continuously; print RSS per process and queue depth over time, then lost/duplicate counts.

    .venv/bin/python benchmarks/soak.py --minutes 30        # the long run (not part of CI)
    .venv/bin/python benchmarks/soak.py --minutes 3 --rate 5

Everything runs on loopback: a Valkey server (AOF, everysec) and a SQLite file in a temp dir,
`--feeds` feeds each polled every second, a receiver counting webhooks. At the end the farm stops
publishing, the service drains, and the script checks: every published item stored exactly once,
every (subscription, story) delivered with exactly one webhook-id. Exit status 1 if not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.store import open_store
from testkit.rig import Farm, Receiver, Service, Valkey, counts, seed, service_env, wait_for


def rss_mib(pid: int) -> float:
    """Resident set size of a process, from /proc (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="how long items keep arriving")
    parser.add_argument("--rate", type=float, default=5.0, help="new items per second, over all feeds")
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--every", type=float, default=15.0, help="seconds between two report lines")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ingest-soak-"))
    valkey = Valkey(tmp / "valkey")
    valkey.start()
    farm, receiver = Farm(args.feeds, keep=50), Receiver()
    farm.up()
    receiver.up()
    url = f"sqlite:///{tmp / 'ingest.db'}"
    subs = seed(url, farm, receiver)
    service = Service(
        tmp / "logs",
        service_env(
            tmp / "data",
            valkey.url,
            url,
            INGEST_LOG_LEVEL="warning",
            INGEST_RECOVERY_AFTER="60",
            INGEST_SWEEP_INTERVAL="30",
            INGEST_SWEEP_GRACE="30",
        ),
    )
    store = open_store(url)
    client = valkey_client(valkey)
    print(
        f"soak: {args.minutes:g} min, {args.rate:g} items/s over {args.feeds} feeds; logs in {tmp / 'logs'}"
    )
    try:
        service.start("poller", "poll")
        service.start("sender", "send")
        service.start("worker-1", "worker")
        service.start("worker-2", "worker")
        header = ["t_s", "published", "stored", "received", "ingest_q", "alerts_q", "pending_batches"]
        header += [f"{name}_MiB" for name in service.procs]
        print("  ".join(header))
        started = last_report = time.monotonic()
        debt = 0.0
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(0.2)
            debt += args.rate * 0.2
            if debt >= 1:
                farm.add(int(debt))
                debt -= int(debt)
            if time.monotonic() - last_report >= args.every:
                last_report = time.monotonic()
                report(started, farm, receiver, store, client, service)
        expected = farm.added * len(subs)
        print(f"publishing stopped at {farm.added} items; draining")
        wait_for(
            lambda: (
                counts(store)["articles"] == farm.added
                and receiver.unique_ids() == expected
                and counts(store)["pending_batches"] == 0
            ),
            600,
            lambda: f"not drained: {counts(store)}",
        )
        report(started, farm, receiver, store, client, service)
        final = counts(store)
        per_story = receiver.ids_per_story()
        lost = farm.added - final["entries"] + (expected - len(per_story))
        duplicates = (final["articles"] - final["entries"]) + sum(len(ids) - 1 for ids in per_story.values())
        print(
            f"published {farm.added}, stored {final['articles']}, alerts received {len(per_story)} "
            f"(deliveries {len(receiver.calls)}): lost {lost}, duplicates {duplicates}, "
            f"processes alive {len(service.alive())}/3"
        )
        return 0 if lost == 0 and duplicates == 0 and len(service.alive()) == 3 else 1
    finally:
        service.stop_all()
        store.close()
        valkey.kill()
        farm.down()
        receiver.down()


def valkey_client(valkey: Valkey):  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(valkey.url)


def report(
    started: float, farm: Farm, receiver: Receiver, store: object, client: object, service: Service
) -> None:
    now = counts(store)
    row = [
        f"{time.monotonic() - started:.0f}",
        str(farm.added),
        str(now["articles"]),
        str(receiver.unique_ids()),
        str(client.llen("rq:queue:ingest")),
        str(client.llen("rq:queue:alerts")),  # type: ignore[attr-defined]
        str(now["pending_batches"]),
    ]
    row += [f"{rss_mib(proc.pid):.0f}" for proc in service.procs.values()]
    print("  ".join(row), flush=True)


if __name__ == "__main__":
    sys.exit(main())
