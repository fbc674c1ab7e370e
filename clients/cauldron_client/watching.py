"""Watching experiments: a live progress bar on a terminal (drawn by rich, fitted to its width and redrawn in
place), plain lines now and then on a pipe or log file, until every watched experiment has finished.

Counts always come from ``experiments.get``: events only mark an experiment for a (throttled) refresh, and a
slow poll catches anything the events missed (see ``progress.py``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, TaskID, TextColumn
from rich.progress import Progress as RichProgress
from rich.table import Column

from cauldron_client.client import Client
from cauldron_client.events import Event
from cauldron_client.progress import UNFINISHED_STATUSES, Progress

REFRESH_MIN_INTERVAL_S = 0.25  # at most four experiments.get per experiment and second while images pour in
POLL_INTERVAL_S = 5.0  # the safety net for missed events
REDRAW_INTERVAL_S = 0.1


class Display(Protocol):
    tty: bool

    def render(self, progress: Progress, force: bool = False) -> None: ...

    def message(self, text: str) -> None: ...

    def close(self, progress: Progress) -> None: ...


class LiveDisplay:
    """One bar line on a terminal, redrawn in place; lines that stay (an experiment finished) go above it."""

    tty = True

    def __init__(self, stream: TextIO, label: str) -> None:
        # highlight off: numbers in messages stay the terminal's colour, as in the plain output.
        self.console = Console(file=stream, highlight=False)
        text = Column(no_wrap=True, overflow="ellipsis")
        self._bar = RichProgress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[cells]}", table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[step]}", table_column=text),
            TextColumn("{task.fields[rate]}", table_column=text),
            TextColumn("{task.fields[eta]}", table_column=Column(no_wrap=True)),
            console=self.console,
            auto_refresh=False,  # redrawn by render(), from the watch loop: no drawing thread
            expand=True,
            redirect_stdout=False,  # --json writes events to stdout, which may be a pipe while stderr is the TTY
            redirect_stderr=False,
        )
        self._task: TaskID = self._bar.add_task(label, total=1, cells="", step="", rate="", eta="")
        self._last_draw = float("-inf")
        self._last_state: tuple[int, int, str, str, str] | None = None
        self._started = False

    def render(self, progress: Progress, force: bool = False) -> None:
        now = time.monotonic()
        state: tuple[int, int, str, str, str] = (
            progress.total,
            progress.settled,
            progress.step_text(),
            progress.rate_text(),
            progress.eta_text(),
        )
        # Redraw on change, and once a second regardless (the terminal may have been resized).
        if not force and (
            now - self._last_draw < REDRAW_INTERVAL_S or (state == self._last_state and now - self._last_draw < 1.0)
        ):
            return
        total, settled, step, rate, eta = state
        self._bar.update(
            self._task, total=max(total, 1), completed=settled, cells=progress.cells_text(), step=step,
            rate=rate, eta=eta,
        )  # fmt: skip
        if not self._started:
            self._bar.start()
            self._started = True
        self._bar.refresh()
        self._last_draw, self._last_state = now, state

    def message(self, text: str) -> None:
        self._bar.console.print(text, markup=False, soft_wrap=False, overflow="fold")

    def close(self, progress: Progress) -> None:
        self.render(progress, force=True)
        self._bar.stop()  # leaves the final bar on screen and moves below it


class LineDisplay:
    """Off a terminal: the state as a plain line when it changed, at most every ``line_interval_s``."""

    tty = False

    def __init__(self, stream: TextIO, line_interval_s: float) -> None:
        self.stream = stream
        self.line_interval_s = line_interval_s
        self._last_draw = float("-inf")
        self._last_text = ""

    def render(self, progress: Progress, force: bool = False) -> None:
        now = time.monotonic()
        text = progress.line()
        if force or (text != self._last_text and now - self._last_draw >= self.line_interval_s):
            self._write(text)
            self._last_draw, self._last_text = now, text

    def message(self, text: str) -> None:
        self._write(text)

    def close(self, progress: Progress) -> None:
        if progress.line() != self._last_text:
            self.render(progress, force=True)

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def make_display(stream: TextIO, label: str, tty: bool | None = None, line_interval_s: float = 10.0) -> Display:
    interactive = stream.isatty() if tty is None else tty
    if interactive and Console(file=stream).is_dumb_terminal:  # TERM=dumb cannot move the cursor
        interactive = False
    return LiveDisplay(stream, label) if interactive else LineDisplay(stream, line_interval_s)


async def unfinished_experiments(client: Client, page: int = 100) -> list[int]:
    """Ids of every queued or running experiment, oldest first."""
    ids: list[int] = []
    offset = 0
    while True:
        result = await client.call("experiments.list", limit=page, offset=offset)
        batch = result.get("experiments", [])
        ids.extend(int(e["id"]) for e in batch if e.get("status") in UNFINISHED_STATUSES)
        if len(batch) < page:
            return sorted(set(ids))
        offset += page


def _label(ids: list[int]) -> str:
    return f"e{ids[0]}" if len(ids) == 1 else f"{len(ids)} experiments"


async def watch(
    client: Client,
    experiment_ids: Iterable[int] | None = None,
    *,
    stream: TextIO | None = None,
    tty: bool | None = None,
    line_interval_s: float = 10.0,
    on_event: Callable[[Event], None] | None = None,
    on_watching: Callable[[list[int]], None] | None = None,
) -> Progress:
    """Show progress until every watched experiment (default: all unfinished ones) has finished.

    Experiments already finished are reported in one line each. ``on_watching`` learns the ids as soon as they
    are known (so an interrupted watch can say which experiments keep running)."""
    out = stream if stream is not None else sys.stderr
    async with client.events() as events:  # subscribed before the snapshot, so no change slips between
        ids = list(experiment_ids) if experiment_ids is not None else await unfinished_experiments(client)
        progress = Progress(ids)
        if not ids:
            return progress
        if on_watching is not None:
            on_watching(ids)
        for eid in ids:
            await _refresh(client, progress, eid, None)
        for state in progress.experiments.values():
            if state.finished:  # nothing will happen to it: say what did
                out.write(state.summary() + "\n")
        if progress.all_finished:
            out.flush()
            return progress
        progress.mark_baseline()
        display = make_display(out, _label(ids), tty, line_interval_s)
        try:
            await _follow(client, progress, events.next, display, on_event)
        finally:
            display.close(progress)
    return progress


async def _follow(
    client: Client,
    progress: Progress,
    next_event: Callable[[float | None], Awaitable[Event | None]],
    display: Display,
    on_event: Callable[[Event], None] | None,
) -> None:
    dirty: set[int] = set()
    last_refresh = last_poll = time.monotonic()
    display.render(progress, force=True)
    while not progress.all_finished:
        event = await next_event(REDRAW_INTERVAL_S if display.tty else 1.0)
        if event is not None:
            if on_event is not None:
                on_event(event)
            dirty |= progress.apply_event(event)
        now = time.monotonic()
        if now - last_poll >= POLL_INTERVAL_S:
            dirty |= {eid for eid, s in progress.experiments.items() if not s.finished}
            last_poll = now
        if dirty and now - last_refresh >= REFRESH_MIN_INTERVAL_S:
            for eid in sorted(dirty):
                await _refresh(client, progress, eid, display)
            dirty.clear()
            last_refresh = now
        display.render(progress)


async def _refresh(client: Client, progress: Progress, experiment_id: int, display: Display | None) -> None:
    state = progress.experiments[experiment_id]
    was_finished = state.finished
    result = await client.call("experiments.get", experiment_id=experiment_id, jobs_limit=1)
    progress.update_experiment(result["experiment"])
    if display is not None and state.finished and not was_finished:
        display.message(state.summary())
