"""Builds the plugin manager. Nothing is loaded at import time; the daemon calls ``get_plugin_manager``."""

from __future__ import annotations

import logging

import pluggy

from cauldrond.plugins import hookspecs

log = logging.getLogger(__name__)

PROJECT_NAME = "cauldron"
ENTRY_POINT_GROUP = "cauldron"


def get_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh manager with our hookspecs and, unless told otherwise, every installed ``cauldron`` entry point.

    Built-in features (the diffusers provider) are entry points of this distribution, so they load exactly as
    third-party plugins do.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    if load_entry_points:
        count = manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        log.info("loaded %d plugin(s) from entry points", count)
    return manager
