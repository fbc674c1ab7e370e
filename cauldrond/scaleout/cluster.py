"""The daemon's connection to Ray: start a private one, or join the owner's cluster, and say which nodes live.

Every call here blocks (Ray's client API is synchronous) and runs on the dispatcher's control thread, never on the
event loop.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

NAMESPACE = "shadow-cauldron"
# Ray's switch for multi-machine clusters on Linux (on by default there); off, a node is reachable on loopback only.
LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# Ray's default makes a driver exit when the cluster's head (GCS) has been unreachable this long; the daemon must
# outlive a lost cluster and resume when it returns, so the wait is made long (seconds, read at ray.init).
# The price: with it, ray.init waits for a head that is down until it comes back, hence ``_answers`` first.
GCS_RECONNECT_ENV = "RAY_gcs_rpc_server_reconnect_timeout_s"
GCS_RECONNECT_S = "31536000"
PROBE_TIMEOUT_S = 3.0  # a head's GCS port that accepts no connection within this is down
LISTING_TIMEOUT_S = 8.0  # a node listing the head does not answer within this fails (pool.py waits 10 s)


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
    # Before Ray's first import, which reads it: a driver that joins again after ray.shutdown (a lost cluster,
    # left) otherwise gets Ray's C++ failure-signal handler, which takes the daemon's SIGTERM and kills it (-15,
    # no orderly stop; measured with Ray 2.60).
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    if address == "local":
        # A private cluster serves this machine only: Ray then takes the loopback address as the node's and binds
        # every port (GCS, raylet, object manager, agents, workers) to 127.0.0.1, as it does on macOS and Windows.
        # Without it Ray 2.60 swaps 127.0.0.1 for the LAN address and listens on every interface. Read at Ray's
        # first import and inherited by the processes it starts.
        os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")
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
        _answers(address)
        ray.init(address=address, **options)
    return True


def _answers(address: str) -> None:
    """Raise ConnectionError unless the head's GCS port at ``host:port`` accepts a connection: ray.init would
    wait for a head that is down until it returns (GCS_RECONNECT_S), holding the daemon's control thread."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return  # not host:port (a form only Ray knows): ray.init decides
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {address} ({exc.strerror or type(exc).__name__})") from exc


def disconnect() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def is_connected() -> bool:
    import ray

    return bool(ray.is_initialized())


def alive_nodes(timeout_s: float = LISTING_TIMEOUT_S) -> list[Node]:
    """The cluster's live nodes; raises when the cluster cannot be reached within ``timeout_s``, or when the head
    at the address is a new cluster (a head started again; Ray's ``WrongClusterID``).

    Asked through the driver's GCS client with a deadline rather than ``ray.nodes()``: that one has none (it waits
    for a lost head as long as GCS_RECONNECT_S), and a call of it still waiting when a new head starts at the same
    address aborts the whole process (a failed check in Ray's C++, "WrongClusterID", measured with Ray 2.60)."""
    import ray
    from ray.core.generated.gcs_pb2 import GcsNodeInfo  # type: ignore[attr-defined]  # generated, no stubs

    driver: Any = ray._private.worker.global_worker  # set by ray.init; its typing does not list gcs_client
    infos = driver.gcs_client.get_all_node_info(timeout=timeout_s, state_filter=GcsNodeInfo.GcsNodeState.ALIVE)
    nodes = []
    for info in infos.values():
        resources = dict(info.resources_total)
        nodes.append(
            Node(
                node_id=info.node_id.hex(),
                address=str(info.node_manager_address),
                gpus=int(resources.get("GPU", 0)),
                cpus=int(resources.get("CPU", 0)),
            )
        )
    return nodes
