"""Creating, cancelling and reprioritising experiments: store first, then the in-memory queue, then events."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cauldrond.engine import Engine
from cauldrond.events import EventBus
from cauldrond.experiments.cells import SpecError, expand_params, resolved_axes_spec
from cauldrond.experiments.estimates import mean_load_seconds
from cauldrond.experiments.planner import Timing, estimate_seconds, in_run_order, plan_cost, plan_order
from cauldrond.experiments.seeds import fix_seeds
from cauldrond.models.extra_checks import ExtraFileError
from cauldrond.params import GenerationParams
from cauldrond.providers.base import SamplerInfo
from cauldrond.providers.registry import ProviderRegistry
from cauldrond.queue import JobQueue, QueuedJob, queued_job
from cauldrond.sampler_names import split_sampler_name
from cauldrond.store import ExperimentRow, Store
from cauldrond.suggestions import unknown

# A provider's listing of one LoRA or VAE: .name, .usable, .note (the diffusers provider's ExtraFile).
ExtraListing = Any

SCHEDULE_SUFFIXES = ("Karras", "Exponential")
DEFAULT_MODEL = "tiny-sd"  # the built-in model; the default_model setting overrides it
# A model that is not in models.list may still be a hub id ("org/name"); never a URL, a path or a traversal.
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")


@dataclass(frozen=True)
class PreparedExperiment:
    params: list[GenerationParams]  # validated once, in expand_params; each travels with its job to the provider
    cells: list[dict[str, Any]]  # the same as stored (JSON)
    order: list[int]  # order[i]: run position of cell i
    resolved_axes: list[dict[str, Any]]
    seed: int  # every cell without a seed of its own uses it; -1 when each cell drew its own (vary_seed)


class ExperimentService:
    def __init__(
        self,
        *,
        store: Store,
        queue: JobQueue,
        events: EventBus,
        engine: Engine,
        providers: ProviderRegistry,
        max_cells: int,
        default_model: str = DEFAULT_MODEL,
    ) -> None:
        self.default_model = default_model
        self._store = store
        self._queue = queue
        self._events = events
        self._engine = engine
        self._providers = providers
        self._max_cells = max_cells

    def with_default_model(self, base: Mapping[str, Any]) -> dict[str, Any]:
        """``base`` with the default_model setting where it names no model (an axis or a cell may still set one)."""
        return {"model": self.default_model, **base}

    async def prepare(
        self,
        base: Mapping[str, Any],
        axes: Mapping[str, Any] | None = None,
        cells: Sequence[Mapping[str, Any]] | None = None,
        vary_seed: bool = False,
    ) -> PreparedExperiment:
        """Expand and validate every cell and plan their order; nothing is stored. Raises SpecError.
        Seeds of -1 become one seed for the whole experiment unless ``vary_seed`` (see experiments/seeds.py)."""
        fixed = fix_seeds(self.with_default_model(base), axes, cells, vary_seed=vary_seed)
        # Thousands of pydantic validations would stall RPC; they run on a worker thread.
        params = await asyncio.to_thread(
            expand_params, fixed.base, axes=fixed.axes, cells=fixed.cells, max_cells=self._max_cells
        )
        params = await self._check_against_providers(params, axes or {})
        expanded = await asyncio.to_thread(lambda: [cell.to_json_dict() for cell in params])
        resolved = resolved_axes_spec(fixed.axes) if fixed.axes else []
        order = plan_order(expanded, loaded_model=self._engine.last_model)
        return PreparedExperiment(params, expanded, order, resolved, fixed.seed)

    async def create(
        self,
        *,
        name: str,
        kind: str,
        base: Mapping[str, Any],
        axes: Mapping[str, Any] | None = None,
        cells: Sequence[Mapping[str, Any]] | None = None,
        priority: int = 0,
        vary_seed: bool = False,
        job_extras: Mapping[str, Any] | None = None,
    ) -> tuple[ExperimentRow, list[int]]:
        """Validate every cell, commit the experiment with its jobs, then queue and announce it.
        Raises SpecError before anything is stored. ``job_extras`` are engine instructions stored with each
        job's params after validation (images.rerun's batch shape, engine/replay.py)."""
        prepared = await self.prepare(base, axes, cells, vary_seed)
        if job_extras:
            prepared.cells[:] = [{**cell, **job_extras} for cell in prepared.cells]
        spec = {
            "base": self.with_default_model(base),
            "axes": dict(axes or {}),
            "resolved_axes": prepared.resolved_axes,
            "cells": [dict(c) for c in cells or []],
            "seed": prepared.seed,
            "vary_seed": vary_seed,
        }
        experiment_id, job_ids = await self._store.experiments.create(
            name=name, kind=kind, spec=spec, priority=priority, cells=prepared.cells, run_order=prepared.order
        )
        queued = [
            QueuedJob(job_id, experiment_id, idx, cell, generation=params)
            for idx, (job_id, cell, params) in enumerate(zip(job_ids, prepared.cells, prepared.params, strict=True))
        ]
        for job in sorted(queued, key=lambda job: prepared.order[job.idx]):
            self._queue.add(job, priority)
        self._events.publish("experiment.created", experiment_id=experiment_id, total=len(job_ids))
        experiment = await self._store.experiments.get(experiment_id)
        assert experiment is not None  # just committed
        return experiment, job_ids

    async def plan(
        self,
        base: Mapping[str, Any],
        axes: Mapping[str, Any] | None,
        cells: Sequence[Mapping[str, Any]] | None,
        max_batch_size: int,
        vary_seed: bool = False,
    ) -> dict[str, Any]:
        """What creating this experiment would do: cells, resolved axes, model loads, batches, duration."""
        prepared = await self.prepare(base, axes, cells, vary_seed)
        ordered = in_run_order(prepared.cells, prepared.order)
        # Batches as the engine will take them: its measured size per model and image size where auto sizing
        # has one (engine/batch_sizing.py), else max_batch_size.
        batch_size = self._engine.batch_sizes.planned_size
        cost = plan_cost(ordered, batch_size, loaded_model=self._engine.last_model)
        history = [Timing(*row) for row in await self._store.images.recent_timings(limit=500)]
        seconds, basis = estimate_seconds(
            ordered,
            history,
            batch_size,
            loaded_model=self._engine.last_model,
            load_seconds=mean_load_seconds(self._providers.all()),
        )
        return {
            "cells": len(prepared.cells),
            "axes": prepared.resolved_axes,
            "model_loads": cost.model_loads,
            "batches": cost.batches,
            "max_batch_size": max_batch_size,
            "estimated_seconds": seconds,
            "estimate_basis": basis,
        }

    async def cancel(self, experiment_id: int) -> tuple[ExperimentRow, int, int] | None:
        outcome = await self._store.experiments.cancel(experiment_id)
        if outcome is None:
            return None
        cancelled, _running = outcome
        self._queue.remove_experiment(experiment_id)
        stopping = self._engine.cancel_experiment(experiment_id)
        for job_id in cancelled:
            self._events.publish("job.cancelled", job_id=job_id, experiment_id=experiment_id)
        self._events.publish("experiment.cancelled", experiment_id=experiment_id)
        experiment = await self._store.experiments.get(experiment_id)
        assert experiment is not None
        return experiment, len(cancelled), stopping

    async def set_priority(self, experiment_id: int, priority: int) -> ExperimentRow | None:
        if not await self._store.experiments.set_priority(experiment_id, priority):
            return None
        self._queue.set_priority(experiment_id, priority)
        self._events.publish("experiment.priority", experiment_id=experiment_id, priority=priority)
        return await self._store.experiments.get(experiment_id)

    async def retry(
        self, experiment_id: int, statuses: Sequence[str], job_ids: Sequence[int] | None = None
    ) -> tuple[ExperimentRow, list[int]] | None:
        """Failed/cancelled jobs back to the queue as they were (params, seed). Commits, then queues, then
        announces. None if there is no such experiment; StoreError if a chosen job cannot be retried."""
        if await self._store.experiments.get(experiment_id) is None:
            return None
        rows = await self._store.jobs.retry(experiment_id, statuses=statuses, job_ids=job_ids)
        self._engine.withdraw_cancel(experiment_id)
        for row in rows:
            self._queue.add(queued_job(row), row.priority)
        job_ids_queued = [row.job_id for row in rows]
        self._events.publish("experiment.retried", experiment_id=experiment_id, job_ids=job_ids_queued)
        experiment = await self._store.experiments.get(experiment_id)
        assert experiment is not None  # experiments are never deleted
        return experiment, job_ids_queued

    async def _check_against_providers(
        self, cells: list[GenerationParams], axes: Mapping[str, Sequence[Any]]
    ) -> list[GenerationParams]:
        """The cells with their sampler names as the providers list them; SpecError for an unknown model, sampler
        or schedule."""
        # Listing models touches the disk; do it off the loop, once per experiment.
        models, samplers = await asyncio.to_thread(self._catalogue)
        extras = await asyncio.to_thread(self._extras_catalogue)
        checked = []
        for cell in cells:
            _check_extras(cell, extras, axes)
            model = cell.model
            if model not in models and ("/" not in model or not HUB_ID.match(model) or ".." in model):
                available = ", ".join(sorted(models))
                if "/" not in model:
                    hint = unknown("model", model, sorted(models), "models.list", _where("model", axes))
                    raise SpecError(
                        f"{_origin('model', axes)} 'model': {hint.message()}; available: {available}",
                        field="model",
                        value=model[:200],
                        **hint.error_data(),
                    )
                kind = "neither a known model nor a hub id 'org/name' (no URLs or paths):"
                raise SpecError(
                    f"{_origin('model', axes)} 'model': {kind} {model[:200]!r}; available: {available}",
                    field="model",
                    value=model[:200],
                )
            sampler, schedule = _normalise_sampler(cell.sampler, cell.schedule, samplers, axes)
            if (sampler, schedule) != (cell.sampler, cell.schedule):
                cell = cell.model_copy(update={"sampler": sampler, "schedule": schedule})
            checked.append(cell)
        await self._check_extra_files(checked, axes)
        return checked

    async def _check_extra_files(self, cells: list[GenerationParams], axes: Mapping[str, Sequence[Any]]) -> None:
        """SpecError naming a LoRA, VAE or embedding file that cannot serve its cell's model (truncated, a pickle,
        another architecture or width), from providers that check them (the diffusers provider reads headers)."""

        def check() -> None:
            providers = self._providers.all()
            by_provider: dict[str, tuple[Any, list[GenerationParams]]] = {}
            if len(providers) == 1:  # the usual case: no need to ask which provider lists each model
                by_provider[providers[0].name] = (providers[0], cells)
            else:
                for model in dict.fromkeys(cell.model for cell in cells):
                    provider = self._providers.for_model(model)
                    served = by_provider.setdefault(provider.name, (provider, []))[1]
                    served.extend(cell for cell in cells if cell.model == model)
            for provider, served in by_provider.values():
                check_extra_networks = getattr(provider, "check_extra_networks", None)
                if callable(check_extra_networks):
                    check_extra_networks(served)

        try:
            await asyncio.to_thread(check)
        except ExtraFileError as exc:
            field = exc.field or "prompt"
            axis = "lora" if field == "loras" and "lora" in axes else field
            message = f"{_origin(axis, axes)} {axis!r}: {exc}"
            raise SpecError(message, field=axis, value=(exc.value or "")[:200]) from None

    def _catalogue(self) -> tuple[set[str], dict[str, SamplerInfo]]:
        models = {info.name for provider in self._providers.all() for info in provider.list_models()}
        samplers = {info.name.lower(): info for provider in self._providers.all() for info in provider.list_samplers()}
        return models, samplers

    def _extras_catalogue(self) -> dict[str, dict[str, ExtraListing]]:
        """LoRA and VAE names by kind, from providers that list them (the diffusers provider's list_extras)."""
        found: dict[str, dict[str, ExtraListing]] = {"lora": {}, "vae": {}}
        for provider in self._providers.all():
            list_extras = getattr(provider, "list_extras", None)
            if callable(list_extras):
                for kind, names in found.items():
                    names.update({extra.name: extra for extra in list_extras(kind)})
        return found


def _check_extras(
    cell: GenerationParams, extras: Mapping[str, Mapping[str, ExtraListing]], axes: Mapping[str, Sequence[Any]]
) -> None:
    """SpecError naming a LoRA or VAE that is not in the models dir, or one that cannot be used (a pickle)."""
    wanted = [("vae", "VAE", "vae", cell.vae)] if cell.vae else []
    wanted += [("loras", "LoRA", "lora", lora.name) for lora in cell.loras]
    for field, label, kind, name in wanted:
        axis = "lora" if field == "loras" and "lora" in axes else field
        origin = "axis" if axis in axes else "parameter"
        found = extras[kind].get(name)
        if found is not None and found.usable:
            continue
        if found is not None:
            raise SpecError(f"{origin} {axis!r}: {label} {name!r} is {found.note}", field=axis, value=name)
        available = [n for n, extra in extras[kind].items() if extra.usable]
        hint = unknown(label, name, available, f"{kind}s.list", _where(axis, axes))
        raise SpecError(
            f"{origin} {axis!r}: {hint.message()}; available: {', '.join(sorted(available)) or 'none'}",
            field=axis,
            value=name[:200],
            **hint.error_data(),
        )


def _origin(field: str, axes: Mapping[str, Sequence[Any]]) -> str:
    return "axis" if field in axes else "parameter"


def _where(field: str, axes: Mapping[str, Sequence[Any]]) -> str:
    """The prefix of a did-you-mean problem: only an axis needs naming (a parameter's name is in the problem)."""
    return f"axis {field!r}: " if field in axes else ""


def _normalise_sampler(
    sampler: str, schedule: str, samplers: dict[str, SamplerInfo], axes: Mapping[str, Sequence[Any]]
) -> tuple[str, str]:
    """Accept A1111's legacy combined names ("DPM++ 2M Karras", whose schedule wins, as in A1111) and any case."""
    found = split_sampler_name(sampler, {s: s for s in SCHEDULE_SUFFIXES}, [i.name for i in samplers.values()])
    info = samplers[found[0].lower()] if found is not None else None
    if found is not None and found[1] is not None:
        schedule = found[1]
    if info is None:
        # Combined names too, so "DPM++2M Karras" suggests "DPM++ 2M Karras".
        names = [i.name for i in samplers.values()]
        names += [f"{i.name} {s}" for i in samplers.values() for s in i.schedules if s in SCHEDULE_SUFFIXES]
        hint = unknown("sampler", sampler, names, "samplers.list", _where("sampler", axes))
        raise SpecError(
            f"{_origin('sampler', axes)} 'sampler': {hint.message()}",
            field="sampler",
            value=sampler,
            **hint.error_data(),
        )
    matching = [s for s in info.schedules if s.lower() == schedule.lower()]
    if not matching:
        known = {s.lower() for i in samplers.values() for s in i.schedules}
        hint = unknown("schedule", schedule, info.schedules, "samplers.list", _where("schedule", axes))
        if schedule.lower() in known:  # a real schedule, just not one this sampler takes
            hint = replace(hint, problem=f"{_where('schedule', axes)}{schedule!r} does not apply to {info.name!r}")
        raise SpecError(
            f"{_origin('schedule', axes)} 'schedule': {hint.message()}; choose from {', '.join(info.schedules)}",
            field="schedule",
            value=schedule,
            **hint.error_data(),
        )
    return info.name, matching[0]
