"""generate and experiments.*"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cauldrond.experiments.cells import SpecError
from cauldrond.experiments.kinds import cfg_spec, convergence_spec
from cauldrond.params import GenerationParams
from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.methods.shapes import Offset, RowId, experiment_shape, experiment_summary_shape
from cauldrond.rpc.protocol import RpcError
from cauldrond.rpc.registry import MethodRegistry
from cauldrond.store import StoreError

Priority = Field(default=0, ge=-1000, le=1000, description="Higher runs first")
VarySeed = Field(
    default=False,
    description="Draw a random seed per cell for every seed of -1 (A1111's 'Keep -1 for seeds'); by default a -1 "
    "seed is drawn once and shared by every cell, and each -1 of a seed axis once per axis value",
)


class GenerateParams(GenerationParams):
    priority: int = Priority
    name: str | None = Field(default=None, max_length=200)


class CreateParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=200)
    kind: str = Field(default="sweep", max_length=40)
    base: dict[str, Any] = Field(default_factory=dict, description="Generation params shared by every cell")
    axes: dict[str, AxisValues] | None = Field(
        default=None,
        description="axis -> a list of values or an A1111 value string ('10-30 [3]', 'a, \"b, c\"'); "
        "the cells are their cartesian product over base, first axis outermost",
    )
    cells: list[dict[str, Any]] | None = Field(default=None, description="Partial params merged over base")
    priority: int = Priority
    vary_seed: bool = VarySeed


AxisValues = list[Any] | str


class PlanParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=200)
    kind: str = Field(default="sweep", max_length=40)
    base: dict[str, Any] = Field(default_factory=dict)
    axes: dict[str, AxisValues] | None = None
    cells: list[dict[str, Any]] | None = None
    priority: int = Priority
    vary_seed: bool = VarySeed


class ConvergenceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(default="", max_length=200)
    base: dict[str, Any] = Field(default_factory=dict, description="Params shared by every cell")
    prompts: list[str] = Field(min_length=1, max_length=100)
    models: AxisValues | None = Field(
        default=None, description="Model names, a list or CSV string (default: the default_model setting)"
    )
    samplers: AxisValues = Field(description="Sampler names, a list or CSV string")
    steps: AxisValues = Field(description="Step counts: a list or a range such as '10-40 [4]'")
    seeds: AxisValues = Field(
        default_factory=lambda: [-1], description="Seeds: a list or range; -1 is random (drawn once, see vary_seed)"
    )
    priority: int = Priority
    vary_seed: bool = VarySeed


class CfgParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: RowId
    cfg: AxisValues = Field(description="CFG scales: a list or a range such as '3-12 [4]'")
    name: str = Field(default="", max_length=200)
    priority: int = Priority
    vary_seed: bool = Field(
        default=False, description="Give each cell a random seed instead of the image's (then cells differ in seed)"
    )


class ExperimentId(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment_id: RowId


class GetParams(ExperimentId):
    jobs_limit: int = Field(default=1000, ge=0, le=10_000)
    jobs_offset: Offset = Field(default=0, description="Skip this many jobs (in cell order): the next page")


class PriorityParams(ExperimentId):
    priority: int = Priority


class ListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=50, ge=1, le=1000)
    offset: Offset = 0


def _spec_error(exc: SpecError) -> RpcError:
    return RpcError("invalid_params", str(exc), exc.to_data())


def _not_found(experiment_id: int) -> RpcError:
    return RpcError("not_found", f"no experiment {experiment_id}")


async def generate(ctx: RpcContext, params: GenerateParams) -> dict[str, Any]:
    """Queue one image: an experiment of one cell. Without a model, the daemon's default_model setting."""
    cell = params.model_dump(exclude={"priority", "name"})
    if "model" not in params.model_fields_set:  # the default_model setting, not the schema's default
        cell.pop("model")
    try:
        experiment, job_ids = await ctx.services.experiments.create(
            name=params.name or params.prompt[:60], kind="generate", base=cell, priority=params.priority
        )
    except SpecError as exc:
        raise _spec_error(exc) from exc
    return {"experiment": experiment_shape(experiment), "job_ids": job_ids}


async def create(ctx: RpcContext, params: CreateParams) -> dict[str, Any]:
    """Create an experiment from base params and either axes (cartesian product) or explicit cells. Every cell is
    validated before any is queued."""
    try:
        experiment, _ = await ctx.services.experiments.create(
            name=params.name,
            kind=params.kind,
            base=params.base,
            axes=params.axes,
            cells=params.cells,
            priority=params.priority,
            vary_seed=params.vary_seed,
        )
    except SpecError as exc:
        raise _spec_error(exc) from exc
    return {"experiment": experiment_shape(experiment)}


async def plan(ctx: RpcContext, params: PlanParams) -> dict[str, Any]:
    """Dry run of experiments.create: cell count, axes as resolved values, model loads and batches the planner will
    use, and an estimated duration from this machine's recorded timings. Nothing is stored."""
    try:
        return await ctx.services.experiments.plan(
            params.base, params.axes, params.cells, ctx.services.settings.max_batch_size, params.vary_seed
        )
    except SpecError as exc:
        raise _spec_error(exc) from exc


