"""`ingest alerts ...`: the delivery log (list, failed), replay with the same webhook-id, the delivery
status, one sweep. Listing and replay are the use cases the API calls."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.common import alerts, emit, row, runtime, say
from ingest.models import Alert, iso
from ingest.services.usecases.requests import MAX_LIMIT, AlertQuery, parse


def _walk(args: argparse.Namespace, status: str | None) -> int:
    """Newest first, page after page, up to --limit."""
    uc = alerts(runtime())
    cursor, shown = None, 0
    while shown < args.limit:
        q = parse(
            AlertQuery,
            {
                "status": status,
                "subscription": args.subscription,
                "limit": min(MAX_LIMIT, args.limit - shown),
                "cursor": cursor,
            },
        )
        page = uc.page(q)
        for alert in page.items:
            _show(alert, args.json)
        shown += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return 0


def _show(alert: Alert, as_json: bool) -> None:
    if as_json:
        emit(alert)
    else:
        row(
            alert.id,
            alert.status,
            alert.subscription_id,
            alert.story_id,
            alert.attempts,
            alert.created_at,
            alert.last_error,
        )


def alerts_list(args: argparse.Namespace) -> int:
    """The delivery log, newest first (as GET /alerts)."""
    return _walk(args, args.status)


def alerts_failed(args: argparse.Namespace) -> int:
    """Dead letters, newest first: retries used up, 410 Gone, or subscription disabled."""
    return _walk(args, "failed")


def alerts_replay(args: argparse.Namespace) -> int:
    """Failed alerts back to pending: one more attempt each, same webhook-id; the sender is woken."""
    uc = alerts(runtime())
    replayed = [uc.replay(args.alert_id)] if args.alert_id else uc.replay_subscription(args.subscription)
    for alert in replayed:
        print(alert.id)
    return 0


def alerts_status(args: argparse.Namespace) -> int:
    """Due, in flight, oldest due, failed, held, and each receiver's circuit."""
    status = alerts(runtime()).status()
    if args.json:
        emit(status)
        return 0
    say(
        f"due {status.due}, in flight {status.in_flight}, "
        f"oldest due since {iso(status.oldest_due_at) or '-'}, failed {status.failed}, "
        f"held {status.held}, open circuits {status.open_circuits}"
    )
    for r in status.receivers:
        row(
            r.origin,
            r.state,
            f"{r.failures} failures",
            f"open until {iso(r.open_until)}" if r.open_until else "",
            r.last_error,
        )
    return 0


def alerts_sweep(args: argparse.Namespace) -> int:
    """One sweep now: close due digest windows (the sender does every few seconds), queue lost batches
    again (the poller does every INGEST_SWEEP_INTERVAL)."""
    from ingest.services.digests import cut_digests

    rt = runtime()
    cut = cut_digests(rt.store)
    batches = rt.recovery.recover()
    rt.wakeup.wake()
    done = {"digests_cut": len(cut.digests), "alerts_released": len(cut.released), "batches_queued": batches}
    if args.json:
        emit(done)
    else:
        say(
            f"swept: {done['digests_cut']} digests cut, "
            f"{done['alerts_released']} alerts released from digest mode, "
            f"{batches} lost batches queued again; the sender was woken for what is due"
        )
    return 0


def add_parsers(sub: Any) -> None:
    """The `alerts` command and its actions (called from `app.cli.build_parser`)."""
    alerts_ = sub.add_parser("alerts", help="webhook deliveries").add_subparsers(dest="action", required=True)
    for name, func, text in (
        ("list", alerts_list, "the delivery log, newest first"),
        ("failed", alerts_failed, "dead-lettered alerts, newest first"),
    ):
        p = alerts_.add_parser(name, help=text)
        if name == "list":
            p.add_argument("--status", choices=("pending", "delivered", "failed"))
        p.add_argument("--json", action="store_true", help="one JSON object per line")
        p.add_argument("--subscription", metavar="ID", help="only this subscription's")
        p.add_argument("--limit", type=int, default=1000 if name == "failed" else 50)
        p.set_defaults(func=func)
    p = alerts_.add_parser("replay", help="send failed alerts again (same webhook-id)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("alert_id", nargs="?", metavar="ID", help="one failed alert")
    which.add_argument("--subscription", metavar="ID", help="every failed alert of a subscription")
    p.set_defaults(func=alerts_replay)
    p = alerts_.add_parser("status", help="due, in flight, failed, held, and each receiver's circuit")
    p.add_argument("--json", action="store_true", help="as one JSON object")
    p.set_defaults(func=alerts_status)
    p = alerts_.add_parser("sweep", help="close due digest windows and queue lost batches again, once")
    p.add_argument("--json", action="store_true", help="the counts as one JSON object")
    p.set_defaults(func=alerts_sweep)
