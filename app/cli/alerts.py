"""`ingest alerts ...`: the dead letters (failed), replay with the same webhook-id, one sweep."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from app.cli.common import runtime
from ingest.errors import ConfigError
from ingest.models import Alert, iso


def alert_dict(alert: Alert) -> dict[str, Any]:
    """An outbox row as `alerts failed --json` prints it."""
    return {k: iso(v) if hasattr(v, "tzinfo") else v for k, v in asdict(alert).items()}


def alerts_failed(args: argparse.Namespace) -> int:
    """Dead letters, newest first: retries used up, 410 Gone, or subscription disabled."""
    ctx = runtime()
    after = None
    shown = 0
    while shown < args.limit:
        page = ctx.store.list_alerts_page(
            limit=min(200, args.limit - shown),
            status="failed",
            subscription_id=args.subscription,
            after=after,
        )
        for alert in page:
            if args.json:
                print(json.dumps(alert_dict(alert), ensure_ascii=False))
            else:
                print(
                    f"{alert.id}\t{alert.subscription_id}\t{alert.story_id}\t{alert.attempts}\t"
                    f"{iso(alert.created_at)}\t{alert.last_error or ''}"
                )
        shown += len(page)
        if not page:
            break
        last = page[-1]
        assert last.created_at is not None  # stored alerts always have one
        after = (last.created_at, last.id)
    return 0


def alerts_replay(args: argparse.Namespace) -> int:
    """Failed alerts back to pending and queued now: one more attempt each, same webhook-id."""
    ctx = runtime()
    if args.alert_id:
        alerts = [ctx.store.get_alert(args.alert_id)]
        if alerts[0].status != "failed":
            raise ConfigError(f"alert {args.alert_id} is {alerts[0].status}: only failed alerts are replayed")
    else:
        ctx.store.get_subscription(args.subscription)
        alerts = ctx.store.subscription_alerts(args.subscription, "failed")
    for sub_id in {a.subscription_id for a in alerts}:
        sub = ctx.store.get_subscription(sub_id)
        if sub.status != "active":
            raise ConfigError(
                f"subscription {sub.id} is {sub.status} ({sub.status_reason}); "
                f"`ingest subs resume {sub.id}` first"
            )
    attempts = len(ctx.settings.webhook_retry_schedule)  # the replay gets one more attempt
    replayed = [r for r in (ctx.store.retry_failed_alert(a.id, attempts=attempts) for a in alerts) if r]
    ctx.wakeup.wake()
    for alert in replayed:
        print(alert.id)
    return 0


def alerts_sweep(args: argparse.Namespace) -> int:
    """One sweep now: close due digest windows (the sender does every few seconds), re-queue lost
    batches (the poller does every INGEST_SWEEP_INTERVAL)."""
    from ingest.services.digests import cut_digests

    ctx = runtime()
    cut = cut_digests(ctx.store)
    batches = ctx.recovery.recover()
    if cut.digests or cut.released:
        ctx.wakeup.wake()
    print(f"digests cut: {len(cut.digests)}, alerts released from digest mode: {len(cut.released)}, "
          f"batches queued again: {batches}")  # fmt: skip
    return 0


def add_parsers(sub: Any) -> None:
    """The `alerts` command and its actions (called from `app.cli.build_parser`)."""
    alerts = sub.add_parser("alerts", help="webhook deliveries").add_subparsers(dest="action", required=True)
    p = alerts.add_parser("failed", help="dead-lettered alerts, newest first")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--subscription", metavar="ID", help="only this subscription's")
    p.add_argument("--limit", type=int, default=1000)
    p.set_defaults(func=alerts_failed)
    p = alerts.add_parser("replay", help="send failed alerts again (same webhook-id)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("alert_id", nargs="?", metavar="ID", help="one failed alert")
    which.add_argument("--subscription", metavar="ID", help="every failed alert of a subscription")
    p.set_defaults(func=alerts_replay)
    p = alerts.add_parser("sweep", help="close due digest windows and queue lost batches again, once")
    p.set_defaults(func=alerts_sweep)
