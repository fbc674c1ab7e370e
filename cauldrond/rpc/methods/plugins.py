"""plugins.list, images.annotations, images.search, exports.formats/run, imports.formats/run: what plugins add,
reached over RPC. Plugins' own methods (``cauldron_register_rpc_methods``) are added by ``register_plugin_methods``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cauldrond.experiments.cells import SpecError
from cauldrond.params import GenerationParams
from cauldrond.plugins.interfaces import ExportedFile, Exporter, Imported, SkippedImage
from cauldrond.plugins.postprocess import image_record
from cauldrond.rpc.context import RpcContext
from cauldrond.rpc.methods.shapes import AfterId, RowId, experiment_shape, image_shape
from cauldrond.rpc.protocol import RpcError
from cauldrond.rpc.registry import MethodRegistry, NoParams
from cauldrond.work_pool import PoolBusy, PoolClosed

if TYPE_CHECKING:
    from cauldrond.plugins.runtime import PluginRuntime
    from cauldrond.services import Services

# Replies travel in one WebSocket frame; the client accepts 16 MiB, and msgpack framing needs a little room.
MAX_EXPORT_BYTES = 15 * 1024 * 1024
# An experiment's export is sent in pages: images are exported 10 at a time until a page holds about 8 MiB.
EXPORT_PAGE_BYTES = 8 * 1024 * 1024
EXPORT_PAGE_IMAGES = 10
MAX_IMPORT_CELLS = 10_000
MAX_SEARCH_WORDS = 10


def _runtime(ctx: RpcContext) -> PluginRuntime | None:
    return ctx.services.plugin_runtime


async def list_plugins(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """Every installed plugin: name, version, hooks it implements, status (loaded, failed, disabled), its error,
    and its post-processing counters since the daemon started."""
    runtime = _runtime(ctx)
    runner = ctx.services.postprocess
    return {
        "plugins": runtime.describe() if runtime is not None else [],
        "postprocess": {
            "pending": runner.pending if runner is not None else 0,
            "hung": runner.hung_threads if runner is not None else 0,
            "dropped": runner.dropped if runner is not None else 0,
        },
    }


class ImageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_id: RowId


async def get_annotations(ctx: RpcContext, params: ImageParams) -> dict[str, Any]:
    """What post-processors stored for one image, by plugin, and each plugin's latest run (ok, failed, timeout)."""
    store = ctx.services.store
    if await store.images.get(params.image_id) is None:
        raise RpcError("not_found", f"no image {params.image_id}")
    by_plugin: dict[str, dict[str, str]] = {}
    for row in await store.annotations.get(params.image_id):
        by_plugin.setdefault(row.plugin, {})[row.key] = row.value
    runs = [run.to_dict() for run in await store.plugin_runs.get(params.image_id)]
    return {"image_id": params.image_id, "annotations": by_plugin, "runs": runs}


class SearchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(default="", max_length=1000, description="Words that must all appear in the annotations")
    tag: str | None = Field(default=None, min_length=1, max_length=100, description="A tag the image must have")
    limit: int = Field(default=100, ge=1, le=1000)
    after_id: AfterId | None = None

    @model_validator(mode="after")
    def _something_to_find(self) -> SearchParams:
        if not self.query.split() and self.tag is None:
            raise ValueError("give query words, a tag, or both")
        if len(self.query.split()) > MAX_SEARCH_WORDS:
            raise ValueError(f"at most {MAX_SEARCH_WORDS} query words")
        return self


async def search(ctx: RpcContext, params: SearchParams) -> dict[str, Any]:
    """Images whose annotations (e.g. a tagger's description and tags) contain every query word, case-insensitive,
    and the tag if one is given; ascending id, page with after_id while has_more. not_configured lists the
    post-processing plugins that are loaded but not configured, whose annotations new images will lack."""
    rows = await ctx.services.store.annotations.search_images(
        words=params.query.split(), tag=params.tag.strip() if params.tag else None, limit=params.limit + 1,
        after_id=params.after_id,
    )  # fmt: skip
    runtime = _runtime(ctx)
    return {
        "images": [image_shape(ctx.services, row) for row in rows[: params.limit]],
        "has_more": len(rows) > params.limit,
        "not_configured": runtime.unconfigured("cauldron_process_image") if runtime is not None else [],
    }