async def convergence(ctx: RpcContext, params: ConvergenceParams) -> dict[str, Any]:
    """A convergence experiment: prompts × models × samplers × seeds × steps, to find where each sampler
    settles (see experiments.analyze)."""
    try:
        base, axes = convergence_spec(
            base=params.base,
            prompts=params.prompts,
            models=params.models if params.models is not None else [ctx.services.experiments.default_model],
            samplers=params.samplers,
            steps=params.steps,
            seeds=params.seeds,
        )
        experiment, _ = await ctx.services.experiments.create(
            name=params.name or "convergence",
            kind="convergence",
            base=base,
            axes=axes,
            priority=params.priority,
            vary_seed=params.vary_seed,
        )
    except SpecError as exc:
        raise _spec_error(exc) from exc
    return {"experiment": experiment_shape(experiment)}


async def cfg(ctx: RpcContext, params: CfgParams) -> dict[str, Any]:
    """A CFG sweep from an existing image: the same params and seed, one image per CFG scale."""
    image = await ctx.services.store.images.get(params.image_id)
    if image is None:
        raise RpcError("not_found", f"no image {params.image_id}")
    try:
        base, axes = cfg_spec(image_params=image.params, cfg=params.cfg, vary_seed=params.vary_seed)
        experiment, _ = await ctx.services.experiments.create(
            name=params.name or f"cfg sweep of image {image.id}",
            kind="cfg",
            base=base,
            axes=axes,
            priority=params.priority,
            vary_seed=params.vary_seed,
        )
    except SpecError as exc:
        raise _spec_error(exc) from exc
    return {"experiment": experiment_shape(experiment)}


async def list_experiments(ctx: RpcContext, params: ListParams) -> dict[str, Any]:
    """Experiments, newest first, with their job counts; without their specs (experiments.get has them).
    has_more says another page exists; next holds the offset to pass for it."""
    rows = await ctx.services.store.experiments.page(params.limit + 1, params.offset)
    has_more = len(rows) > params.limit
    return {
        "experiments": [experiment_summary_shape(row) for row in rows[: params.limit]],
        "has_more": has_more,
        "next": {"offset": params.offset + params.limit} if has_more else None,
    }


async def get(ctx: RpcContext, params: GetParams) -> dict[str, Any]:
    """One experiment with its spec, counts and a page of its jobs (jobs_limit from jobs_offset)."""
    row = await ctx.services.store.experiments.get(params.experiment_id)
    if row is None:
        raise _not_found(params.experiment_id)
    jobs = await ctx.services.store.jobs.page(params.experiment_id, params.jobs_limit, params.jobs_offset)
    return {"experiment": experiment_shape(row), "jobs": [job.to_dict() for job in jobs]}


async def cancel(ctx: RpcContext, params: ExperimentId) -> dict[str, Any]:
    """Cancel the queued cells at once and stop a running one at its next denoising step. A finished experiment
    is left as it is (an error says so): cancelling it would only relabel finished work."""
    current = await ctx.services.store.experiments.get(params.experiment_id)
    if current is None:
        raise _not_found(params.experiment_id)
    if current.status not in ("queued", "running"):
        raise RpcError(
            "invalid_state",
            f"experiment {params.experiment_id} is already finished ({current.status}); nothing to cancel",
            {"experiment_id": params.experiment_id, "status": current.status},
        )
    outcome = await ctx.services.experiments.cancel(params.experiment_id)
    if outcome is None:
        raise _not_found(params.experiment_id)
    row, cancelled, stopping = outcome
    return {"experiment": experiment_shape(row), "cancelled": cancelled, "stopping": stopping}


async def set_priority(ctx: RpcContext, params: PriorityParams) -> dict[str, Any]:
    """Change an experiment's priority; its queued cells move at once."""
    row = await ctx.services.experiments.set_priority(params.experiment_id, params.priority)
    if row is None:
        raise _not_found(params.experiment_id)
    return {"experiment": experiment_shape(row)}


RetryStatus = Literal["failed", "cancelled"]
RETRY_STATUSES: tuple[RetryStatus, ...] = ("failed", "cancelled")


class RetryParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    experiment_id: RowId
    statuses: list[RetryStatus] = Field(
        default_factory=lambda: list(RETRY_STATUSES), min_length=1, max_length=2, description="Which jobs to retry"
    )
    job_ids: list[RowId] | None = Field(
        default=None, max_length=10_000, description="Only these jobs (each must be failed or cancelled)"
    )


async def retry(ctx: RpcContext, params: RetryParams) -> dict[str, Any]:
    """Put an experiment's failed and/or cancelled jobs (or the chosen ones) back in the queue, each with the
    params and seed it had. A cancelled experiment becomes active again."""
    try:
        outcome = await ctx.services.experiments.retry(params.experiment_id, params.statuses, params.job_ids)
    except StoreError as exc:
        raise RpcError("invalid_params", str(exc)) from exc
    if outcome is None:
        raise _not_found(params.experiment_id)
    row, job_ids = outcome
    return {"experiment": experiment_shape(row), "requeued": len(job_ids), "job_ids": job_ids}


def register(registry: MethodRegistry) -> None:
    registry.register("generate", GenerateParams, generate)
    registry.register("experiments.create", CreateParams, create)
    registry.register("experiments.plan", PlanParams, plan)
    registry.register("experiments.convergence", ConvergenceParams, convergence)
    registry.register("experiments.cfg", CfgParams, cfg)
    registry.register("experiments.list", ListParams, list_experiments)
    registry.register("experiments.get", GetParams, get)
    registry.register("experiments.cancel", ExperimentId, cancel)
    registry.register("experiments.set_priority", PriorityParams, set_priority)
    registry.register("experiments.retry", RetryParams, retry)
