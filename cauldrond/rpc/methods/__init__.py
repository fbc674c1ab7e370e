"""The built-in RPC methods, one module per noun."""

from cauldrond.rpc.methods import events, experiments, images, plugins, queue, results, system
from cauldrond.rpc.registry import MethodRegistry


def register_builtin_methods(registry: MethodRegistry) -> None:
    for module in (system, experiments, results, queue, images, events, plugins):
        module.register(registry)
