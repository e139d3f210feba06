"""`ingest subs ...`: add (with options and backfill), list, edit, pause, resume, rotate-secret, remove.

Each action is a use case of `ingest.services.usecases.subscriptions`, the same the API calls.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli.common import emit, row, runtime, say, subscriptions
from ingest.models import iso
from ingest.services.usecases.requests import NewSubscription, OptionsInput, SubscriptionChange, parse
from ingest.services.usecases.views import SubscriptionView


def _options(args: argparse.Namespace, current: dict[str, Any] | None = None) -> OptionsInput | None:
    """The option flags given, over `current` (edit); None when none is given."""
    given = {
        "languages": args.lang,
        "feed_ids": args.feed,
        "digest_minutes": args.digest,
        "rate_limit": args.rate_limit,
    }
    if all(v is None for v in given.values()):
        return None
    merged = {**(current or {}), **{k: v for k, v in given.items() if v is not None}}
    return parse(OptionsInput, merged)


def subs_add(args: argparse.Namespace) -> int:
    rt = runtime()
    req = parse(
        NewSubscription,
        {
            "query": args.query,
            "webhook": args.webhook,
            "name": args.name,
            "secret": args.secret,
            "backfill": args.backfill,
        },
    )
    created = subscriptions(rt).create(
        NewSubscription(
            query=req.query,
            webhook=req.webhook,
            name=req.name,
            secret=req.secret,
            options=_options(args),
            backfill=req.backfill,
        )
    )
    print(f"{created.id}\t{created.secret}")
    if created.backfilled is not None:
        print(
            f"backfill: {created.backfilled} stories of the last {args.backfill} queued for {created.id}",
            file=sys.stderr,
        )
    return 0


def _delivery(view: SubscriptionView) -> str:
    d = view.delivery
    if d is None or d.circuit == "closed":
        return ""
    return f"receiver circuit {d.circuit}" + (f" until {iso(d.next_attempt_at)}" if d.next_attempt_at else "")


def subs_list(args: argparse.Namespace) -> int:
    for view in subscriptions(runtime()).all():
        if args.json:
            emit(view)
        else:
            row(
                view.id, view.status, view.name, view.query, view.webhook, view.status_reason, _delivery(view)
            )
    return 0


def subs_edit(args: argparse.Namespace) -> int:
    """What PATCH /subscriptions/ID does: change the fields given, keep the others."""
    uc = subscriptions(runtime())
    current = uc.store.get_subscription(args.subscription_id).options
    now = {
        "languages": list(current.languages),
        "feed_ids": list(current.feed_ids),
        "digest_minutes": current.digest_minutes,
        "rate_limit": current.rate_limit,
    }
    change = parse(SubscriptionChange, {"name": args.name, "query": args.query, "webhook": args.webhook})
    view = uc.update(
        args.subscription_id,
        SubscriptionChange(
            name=change.name, query=change.query, webhook=change.webhook, options=_options(args, now)
        ),
    )
    if args.json:
        emit(view)
    else:
        say(f"subscription {view.id} updated: {view.name!r}, query {view.query!r}, webhook {view.webhook}")
    return 0


def subs_pause(args: argparse.Namespace) -> int:
    """Stop delivering; pending alerts stay pending and new matches wait until resume."""
    sub = subscriptions(runtime()).pause(args.subscription_id, by="`ingest subs pause`")
    row(sub.id, sub.status)
    return 0


def subs_resume(args: argparse.Namespace) -> int:
    """Back to active (paused or disabled); the sender delivers the alerts that waited."""
    sub, pending = subscriptions(runtime()).resume(args.subscription_id)
    row(sub.id, sub.status, f"{pending} pending alerts queued")
    return 0


def subs_rotate_secret(args: argparse.Namespace) -> int:
    """A new secret, printed; the old one keeps signing for INGEST_SECRET_GRACE_SECONDS."""
    rotated = subscriptions(runtime()).rotate_secret(args.subscription_id)
    print(rotated.secret)
    print(f"the previous secret also signs until {iso(rotated.previous_secret_expires_at)}", file=sys.stderr)
    return 0


def subs_remove(args: argparse.Namespace) -> int:
    """Remove the subscription and its alerts."""
    sub = subscriptions(runtime()).remove(args.subscription_id)
    say(f"removed subscription {sub.id} ({sub.name!r}) and its alerts")
    return 0


def _option_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lang",
        action="append",
        metavar="CODE",
        help="only articles in this language, an ISO 639-1 code (repeatable, or en,de)",
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


def add_parsers(sub: Any) -> None:
    """The `subs` command and its actions (called from `app.cli.build_parser`)."""
    subs = sub.add_parser("subs", help="manage subscriptions").add_subparsers(dest="action", required=True)
    p = subs.add_parser("add", help="add a topic subscription; prints its id and secret")
    p.add_argument("--query", required=True)
    p.add_argument("--webhook", required=True, metavar="URL")
    p.add_argument("--secret", help="whsec_... (generated when omitted)")
    p.add_argument("--name")
    _option_flags(p)
    p.add_argument(
        "--backfill",
        metavar="PERIOD",
        help="also alert stories stored within PERIOD (e.g. 7d, 12h), once per story",
    )
    p.set_defaults(func=subs_add)
    p = subs.add_parser("list", help="list subscriptions, their status, why, and their receiver's circuit")
    p.add_argument("--json", action="store_true", help="one JSON object per line (webhooks redacted)")
    p.set_defaults(func=subs_list)
    p = subs.add_parser("edit", help="change a subscription's name, query, webhook or options")
    p.add_argument("subscription_id", metavar="ID")
    p.add_argument("--name")
    p.add_argument("--query")
    p.add_argument("--webhook", metavar="URL")
    _option_flags(p)
    p.add_argument("--json", action="store_true", help="print the subscription as JSON")
    p.set_defaults(func=subs_edit)
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
