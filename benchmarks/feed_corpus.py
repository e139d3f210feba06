"""Fetch and parse a directory of real feeds through loopback HTTP, checked against expected output.

    .venv/bin/python benchmarks/feed_corpus.py DIR

DIR holds feed files (`*.xml`, `*.json` other than `*.serde.json`), optionally each with a
`NAME.serde.json` of expected output in feed-rs's format (the feed-rs fixture corpus). Every
file is served by a loopback HTTP server, fetched with `fetch_feed` (same limits and checks
as polling) and parsed with `parse_feed`. Where an expectation exists, the entry count and
every entry title must match (whitespace-normalised). Prints one line per feed and a total;
exits 1 if any feed fails.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ingest.errors import FetchError, ParseError
from ingest.fetch import fetch_feed, make_client
from ingest.log import configure_logging
from ingest.parse import parse_feed
from ingest.settings import Settings

_SPACE = re.compile(r"\s+")


def _norm(text: str | None) -> str:
    return _SPACE.sub(" ", text or "").strip()


def _expected_titles(path: Path) -> list[str] | None:
    expected = path.with_name(path.name.rsplit(".", 1)[0] + ".serde.json")
    if not expected.exists():
        return None
    data = json.loads(expected.read_text(encoding="utf-8"))
    return [_norm((e.get("title") or {}).get("content")) for e in data.get("entries", [])]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = Path(sys.argv[1]).resolve()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix in (".xml", ".json", ".rdf") and not p.name.endswith(".serde.json")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = Settings.from_env(
        {
            "INGEST_ALLOWED_NETWORKS": "127.0.0.0/8",
            "INGEST_LOG_LEVEL": "error",
            "INGEST_LOG_FORMAT": "console",
        }
    )
    configure_logging(settings)
    failures = checked = entries = 0
    with make_client(settings) as client:
        for path in files:
            url = f"http://127.0.0.1:{server.server_address[1]}/{path.relative_to(root).as_posix()}"
            name = path.relative_to(root).as_posix()
            try:
                result = fetch_feed(client, url, max_bytes=settings.max_body_bytes, timeout=10)
                parsed = parse_feed(result, feed_id=1, feed_url=url, max_entries=settings.max_entries)
            except (FetchError, ParseError) as exc:
                expected = _expected_titles(path)
                verdict = "refused" if expected is None else "FAIL"
                failures += expected is not None
                print(f"{verdict:8s} {name}: {exc}")
                continue
            titles = [_norm(e.title) for e in parsed.entries]
            entries += len(titles)
            expected = _expected_titles(path)
            if expected is None:
                print(f"{'parsed':8s} {name}: {len(titles)} entries (no expectation)")
                continue
            checked += 1
            wrong = [(want, got) for want, got in zip(expected, titles, strict=False) if want != got]
            if len(expected) != len(titles) or wrong:
                failures += 1
                print(
                    f"{'FAIL':8s} {name}: {len(titles)} entries, expected {len(expected)}; "
                    f"first title mismatch {wrong[:1]}"
                )
            else:
                print(
                    f"{'ok':8s} {name}: {len(titles)} entries, titles match"
                    + (f" (warnings: {'; '.join(parsed.warnings)})" if parsed.warnings else "")
                )
    server.shutdown()
    print(
        f"\n{len(files)} feeds, {checked} checked against expectations, {entries} entries, "
        f"{failures} failures"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
