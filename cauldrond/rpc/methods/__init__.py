"""The built-in RPC methods, one module per noun."""

from cauldrond.rpc.methods import (
    devices,
    events,
    experiments,
    extras,
    gallery,
    images,
    maintenance,
    plugins,
    queue,
    results,
    system,
    trash,
)
from cauldrond.rpc.registry import MethodRegistry


def register_builtin_methods(registry: MethodRegistry) -> None:
    # devices/pairing and maintenance reach the daemon's access rules through ctx.services.access, so they
    # need nothing the web frontend builds and rpc.describe lists them even without it.
    modules = (
        system,
        extras,
        experiments,
        results,
        queue,
        images,
        gallery,
        trash,
        events,
        plugins,
        devices,
        maintenance,
    )
    for module in modules:
        module.register(registry)
