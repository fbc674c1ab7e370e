"""The listeners: plain HTTP on loopback always; with ``lan`` on, HTTPS on the LAN port, the mDNS
advertisement, and the pairing code in the log while no device is paired."""

from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any

from aiohttp import web

from cauldrond.discovery.mdns import Advertiser
from cauldrond.rpc.methods import devices
from cauldrond.security.tls import TlsMaterial, ensure_local_tls, owner_tls
from cauldrond.services import Services
from cauldrond.web.access import Access
from cauldrond.web.app import build_app
from cauldrond.web.guards import HostPolicy, lan_addresses, local_addresses

log = logging.getLogger(__name__)


def _bound_port(site: web.TCPSite, fallback: int) -> int:
    server: Any = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else fallback


def loopback_url(host: str, port: int) -> str:
    """The loopback listener's URL as this machine's browser should open it (sign-in links)."""
    wildcard = host in ("0.0.0.0", "::", "")  # nosec B104 - a comparison, not a bind
    if wildcard or host == "localhost":
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_tls(services: Services, hosts: HostPolicy) -> TlsMaterial:
    settings = services.settings
    if settings.tls_cert is not None and settings.tls_key is not None:
        return owner_tls(settings.tls_cert, settings.tls_key)
    return ensure_local_tls(settings.tls_dir, hosts.hostname, lan_addresses(local_addresses()))


class WebFrontend:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.access: Access = services.access
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None
        self._advertiser: Advertiser | None = None
        self.port: int | None = None
        self.lan_port: int | None = None

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()  # a taken LAN port must not leave the loopback listener half-started
            raise

    async def _start(self) -> None:
        services, settings, access = self.services, self.services.settings, self.access
        if settings.lan:
            access.tls = load_tls(services, access.hosts)
        self.app = build_app(services, access)
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.host, settings.port)
        await site.start()
        self.port = _bound_port(site, settings.port)
        access.pair_url = f"http://{settings.host}:{self.port}"
        access.local_url = loopback_url(settings.host, self.port)
        log.info("cauldrond serving on http://%s:%s", settings.host, self.port)
        if not _is_loopback(settings.host):
            log.warning(
                "host %s is not a loopback address: plain HTTP (tokens in clear text) is reachable from the "
                "network. Use --lan for HTTPS on the LAN and keep host at 127.0.0.1 (docs/lan.md)",
                settings.host,
            )
        if access.tls is None:
            return
        lan_site = web.TCPSite(
            self._runner, settings.lan_host, settings.resolved_lan_port, ssl_context=access.tls.server_context()
        )
        await lan_site.start()
        self.lan_port = _bound_port(lan_site, settings.resolved_lan_port)
        wildcard = settings.lan_host in ("0.0.0.0", "::")  # nosec B104 - a comparison, not a bind
        host = settings.lan_host if not wildcard else f"{access.hosts.hostname}.local"
        access.pair_url = f"https://{host}:{self.lan_port}"
        log.info("LAN access on %s (certificate fingerprint %s)", access.pair_url, access.tls.fingerprint)
        # Tests bind the LAN listener to loopback; the advertisement then stays on loopback too.
        interfaces = None if wildcard else [settings.lan_host]
        self._advertiser = Advertiser(
            settings.instance_name or socket.gethostname(), self.lan_port, access.tls.fingerprint, interfaces=interfaces
        )
        await self._advertiser.start()
        await self._log_code_if_unpaired()

    async def _log_code_if_unpaired(self) -> None:
        rows = await self.services.store.tokens.all()
        if any(row.revoked_at is None for row in rows):
            return
        code, ttl = self.access.pairing.create()
        details = devices.pairing_details(self.access, code, ttl)
        log.warning(
            "no device is paired yet. Pairing code %s (valid %d s) at %s\n%s",
            code,
            int(ttl),
            details["link"],
            details["qr"],
        )

    async def stop(self) -> None:
        if self._advertiser is not None:
            await self._advertiser.stop()
            self._advertiser = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
