"""The daemon's connection to Ray: start a private one, or join the owner's cluster, and say which nodes live.

Every call here blocks (Ray's client API is synchronous) and runs on the dispatcher's control thread, never on the
event loop.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

NAMESPACE = "shadow-cauldron"
# Ray's default makes a driver exit when the cluster's head (GCS) has been unreachable this long; the daemon must
# outlive a lost cluster and resume when it returns, so the wait is made long (seconds, read at ray.init).
GCS_RECONNECT_ENV = "RAY_gcs_rpc_server_reconnect_timeout_s"
GCS_RECONNECT_S = "31536000"


@dataclass(frozen=True)
class Node:
    node_id: str
    address: str
    gpus: int
    cpus: int


def connect(address: str) -> bool:
    """Connect this process to Ray; True when this call started it (and so should shut it down at stop).

    ``address == "local"`` starts a private single-node Ray: no dashboard, no usage reporting, the node's
    address given as loopback. A process that already runs Ray (tests start one per module) keeps it."""
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError('engine = "ray" needs the ray extra: pip install -e ".[ray]" (docs/scale-out.md)') from exc

    if ray.is_initialized():
        return False
    os.environ.setdefault(GCS_RECONNECT_ENV, GCS_RECONNECT_S)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    options: dict[str, Any] = {
        "namespace": NAMESPACE,
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    if address == "local":
        # "local" spelled out: with no address Ray would join a cluster `ray start` left running on this machine.
        ray.init(address="local", _node_ip_address="127.0.0.1", **options)
    else:
        ray.init(address=address, **options)
    return True


def disconnect() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def alive_nodes() -> list[Node]:
    """The cluster's live nodes; raises when the cluster cannot be reached."""
    import ray

    nodes = []
    for entry in ray.nodes():  # type: ignore[no-untyped-call]
        if not entry.get("Alive"):
            continue
        resources = entry.get("Resources", {})
        nodes.append(
            Node(
                node_id=str(entry["NodeID"]),
                address=str(entry.get("NodeManagerAddress", "")),
                gpus=int(resources.get("GPU", 0)),
                cpus=int(resources.get("CPU", 0)),
            )
        )
    return nodes
