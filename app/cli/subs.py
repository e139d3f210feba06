"""`ingest subs ...`: add (with options and backfill), list, pause, resume, rotate-secret, remove."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from app.cli.common import runtime
from ingest.models import Subscription, iso, utcnow


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_json_ready(v) for v in value]
    return iso(value) if hasattr(value, "tzinfo") else value


def sub_dict(sub: Subscription) -> dict[str, Any]:
    """A subscription as `subs list --json` prints it: everything but the secret."""
    data: dict[str, Any] = _json_ready(asdict(sub))
    data.pop("secret")
    return data


def subs_add(args: argparse.Namespace) -> int:
    from ingest.alert.signature import new_secret, validate_secret
    from ingest.match import parse_query
    from ingest.net.guard import check_url
    from ingest.services.subscriptions import backfill, make_options, parse_period

    ctx = runtime()
    parse_query(args.query)  # refuses a bad query with its position before anything is stored
    check_url(args.webhook, ctx.settings.allowed_networks)
    secret = validate_secret(args.secret) if args.secret else new_secret()
    options = make_options(
        ctx.store,
        languages=args.lang or (),
        feeds=args.feed or (),
        digest_minutes=args.digest,
        rate_limit=args.rate_limit,
    )
    period = parse_period(args.backfill) if args.backfill else None
    sub = ctx.store.add_subscription(
        Subscription(
            id="sub_" + uuid.uuid4().hex[:16],
            name=args.name or args.query,
            query=args.query,
            webhook=args.webhook,
            secret=secret,
            created_at=utcnow(),
            options=options,
        )
    )
    print(f"{sub.id}\t{sub.secret}")
    sys.stdout.flush()
    if period is not None:
        alerts = backfill(ctx.store, sub, period)
        ctx.wakeup.wake()
        print(
            f"backfill: {len(alerts)} stories of the last {args.backfill} queued for {sub.id}",
            file=sys.stderr,
        )
    return 0


def subs_list(args: argparse.Namespace) -> int:
    ctx = runtime()
    for sub in ctx.store.list_subscriptions():
        if args.json:
            print(json.dumps(sub_dict(sub), ensure_ascii=False))
        else:
            print(
                f"{sub.id}\t{sub.status}\t{sub.name}\t{sub.query}\t{sub.webhook}\t{sub.status_reason or ''}"
            )
    return 0


def subs_pause(args: argparse.Namespace) -> int:
    """Stop delivering; pending alerts stay pending and new articles are not matched until resume."""
    ctx = runtime()
    ctx.store.get_subscription(args.subscription_id)  # NotFound: exit 2 with the reason
    reason = f"paused with `ingest subs pause` on {iso(utcnow())}"
    ctx.store.set_subscription_status(args.subscription_id, "paused", reason)
    print(f"{args.subscription_id}\tpaused")
    return 0


def subs_resume(args: argparse.Namespace) -> int:
    """Back to active (paused or disabled), and queue the alerts that waited."""
    ctx = runtime()
    ctx.store.get_subscription(args.subscription_id)
    ctx.store.set_subscription_status(args.subscription_id, "active", None)
    pending = ctx.store.subscription_alerts(args.subscription_id, "pending")
    ctx.wakeup.wake()
    print(f"{args.subscription_id}\tactive\t{len(pending)} pending alerts queued")
    return 0


def subs_rotate_secret(args: argparse.Namespace) -> int:
    """A new secret, printed; the old one keeps signing for INGEST_SECRET_GRACE_SECONDS."""
    from ingest.alert.signature import new_secret

    ctx = runtime()
    until = utcnow() + timedelta(seconds=ctx.settings.secret_grace_seconds)
    sub = ctx.store.rotate_subscription_secret(args.subscription_id, new_secret(), previous_valid_until=until)
    print(sub.secret)
    print(f"the previous secret also signs until {iso(until)}", file=sys.stderr)
    return 0


def subs_remove(args: argparse.Namespace) -> int:
    """Remove the subscription and its alerts (queued attempts find nothing and stop)."""
    runtime().store.remove_subscription(args.subscription_id)
    return 0


def add_parsers(sub: Any) -> None:
    """The `subs` command and its actions (called from `app.cli.build_parser`)."""
    subs = sub.add_parser("subs", help="manage subscriptions").add_subparsers(dest="action", required=True)
    p = subs.add_parser("add", help="add a topic subscription; prints its id and secret")
    p.add_argument("--query", required=True)
    p.add_argument("--webhook", required=True, metavar="URL")
    p.add_argument("--secret", help="whsec_... (generated when omitted)")
    p.add_argument("--name")
    p.add_argument(
        "--lang",
        action="append",
        metavar="CODE",
        help="only articles in this language (repeatable, or en,de)",
    )
    p.add_argument(
        "--feed", action="append", metavar="ID|URL", help="only articles of this feed (repeatable)"
    )
    p.add_argument(
        "--digest",
        type=int,
        metavar="MINUTES",
        help="one webhook every MINUTES with all matches, instead of one per match",
    )
    p.add_argument("--rate-limit", metavar="N/min", help="at most N webhooks per minute (more wait)")
    p.add_argument(
        "--backfill",
        metavar="PERIOD",
        help="also alert stories stored within PERIOD (e.g. 7d, 12h), once per story",
    )
    p.set_defaults(func=subs_add)
    p = subs.add_parser("list", help="list subscriptions, their status and why")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=subs_list)
    for name, func, text in (
        ("pause", subs_pause, "stop delivering (alerts wait) until resumed"),
        ("resume", subs_resume, "deliver again (also a disabled one); queue the waiting alerts"),
        (
            "rotate-secret",
            subs_rotate_secret,
            "new secret, printed; the old one signs for INGEST_SECRET_GRACE_SECONDS too",
        ),
        ("remove", subs_remove, "remove a subscription and its alerts"),
    ):
        p = subs.add_parser(name, help=text)
        p.add_argument("subscription_id", metavar="ID")
        p.set_defaults(func=func)
