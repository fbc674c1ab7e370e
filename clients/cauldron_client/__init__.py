"""Python client for the Shadow Cauldron daemon. Installs and runs without torch.

async with Client() as c:
    info = await c.call("system.info")
"""

from cauldron_client.client import Client, call_sync
from cauldron_client.connection import DEFAULT_URL, Endpoint, resolve_endpoint, resolve_token, resolve_url
from cauldron_client.errors import CauldronError, ConfigError, ConnectionFailed, RpcError, Unauthorized
from cauldron_client.events import EventStream

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "CauldronError",
    "Client",
    "ConfigError",
    "ConnectionFailed",
    "Endpoint",
    "EventStream",
    "RpcError",
    "Unauthorized",
    "__version__",
    "call_sync",
    "resolve_endpoint",
    "resolve_token",
    "resolve_url",
]
