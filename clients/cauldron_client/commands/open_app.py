"""cauldronctl open: the app in this machine's browser, already signed in through a one-time link."""

from __future__ import annotations

import ipaddress
import webbrowser
from urllib.parse import urlsplit

import click

from cauldron_client.commands._common import call, emit_json, options
from cauldron_client.connection import resolve_url
from cauldron_client.errors import ConfigError, RpcError


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_local_daemon() -> None:
    """The link signs in a browser on the daemon's machine: asking a daemon elsewhere is a mistake to name."""
    opts = options()
    if opts.daemon:
        raise ConfigError(
            "open signs in a browser on the daemon's own machine; run it there, without --daemon "
            "(on this device, open the daemon's address and pair: cauldronctl pair on the daemon's machine)"
        )
    url = resolve_url(opts.url)
    if not _is_loopback(urlsplit(url).hostname):
        raise ConfigError(
            f"open works only with the daemon on this machine (a loopback URL), not {url}; "
            "run it on the daemon's machine"
        )


@click.command("open")
@click.option("--print", "print_only", is_flag=True, help="Print the one-time link instead of opening a browser.")
def open_app(print_only: bool) -> None:
    """Open the app in this machine's browser, already signed in.

    Asks the local daemon for a one-time sign-in link (valid one minute, works once) and opens it with the
    default browser; the browser becomes a paired device ("browser on <host>", see cauldronctl devices list).
    Needs the local token: run it on the daemon's machine.
    """
    require_local_daemon()
    try:
        result = call("pairing.create_login")
    except RpcError as exc:
        if exc.code == "forbidden":
            raise ConfigError(
                "open needs the daemon's local token (the file `token` in its data directory); "
                "a paired device's token cannot sign browsers in"
            ) from None
        raise
    link = str(result["link"])
    if options().json:
        emit_json(result)
        return
    if print_only:
        click.echo(link)
        return
    if not webbrowser.open(link):
        click.echo(f"no browser could be started; open this link within {result['expires_in_s']} s:", err=True)
        click.echo(link)
        return
    click.echo(f"opened the app in your browser (the link works once, for {result['expires_in_s']} s)", err=True)
