"""Read-only overview commands: status, models, samplers."""

from __future__ import annotations

import json
import shlex
import textwrap
from typing import Any

import click

from cauldron_client.commands._common import call, emit_json, flatten, options, table
from cauldron_client.connection import resolve_url

TINY_MODEL = "tiny-sd"  # the daemon's built-in model: random weights, noise pictures


@click.command()
def status() -> None:
    """Daemon version, provider, hardware and queue counts."""
    info = call("system.info")
    if options().json:
        emit_json(info)
        return
    queue = info.get("queue") or {}
    state = "paused" if queue.get("paused") else "running"
    if queue.get("paused_reason"):
        state += f" ({queue['paused_reason']})"  # e.g. disk full: the daemon resumes by itself when space returns
    lines = [
        f"cauldrond {info.get('version', '?')} (api {info.get('api_version', '?')}) at {options_url()}",
        f"provider:  {info.get('provider', '-')}",
        f"hardware:  {_pairs(info.get('hardware'))}",
        f"queue:     {state}, {queue.get('queued', 0)} queued, {queue.get('running', 0)} running",
        f"recovery:  {_pairs(info.get('recovery'))}",
        f"data dir:  {info.get('data_dir', '-')}",
    ]
    click.echo("\n".join(lines))
    scaleout = info.get("scaleout")
    if isinstance(scaleout, dict):  # engine = "ray": the cluster and its workers
        _echo_workers(scaleout)


def _echo_workers(scaleout: dict[str, Any]) -> None:
    cluster = "connected" if scaleout.get("connected") else f"NOT connected ({scaleout.get('error') or '?'})"
    click.echo(f"ray:       {scaleout.get('address', '?')}, {cluster}")
    rows = []
    for worker in scaleout.get("workers") or []:
        models = ", ".join(str(model.get("name")) for model in worker.get("loaded_models") or []) or "-"
        state = worker.get("state", "?")
        if worker.get("reason"):
            state += f" ({worker['reason']})"
        speed = worker.get("images_per_s")
        rows.append(
            (worker.get("id"), worker.get("host") or worker.get("node"), worker.get("device"), state, models,
             worker.get("current_batch") or "-", "-" if speed is None else f"{speed:.2f}")
        )  # fmt: skip
    if rows:
        click.echo(table(["worker", "host", "device", "state", "models", "batch", "images/s"], rows))


def options_url() -> str:
    return resolve_url(options().url)


def _pairs(value: Any) -> str:
    if not isinstance(value, dict):
        return "-" if value is None else str(value)
    pairs = [f"{k}={_human(k, v)}" for k, v in flatten(value) if v not in (None, "")]
    # Hanging indent under the 11-character labels keeps the status on one screen without a ragged edge.
    indent = " " * 11
    return textwrap.fill(", ".join(pairs), width=100, initial_indent=indent, subsequent_indent=indent)[11:] or "-"


def _human(key: str, value: Any) -> Any:
    if key.endswith("bytes") and isinstance(value, int) and not isinstance(value, bool):
        return format_bytes(value)
    return value


def format_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024:
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}TiB"


@click.command()
def models() -> None:
    """Models the provider can load, with each one's short hash (A1111's "Model hash")."""
    result = call("models.list")
    if options().json:
        emit_json(result)
        return
    rows = [
        (m.get("name"), m.get("short_hash"), m.get("provider"), m.get("source"), m.get("note"))
        for m in result.get("models", [])
    ]
    click.echo(table(["name", "hash", "provider", "source", "note"], rows))
    hint = default_model_hint(result)
    if hint:
        click.echo(hint, err=True)


def default_model_hint(result: dict[str, Any]) -> str | None:
    """What the daemon uses when no --model is given, and, while that is the built-in noise model, the first real
    model found and how to make it the default."""
    default = result.get("default_model")
    if not isinstance(default, str):
        return None  # an older daemon
    line = f"default model: {default} (used when no --model is given)"
    if default != TINY_MODEL:
        return line
    real = [str(m["name"]) for m in result.get("models", []) if m.get("name") and m.get("name") != TINY_MODEL]
    if not real:
        return line + "; tiny-sd draws noise: put a real model in the daemon's models folder"
    return (
        f"{line}; tiny-sd draws noise. To use {real[0]} instead: cauldrond --default-model {shlex.quote(real[0])}, "
        f"CAULDRON_DEFAULT_MODEL={shlex.quote(real[0])}, or default_model = {json.dumps(real[0])} in its config"
    )


@click.command()
def samplers() -> None:
    """Sampler names (A1111 style) and the schedules each accepts."""
    result = call("samplers.list")
    if options().json:
        emit_json(result)
        return
    rows = [
        (s.get("name"), ", ".join(str(x) for x in s.get("schedules") or []), s.get("note"))
        for s in result.get("samplers", [])
    ]
    click.echo(table(["name", "schedules", "note"], rows))
