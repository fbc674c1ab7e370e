"""Everything the web layer and the owner's RPC methods need to decide who may do what, built once per daemon
start (``Services.access``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from cauldrond.web.auth import Authenticator, ConnectionRegistry
from cauldrond.web.guards import HostPolicy
from cauldrond.web.pairing import FailureLimiter, PairingCodes

if TYPE_CHECKING:
    from cauldrond.config import Settings
    from cauldrond.security.tls import TlsMaterial
    from cauldrond.store import Store

# A sign-in link is opened by the browser right after `cauldronctl open` asks for it: a minute is plenty.
LOGIN_TTL_S = 60.0


def _login_codes() -> PairingCodes:
    return PairingCodes(ttl_s=LOGIN_TTL_S)


@dataclass
class Access:
    authenticator: Authenticator
    hosts: HostPolicy
    connections: ConnectionRegistry = field(default_factory=ConnectionRegistry)
    pairing: PairingCodes = field(default_factory=PairingCodes)
    # One-time sign-in links for a browser on the daemon's own machine (`cauldronctl open`).
    logins: PairingCodes = field(default_factory=_login_codes)
    # Wrong pairing codes and wrong sign-in links count together.
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    tls: TlsMaterial | None = None
    # Where a phone reaches the pairing page (https on the LAN port, or loopback http without --lan).
    pair_url: str = ""
    # The loopback listener, e.g. http://127.0.0.1:7860 (set when it is bound); sign-in links point there.
    local_url: str = ""

    @classmethod
    def for_daemon(cls, settings: Settings, token: str, store: Store) -> Access:
        return cls(
            authenticator=Authenticator(token, store),
            hosts=HostPolicy([settings.host, settings.lan_host]),
        )


ACCESS: web.AppKey[Access] = web.AppKey("access", Access)
