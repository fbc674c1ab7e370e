"""Start-up recovery: make the database and the images folder agree again after a crash, before serving.

The write order (file fsynced and renamed, then row committed) means a crash can leave only three kinds of
debris: temp files (the crash hit before the rename), orphan PNGs (after the rename, before the COMMIT), and
jobs still marked ``running``. A row pointing at a missing or damaged file should never happen; if the disk
says otherwise, the row goes and its job is generated again, so a listed image is always a readable one.

Jobs left ``running`` are judged by the crash guard (``judge``; docs/architecture.md, Durability, has the rules
and the odds): a job is blamed on evidence only, when the process died while it ran alone as a suspect with its
own work begun (the engine commits that moment before the work goes on).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cauldrond.events import EventBus
from cauldrond.media.png import PNG_SUFFIX, is_temp_name
from cauldrond.media.trash import move_all, png_path, trash_images_dir
from cauldrond.store.integrity import ImageFile, scan_sizes, size_states
from cauldrond.store.jobs import InterruptedJob, Reaped, Verdict
from cauldrond.store.store import Store

log = logging.getLogger(__name__)

# A struck suspect lets this many other batches start (doubling per strike) before it runs again, so the rest of
# the queue moves and it does not run first after every restart.
BACKOFF_BATCHES = 2
# Its wait in each later life: longer than it had been up when the struck run began its work, times this jitter
# (and doubling per strike), so the next try comes later in its life than the kill did and not in step with a
# killer that strikes a fixed time after each start (a watchdog, an OOM killer set off by start-up itself).
JITTER = (1.0, 2.0)
_random = secrets.SystemRandom()


@dataclass
class RecoveryReport:
    requeued: list[int] = field(default_factory=list)  # job ids back in the queue after an interruption
    suspects: list[int] = field(default_factory=list)  # of those, the ones that became suspects at this start
    strikes: list[int] = field(default_factory=list)  # of those, the ones blamed for this death (a strike)
    quarantined: list[int] = field(default_factory=list)  # job ids failed: crashed the daemon too often alone
    temp_files_removed: int = 0
    orphans_removed: int = 0
    missing_files: list[int] = field(default_factory=list)  # job ids requeued because their file was gone
    # Job ids requeued because their file's size no longer matches (start-up compares sizes, not hashes, so it
    # stays fast at 100,000 images; `images.verify` hashes every byte).
    altered_files: list[int] = field(default_factory=list)
    # Image files moved to where their row says they live: a delete or restore interrupted between moving the
    # file and committing the row (media/trash.py), put back as if it had not begun.
    files_moved: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sweep(images_dir: Path, on_disk: Mapping[str, int], referenced: set[str]) -> tuple[int, int]:
    """Delete temp files and unreferenced PNGs (from one scan of ``images_dir``). Returns (temps, orphans) removed."""
    temps = orphans = 0
    for relative in on_disk:
        name = relative.rpartition("/")[2]
        if is_temp_name(name):
            kind = "temp file"
        elif name.endswith(PNG_SUFFIX) and relative not in referenced:
            kind = "orphan image"
        else:
            continue
        path = images_dir / relative
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("recovery: cannot remove %s %s: %s", kind, path, exc)
            continue
        log.info("recovery: removed %s %s", kind, path)
        if kind == "temp file":
            temps += 1
        else:
            orphans += 1
    return temps, orphans


def _follow_rows(images_dir: Path, files: list[ImageFile], on_disk: dict[str, int], in_trash: dict[str, int]) -> int:
    """Move each file that is not where its row says (images folder or trash) but is in the other place, and
    update the two scans to match. Returns how many moved."""
    moved = 0
    for image in files:
        here, there = (in_trash, on_disk) if image.trashed else (on_disk, in_trash)
        if image.path in here or image.path not in there:
            continue
        source = png_path(images_dir, image.path, trashed=not image.trashed)
        target = png_path(images_dir, image.path, trashed=image.trashed)
        if source is None or target is None:
            continue
        try:
            move_all([(source, target)])
        except OSError as exc:
            log.warning("recovery: cannot move image %d file %s to %s: %s", image.image_id, source, target, exc)
            continue
        log.info("recovery: image %d file moved back to %s (an interrupted delete or restore)", image.image_id, target)
        here[image.path] = there.pop(image.path)
        moved += 1
    return moved


def judge(
    job: InterruptedJob,
    max_strikes: int,
    backoff_s: float,
    *,
    now: Callable[[], float] = time.time,
    jitter: Callable[[], float] = lambda: _random.uniform(*JITTER),
    victim: str = "the daemon",
) -> Verdict:
    """The crash guard's rules for a job the process died under: the daemon's, or (``victim``) a Ray worker's."""
    if not (job.suspect and job.at_work_alone):
        # No evidence: it shared its batch with others, or it died before its own work began (in a model load).
        # It becomes a suspect, to run alone. A suspect that was not yet at work lets one batch pass, so that a
        # model whose load kills the process does not stop the whole queue.
        return Verdict(strikes=job.strikes, backoff_batches=1 if job.suspect else 0)
    strikes = job.strikes + 1
    if strikes >= max_strikes:
        times = f"{strikes} times" if strikes > 1 else "once"
        return Verdict(strikes, quarantine=True, error=f"crashed {victim} {times} while running alone")
    return Verdict(
        strikes,
        backoff_batches=BACKOFF_BATCHES * 2 ** (strikes - 1),
        not_before=now() + wait_s(strikes, job.uptime_s, backoff_s, jitter()),
        error=f"crashed {victim} while running alone ({strikes} of {max_strikes}); waiting before another try",
    )


