"""What an RPC handler can reach: the daemon's services and its own connection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cauldrond.rpc.connection import RpcConnection
    from cauldrond.services import Services


@dataclass(frozen=True)
class RpcContext:
    services: Services
    connection: RpcConnection
