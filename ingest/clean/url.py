"""Canonical article URLs: the same article reached through a newsletter, a tweet
or a feed must compare equal, so tracking parameters and fragments go."""

from __future__ import annotations

from urllib.parse import SplitResult, unquote_plus, urlsplit, urlunsplit

TRACKING_PREFIXES = ("utm_", "__twitter", "oly_", "ga_", "at_", "pk_", "mtm_", "guce_")
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "yclid",
        "_hsenc",
        "_hsmi",
        "ref_src",
        "ref_url",
        "spm",
        "scm",
        "cmpid",
        "ncid",
        "icid",
        "s_cid",
        "sc_cid",
        "ocid",
        "wt.mc_id",
        "wt_zmc",
        "mkt_tok",
        "vero_id",
        "vero_conv",
        "_ga",
        "_gl",
        "trk",
        "trkcampaign",
        "sr_share",
        "guccounter",
        "utm",
        "cvid",
        "ito",
        "xtor",
        "smid",
        "share_token",
        "rss_source",
        "twclid",
        "ttclid",
        "li_fat_id",
        "epik",
        "srsltid",
    }
)
DEFAULT_PORTS = {"http": 80, "https": 443}


def is_tracking_param(name: str) -> bool:
    """True for parameters that identify a campaign or click, not the article."""
    key = unquote_plus(name).strip().lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)


def _netloc(parts: SplitResult) -> str:
    """Lowercased host, default port dropped; user info kept as given."""
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and DEFAULT_PORTS.get(parts.scheme.lower()) != port:
        host = f"{host}:{port}"
    userinfo = parts.netloc.rpartition("@")[0]
    return f"{userinfo}@{host}" if userinfo else host


def canonical_url(url: str) -> str:
    """Lowercase scheme and host, drop default port, fragment and tracking parameters.

    The remaining query keeps its order and its original encoding, so two
    URLs differ only when the server could tell them apart.
    """
    url = url.strip()
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url.split("#", 1)[0]
    pieces = parts.query.split("&")
    kept = [p for p in pieces if p and not is_tracking_param(p.split("=", 1)[0])]
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), _netloc(parts), path, "&".join(kept), ""))


def origin(url: str) -> str:
    """`scheme://host:port` of a URL, lowercased, default port explicit: what per-receiver limits count by."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = DEFAULT_PORTS.get(scheme)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"