def wait_s(strikes: int, uptime_s: float, backoff_s: float, jitter: float) -> float:
    """How far into a life a suspect with ``strikes`` waits before its next try: past the uptime at which its
    struck run began its work, jittered, at least ``backoff_s``, doubling per strike."""
    return float(2 ** (strikes - 1) * max(backoff_s, uptime_s * jitter))


def _summarise(report: RecoveryReport, reaped: list[Reaped]) -> None:
    for item in reaped:
        job, verdict = item.job, item.verdict
        if verdict.quarantine:
            report.quarantined.append(job.id)
            log.error("recovery: job %d quarantined: %s", job.id, verdict.error)
            continue
        report.requeued.append(job.id)
        if not job.suspect:
            report.suspects.append(job.id)
        if verdict.strikes > job.strikes:
            report.strikes.append(job.id)
            log.warning("recovery: job %d %s", job.id, verdict.error)
    if reaped:
        log.warning(
            "recovery: %d interrupted job(s): %d requeued (%d new suspects, %d strikes), %d quarantined",
            len(reaped),
            len(report.requeued),
            len(report.suspects),
            len(report.strikes),
            len(report.quarantined),
        )


async def recover(store: Store, images_dir: Path, max_strikes: int, backoff_s: float = 10.0) -> RecoveryReport:
    """Run once at start, before the queue is rebuilt and before serving."""
    report = RecoveryReport()
    _summarise(report, await store.jobs.reap_interrupted(lambda job: judge(job, max_strikes, backoff_s)))
    # Every struck suspect's wait starts again with this life (also those that never ran in the last one).
    started = time.time()
    await store.jobs.reschedule_struck(
        lambda strikes, uptime: started + wait_s(strikes, uptime, backoff_s, _random.uniform(*JITTER))
    )

    files = await store.images.files()
    # One walk of the images folder serves the sweep and the size check (fast at 100,000 images); one of the
    # trash does the same for trashed images, whose files live there (media/trash.py).
    on_disk = await asyncio.to_thread(scan_sizes, images_dir)
    trash_dir = trash_images_dir(images_dir)
    in_trash = await asyncio.to_thread(scan_sizes, trash_dir)
    report.files_moved = await asyncio.to_thread(_follow_rows, images_dir, files, on_disk, in_trash)
    live = {image.path for image in files if not image.trashed}
    trashed = {image.path for image in files if image.trashed}
    temps, orphans = await asyncio.to_thread(_sweep, images_dir, on_disk, live)
    trash_temps, trash_orphans = await asyncio.to_thread(_sweep, trash_dir, in_trash, trashed)
    report.temp_files_removed, report.orphans_removed = temps + trash_temps, orphans + trash_orphans

    states = size_states(on_disk, files, in_trash)
    for image, state in zip(files, states, strict=True):
        if state == "ok":
            continue
        log.warning(
            "recovery: image %d file %s is %s; its job will be generated again", image.image_id, image.path, state
        )
        job_id = await store.images.drop_and_requeue(image.image_id, reason=f"image file {state} at start")
        if job_id is None:
            continue
        if state == "missing":
            report.missing_files.append(job_id)
        else:
            report.altered_files.append(job_id)
            # The row is gone, so the damaged file is now an orphan; remove it as the next start would.
            target = png_path(images_dir, image.path, trashed=image.trashed)
            if target is not None:
                await asyncio.to_thread(target.unlink, True)
    return report


async def announce(report: RecoveryReport, store: Store, events: EventBus) -> None:
    """Publish the crash guard's verdicts of this start. Nobody can be subscribed yet, so they are retained and
    every subscriber gets them first (``job.suspected`` for each new suspect and each strike; ``job.quarantined``
    and ``job.failed`` for each quarantined job)."""
    for job_id in [*report.suspects, *(j for j in report.strikes if j not in report.suspects)]:
        job = await store.jobs.get(job_id)
        if job is not None:
            events.publish_retained(
                "job.suspected", job_id=job.id, experiment_id=job.experiment_id, strikes=job.strikes
            )
    for job_id in report.quarantined:
        job = await store.jobs.get(job_id)
        if job is not None:
            fields = {"job_id": job.id, "experiment_id": job.experiment_id, "error": job.last_error}
            events.publish_retained("job.quarantined", strikes=job.strikes, **fields)
            events.publish_retained("job.failed", **fields)
