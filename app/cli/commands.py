"""The CLI's commands: parse arguments, call the library, print results to stdout."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from app.cli.common import runtime
from ingest.errors import ConfigError
from ingest.models import RawEntry, iso
from ingest.settings import REDACTED, SETTINGS, Settings, settings_table

if TYPE_CHECKING:
    from ingest.services.prepare import Preparer


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False))


def _json_ready(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: iso(v) if hasattr(v, "tzinfo") else v for k, v in obj.items()}


# -- documents ---------------------------------------------------------------


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def _processed(
    preparer: Preparer,
    title: str,
    content: str,
    *,
    is_html: bool,
    url: str | None,
    feed_title: str | None = None,
) -> dict[str, Any]:
    entry = RawEntry(
        feed_id=0,
        feed_url="",
        entry_key="",
        url=url,
        title=title,
        content=content,
        is_html=is_html,
        feed_title=feed_title,
    )
    doc = preparer.prepare(entry)
    return {
        "title": doc.clean.title,
        "url": doc.clean.url,
        "text": doc.clean.text,
        "summary": doc.clean.summary,
        "language": doc.language.code,
        "language_confidence": round(doc.language.confidence, 4),
        "removed": doc.clean.removed,
    }


def _preparer() -> Preparer:
    """Clean and language only: no Redis, no database."""
    from ingest.clean import load_rules
    from ingest.language.detect import LanguageDetector
    from ingest.services.prepare import Preparer

    settings = Settings.from_env()
    detector = LanguageDetector(
        short_text_models=settings.short_text_models, loads_per_minute=settings.short_text_loads_per_minute
    )
    return Preparer(detector, load_rules(settings.clean_rules))


def _jsonl(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    with stream:
        for number, line in enumerate(stream, 1):
            if line.strip():
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"line {number}: not JSON: {exc.msg}") from None
                if not isinstance(doc, dict):
                    raise ConfigError(f"line {number}: expected a JSON object")
                yield number, doc


def process(args: argparse.Namespace) -> int:
    preparer = _preparer()
    if args.jsonl:
        for number, doc in _jsonl(args.file):
            html, text = doc.get("html"), doc.get("text")
            content = html if html is not None else text
            if not isinstance(content, str):
                raise ConfigError(f'line {number}: needs an "html" or a "text" field holding a string')
            _emit(
                _processed(
                    preparer,
                    str(doc.get("title") or ""),
                    content,
                    is_html=html is not None,
                    url=doc.get("url"),
                    feed_title=doc.get("feed_title"),
                )
            )
            sys.stdout.flush()
        return 0
    content = _read(args.file)
    title = args.title
    if title is None and not args.html:
        title, _, content = content.partition("\n")
    _emit(_processed(preparer, (title or "").strip(), content, is_html=args.html, url=args.url))
    return 0


def articles_list(args: argparse.Namespace) -> int:
    ctx = runtime()
    for article in ctx.store.list_articles(limit=args.limit):
        if args.json:
            _emit(article.to_dict())
        else:
            print(f"{iso(article.fetched_at)}\t{article.language}\t{article.story_id}\t{article.title}")
    return 0


def match(args: argparse.Namespace) -> int:
    from ingest.match import MatchDocument, match_query

    text = _read(args.file)
    result = match_query(args.query, MatchDocument(title=args.title, text=text))
    _emit(
        {
            "query": args.query,
            "matched": result is not None,
            "matched_terms": result.matched_terms if result else [],
        }
    )
    return 0 if result else 1


def db_upgrade(args: argparse.Namespace) -> int:
    """Migrations also run on first use; this runs them explicitly (the compose `migrate` service)."""
    from ingest.store import open_store

    settings = Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.effective_database_url, settings.database_password)
    try:
        print(store.upgrade())
    finally:
        store.close()
    return 0


def settings_cmd(args: argparse.Namespace) -> int:
    if args.markdown:
        print(settings_table())
        return 0
    for line in _env_lines(Settings.from_env()):
        print(line)
    return 0


def _env_lines(settings: Settings) -> Iterator[str]:
    """`NAME=value`, reusable as an env file: secrets, and passwords inside URLs, redacted."""
    for setting in SETTINGS:
        value = getattr(settings, setting.field)
        text = ",".join(map(str, value)) if isinstance(value, tuple) else _env_text(value)
        if setting.secret and text:
            text = REDACTED
        yield f"{setting.env}={_env_quoted(_without_password(text))}"


def _env_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _without_password(text: str) -> str:
    parts = urllib.parse.urlsplit(text) if "://" in text else None
    if parts is None or parts.password is None:
        return text
    netloc = parts.netloc.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _env_quoted(text: str) -> str:
    """Single-quoted where a shell, systemd or Compose would otherwise split or expand the value."""
    return text if re.fullmatch(r"[\w@%+=:,./-]*", text) else shlex.quote(text)
