"""Entry point of the built-in diffusers provider (``[project.entry-points.cauldron] diffusers``).

Kept apart from the provider so that registering the plugin costs an import of this small module; torch and
diffusers load with it only because the provider needs them on every machine that runs the daemon anyway."""

from __future__ import annotations

from collections.abc import Callable

from cauldrond.config import Settings
from cauldrond.plugins.hookspecs import hookimpl
from cauldrond.providers.base import Provider
from cauldrond.providers.diffusers.provider import DiffusersProvider


@hookimpl
def cauldron_register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    register(DiffusersProvider(settings))
