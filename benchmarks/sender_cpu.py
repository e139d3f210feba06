"""The sender's CPU per delivered alert, alone: a filled outbox drained by `run_sender` in this process.

    .venv/bin/python benchmarks/sender_cpu.py [--corpus DIR] [--alerts 5000] [--receivers 100]
        [--per-article 2] [--repeat 3] [--profile OUT.pstats]

`delivery.py` measures the sender inside the whole service, where the host's load moves the
figure a lot; this isolates it for before/after comparisons of the sender's own code. A fresh
valkey-server and a SQLite outbox hold `--alerts` pending alerts (`--per-article` subscriptions
per article, article texts from the corpus), one subscription per healthy loopback receiver
(`e2e/receivers.py`, its own process). `run_sender(burst=True)` drains the outbox; CPU is this
process's (`time.process_time`: the event loop and the threads that claim and record), per alert
delivered. `--repeat` refills and drains again (the first drain warms the imports and pools).
With `--profile`, a cProfile in thread CPU time of the last drain (its threads included).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.e2e import receivers
from benchmarks.e2e.common import SECRET, get_json, service_env, start_valkey
from benchmarks.e2e.service import seed
from benchmarks.farm import Doc, load_corpus


def fill(store: Any, docs: list[Doc], alerts: int, subs: int, per_article: int, round_: int) -> None:
    """`alerts` pending alerts on `alerts / per_article` new articles."""
    from ingest.models import Alert, Article, alert_id, utcnow

    now = utcnow()
    articles, rows = [], []
    for n in range(alerts // per_article):
        doc = docs[n % len(docs)]
        art = f"art_{round_}_{n}"
        articles.append(Article(id=art, feed_id=1, feed_url="http://127.0.0.1/feed", entry_key=art,
                                url=f"https://news.example/{art}", title=doc.title,
                                text="\n\n".join(doc.paragraphs), summary=doc.paragraphs[0][:200],
                                language="en", language_confidence=0.99, published_at=now, story_id=art,
                                content_hash=art, fetched_at=now))  # fmt: skip
        for k in range(per_article):
            sub = f"sub_{(n + k) % subs:03d}"
            rows.append(Alert(alert_id(sub, art), sub, art, art, ["word"],
                              created_at=now + timedelta(microseconds=n)))  # fmt: skip
    store.add_articles(articles)
    store.add_alerts(rows)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--receivers", type=int, default=100)
    parser.add_argument("--per-article", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args()
    import os

    from app.runtime import Runtime
    from app.sender import run_sender
    from ingest.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="ingest-bench-sender-"))
    valkey, redis_url = start_valkey(work / "redis")
    recv_proc, ports, control = receivers.start(args.receivers, SECRET)
    try:
        env = service_env(redis_url, f"sqlite:///{work / 'outbox.db'}", work / "data")
        os.environ.update(env)
        rt = Runtime(Settings.from_env())
        subs = [(f"sub_{n:03d}", "word", f"http://127.0.0.1:{p}/hook") for n, p in enumerate(ports)]
        seed(rt.store, [], 60, subs, SECRET)
        docs = load_corpus(args.corpus)
        for round_ in range(args.repeat):
            fill(rt.store, docs, args.alerts, args.receivers, args.per_article, round_)
            profiling = args.profile is not None and round_ == args.repeat - 1
            started, cpu = time.perf_counter(), time.process_time()
            if profiling:
                from benchmarks.e2e.meter import cprofiled

                with cprofiled(args.profile):
                    attempts = run_sender(rt, threading.Event(), burst=True)
            else:
                attempts = run_sender(rt, threading.Event(), burst=True)
            cpu, seconds = time.process_time() - cpu, time.perf_counter() - started
            got = len(get_json(f"http://127.0.0.1:{control}/dump")["requests"])
            per_alert = cpu * 1000 / max(attempts, 1)
            print(f"drain {round_ + 1}: {attempts} attempts in {seconds:.2f} s, {per_alert:.3f} ms CPU per "
                  f"alert{' (profiled)' if profiling else ''}; receivers have {got} requests; "
                  f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
        rt.close()
    finally:
        recv_proc.terminate()
        valkey.terminate()
        valkey.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
