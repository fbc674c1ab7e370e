"""``cauldrond``: run the daemon, or manage its models."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from cauldrond import __version__
from cauldrond.config import ConfigError, Settings, load_settings
from cauldrond.logging_setup import configure_logging


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


@click.group(invoke_without_command=True)
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="TOML settings file.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Database, images, token and models live here.")
@click.option("--host", help="Interface to bind (default 127.0.0.1: this machine only).")
@click.option("--port", type=int, help="Port to listen on (default 7860; 0 picks a free one).")
@click.option(
    "--models-dir",
    type=click.Path(path_type=Path),
    help="Where models are found (default <data-dir>/models).",
)
@click.option("--device", type=click.Choice(["auto", "cuda", "mps", "cpu"]), help="Force a torch device.")
@click.option("--default-model", help="Model for work that names none (default tiny-sd; see `cauldrond models list`).")
@click.option(
    "--lan/--no-lan",
    default=None,
    help="Also serve the LAN over HTTPS on port+1, advertise over mDNS and accept paired devices (docs/lan.md).",
)
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option(
    "--log-format",
    type=click.Choice(["plain", "json"]),
    help="plain lines (default), or one JSON object per line with experiment and job ids (docs/operations.md).",
)
@click.version_option(__version__, prog_name="cauldrond")
@click.pass_context
def main(ctx: click.Context, /, config_file: Path | None, **flags: Any) -> None:
    """Shadow Cauldron's daemon. Without a command it serves until SIGTERM or Ctrl-C.

    Settings come from --config (TOML), then CAULDRON_* environment variables, then these flags.
    """
    try:
        settings = load_settings(config_file, overrides=flags)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    ctx.obj = settings
    configure_logging(settings.log_level, settings.log_format, sys.stderr)
    if ctx.invoked_subcommand is None:
        from cauldrond.daemon import Daemon

        daemon = Daemon(settings)
        try:
            asyncio.run(daemon.run())
        except OSError as exc:
            raise click.ClickException(f"cannot start: {exc}") from exc
        if daemon.abandoned_work:
            # A torch call that cannot be interrupted (a model load) outlived the stop. Its jobs are requeued and
            # the store is closed; finalising the interpreter under that native thread would abort the process
            # (SIGABRT, exit -6), so leave directly with success.
            logging.shutdown()
            os._exit(0)


@main.group()
def models() -> None:
    """Manage the models directory."""


@models.command("create-tiny")
@click.option("--overwrite", is_flag=True, help="Rebuild it even if it exists.")
@click.option("--single-file", is_flag=True, help="Also export it as one LDM-layout .safetensors file.")
@click.option(
    "--arch", type=click.Choice(["sd", "sdxl"]), default="sd", show_default=True, help="tiny-sd or tiny-sdxl."
)
@click.pass_context
def create_tiny(ctx: click.Context, overwrite: bool, single_file: bool, arch: str) -> None:
    """Write a built-in tiny model: random weights in the SD 1.x (tiny-sd) or SDXL (tiny-sdxl) layout (its images
    are noise patterns)."""
    from cauldrond.models.single_file import export_single_file
    from cauldrond.models.tiny import create_tiny_model
    from cauldrond.models.tiny_sdxl import create_tiny_sdxl_model
    from cauldrond.security.files import is_inside, make_private_dir

    settings = _settings(ctx)
    models_dir = settings.resolved_models_dir
    if is_inside(models_dir, settings.data_dir):
        make_private_dir(settings.data_dir)  # made here first, it must still be the owner's alone (0700)
    started = time.monotonic()
    create = create_tiny_sdxl_model if arch == "sdxl" else create_tiny_model
    folder = create(models_dir, overwrite=overwrite)
    click.echo(f"{folder.name} ready at {folder} ({time.monotonic() - started:.1f} s)")
    if single_file:
        out = export_single_file(folder, models_dir / f"{folder.name}-single.safetensors")
        click.echo(f"single-file export at {out}")


@models.command("create-random")
@click.option("--arch", type=click.Choice(["sd15", "sdxl"]), required=True, help="SD 1.5 or SDXL base 1.0.")
@click.option("--name", default=None, help="Folder name (default random-sd15 / random-sdxl).")
@click.option(
    "--device",
    type=click.Choice(["auto", "cuda", "mps", "cpu"]),
    default="auto",
    show_default=True,
    help="Where the weights are initialised (a GPU is much faster).",
)
@click.option("--dtype", type=click.Choice(["float16", "bfloat16", "float32"]), default="float16", show_default=True)
@click.option("--overwrite", is_flag=True, help="Rebuild it even if it exists.")
@click.pass_context
def create_random(ctx: click.Context, arch: str, name: str | None, device: str, dtype: str, overwrite: bool) -> None:
    """Write a full-size model with random weights (the real SD 1.5 or SDXL architecture, no download): its speed
    and memory per step are the real model's, for benchmarks (bench/gpu.py); its images are noise."""
    from cauldrond.models.random_full import create_random_model
    from cauldrond.providers.diffusers.devices import choose_device
    from cauldrond.security.files import is_inside, make_private_dir

    settings = _settings(ctx)
    models_dir = settings.resolved_models_dir
    if is_inside(models_dir, settings.data_dir):
        make_private_dir(settings.data_dir)
    started = time.monotonic()
    try:
        folder = create_random_model(
            models_dir, arch, name, device=choose_device(device), dtype=dtype, overwrite=overwrite
        )
    except Exception as exc:  # a device that is missing or out of memory: say so, no traceback
        raise click.ClickException(f"could not create the {arch} model: {exc}") from exc
    click.echo(f"{folder.name} ready at {folder} ({time.monotonic() - started:.1f} s)")


@models.command("list")
@click.pass_context
def list_models(ctx: click.Context) -> None:
    """List the models the installed providers can load."""
    from cauldrond.plugins.runtime import load_plugins

    # The same loading as the daemon's: a broken plugin is reported, not fatal.
    runtime = asyncio.run(load_plugins(_settings(ctx)))
    for status in runtime.statuses.values():
        if status.status == "failed":
            click.echo(f"plugin {status.name} failed to load: {status.error}", err=True)
    for provider in runtime.providers.all():
        for info in provider.list_models():
            note = f"  ({info.note})" if info.note else ""
            click.echo(f"{info.name}\t{provider.name}\t{info.source}{note}")
