"""LAN commands: discover, pair, devices list|revoke, service install|uninstall|status."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import click

from cauldron_client.commands._common import call, emit_json, exit_with, fmt_time, options, table
from cauldron_client.connection import data_dir
from cauldron_client.discovery import discover as discover_daemons
from cauldron_client.errors import CauldronError
from cauldron_client.known_hosts import KnownDaemons, pair_with_daemon, show_fingerprint
from cauldron_client.service import ServiceError, ServiceManager


@click.command()
@click.option("--timeout", type=float, default=3.0, show_default=True, help="Seconds to listen for answers.")
def discover(timeout: float) -> None:
    """List cauldrond daemons advertising on the LAN (mDNS)."""
    found = asyncio.run(discover_daemons(timeout))
    if options().json:
        emit_json([{**d.__dict__, "url": d.url} for d in found])
        return
    if not found:
        click.echo(f"no daemon answered within {timeout:g} s (is it started with --lan?)", err=True)
        exit_with(1)
        return
    known = KnownDaemons()
    rows = [
        (
            d.name,
            ",".join(d.addresses),
            d.port,
            d.version,
            "yes" if d.tls else "no",
            "yes" if d.fingerprint and known.by_fingerprint(d.fingerprint) else "no",
            show_fingerprint(d.fingerprint) if d.fingerprint else "-",
        )
        for d in found
    ]
    click.echo(table(["name", "addresses", "port", "version", "tls", "paired", "fingerprint"], rows))


@click.command()
@click.argument("url", required=False)
@click.argument("code", required=False)
@click.option(
    "--name",
    "device_name",
    default=socket.gethostname(),
    show_default="this host's name",
    help="What the daemon calls this device.",
)
@click.option("--fingerprint", help="The fingerprint the daemon showed (QR code, log); pairing stops on mismatch.")
def pair(url: str | None, code: str | None, device_name: str, fingerprint: str | None) -> None:
    """Pair with a daemon, or (without URL) show a pairing code for this machine's daemon.

    On the daemon's machine, `cauldronctl pair` prints a one-time code, its link and a QR code. On another
    device, `cauldronctl pair https://gpubox.local:7861 CODE` pins the daemon's certificate and stores the
    device token it issues.
    """
    if url is None:
        result = call("pairing.create_code")
        if options().json:
            emit_json(result)
            return
        click.echo(result["qr"])
        click.echo(f"pairing code: {result['code']}  (valid {result['expires_in_s'] // 60} minutes, once)")
        click.echo(f"open:         {result['link']}")
        if result.get("fingerprint"):
            click.echo(f"certificate:  {show_fingerprint(result['fingerprint'])}")
        else:
            click.echo("note: the daemon is not started with --lan, so only this machine can pair", err=True)
        return
    if code is None:
        raise click.UsageError("pair URL CODE: the code is missing")
    known = KnownDaemons()
    entry = pair_with_daemon(url, code, device_name, expected_fingerprint=fingerprint, known=known)
    if options().json:
        emit_json({"url": entry.url, "fingerprint": entry.fingerprint, "token_id": entry.token_id})
        return
    click.echo(f"certificate {show_fingerprint(entry.fingerprint)} pinned for {entry.url}")
    click.echo(f"paired as {entry.device_name!r} (device {entry.token_id}); token stored in {known.path}")


@click.group()
def devices() -> None:
    """Paired devices (needs the local token: run on the daemon's machine)."""


@devices.command("list")
def list_devices() -> None:
    """Paired devices with their last use and open connections."""
    result = call("devices.list")
    if options().json:
        emit_json(result)
        return
    rows = [
        (
            d["id"],
            d["name"],
            fmt_time(d["created_at"]),
            fmt_time(d["last_used_at"]),
            "revoked" if d["revoked_at"] else "active",
            d["connections"],
        )
        for d in result["devices"]
    ]
    click.echo(table(["id", "name", "paired", "last used", "state", "connections"], rows))


@devices.command("revoke")
@click.argument("token_id", type=int)
def revoke(token_id: int) -> None:
    """Revoke a device: its token stops working and its open connections close now."""
    result = call("devices.revoke", token_id=token_id)
    if options().json:
        emit_json(result)
        return
    click.echo(f"device {token_id} revoked; {result['closed_connections']} connection(s) closed")


@click.group()
def service() -> None:
    """Run cauldrond as a user service (systemd on Linux, launchd on macOS)."""


def _manager(data: Path | None) -> ServiceManager:
    return ServiceManager(home=Path.home(), data_dir=(data or data_dir()).expanduser().resolve())


_DATA_OPTION = click.option("--data-dir", "data", type=click.Path(path_type=Path), help="The daemon's data dir.")


@service.command("install")
@_DATA_OPTION
def install(data: Path | None) -> None:
    """Install and start the service (again: harmless)."""
    try:
        for line in _manager(data).install():
            click.echo(line)
    except (ServiceError, OSError) as exc:
        raise CauldronError(str(exc)) from None


@service.command("uninstall")
@_DATA_OPTION
def uninstall(data: Path | None) -> None:
    """Stop and remove the service; the data directory stays."""
    for line in _manager(data).uninstall():
        click.echo(line)


@service.command("status")
@_DATA_OPTION
def status(data: Path | None) -> None:
    """The service manager's view of the service."""
    manager = _manager(data)
    if not manager.path.is_file():
        click.echo(f"not installed ({manager.path} is absent)")
    exit_with(manager.status())
