"""Find daemons on the LAN: browse ``_cauldron._tcp.local.`` for a while and read each one's TXT record."""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cauldron_client.errors import ConfigError

SERVICE_TYPE = "_cauldron._tcp.local."
# Comma-separated addresses of the interfaces to browse on (default: all), e.g. one VPN or Wi-Fi address.
INTERFACES_ENV = "CAULDRON_MDNS_INTERFACES"


@dataclass(frozen=True)
class DiscoveredDaemon:
    name: str  # the instance name, without the service type
    addresses: list[str]
    port: int
    api: str
    version: str
    tls: bool
    fingerprint: str | None
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        host = self.addresses[0] if self.addresses else "localhost"
        if ":" in host:
            host = f"[{host}]"
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}/rpc"


async def discover(timeout: float = 3.0, interfaces: Sequence[str] | None = None) -> list[DiscoveredDaemon]:
    """Daemons that answered within ``timeout`` seconds. ``interfaces`` limits the multicast to those
    addresses (tests use ``["127.0.0.1"]``); None means every interface."""
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    kwargs: dict[str, object] = {}
    if interfaces is None and os.environ.get(INTERFACES_ENV):
        interfaces = [a.strip() for a in os.environ[INTERFACES_ENV].split(",") if a.strip()]
    if interfaces is not None:
        kwargs["interfaces"] = list(interfaces)
        if all(_version(a) == 4 for a in interfaces):
            kwargs["ip_version"] = IPVersion.V4Only
    zc = AsyncZeroconf(**kwargs)  # type: ignore[arg-type]
    names: set[str] = set()

    def on_change(zeroconf: object, service_type: str, name: str, state_change: object) -> None:
        names.add(name)

    browser = AsyncServiceBrowser(zc.zeroconf, SERVICE_TYPE, handlers=[on_change])
    try:
        await asyncio.sleep(timeout)
        found = []
        for name in sorted(names):
            info = AsyncServiceInfo(SERVICE_TYPE, name)
            if not await info.async_request(zc.zeroconf, 1500):
                continue
            props = {
                k.decode("utf-8", "replace"): (v or b"").decode("utf-8", "replace") for k, v in info.properties.items()
            }
            found.append(
                DiscoveredDaemon(
                    name=name.removesuffix("." + SERVICE_TYPE),
                    addresses=info.parsed_scoped_addresses(),
                    port=int(info.port or 0),
                    api=props.get("api", "?"),
                    version=props.get("version", "?"),
                    tls=props.get("tls") == "1",
                    fingerprint=props.get("fp") or None,
                    properties=props,
                )
            )
        return found
    finally:
        await browser.async_cancel()
        await zc.async_close()


async def resolve_daemon(name: str, timeout: float = 3.0, interfaces: Sequence[str] | None = None) -> DiscoveredDaemon:
    found = await discover(timeout, interfaces)
    for daemon in found:
        if daemon.name.lower() == name.lower():
            return daemon
    listed = ", ".join(d.name for d in found) or "none"
    raise ConfigError(f"no daemon named {name!r} answered on the LAN within {timeout:g} s (found: {listed})")


def _version(text: str) -> int:
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return 0
