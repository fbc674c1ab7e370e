"""Everything the web layer needs to decide who may do what, built once per daemon start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from cauldrond.web.auth import Authenticator, ConnectionRegistry
from cauldrond.web.guards import HostPolicy
from cauldrond.web.pairing import FailureLimiter, PairingCodes

if TYPE_CHECKING:
    from cauldrond.security.tls import TlsMaterial


@dataclass
class Access:
    authenticator: Authenticator
    hosts: HostPolicy
    connections: ConnectionRegistry = field(default_factory=ConnectionRegistry)
    pairing: PairingCodes = field(default_factory=PairingCodes)
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    tls: TlsMaterial | None = None
    # Where a phone reaches the pairing page (https on the LAN port, or loopback http without --lan).
    pair_url: str = ""


ACCESS: web.AppKey[Access] = web.AppKey("access", Access)
