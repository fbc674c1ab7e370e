"""Host and Origin checks, on every request.

Host: a page on ``evil.example`` whose DNS answer flips to 127.0.0.1 (DNS rebinding) still sends
``Host: evil.example``; only the daemon's own names and addresses are served. Origin: a browser attaches the
pairing cookie to any request to the daemon, so a cookie counts only when the request comes from the daemon's
own origin (a WebSocket is not covered by the same-origin policy, and ``Origin: null`` comes from sandboxed
frames and ``file:`` pages an attacker controls).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import ifaddr

ADDRESS_REFRESH_S = 30.0
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def local_addresses() -> set[str]:
    """Every address of this machine's interfaces (IPv6 without its zone), loopback included."""
    found: set[str] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, tuple):  # IPv6: (address, flowinfo, scope_id)
                found.add(ip.ip[0].split("%")[0].lower())
            else:
                found.add(str(ip.ip))
    return found


def lan_addresses(addresses: Iterable[str]) -> list[str]:
    """The addresses worth putting in a certificate or an advertisement: no loopback, no link-local."""
    keep = []
    for text in sorted(addresses):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if not (address.is_loopback or address.is_link_local or address.is_unspecified):
            keep.append(text)
    return keep


def split_host(host: str) -> str:
    """The host part of a Host header or netloc, lower case, brackets and trailing dot removed."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


class HostPolicy:
    """The names and addresses this daemon answers to; addresses are re-read every 30 s (DHCP, Wi-Fi)."""

    def __init__(
        self,
        extra_names: Iterable[str] = (),
        addresses: Callable[[], set[str]] = local_addresses,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        hostname = socket.gethostname().lower().rstrip(".")
        short = hostname.split(".")[0]
        names = set(LOOPBACK_NAMES) | {hostname, short, f"{short}.local"}
        wildcards = ("0.0.0.0", "::")  # nosec B104 - excluded from the names, never bound
        names |= {split_host(n) for n in extra_names if n and n not in wildcards}
        self.hostname = short
        self._names = frozenset(n for n in names if n)
        self._addresses_source = addresses
        self._clock = clock
        self._addresses: set[str] = set()
        self._read_at = -ADDRESS_REFRESH_S

    def addresses(self) -> set[str]:
        now = self._clock()
        if now - self._read_at >= ADDRESS_REFRESH_S:
            self._addresses = self._addresses_source()
            self._read_at = now
        return self._addresses

    def names(self) -> frozenset[str]:
        return self._names | frozenset(self.addresses())

    def allows(self, host_header: str | None) -> bool:
        if not host_header:
            return False  # HTTP/1.1 requires Host; a request without one is not from a browser we serve
        host = split_host(host_header)
        return host in self._names or host in self.addresses()


def own_origin(scheme: str, host_header: str) -> str:
    """The origin a page served by this request's own URL has: what its scripts send as ``Origin``."""
    return f"{scheme}://{host_header.strip().lower()}"


def same_origin(origin: str | None, scheme: str, host_header: str) -> bool:
    if not origin or origin.strip().lower() == "null":
        return False
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in ("http", "https") or parts.path not in ("", "/"):
        return False
    default = {"http": 80, "https": 443}
    try:
        origin_port = parts.port or default[parts.scheme]
    except ValueError:
        return False
    request = urlsplit(own_origin(scheme, host_header))
    try:
        request_port = request.port or default[scheme]
    except (ValueError, KeyError):
        return False
    return (parts.scheme, parts.hostname, origin_port) == (request.scheme, request.hostname, request_port)
