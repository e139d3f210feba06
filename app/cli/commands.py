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

from app.cli.common import emit, say
from ingest.clean.url import redact_url
from ingest.errors import ConfigError
from ingest.models import RawEntry
from ingest.settings import REDACTED, SETTINGS, Settings, settings_table, sqlite_path

if TYPE_CHECKING:
    from ingest.services.prepare import Preparer


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


def _lines(path: str) -> Iterator[tuple[int, str]]:
    """Numbered lines of a UTF-8 file (or stdin); a missing file or other bytes are one clear error."""
    try:
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    with stream:
        for number, raw in enumerate(stream, 1):
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}: line {number}: not UTF-8 (byte {exc.start + 1})") from None


def _jsonl(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in _lines(path):
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
            emit(
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
    emit(_processed(preparer, (title or "").strip(), content, is_html=args.html, url=args.url))
    return 0


def match(args: argparse.Namespace) -> int:
    from ingest.match import MatchDocument, match_query

    text = _read(args.file)
    result = match_query(args.query, MatchDocument(title=args.title, text=text))
    emit(
        {
            "query": args.query,
            "matched": result is not None,
            "matched_terms": result.matched_terms if result else [],
        }
    )
    return 0 if result else 1


def db_upgrade(args: argparse.Namespace) -> int:
    """Create the database or bring its schema up to date (the compose `migrate` service runs it)."""
    from ingest.store import open_store

    settings = Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    existed = not url.startswith("sqlite:") or sqlite_path(url).exists()
    store = open_store(url, settings.database_password)
    try:
        version = store.upgrade()
    finally:
        store.close()
    where = redact_url(url) if not url.startswith("sqlite:") else str(sqlite_path(url))
    if args.json:
        emit({"database": where, "schema_version": version, "created": not existed})
    else:
        say(f"{'created' if not existed else 'database'} {where}: schema at version {version}, up to date")
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


def add_parsers(sub: Any) -> None:
    """`process`, `match`, `db upgrade` and `settings` (called from `app.cli.build_parser`)."""
    p = sub.add_parser("process", help="clean and language-tag one document, print it as JSON")
    p.add_argument("file", nargs="?", default="-", metavar="FILE|-")
    p.add_argument("--title", help="title (default: the first line of a text document)")
    p.add_argument("--url")
    p.add_argument("--html", action="store_true", help="the document is HTML")
    p.add_argument("--jsonl", action="store_true", help="JSON Lines in (UTF-8), one article per line out")
    p.set_defaults(func=process)
    p = sub.add_parser("match", help="match one document against a query, print the result as JSON")
    p.add_argument("query")
    p.add_argument("file", nargs="?", default="-", metavar="FILE|-")
    p.add_argument("--title", default="")
    p.set_defaults(func=match)
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    p = db.add_parser("upgrade", help="create the database or apply pending migrations; say which")
    p.add_argument("--json", action="store_true", help="database, schema version and whether it was created")
    p.set_defaults(func=db_upgrade)
    p = sub.add_parser("settings", help="print the environment variables the service reads")
    p.add_argument("--markdown", action="store_true", help="as the README's Markdown table")
    p.set_defaults(func=settings_cmd)
