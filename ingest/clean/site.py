"""The name a URL gives its site: the registrable domain's own label, by the public suffix list.

`www.telegraph.co.uk` -> "telegraph" (a naive "second label from the end" gives "co"),
`edition.cnn.com` -> "cnn". The list is the snapshot the `tld` package ships; the parser below
never downloads it (tld would fetch the list when its file is missing). A host the list does
not know (a missing file, a private TLD) falls back to the second label from the end.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import tld
from tld.utils import MozillaTLDSourceParser

_IGNORED_LABELS = ("www", "m", "amp", "mobile")


class _BundledList(MozillaTLDSourceParser):
    """The public suffix list bundled with tld, read from disk only."""

    uid = "ingest-bundled"
    local_path = str(Path(tld.__file__).resolve().parent / "res" / "effective_tld_names.dat.txt")

    @classmethod
    def update_tld_names(cls, fail_silently: bool = False) -> bool:
        return False  # never fetch at run time


def _naive_label(host: str) -> str | None:
    labels = [x for x in host.split(".") if x not in _IGNORED_LABELS]
    return labels[-2] if len(labels) >= 2 else None


@lru_cache(maxsize=4096)
def site_label(host: str | None) -> str | None:
    """The registrable domain's label of a host name, or None (IP addresses, localhost)."""
    if not host or "." not in host:
        return None
    host = host.lower().rstrip(".")
    if host.replace(".", "").isdigit() or ":" in host:
        return None
    result = tld.get_tld(
        host, fix_protocol=True, as_object=True, fail_silently=True, parser_class=_BundledList
    )
    label = _naive_label(host) if result is None or isinstance(result, str) else str(result.domain)
    return _unicode(label) if label else None


def _unicode(label: str) -> str:
    """`xn--...` labels as the name readers see."""
    if not label.startswith("xn--"):
        return label
    try:
        return label.encode("ascii").decode("idna")
    except UnicodeError:
        return label
