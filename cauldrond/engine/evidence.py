"""The crash guard's evidence, taken while a suspect runs alone: the moment its own work begins is committed to
SQLite *before* that work goes on, so that if the process dies from then on, start-up recovery knows the job was
at work alone and counts a strike against it (see docs/architecture.md, Durability).

"Its own work" starts once the model is loaded: the load is shared by every job of that model and is where a fresh
process spends its first seconds, so deaths there (external kills soon after a restart) say nothing about the job.
Prompt encoding, the denoising steps, the VAE decode and the PNG write are the job's own: a poison prompt or an
out-of-memory size kills the process there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from cauldrond.providers.base import ProgressCallback, Provider

log = logging.getLogger(__name__)

# A commit normally takes milliseconds; past this the run goes on without evidence (no strike can follow).
COMMIT_TIMEOUT_S = 30.0
# Roughly when this daemon started (this module is imported before start-up recovery runs): the evidence records
# how long after it a suspect began its work, so that a struck suspect can try later in its next lives.
LIFE_STARTED = time.time()


def uptime_s() -> float:
    return time.time() - LIFE_STARTED


class SoloEvidence:
    """Used from the worker thread; ``record`` is the store call, run on the event loop."""

    def __init__(
        self,
        job_id: int,
        loop: asyncio.AbstractEventLoop,
        record: Callable[[int], Coroutine[Any, Any, object]],
    ) -> None:
        self.job_id = job_id
        self._loop = loop
        self._record = record
        self.recorded = False
        self._tried = False

    def begin(self) -> None:
        """Commit "at work alone" and wait for the COMMIT; only the first call does anything."""
        if self._tried:
            return
        self._tried = True
        future = asyncio.run_coroutine_threadsafe(self._record(self.job_id), self._loop)
        try:
            future.result(timeout=COMMIT_TIMEOUT_S)
        except Exception as exc:  # the run is worth more than the evidence: go on without it
            future.cancel()
            log.warning("crash guard: could not record that job %d is at work alone: %s", self.job_id, exc)
            return
        self.recorded = True

    def prepare(self, provider: Provider, model: str) -> None:
        """Load the model first when the provider can (``prepare``), then begin; otherwise the first progress
        call begins (see ``progress``)."""
        prepare = getattr(provider, "prepare", None)
        if callable(prepare):
            prepare(model)
            self.begin()

    def progress(self, inner: ProgressCallback) -> ProgressCallback:
        def begin_then_report(step: int, total: int) -> None:
            self.begin()
            inner(step, total)

        return begin_then_report
