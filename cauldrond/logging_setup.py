"""How the daemon logs: plain lines by default (journald and a terminal show them as they are), or, with
``log_format = "json"``, one JSON object per line (python-json-logger) in which every line about a batch of jobs
carries their experiment and job ids, so a log store can answer "everything about job 1234".

The ids come from a context variable that the engine sets for the batch it runs (``bind_jobs``). The GPU worker
runs each call in its caller's context, so the provider's lines from the torch thread (model loads, out-of-memory
retries) carry them too. A line may also name them itself: ``extra={"job_id": 7, "experiment_id": 3}``.
Either way the JSON object has ``job_ids`` and ``experiment_ids`` (lists), plus ``job_id`` and
``experiment_id`` when the line concerns exactly one.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Any, Protocol

from pythonjsonlogger.json import JsonFormatter

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(levelname)s %(name)s %(message)s"
JOB_EVENTS_LOGGER = "cauldrond.jobs"


class HasJobIds(Protocol):
    @property
    def job_id(self) -> int: ...

    @property
    def experiment_id(self) -> int: ...


@dataclass(frozen=True)
class JobIds:
    job_ids: tuple[int, ...]
    experiment_ids: tuple[int, ...]


_current_jobs: ContextVar[JobIds | None] = ContextVar("cauldron_log_jobs", default=None)


def bind_jobs(jobs: Iterable[HasJobIds]) -> None:
    """From now on, in this task (and the worker calls it makes), log lines concern these jobs."""
    jobs = list(jobs)
    experiments = tuple(sorted({job.experiment_id for job in jobs}))
    _current_jobs.set(JobIds(tuple(job.job_id for job in jobs), experiments))


def unbind_jobs() -> None:
    _current_jobs.set(None)


def _as_ids(value: Any) -> list[int] | None:
    if isinstance(value, int):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(item, int) for item in value):
        return list(value)
    return None


class JobIdsFilter(logging.Filter):
    """Puts the ids of the jobs a line concerns on the record: from ``extra`` when the caller gave them, else from
    the batch bound to the current context. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = vars(record)
        bound = _current_jobs.get()
        for single, plural, from_context in (
            ("job_id", "job_ids", bound.job_ids if bound else None),
            ("experiment_id", "experiment_ids", bound.experiment_ids if bound else None),
        ):
            ids = _as_ids(fields.get(plural)) or _as_ids(fields.get(single)) or from_context
            if not ids:
                continue
            fields[plural] = list(ids)
            if len(ids) == 1:
                fields[single] = ids[0]
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        JSON_FIELDS,
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601 in UTC, from the record's creation time
    )


def configure_logging(level: str, log_format: str, stream: IO[str]) -> None:
    """Set up the root logger once, at process start (the ``cauldrond`` command)."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(json_formatter())
        handler.addFilter(JobIdsFilter())
        # Library warnings (warnings.warn) would otherwise be printed as bare text between the JSON lines.
        logging.captureWarnings(True)
        _route_library_logs()
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def _route_library_logs() -> None:
    """transformers and diffusers log through a plain-text handler of their own that does not propagate, and
    draw progress bars on stderr: send their lines through ours and drop the bars."""
    for package in ("transformers", "diffusers"):
        try:
            library = importlib.import_module(f"{package}.utils.logging")
        except ImportError:
            continue
        library.disable_default_handler()
        library.enable_propagation()
        library.disable_progress_bar()


_job_log = logging.getLogger(JOB_EVENTS_LOGGER)


# Per-step events: a line each would drown the log.
_NOT_LOGGED = ("job.progress", "job.preview")


def log_job_event(event: dict[str, Any]) -> None:
    """An ``EventBus`` tap: one line per change in a job's life, naming its ids (``cauldrond.jobs`` logger).
    Starts are DEBUG (the done line follows); the rest INFO, failures WARNING."""
    kind = event.get("type")
    job_id, experiment_id = event.get("job_id"), event.get("experiment_id")
    if not isinstance(kind, str) or not kind.startswith("job.") or job_id is None or kind in _NOT_LOGGED:
        return
    extra = {"job_id": job_id, "experiment_id": experiment_id, "event": kind}
    if kind == "job.started":
        _job_log.debug("job %s of experiment %s started", job_id, experiment_id, extra=extra)
    elif kind == "job.done":
        image_id = event.get("image_id")
        _job_log.info("job %s of experiment %s done: image %s", job_id, experiment_id, image_id, extra=extra)
    elif kind == "job.failed":
        error = event.get("error")
        _job_log.warning("job %s of experiment %s failed: %s", job_id, experiment_id, error, extra=extra)
    else:
        detail = event.get("reason") or event.get("error") or ""
        name = kind.removeprefix("job.")
        _job_log.info("job %s of experiment %s %s %s", job_id, experiment_id, name, detail, extra=extra)
