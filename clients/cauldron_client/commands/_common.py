"""Shared plumbing for cauldronctl commands: the global options, running a coroutine against a connected
client, and plain-text/JSON output."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import json
import os
import posixpath
import shlex
import shutil
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cauldron_client.client import Client
from cauldron_client.known_hosts import client_for

T = TypeVar("T")


@dataclass(frozen=True)
class Options:
    """The group's global options, stored as ``ctx.obj``."""

    url: str | None
    token: str | None
    json: bool
    daemon: str | None = None  # an mDNS instance name, paired earlier (cauldronctl pair)

    def client(self) -> Client:
        return client_for(self.url, self.token, self.daemon)


def options() -> Options:
    obj = click.get_current_context().find_object(Options)
    if obj is None:  # a command invoked without the group, e.g. from a test
        return Options(None, None, False)
    return obj


def run(body: Callable[[Client], Awaitable[T]]) -> T:
    """Connect, run ``body(client)``, close. Errors propagate to the group, which prints them."""

    async def main() -> T:
        async with options().client() as client:
            return await body(client)

    return asyncio.run(main())


def call(method: str, **params: Any) -> Any:
    """One RPC on a fresh connection; params that are None are left out so daemon defaults apply."""
    given = {key: value for key, value in params.items() if value is not None}
    return run(lambda client: client.call(method, **given))


# -- output ------------------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return repr(value)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns, two spaces apart, drawn by rich. On a terminal the table fits its width (long
    cells fold onto more lines); into a pipe or file every row stays on one line, whole, for grep and scripts."""
    # Two spaces on the left of every column but the first. (Right padding or min_width make rich 13-15 drop a
    # character at each fold of the last column.)
    text_rows = [[_cell(value) for value in row] for row in rows]
    widths = _fitted_widths(headers, text_rows, terminal_width()) if sys.stdout.isatty() else None
    grid = Table(box=None, show_edge=False, pad_edge=False, header_style="", padding=(0, 0, 0, 2))
    for n, header in enumerate(headers):
        grid.add_column(header.upper(), overflow="fold", width=widths[n] if widths else None)
    for text_row in text_rows:
        grid.add_row(*(Text(value) for value in text_row))  # Text: a "[tag]" in a prompt is not rich markup
    buffer = io.StringIO()
    natural = Console(file=buffer, width=100_000).measure(grid).maximum
    width = min(natural, terminal_width()) if sys.stdout.isatty() else natural
    Console(file=buffer, width=max(width, 1), color_system=None, highlight=False).print(grid)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


LONG_CELL = 20  # characters: longer cells (paths, prompts) may fold; a timestamp (19) stays whole
MIN_FOLDED = 8  # a folded column narrower than this is unreadable


def _fitted_widths(headers: Sequence[str], rows: Sequence[Sequence[str]], available: int) -> list[int] | None:
    """Column widths for a table too wide for the terminal: short columns (ids, numbers, times, headers) keep
    their width and the long ones share what is left, folding. None when the table fits, or when even that
    cannot fit (rich then squeezes every column)."""
    natural = [max([len(header), *(len(row[n]) for row in rows)]) for n, header in enumerate(headers)]
    gaps = 2 * (len(headers) - 1)
    if sum(natural) + gaps <= available:
        return None
    long = [n for n, width in enumerate(natural) if width > LONG_CELL]
    room = available - gaps - sum(width for n, width in enumerate(natural) if n not in long)
    if not long or room < MIN_FOLDED * len(long):
        return None
    total_long = sum(natural[n] for n in long)
    widths = list(natural)
    for n in long:
        widths[n] = max(MIN_FOLDED, room * natural[n] // total_long)
    return widths


def terminal_width() -> int:
    return shutil.get_terminal_size().columns


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).replace("\n", " ")


def shorten(text: Any, width: int = 40) -> str:
    value = "" if text is None else str(text).replace("\n", " ")
    return value if len(value) <= width else value[: width - 1] + "…"


def fmt_time(value: Any) -> str:
    """Timestamps arrive as epoch seconds or ISO strings; show local time to the second."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone()
        return parsed.strftime("%Y-%m-%d %H:%M:%S")
    return "-"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested maps as dotted ``key=value`` pairs, for one-line summaries of free-form daemon info."""
    pairs: list[tuple[str, Any]] = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            pairs.extend(flatten(value, name + "."))
        elif isinstance(value, list):
            pairs.append((name, ",".join(str(v) for v in value)))
        else:
            pairs.append((name, value))
    return pairs


def counts_line(counts: Mapping[str, Any]) -> str:
    order = ("done", "running", "queued", "failed", "cancelled")
    return f"{counts.get('total', 0)} cells: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in order)


def image_folder(files: Sequence[str]) -> str | None:
    """The folder that holds all ``files`` (paths on the daemon's machine, so string-based, not Path)."""
    if not files:
        return None
    flavour = posixpath if files[0].startswith("/") else os.path
    folders = {flavour.dirname(f) for f in files}
    if len(folders) == 1:
        return str(folders.pop())
    try:
        return str(flavour.commonpath(sorted(folders)))
    except ValueError:  # different drives on Windows
        return None


async def all_images(client: Client, experiment_id: int | None, page: int = 100) -> list[dict[str, Any]]:
    """Every image (of one experiment), following ``after_id`` pages."""
    images: list[dict[str, Any]] = []
    after: int | None = None
    while True:
        params: dict[str, Any] = {"limit": page}
        if experiment_id is not None:
            params["experiment_id"] = experiment_id
        if after is not None:
            params["after_id"] = after
        batch = (await client.call("images.list", **params)).get("images", [])
        images.extend(batch)
        if len(batch) < page:
            return images
        after = int(batch[-1]["id"])


def print_image_files(images: Sequence[Mapping[str, Any]]) -> None:
    files = [str(image["file"]) for image in images if image.get("file")]
    for path in files:
        click.echo(path)
    folder = image_folder(files)
    if folder:
        click.echo(f"{len(files)} image(s) in {folder}", err=True)
    elif not files:
        click.echo("no images", err=True)


def command_prefix() -> str:
    """``cauldronctl`` with the options that chose the daemon, so a printed hint can be pasted as it is (the
    token is left out: it is a secret, and the user has it already)."""
    opts = options()
    words = ["cauldronctl"]
    if opts.url:
        words += ["--url", opts.url]
    if opts.daemon:
        words += ["--daemon", opts.daemon]
    return shlex.join(words)


def more_rows_hint(what: str, *args: str) -> None:
    """Tell the user a listing was cut short and the command line that shows the next page."""
    click.echo(f"more {what}: {command_prefix()} {shlex.join(args)}", err=True)


def exit_with(code: int) -> None:
    """End the command with ``code`` (through click, so CliRunner and standalone mode both see it)."""
    if code:
        click.get_current_context().exit(code)
