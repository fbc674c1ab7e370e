"""Advertise the daemon as ``_cauldron._tcp.local.`` (zeroconf's asyncio API), only when the LAN is on.

The TXT record says what a client needs before it connects: the API version, whether TLS is on and the
SHA-256 fingerprint to pin. It never carries a token or anything else secret. Addresses are polled every
30 s; when they change the service is re-announced with the new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence

from zeroconf import IPVersion, NonUniqueNameException
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from cauldrond import __version__
from cauldrond.web.guards import lan_addresses, local_addresses

log = logging.getLogger(__name__)

SERVICE_TYPE = "_cauldron._tcp.local."
API_VERSION = "1"
POLL_S = 30.0


def instance_label(name: str) -> str:
    # DNS-SD instance names may hold any UTF-8 but dots would split the label; 63 bytes is the label limit.
    return name.replace(".", "-").strip()[:63] or "cauldron"


class Advertiser:
    def __init__(
        self,
        instance: str,
        port: int,
        fingerprint: str | None,
        *,
        interfaces: Sequence[str] | None = None,
        addresses: Callable[[], list[str]] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.instance = instance_label(instance or socket.gethostname().split(".")[0])
        self.port = port
        self.fingerprint = fingerprint
        # None: every interface. Tests pass ["127.0.0.1"] so nothing is sent beyond this machine.
        self._interfaces = list(interfaces) if interfaces is not None else None
        self._addresses = addresses
        self._poll_s = poll_s
        self._zc: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None
        self._poller: asyncio.Task[None] | None = None

    def properties(self) -> dict[str, str]:
        props = {"api": API_VERSION, "version": __version__, "tls": "1" if self.fingerprint else "0"}
        if self.fingerprint:
            props["fp"] = self.fingerprint
        return props

    def _service_info(self, addresses: list[str]) -> AsyncServiceInfo:
        host = socket.gethostname().split(".")[0]
        return AsyncServiceInfo(
            SERVICE_TYPE,
            f"{self.instance}.{SERVICE_TYPE}",
            port=self.port,
            properties=self.properties(),
            server=f"{host}.local.",
            parsed_addresses=addresses,
        )

    def _current(self) -> list[str]:
        if self._addresses is not None:
            return self._addresses()
        if self._interfaces is not None:  # advertise exactly the addresses we were told to use
            return [a for a in self._interfaces if _is_ip(a)]
        return lan_addresses(local_addresses())

    async def start(self) -> None:
        kwargs: dict[str, object] = {}
        if self._interfaces is not None:
            kwargs["interfaces"] = self._interfaces
            if all(ipaddress.ip_address(a).version == 4 for a in self._interfaces if _is_ip(a)):
                kwargs["ip_version"] = IPVersion.V4Only
        self._zc = AsyncZeroconf(**kwargs)  # type: ignore[arg-type]
        addresses = self._current()
        self._info = self._service_info(addresses)
        try:
            await self._zc.async_register_service(self._info, allow_name_change=True)
        except NonUniqueNameException:
            log.warning("mDNS name %s is taken on this network; not advertising", self.instance)
            await self._zc.async_close()
            self._zc = None
            return
        log.info("advertising %s on port %d (%s)", self._info.name, self.port, ", ".join(addresses) or "no address")
        self._poller = asyncio.create_task(self._poll(addresses), name="mdns-poll")

    async def _poll(self, addresses: list[str]) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            current = await asyncio.to_thread(self._current)
            if current != addresses and self._zc is not None and self._info is not None:
                log.info("addresses changed to %s; re-announcing", ", ".join(current) or "none")
                self._info = self._renamed(current)
                await self._zc.async_update_service(self._info)
                addresses = current

    def _renamed(self, addresses: list[str]) -> AsyncServiceInfo:
        assert self._info is not None
        info = self._service_info(addresses)
        info.name = self._info.name  # keep a name allow_name_change may have picked
        return info

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._zc is not None:
            if self._info is not None:
                await self._zc.async_unregister_service(self._info)
            await self._zc.async_close()
        self._zc = self._info = self._poller = None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
