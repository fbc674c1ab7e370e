"""The crash guard's rules for a Ray worker that died under a batch (docs/architecture.md, Durability, has the
local rules; docs/scale-out.md, Failure, these).

A worker's process can die for the batch's sake (a job that faults the driver, runs the node out of memory) or
for reasons of its own (a kill, a lost node). The daemon cannot tell which, so it judges as it judges its own
deaths, with the same ``judge`` and the same store transaction:

- the jobs of a batch that had begun on the worker become *suspects*, with no strike: a suspect runs alone;
- a suspect that dies alone after its own work began (its model was loaded: the worker's ``started``, recorded
  as evidence before the next event is read) gets a strike, waits (batches and seconds, doubling per strike) and
  is quarantined (failed with the reason) at ``max_attempts`` strikes;
- a batch still waiting behind the running one never began: it goes back as it was;
- so does a batch whose death Ray itself puts down to something outside it (``outside_the_batch``): its node
  died, it was killed with ``ray.kill``, or the whole cluster stopped answering (the head is lost). A worker
  process that died on a live cluster is the daemon's own case, where a kill and a fault look the same.

So a poison job ends failed after at most ``max_attempts`` worker deaths while it ran alone, and every job it
shared a batch with finishes. A death a job is blamed for does not count against its worker (pool.py drops a
worker that keeps dying); a worker restarted in place loses only its loaded models.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from cauldrond.queue import QueuedJob
from cauldrond.store.jobs import Reaped
from cauldrond.store.recovery import judge

if TYPE_CHECKING:
    from cauldrond.scaleout.dispatch import RayEngine
    from cauldrond.scaleout.pool import WorkerPool

log = logging.getLogger(__name__)

VICTIM = "its Ray worker"
# Ray 2.60's words for deaths that are not the batch's doing (its ActorDiedErrorContext messages).
EXTERNAL_CAUSES = (
    "because its node has died",
    "killed by `ray.kill`",
    "because its owner has died",
    "because all references to the actor were removed",
)


async def outside_the_batch(error: BaseException, pool: WorkerPool) -> bool:
    """The worker died of something other than its work, as far as Ray can say: no job is judged for it.

    "Unavailable" is what the stream usually raises when the worker's process dies (the socket closes before the
    cluster marks the actor dead), and also when the whole cluster is lost: a node listing tells the two apart."""
    import ray

    if any(cause in str(error) for cause in EXTERNAL_CAUSES):
        return True
    if isinstance(error, ray.exceptions.ActorUnavailableError):
        return not await pool.cluster_answers()
    return False


def watched_alone(jobs: list[QueuedJob]) -> QueuedJob | None:
    """The suspect whose run the crash guard watches: one alone in its batch."""
    return jobs[0] if len(jobs) == 1 and jobs[0].suspect else None


async def record_at_work(engine: RayEngine, job: QueuedJob) -> None:
    """The evidence that the suspect's own work began. The uptime is 0: a struck suspect's wait then starts from
    ``crash_backoff_s`` (the worker, not the daemon, is what was restarted; the daemon's uptime would make it wait
    as long again as the daemon has been up)."""
    try:
        await engine._store.jobs.mark_at_work_alone(job.job_id, 0.0)
    except Exception as exc:  # the run is worth more than the evidence: without it no strike can follow
        log.warning("crash guard: could not record that job %d is at work alone: %s", job.job_id, exc)


async def judge_death(engine: RayEngine, jobs: list[QueuedJob], worker: str) -> bool:
    """Judge the jobs of a begun batch whose worker died, requeue or quarantine them, and announce it. True when
    a job was struck (the death is put down to it, not to the worker)."""
    settings = engine.settings
    reaped = await engine._store.jobs.reap_interrupted(
        lambda job: judge(job, settings.max_attempts, float(settings.crash_backoff_s), victim=VICTIM),
        [job.job_id for job in jobs],
    )
    judged = {item.job.id: item for item in reaped}
    events = engine._events
    for job in jobs:
        if job.job_id not in judged:  # its experiment was cancelled meanwhile: the store cancelled it
            events.publish("job.cancelled", job_id=job.job_id, experiment_id=job.experiment_id)
    struck = False
    requeued: list[QueuedJob] = []
    for job in jobs:
        item = judged.get(job.job_id)
        if item is None:
            continue
        verdict = item.verdict
        struck = struck or verdict.strikes > item.job.strikes
        fields = {"job_id": job.job_id, "experiment_id": job.experiment_id}
        if verdict.quarantine:
            log.error("job %d quarantined on worker %s: %s", job.job_id, worker, verdict.error)
            events.publish("job.quarantined", strikes=verdict.strikes, error=verdict.error, **fields)
            events.publish("job.failed", error=verdict.error, **fields)
            continue
        if verdict.strikes > item.job.strikes or not item.job.suspect:
            events.publish("job.suspected", strikes=verdict.strikes, **fields)
        if verdict.strikes > item.job.strikes:
            log.warning("job %d %s (worker %s)", job.job_id, verdict.error, worker)
        events.publish("job.requeued", reason=f"worker {worker} lost", **fields)
        requeued.append(_as_judged(job, item))
    if requeued and not engine._stopping.is_set():
        await engine._back_to_front(requeued)
    await engine._announce_finished_experiments(jobs)
    return struck


def _as_judged(job: QueuedJob, item: Reaped) -> QueuedJob:
    verdict = item.verdict
    return dataclasses.replace(
        job,
        suspect=True,
        strikes=verdict.strikes,
        backoff_batches=verdict.backoff_batches,
        not_before=verdict.not_before,
    )
