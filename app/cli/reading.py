"""`ingest articles ...` and `ingest stories ...`: what was stored, with the API's filters."""

from __future__ import annotations

import argparse
from typing import Any

from app.cli.common import emit, reading, row, runtime
from ingest.services.usecases.requests import MAX_LIMIT, ArticleQuery, parse
from ingest.services.usecases.views import ArticleView


def _query(args: argparse.Namespace, limit: int, cursor: str | None = None) -> ArticleQuery:
    return parse(
        ArticleQuery,
        {
            "q": args.q,
            "language": args.language,
            "feed": args.feed,
            "since": args.since,
            "until": args.until,
            "limit": limit,
            "cursor": cursor,
        },
    )


def _line(a: ArticleView) -> None:
    row(a.fetched_at, a.language, a.story_id, a.id, a.title)


def articles_list(args: argparse.Namespace) -> int:
    """Newest first (with --q: best first), page after page up to --limit."""
    uc = reading(runtime())
    cursor, shown = None, 0
    while shown < args.limit:
        page = uc.articles(_query(args, min(MAX_LIMIT, args.limit - shown), cursor))
        for article in page.items:
            if args.json:
                emit(article)
            else:
                _line(article)
        shown += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return 0


def articles_show(args: argparse.Namespace) -> int:
    article = reading(runtime()).article(args.article_id)
    if args.json:
        emit(article)
        return 0
    for label, value in (
        ("id", article.id),
        ("title", article.title),
        ("url", article.url),
        ("language", f"{article.language} ({article.language_confidence})"),
        ("story", article.story_id),
        ("feed", f"{article.feed_id} {article.feed_url}"),
        ("published", article.published_at),
        ("fetched", article.fetched_at),
    ):
        row(f"{label}:", value)
    print(f"\n{article.text}")
    return 0


def stories_list(args: argparse.Namespace) -> int:
    """Stories with an article among the newest matching the filters, most recently active first."""
    for story in reading(runtime()).stories(_query(args, min(MAX_LIMIT, args.limit))):
        if args.json:
            emit(story)
        else:
            row(story.id, story.article.fetched_at, f"{1 + len(story.copies)} articles", story.article.title)
    return 0


def stories_show(args: argparse.Namespace) -> int:
    story = reading(runtime()).story(args.story_id)
    if args.json:
        emit(story)
        return 0
    row("story", story.id, story.article.title)
    for article in (story.article, *story.copies):
        _line(article)
    return 0


def _filters(p: argparse.ArgumentParser, limit: int) -> None:
    p.add_argument("--q", metavar="WORDS", help="full-text search: every word in the title or text")
    p.add_argument("--language", metavar="CODE", help="ISO 639-1 code (or und)")
    p.add_argument("--feed", type=int, metavar="ID", help="only this feed's")
    p.add_argument("--since", metavar="TIME", help="fetched at or after (ISO 8601)")
    p.add_argument("--until", metavar="TIME", help="fetched before (ISO 8601)")
    p.add_argument("--limit", type=int, default=limit)
    p.add_argument("--json", action="store_true", help="JSON Lines with the API's fields")


def add_parsers(sub: Any) -> None:
    arts = sub.add_parser("articles", help="stored articles").add_subparsers(dest="action", required=True)
    p = arts.add_parser("list", help="newest first, or best first with --q")
    _filters(p, 20)
    p.set_defaults(func=articles_list)
    p = arts.add_parser("show", help="one article, its text included")
    p.add_argument("article_id", metavar="ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=articles_show)
    stories = sub.add_parser("stories", help="stories: an article and its syndicated copies")
    acts = stories.add_subparsers(dest="action", required=True)
    p = acts.add_parser("list", help="recently active stories")
    _filters(p, 20)
    p.set_defaults(func=stories_list)
    p = acts.add_parser("show", help="one story: its original and its copies, oldest first")
    p.add_argument("story_id", metavar="ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=stories_show)
