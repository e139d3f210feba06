"""SSRF protection: refuse URLs and connections that reach non-public addresses.

Two layers. `check_url` refuses a URL up front (scheme, host spelling, DNS
answer). The clients of `ingest.net.clients` repeat the address check at
connect time on the very IP the socket connects to, so a DNS answer that
changes between check and connect (rebinding) or a redirect to a private host
is refused before any packet leaves.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import anyio

from ingest.errors import FetchError, UnsafeURLError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)
_NUMERIC_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a C resolver would read from `127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`."""
    parts = host.rstrip(".").split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMERIC_PART.match(p) for p in parts):
        return None
    try:
        nums = [
            int(p, 16)
            if p.lower().startswith("0x")
            else int(p, 8)
            if p.startswith("0") and p != "0"
            else int(p)
            for p in parts
        ]
    except ValueError:
        return None
    last_bits = 8 * (5 - len(nums))
    if any(n > 255 for n in nums[:-1]) or nums[-1] >= 1 << last_bits:
        return None
    value = 0
    for n in nums[:-1]:
        value = value << 8 | n
    return ipaddress.IPv4Address(value << last_bits | nums[-1])


def parse_ip(host: str) -> Address | None:
    """The address a host string denotes literally (any spelling), or None for a name."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        return _inet_aton(bare)


def _embedded_v4(addr: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address tunnels to (mapped, NAT64, 6to4, Teredo, compatible)."""
    found: list[ipaddress.IPv4Address] = []
    if addr.ipv4_mapped:
        found.append(addr.ipv4_mapped)
    if addr.sixtofour:
        found.append(addr.sixtofour)
    if addr.teredo:
        found.extend(addr.teredo)
    if any(addr in net for net in _NAT64) or int(addr) >> 32 == 0:
        found.append(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    return found


def _why_unsafe(addr: Address) -> str | None:
    """The kind of non-public address this is, or None if it is public."""
    if addr in _METADATA:
        return "cloud metadata"
    checks = (
        ("loopback", addr.is_loopback),
        ("unspecified", addr.is_unspecified),
        ("link-local", addr.is_link_local),
        ("multicast", addr.is_multicast),
        ("shared", isinstance(addr, ipaddress.IPv4Address) and addr in _SHARED),
        ("reserved", addr.is_reserved),
        ("private", addr.is_private),
    )
    for kind, hit in checks:
        if hit:
            return kind
    return None if addr.is_global else "non-public"


def _allowed(addr: Address, allowed: Sequence[Network]) -> bool:
    return any(addr.version == net.version and addr in net for net in allowed)


def address_problem(addr: Address, allowed: Sequence[Network]) -> str | None:
    """Why connecting to `addr` is refused (plain words), or None when it is fine."""
    if _allowed(addr, allowed):
        return None
    candidates: list[Address] = [addr]
    if isinstance(addr, ipaddress.IPv6Address):
        # mapped and NAT64 (DNS64 networks) addresses are their IPv4 address;
        # other tunnels must be safe on both ends
        if addr.ipv4_mapped or addr in _NAT64[0]:
            candidates = [*_embedded_v4(addr)[:1]]
        else:
            candidates = [addr, *_embedded_v4(addr)]
    for candidate in candidates:
        if _allowed(candidate, allowed):
            continue
        kind = _why_unsafe(candidate)
        if kind:
            return f"refused: resolves to {kind} address {candidate}"
    return None


def check_address(host: str, addr: Address, allowed: Sequence[Network]) -> None:
    problem = address_problem(addr, allowed)
    if problem:
        raise UnsafeURLError(host, problem)


def check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsafeURLError(url, f"refused: scheme {scheme or '(none)'!r} is not http or https")


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise UnsafeURLError(url, "refused: invalid port") from None
    host = parts.hostname or ""
    if not host:
        raise UnsafeURLError(url, "refused: URL has no host")
    return host, port


def _dns_error(host: str) -> FetchError:
    return FetchError(host, f"DNS lookup failed for host {host}")


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[Address]:
    seen: list[Address] = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if addr not in seen:
            seen.append(addr)
    return seen


def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` stands for: the literal itself, or the DNS answer."""
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    try:
        return _addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    except (socket.gaierror, UnicodeError):
        raise _dns_error(host) from None


async def resolve_async(host: str, port: int) -> list[Address]:
    literal = parse_ip(host)
    if literal is not None:
        return [literal]
    try:
        return _addresses(await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    except (socket.gaierror, UnicodeError):
        raise _dns_error(host) from None


def checked_addresses(host: str, addrs: list[Address], allowed: Sequence[Network]) -> list[Address]:
    """All addresses, if every one is acceptable: a name half-pointing inside is refused whole."""
    if not addrs:
        raise _dns_error(host)
    for addr in addrs:
        check_address(host, addr, allowed)
    return addrs


def check_url(url: str, allowed: Sequence[Network]) -> None:
    """Raise UnsafeURLError unless `url` is http(s) and every address of its host is public or allowed."""
    check_scheme(url)
    host, port = _host_port(url)
    try:
        checked_addresses(host, resolve(host, port), allowed)
    except FetchError as exc:
        raise type(exc)(url, exc.reason) from None
