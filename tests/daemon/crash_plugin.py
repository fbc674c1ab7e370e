"""A test-only provider plugin whose generation kills its own process when a batch holds a marked prompt: the
model of a job that brings the daemon down every time it runs (a driver fault, the OOM killer at one size).

It is loaded the way third-party plugins are, through a ``cauldron`` entry point: ``install_crash_plugin`` writes
the distribution's metadata (``*.dist-info`` with ``entry_points.txt``) into a folder that the daemon subprocess
gets on ``PYTHONPATH``, as pip would for an installed package. The provider is the built-in diffusers provider
under another name, so innocent prompts make real images; the daemon runs it with ``plugins = "crash_test"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from cauldrond.config import Settings
from cauldrond.params import GenerationParams
from cauldrond.plugins.hookspecs import hookimpl
from cauldrond.providers.base import GeneratedImage, ProgressCallback, Provider, StopCheck
from cauldrond.providers.diffusers.provider import DiffusersProvider

PLUGIN_NAME = "crash_test"
POISON_MARK = "[crash the daemon]"
EXIT_CODE = 70  # what the test expects to see, so a death for another reason is noticed


class CrashingProvider(DiffusersProvider):
    name = PLUGIN_NAME

    def generate(
        self, batch: Sequence[GenerationParams], progress: ProgressCallback, should_stop: StopCheck
    ) -> list[GeneratedImage]:
        if not any(POISON_MARK in params.prompt for params in batch):
            return super().generate(batch, progress, should_stop)

        def progress_then_die(step: int, total: int) -> None:
            progress(step, total)
            if step >= 1:
                # Inside the first denoising step, as a faulting kernel would: no cleanup, no exception.
                os._exit(EXIT_CODE)

        return super().generate(batch, progress_then_die, should_stop)


@hookimpl
def cauldron_register_providers(register: Callable[[Provider], None], settings: Settings) -> None:
    register(CrashingProvider(settings))


def install_crash_plugin(site: Path) -> Path:
    """Write the metadata of an installed distribution with this module as its ``cauldron`` entry point into
    ``site`` (a folder for PYTHONPATH). Returns ``site``."""
    dist_info = site / "cauldron_crash_test-1.0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: cauldron-crash-test\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[cauldron]\n{PLUGIN_NAME} = {__name__}\n")
    return site
