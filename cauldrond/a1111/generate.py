"""``POST txt2img``: the request becomes an experiment of kind ``a1111`` in the durable queue, and the answer
waits for it.

A client that goes away does not take its request with it: the experiment runs to the end like any other, its
images stay in the store (the CLI, the PWA and the next progress poll see them), and nothing is queued twice.
That is what A1111 does too (it keeps generating); a tool that wants the work stopped calls ``interrupt``, as
SillyTavern does when its user aborts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from cauldrond.a1111 import plot
from cauldrond.a1111.errors import A1111Error, field_error
from cauldrond.a1111.options import FIXED_OPTIONS
from cauldrond.a1111.responses import StoredImage, b64, json_text, read_stored, txt2img_info, txt2img_parameters
from cauldrond.a1111.state import A1111State, state_of
from cauldrond.a1111.translate import plan_txt2img, spec_error_field
from cauldrond.a1111.upload import JSON_LIMIT, read_json
from cauldrond.experiments.errors import SpecError
from cauldrond.experiments.kinds import A1111_KIND
from cauldrond.store import ExperimentRow, ImageRow

log = logging.getLogger(__name__)


async def txt2img(request: web.Request) -> Any:
    state = state_of(request)
    services = state.services
    body = await read_json(request, JSON_LIMIT)
    txt = plan_txt2img(
        body,
        clip_skip=state.options.clip_skip,
        max_cells=services.settings.max_cells,
        current_options=FIXED_OPTIONS,
    )
    base = dict(txt.base)
    if txt.model_wanted is not None:
        checkpoint = await state.checkpoint(txt.model_wanted)
        if checkpoint is None:
            raise field_error("override_settings.sd_model_checkpoint", f"no checkpoint {txt.model_wanted!r:.200}")
        base["model"] = checkpoint.name
    xyz = await plot.plan_plot(state, txt, base) if txt.script else None
    name = f"A1111: {txt.fields.prompt[:60]}" if txt.fields.prompt else "A1111 txt2img"
    try:
        # Shielded: once the experiment is being committed, a client that goes away must not stop it halfway
        # (committed but not queued would leave jobs only start-up recovery finds).
        experiment, _ = await asyncio.shield(
            services.experiments.create(
                name=name,
                kind=A1111_KIND,
                base=xyz.base if xyz else base,
                axes=(xyz.axes if xyz else txt.axes) or None,
                vary_seed=xyz.vary_seed if xyz else False,
            )
        )
    except SpecError as exc:
        raise field_error(spec_error_field(exc.field), str(exc)) from exc
    entry = state.tracker.add(experiment.id, experiment.counts["total"])
    # Its first batch may have started while the experiment was being read back: those starts were announced
    # before the tracker knew the experiment.
    entry.running.update(job.job_id for job in services.engine.running_jobs if job.experiment_id == experiment.id)
    try:
        await state.tracker.wait_ended(entry)
    finally:
        state.tracker.remove(experiment.id)
    if request.transport is None or request.transport.is_closing():
        log.info("A1111 txt2img: the client left; experiment %d ran to its end anyway", experiment.id)
        return web.Response(status=204)
    row, images = await _finished_images(state, experiment)
    if xyz is not None:
        return await plot.answer_plot(state, body, xyz, row, images, entry, send=txt.fields.send_images)
    if not images:
        _raise_if_failed(row, await state.services.store.jobs.page(experiment.id, 100, 0))
    info = txt2img_info(body, txt.base, txt.seeds, images, entry, services.experiments.default_model)
    return {
        "images": [b64(image.png) for image in images] if txt.fields.send_images else [],
        "parameters": txt2img_parameters(body),
        "info": json_text(info),
    }


async def _finished_images(state: A1111State, experiment: ExperimentRow) -> tuple[ExperimentRow, list[StoredImage]]:
    services = state.services
    row = await services.store.experiments.get(experiment.id) or experiment
    jobs = await services.store.jobs.page(experiment.id, row.counts["total"], 0)
    ids = [job.image_id for job in jobs if job.image_id is not None]
    rows = await services.store.images.get_many(ids)
    ordered: list[ImageRow] = [rows[image_id] for image_id in ids if image_id in rows]
    return row, await asyncio.to_thread(read_stored, services.settings.images_dir, ordered)


def _raise_if_failed(row: ExperimentRow, jobs: list[Any]) -> None:
    """No image and a failure: A1111 answers a failed generation with its 500."""
    errors = [job.last_error for job in jobs if job.status == "failed" and job.last_error]
    if row.counts["failed"] and errors:
        raise A1111Error(500, f"generation failed: {errors[0]}", error="GenerationFailed")
