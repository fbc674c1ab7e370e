"""The built-in RPC methods, one module per noun."""

from cauldrond.rpc.methods import (
    devices,
    events,
    experiments,
    images,
    maintenance,
    plugins,
    queue,
    results,
    system,
)
from cauldrond.rpc.registry import MethodRegistry


def register_builtin_methods(registry: MethodRegistry) -> None:
    # devices/pairing and maintenance reach the daemon's access rules through ctx.services.access, so they
    # need nothing the web frontend builds and rpc.describe lists them even without it.
    for module in (system, experiments, results, queue, images, events, plugins, devices, maintenance):
        module.register(registry)