async def export_formats(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """The export formats plugins registered (experiments.export has the built-in csv and json)."""
    runtime = _runtime(ctx)
    return {"formats": runtime.catalogue.describe_exporters() if runtime is not None else []}


class ExportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: str = Field(min_length=1, max_length=40)
    image_id: RowId | None = None
    experiment_id: RowId | None = None
    after_image_id: AfterId | None = Field(
        default=None, description="With experiment_id: continue after this image (the reply's next_after_image_id)"
    )

    @model_validator(mode="after")
    def _one_target(self) -> ExportParams:
        if (self.image_id is None) == (self.experiment_id is None):
            raise ValueError("give exactly one of image_id and experiment_id")
        return self


def _file_shape(item: Any) -> dict[str, Any]:
    if not isinstance(item, ExportedFile):
        raise TypeError(f"the exporter returned {type(item).__name__}, not an ExportedFile")
    return {"filename": item.filename, "media_type": item.media_type, "content": bytes(item.content)}


def _export(exporter: Exporter, experiment: Mapping[str, Any] | None, images: Sequence[Mapping[str, Any]]) -> list[Any]:
    if experiment is None:
        return [exporter.export_image(images[0])]
    if exporter.export_experiment is not None:
        return list(exporter.export_experiment(experiment, images))
    return [_export_or_skip(exporter, image) for image in images]


def _export_or_skip(exporter: Exporter, image: Mapping[str, Any]) -> ExportedFile | SkippedImage:
    try:
        return exporter.export_image(image)
    except ValueError as exc:
        # One image the format cannot express (a PLMS cell in ComfyUI) must not cost the others their files.
        return SkippedImage(int(image["id"]), str(exc))


async def export_run(ctx: RpcContext, params: ExportParams) -> dict[str, Any]:
    """Export one image, or the images of an experiment, with a plugin's exporter: {filename, media_type,
    content}. An experiment's files come a page at a time (about 8 MiB): while `next_after_image_id` is not
    null, ask again with it as `after_image_id`."""
    runtime = _runtime(ctx)
    exporter = runtime.catalogue.exporter(params.format) if runtime is not None else None
    if exporter is None:
        known = ", ".join(runtime.catalogue.exporters) if runtime is not None else ""
        raise RpcError("invalid_params", f"no export format {params.format!r} (installed: {known or 'none'})")
    services = ctx.services
    files: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    next_after: int | None = None
    if params.image_id is not None:
        row = await services.store.images.get(params.image_id)
        if row is None:
            raise RpcError("not_found", f"no image {params.image_id}")
        files, _ = await _export_page(services, exporter, params.format, None, [row])
    else:
        assert params.experiment_id is not None
        experiment = await services.store.experiments.get(params.experiment_id)
        if experiment is None:
            raise RpcError("not_found", f"no experiment {params.experiment_id}")
        shape, after, size = experiment_shape(experiment), params.after_image_id or 0, 0
        while size < EXPORT_PAGE_BYTES:
            rows = await services.store.images.page(
                experiment_id=experiment.id, limit=EXPORT_PAGE_IMAGES, after_id=after
            )
            if not rows:
                next_after = None
                break
            page, page_skipped = await _export_page(services, exporter, params.format, shape, rows)
            files += page
            skipped += page_skipped
            size += sum(len(item["content"]) for item in page)
            after = next_after = rows[-1].id
            if len(rows) < EXPORT_PAGE_IMAGES:
                next_after = None
                break
        if not files and not skipped and params.after_image_id is None:
            raise RpcError("invalid_params", f"experiment {experiment.id} has no images yet")
        if not files and skipped and next_after is None and params.after_image_id is None:
            reasons = "; ".join(f"image {item['image_id']}: {item['reason']}" for item in skipped[:3])
            raise RpcError(
                "invalid_params",
                f"{params.format}: no image of experiment {experiment.id} can be exported ({reasons})",
                {"skipped": skipped},
            )
    size = sum(len(item["content"]) for item in files)
    if size > MAX_EXPORT_BYTES:
        raise RpcError("too_large", f"the export is {size} bytes, over {MAX_EXPORT_BYTES}; its files are too large")
    return {"format": params.format, "files": files, "skipped": skipped, "next_after_image_id": next_after}


async def _export_page(
    services: Services, exporter: Exporter, fmt: str, experiment: dict[str, Any] | None, rows: Sequence[Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The files for these images, and ``{image_id, reason}`` for each image the exporter skipped."""
    images = [image_record(row, services.settings.images_dir) for row in rows]
    try:
        # The heavy-work pool (one thread, shared with grids), never the default executor.
        results = await services.results.pool.run(_export, exporter, experiment, images)
        skipped = [{"image_id": i.image_id, "reason": i.reason} for i in results if isinstance(i, SkippedImage)]
        return [_file_shape(item) for item in results if not isinstance(item, SkippedImage)], skipped
    except (PoolBusy, PoolClosed):
        raise
    except ValueError as exc:
        raise RpcError("invalid_params", f"{fmt}: {exc}") from exc
    except Exception as exc:
        raise RpcError("internal_error", f"the {fmt} exporter failed: {type(exc).__name__}: {exc}") from exc


async def import_formats(ctx: RpcContext, params: NoParams) -> dict[str, Any]:
    """The importers plugins registered: files from other tools they turn into generation params."""
    runtime = _runtime(ctx)
    return {"formats": runtime.catalogue.describe_importers() if runtime is not None else []}


class ImportParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: bytes
    filename: str = Field(min_length=1, max_length=255)
    format: str | None = Field(default=None, min_length=1, max_length=40, description="Default: try each importer")
    queue: bool = False
    priority: int = Field(default=0, ge=-1000, le=1000)
    name: str | None = Field(default=None, min_length=1, max_length=200)


async def import_run(ctx: RpcContext, params: ImportParams) -> dict[str, Any]:
    """Turn a file from another tool into generation params; with queue=true also queue them as one experiment.
    Without a format, each importer is tried in turn (the built-in a1111 first) and the first that reads the file
    wins. `ignored` lists the file's settings cauldron cannot reproduce ({field, value, reason}); `notes` says
    what else the user should know (a model hash, defaults that applied); without queue, `problems` says what
    would stop queueing them (e.g. a model this daemon does not have)."""
    runtime = _runtime(ctx)
    importers = dict(runtime.catalogue.importers) if runtime is not None else {}
    if params.format is not None:
        if params.format not in importers:
            raise RpcError("invalid_params", f"no import format {params.format!r} (installed: {', '.join(importers)})")
        importers = {params.format: importers[params.format]}
    if not importers:
        raise RpcError("invalid_params", "no importer is installed")
    failures = []
    for name, (_, importer) in importers.items():
        try:
            # The imports pool, not the default executor: a hostile file cannot take the threads others use.
            found = await ctx.services.import_pool.run(importer.import_file, params.content, params.filename)
        except (PoolBusy, PoolClosed):
            raise
        except ValueError as exc:
            failures.append(f"{name}: {exc}")
            continue
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        imported = found if isinstance(found, Imported) else Imported(params=found)
        cells = _validated_cells(name, imported.params)
        result: dict[str, Any] = {
            "format": name,
            "params": cells,
            "ignored": [{"field": i.field, "value": i.value, "reason": i.reason} for i in imported.ignored],
            "notes": list(imported.notes),
        }
        if params.queue:
            result.update(await _queue(ctx, params, name, cells))
        else:
            result["problems"] = await _queue_problems(ctx, cells)
        return result
    raise RpcError("invalid_params", f"{params.filename}: " + "; ".join(failures), {"failures": failures})


def _validated_cells(importer: str, found: Any) -> list[dict[str, Any]]:
    if not isinstance(found, list) or not found:
        raise RpcError("invalid_params", f"{importer}: the file describes no image")
    if len(found) > MAX_IMPORT_CELLS:
        raise RpcError("too_large", f"{importer}: {len(found)} images; at most {MAX_IMPORT_CELLS}")
    cells = []
    for n, item in enumerate(found):
        try:
            cells.append(GenerationParams.model_validate(item).to_json_dict())
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
            raise RpcError("invalid_params", f"{importer}: image {n + 1}: {problems}") from exc
    return cells


async def _queue_problems(ctx: RpcContext, cells: list[dict[str, Any]]) -> list[str]:
    """What would stop these params from queueing (a model, sampler or schedule this daemon lacks), found the way
    experiments.plan finds it: nothing is stored."""
    try:
        await ctx.services.experiments.prepare(cells[0], cells=cells)
    except SpecError as exc:
        return [str(exc)]
    return []


async def _queue(ctx: RpcContext, params: ImportParams, importer: str, cells: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        experiment, job_ids = await ctx.services.experiments.create(
            name=params.name or f"import of {params.filename}"[:200],
            kind="import",
            base=cells[0],
            cells=cells,
            priority=params.priority,
        )
    except SpecError as exc:
        raise RpcError("invalid_params", f"{importer}: {exc}", exc.to_data()) from exc
    return {"experiment": experiment_shape(experiment), "job_ids": job_ids}


def register(registry: MethodRegistry) -> None:
    registry.register("plugins.list", NoParams, list_plugins)
    registry.register("images.annotations", ImageParams, get_annotations)
    registry.register("images.search", SearchParams, search)
    registry.register("exports.formats", NoParams, export_formats)
    registry.register("exports.run", ExportParams, export_run)
    registry.register("imports.formats", NoParams, import_formats)
    registry.register("imports.run", ImportParams, import_run)


def register_plugin_methods(registry: MethodRegistry, runtime: PluginRuntime) -> None:
    """Add the methods plugins registered (already checked against the built-ins and each other at load)."""
    for name, (plugin, method) in sorted(runtime.catalogue.rpc_methods.items()):
        doc = method.doc or method.handler.__doc__ or ""
        registry.register(name, method.params, method.handler, f"[plugin {plugin}] {doc}".strip())
