"""Title cleaning accuracy on the fundus parser test pages (exact match with the clean title).

Usage: .venv/bin/python benchmarks/title_eval.py --data DIR [--show-misses N]
  DIR holds <country>/<Publisher>_<date>.html.gz and <Publisher>.json; the JSON's entries, in
  order, belong to the publisher's pages sorted by date.

For each page the raw title is taken from <title> and from og:title, cleaned with
ingest.clean.clean_title knowing what a feed would tell us about the site: og:site_name (as the
feed title), the publisher's name and the URL's site label (as site names). A title counts when
it equals the ground truth after whitespace normalisation. `raw` is the score before cleaning;
`over-cut` counts titles where cleaning removed words the ground truth keeps (the costly error).
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import html as html_lib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from selectolax.lexbor import LexborHTMLParser

from ingest.clean import clean_title
from ingest.clean.html import normalize_space
from ingest.clean.site import site_label

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


@dataclass(frozen=True)
class Page:
    """One test page: what the HTML says and the clean title."""

    name: str
    truth: str
    title_tag: str
    og_title: str
    site_name: str
    publisher: str
    url: str


def _meta(tree: LexborHTMLParser, *names: str) -> str:
    for name in names:
        node = tree.css_first(f'meta[property="{name}"], meta[name="{name}"]')
        if node is not None and node.attributes.get("content"):
            return normalize_space(html_lib.unescape(node.attributes["content"] or ""))
    return ""


def load_pages(data: Path) -> list[Page]:
    pages = []
    for spec in sorted(data.glob("*/*.json")):
        publisher = spec.stem
        entries = list(json.loads(spec.read_text(encoding="utf-8")).values())
        files = sorted(spec.parent.glob(f"{publisher}_*.html.gz"))
        for entry, path in zip(entries, files, strict=True):
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
                tree = LexborHTMLParser(fh.read())
            node = tree.css_first("title")
            canonical = tree.css_first('link[rel="canonical"]')
            url = _meta(tree, "og:url") or (canonical.attributes.get("href") or "" if canonical else "")
            pages.append(
                Page(
                    name=f"{spec.parent.name}/{path.name}",
                    truth=normalize_space(entry.get("title") or ""),
                    title_tag=normalize_space(node.text()) if node is not None else "",
                    og_title=_meta(tree, "og:title", "twitter:title"),
                    site_name=_meta(tree, "og:site_name"),
                    publisher=publisher,
                    url=url,
                )
            )
    return pages


def site_names(page: Page) -> list[str]:
    """What the service knows about a site: configured names, the feed's name, the URL's label.

    The label is the registrable domain's (public suffix list), as `clean_document` takes it.
    """
    names = [page.publisher, _CAMEL.sub(" ", page.publisher)]
    label = site_label(urlsplit(page.url).hostname)
    return [*names, label] if label else names


def cleaned(page: Page, raw: str) -> str:
    return clean_title(raw, feed_title=page.site_name or None, site_names=site_names(page))


def _over_cut(raw: str, result: str, truth: str) -> bool:
    """Cleaning removed words the clean title keeps."""
    return result not in (raw, truth) and len(result) < len(truth) and result in truth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="fundus parser test-data directory")
    parser.add_argument("--show-misses", type=int, default=0, help="list N misses of the cleaned <title>")
    args = parser.parse_args(argv)
    pages = load_pages(args.data)
    print(
        f"fundus parser test data: {len(pages)} pages, {len({p.name.split('/')[0] for p in pages})} countries"
    )
    print("| source | raw exact | cleaned exact | over-cut |")
    print("|---|---|---|---|")
    misses = []
    for label, field in (("<title>", "title_tag"), ("og:title", "og_title")):
        usable = [p for p in pages if getattr(p, field)]
        raw = sum(getattr(p, field) == p.truth for p in usable)
        results = [(p, cleaned(p, getattr(p, field))) for p in usable]
        good = sum(r == p.truth for p, r in results)
        over = sum(_over_cut(getattr(p, field), r, p.truth) for p, r in results)
        # pages without this tag count as misses: the denominator is every page
        print(
            f"| {label} ({len(usable)} pages have it) | {raw / len(pages):.3f} | {good / len(pages):.3f} "
            f"| {over} |"
        )
        if field == "title_tag":
            misses = [(p, r) for p, r in results if r != p.truth]
    best = sum(
        cleaned(p, p.og_title or p.title_tag) == p.truth or cleaned(p, p.title_tag) == p.truth for p in pages
    )
    print(f"| either (og:title or <title> matches) | - | {best / len(pages):.3f} | - |")
    for page, result in misses[: args.show_misses]:
        print(
            f"  {page.name}: {result!r}\n"
            f"  {'':{len(page.name)}}  truth {page.truth!r}  site {page.site_name!r}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
