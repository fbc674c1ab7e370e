"""What an RPC handler can reach: the daemon's services, its own connection, and who is calling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cauldrond.rpc.connection import RpcConnection
    from cauldrond.services import Services
    from cauldrond.web.auth import Credential


@dataclass(frozen=True)
class RpcContext:
    services: Services
    connection: RpcConnection
    # The credential the WebSocket was opened with (checked once, at the upgrade): the local token or a device.
    credential: Credential
