"""The diffusers provider: one loaded pipeline at a time, a fresh scheduler per batch, per-image CPU seeds."""

from __future__ import annotations

import functools
import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import psutil
import torch

from cauldrond.config import Settings
from cauldrond.metrics import model_load_histogram
from cauldrond.models.hash_cache import ExtraHashCache, HashCache
from cauldrond.params import Batching, GenerationParams, shared_fields
from cauldrond.providers.base import (
    GeneratedImage,
    GenerationInterrupted,
    ModelInfo,
    ProgressCallback,
    ProviderError,
    SamplerInfo,
    StopCheck,
)
from cauldrond.providers.diffusers import denoise, devices, embeddings, interrupt, loading, oom, previews, samplers
from cauldrond.providers.diffusers.extras import ExtraNetworks
from cauldrond.providers.diffusers.extras_catalogue import EMBEDDING, LORA, VAE, ExtraFile, list_extras
from cauldrond.providers.diffusers.extras_precheck import check_extra_files

log = logging.getLogger(__name__)

# Below this much memory a Mac computes attention in slices: slower, but a 1024px SDXL image still fits.
MPS_SLICING_BELOW_BYTES = 32 * 1024**3


@dataclass
class _LoadedModel:
    name: str
    pipeline: Any
    sha256: str
    short_hash: str
    scheduler_config: dict[str, Any]  # as shipped with the model; every sampler is built from this


@dataclass(frozen=True)
class _BatchRun:
    """What every sub-batch of one ``generate`` call shares."""

    loaded: _LoadedModel
    sampler: str
    schedule: str
    own_loop: bool  # denoise.run with per-image CFG, else the pipeline's __call__ per CFG value
    extras_key: str  # the LoRA set and embeddings the prompt encodings depend on (extras.py)
    progress: oom.SplitProgress
    engine_progress: ProgressCallback  # as the engine gave it: it may take each step's latents (previews.py)
    should_stop: StopCheck
    info: dict[str, Any]


class DiffusersProvider:
    """Implements ``cauldrond.providers.base.Provider`` with HuggingFace diffusers.

    ``generate`` runs on the engine's single worker thread; ``list_models`` may run on any thread and reads
    only the models dir, never the loaded pipeline."""

    name = "diffusers"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.models_dir = settings.resolved_models_dir
        self.device: str | None = None
        self.dtype: torch.dtype | None = None
        self.load_count = 0
        self.model_load_seconds = model_load_histogram()  # read by each daemon's /metrics
        self._loaded: _LoadedModel | None = None
        self._lock = threading.RLock()
        self.prompt_cache = embeddings.PromptEmbeddingCache()
        # LoRAs, VAE override and textual-inversion embeddings of the loaded pipeline (never a model reload).
        self.extra_networks = ExtraNetworks(self.models_dir)
        # The largest batch that fit after an out-of-memory split (size None until one happens); later batches
        # are split to it up front.
        self.batch_limit = oom.BatchLimit()
        # Our denoising loop (per-image CFG) where it reproduces the pipeline; False forces __call__ everywhere.
        self.use_own_loop = True
        # Where model file hashes are remembered: the daemon gives its store (use_hash_cache), else a JSON file.
        self.hash_cache: HashCache | None = None

    def use_hash_cache(self, cache: HashCache) -> None:
        """Remember model hashes in ``cache`` (the daemon's store) rather than a file in the models dir."""
        self.hash_cache = cache

    def use_extra_hash_cache(self, cache: ExtraHashCache) -> None:
        """Remember LoRA, VAE and embedding hashes in ``cache`` (the daemon's store) rather than in memory."""
        self.extra_networks.hashes.use(cache)

    # --- listing ------------------------------------------------------------------------------------------

    def list_models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                name=source.name,
                provider=self.name,
                source=source.kind,
                path=str(source.path) if source.path is not None else None,
                note=source.note,
            )
            for source in loading.discover_models(self.models_dir)
        ]

    def model_sha256(self, name: str) -> str | None:
        """sha256 of a local model's weights (see loading.model_hash), remembered per file version; None for a
        hub model. Blocking: a first hash reads the whole file."""
        source = loading.resolve_model(self.models_dir, name)
        if source.path is None:
            return None
        return loading.model_hash(source, self.models_dir, cache=self.hash_cache).sha256

    def list_extras(self, kind: str) -> list[ExtraFile]:
        """The LoRAs, VAEs or embeddings (``kind``: "lora", "vae", "embedding") in the models dir."""
        if kind not in (LORA, VAE, EMBEDDING):
            raise ValueError(f"no such kind of extra network: {kind!r}")
        return list_extras(self.models_dir, kind, self.extra_networks.hashes)

    def check_extra_networks(self, cells: Sequence[GenerationParams]) -> None:
        """Refuse (ExtraFileError naming the file and the reason) a LoRA, VAE or embedding file of ``cells`` that
        cannot serve its model, from the files' headers; the experiment service calls it before storing."""
        check_extra_files(self.models_dir, cells)

    def list_samplers(self) -> list[SamplerInfo]:
        return samplers.list_samplers()

    def hardware_info(self) -> dict[str, Any]:
        try:
            device = self.device or devices.choose_device(self.settings.device)
        except ProviderError as exc:
            info = devices.hardware_info("cpu")
            info.update(device=self.settings.device, error=str(exc))
            return info
        info = devices.hardware_info(device)
        info.update(
            dtype=_dtype_name(self.dtype or devices.choose_dtype(device)),
            loaded_model=self._loaded.name if self._loaded else None,
            load_count=self.load_count,
            batch_limit=self.batch_limit.size,
            prompt_cache={
                "entries": len(self.prompt_cache),
                "hits": self.prompt_cache.hits,
                "misses": self.prompt_cache.misses,
            },
        )
        return info

    # --- hardware -----------------------------------------------------------------------------------------

    def optimize_for_hardware(self) -> None:
        with self._lock:
            device = devices.choose_device(self.settings.device)
            dtype = devices.choose_dtype(device)
            changed = (device, dtype) != (self.device, self.dtype)
            self.device, self.dtype = device, dtype
            log.info(
                "diffusers provider on %s (%s, %d torch threads)", device, _dtype_name(dtype), torch.get_num_threads()
            )
            if changed:
                # Embeddings live on the old device in the old dtype; what fit in memory there says nothing here.
                self.prompt_cache.clear()
                self.batch_limit.reset()
            if changed and self._loaded is not None:
                self._prepare_pipeline(self._loaded.pipeline)

    def _prepare_pipeline(self, pipeline: Any) -> None:
        """Move a freshly loaded pipeline to the chosen device and apply this hardware's speed-ups."""
        assert self.device is not None and self.dtype is not None
        # Loading already chose the dtype; casting again would make diffusers warn about fp32-only modules.
        if pipeline.dtype != self.dtype:
            pipeline.to(self.device, self.dtype)
        else:
            pipeline.to(self.device)
        pipeline.set_progress_bar_config(disable=True)
        _alias_flattened_clip(pipeline)
        for component in (getattr(pipeline, "unet", None), getattr(pipeline, "vae", None)):
            _use_sdpa_attention(component)
        if self.device == "cuda" and getattr(pipeline, "unet", None) is not None:
            # Convolutions in NHWC run on tensor cores without layout shuffles.
            pipeline.unet.to(memory_format=torch.channels_last)
        if self.device == "mps" and psutil.virtual_memory().total < MPS_SLICING_BELOW_BYTES:
            pipeline.enable_attention_slicing()

    # --- models -------------------------------------------------------------------------------------------

    def prepare(self, model: str) -> None:
        """Load ``model`` now, so that ``generate`` does only the batch's own work (the crash guard's evidence
        starts after this returns; see Provider.prepare)."""
        with self._lock:
            if self.device is None:
                self.optimize_for_hardware()
            self._ensure_model(model)

    def _ensure_model(self, name: str) -> _LoadedModel:
        if self._loaded is not None and self._loaded.name == name:
            return self._loaded
        source = loading.resolve_model(self.models_dir, name)
        self._unload()
        assert self.dtype is not None
        started = time.perf_counter()
        pipeline, model_hash = loading.load_pipeline(
            source,
            self.models_dir,
            allow_pickle=self.settings.allow_pickle,
            dtype=self.dtype,
            hash_cache=self.hash_cache,
        )
        self._prepare_pipeline(pipeline)
        self.load_count += 1
        self.model_load_seconds.observe(time.perf_counter() - started)
        self._loaded = _LoadedModel(
            name=name,
            pipeline=pipeline,
            sha256=model_hash.sha256,
            short_hash=model_hash.short,
            scheduler_config=dict(pipeline.scheduler.config),
        )
        log.info("loaded model %s in %.2f s", name, time.perf_counter() - started)
        return self._loaded

    def _unload(self) -> None:
        """Drop the loaded pipeline and give its memory back before another model is loaded."""
        if self._loaded is None:
            return
        self._loaded = None
        self.prompt_cache.clear()
        self.extra_networks.forget()  # its adapters, VAE and tokens went with the pipeline
        # Another model needs other memory; a limit learned on this one would be a guess there.
        self.batch_limit.reset()
        gc.collect()
        if self.device == "cuda" and devices.cuda_available():
            torch.cuda.empty_cache()
        elif self.device == "mps" and devices.mps_available():
            torch.mps.empty_cache()

    # --- generation ---------------------------------------------------------------------------------------

    def generate(
        self,
        batch: Sequence[GenerationParams],
        progress: ProgressCallback,
        should_stop: StopCheck,
    ) -> list[GeneratedImage]:
        if not batch:
            return []
        first = batch[0]
        # What shapes the one denoising loop (params.py's Batching.SHARED); prompts, seeds, CFG scales may differ.
        _check_shared(batch, shared_fields())
        if any(params.seed < 0 for params in batch):
            raise ValueError("every params in a batch needs a resolved seed (not -1)")
        sampler, schedule = samplers.resolve_sampler(first.sampler, first.schedule)
        with self._lock:
            if should_stop():
                raise GenerationInterrupted("stopped before the first step")
            if self.device is None:
                self.optimize_for_hardware()
            assert self.device is not None and self.dtype is not None
            loaded = self._ensure_model(first.model)
            probe = samplers.build_scheduler(loaded.scheduler_config, sampler, schedule)
            # Fields such as eta matter only to a sampler whose step takes them; there the batch must share them.
            used = [name for name in shared_fields(Batching.SHARED_WHERE_USED) if _step_accepts(probe, name)]
            _check_shared(batch, used)
            extras = self.extra_networks.apply(loaded.pipeline, batch, self._prepare_component)
            run = _BatchRun(
                loaded=loaded,
                sampler=sampler,
                schedule=schedule,
                own_loop=self.use_own_loop and denoise.supports(loaded.pipeline),
                extras_key=extras.cache_key,
                progress=oom.SplitProgress(progress, len(batch)),
                engine_progress=progress,
                should_stop=should_stop,
                info={
                    **self._image_info(loaded, sampler, schedule, probe, {name: getattr(first, name) for name in used}),
                    **extras.info,
                },
            )
            # Our loop applies CFG per image. __call__ takes one guidance scale, so a pipeline our loop does not
            # reproduce (subclasses, other families) runs one call per CFG value: still correct, only less batched.
            groups = [list(range(len(batch)))] if run.own_loop else _indices_by_cfg(batch)
            results: list[GeneratedImage | None] = [None] * len(batch)
            # A step of a large image takes minutes on a CPU: stop checks also run between UNet/VAE blocks.
            with interrupt.stop_between_blocks(loaded.pipeline, should_stop):
                for indices in groups:
                    images = oom.run_adaptive(
                        indices,
                        functools.partial(self._run_chunk, run, batch),
                        self.batch_limit,
                        pixels=first.width * first.height,
                    )
                    for index, image in zip(indices, images, strict=True):
                        results[index] = image
        assert all(result is not None for result in results)
        return [result for result in results if result is not None]

    def _run_chunk(
        self, run: _BatchRun, batch: Sequence[GenerationParams], rows: Sequence[int]
    ) -> list[GeneratedImage]:
        """One denoising call over ``batch``'s ``rows``, with a fresh scheduler: a retried chunk starts afresh."""
        assert self.device is not None and self.dtype is not None
        chunk = [batch[row] for row in rows]
        first = chunk[0]
        pipeline = run.loaded.pipeline
        scheduler = samplers.build_scheduler(run.loaded.scheduler_config, run.sampler, run.schedule)
        seeds = [params.seed for params in chunk]
        if hasattr(scheduler, "noise_sampler_seed"):
            # One Brownian tree per image, so an SDE sampler's noise also follows the image's own seed.
            scheduler.noise_sampler_seed = seeds
        _step_in_float32(scheduler)
        pipeline.scheduler = scheduler

        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        latents = self._initial_latents(pipeline, first, generators)
        tracker = devices.PeakMemoryTracker(self.device)
        tracker.reset()
        report = run.progress.chunk(len(chunk))
        on_latents = previews.chunk_latents(run.engine_progress, pipeline, rows)

        def step_done(step: int, total: int) -> None:
            tracker.sample()
            report(step, total)

        # A1111 counts the last layer as 1; diffusers counts the layers skipped.
        clip_skip = first.clip_skip - 1 or None
        started = time.perf_counter()
        try:
            if run.own_loop:
                # SD 1.x/2.x: (cond, uncond); SDXL adds both prompts' pooled embeddings.
                prompt_embeds, negative_embeds, *pooled = self.prompt_cache.encode_all(
                    pipeline,
                    f"{run.loaded.sha256}:{self.device}:{_dtype_name(self.dtype)}:{run.extras_key}",
                    [params.prompt for params in chunk],
                    [params.negative_prompt for params in chunk],
                    clip_skip,
                )
                request = denoise.DenoiseRequest(
                    prompt_embeds=prompt_embeds,
                    negative_prompt_embeds=negative_embeds,
                    guidance_scales=[params.cfg_scale for params in chunk],
                    latents=latents,
                    generators=generators,
                    num_inference_steps=first.steps,
                    eta=first.eta,
                    pooled_embeds=pooled[0] if pooled else None,
                    negative_pooled_embeds=pooled[1] if pooled else None,
                )
                images = denoise.run(pipeline, request, step_done, run.should_stop, on_latents)
            else:
                images = pipeline(
                    prompt=[params.prompt for params in chunk],
                    negative_prompt=[params.negative_prompt for params in chunk],
                    num_inference_steps=first.steps,
                    guidance_scale=first.cfg_scale,
                    width=first.width,
                    height=first.height,
                    generator=generators,
                    latents=latents,
                    eta=first.eta,
                    clip_skip=clip_skip,
                    callback_on_step_end=_step_callback(step_done, run.should_stop, first.steps, on_latents),
                    output_type="pil",
                ).images
        except (GenerationInterrupted, ProviderError):
            raise
        except ValueError as exc:
            # e.g. LCM refusing more steps than it was distilled for: a user-fixable parameter problem.
            raise ProviderError(f"{run.sampler} could not run these params: {exc}") from exc
        per_image = (time.perf_counter() - started) / len(chunk)
        run.progress.finished(len(chunk))
        peak = tracker.peak()
        # Where each image sat in its denoising batch: float rounding depends on the batch's shape, so an exact
        # re-run replays it (images.rerun pads a batch of this size, see engine/replay.py).
        shape = {"batch_size": len(chunk), "batch_guided": _guided(run, pipeline, chunk)}
        return [
            GeneratedImage(
                image=image,
                params=params,
                wall_time_s=per_image,
                peak_memory_bytes=peak,
                info={**run.info, **shape, "batch_index": index},
            )
            for index, (image, params) in enumerate(zip(images, chunk, strict=True))
        ]

    def _prepare_component(self, module: Any) -> None:
        """A component swapped in after loading (a VAE override) on the pipeline's device, dtype and attention."""
        assert self.device is not None and self.dtype is not None
        # Casting only where the dtype differs: diffusers warns on a cast to the dtype a module already has.
        if module.dtype != self.dtype:
            module.to(self.device, self.dtype)
        else:
            module.to(self.device)
        _use_sdpa_attention(module)

    def _initial_latents(
        self, pipeline: Any, params: GenerationParams, generators: list[torch.Generator]
    ) -> torch.Tensor:
        """Starting noise drawn in float32 on the CPU, one image per generator, then moved and cast.

        Drawing in the run's dtype or on the GPU would give different numbers per device; this way a seed
        means the same noise everywhere, and an image does not depend on its neighbours in the batch."""
        assert self.device is not None and self.dtype is not None
        factor = pipeline.vae_scale_factor
        shape = (1, pipeline.unet.config.in_channels, params.height // factor, params.width // factor)
        noise = [torch.randn(shape, generator=generator, dtype=torch.float32) for generator in generators]
        return torch.cat(noise).to(self.device, self.dtype)

    def _image_info(
        self, loaded: _LoadedModel, sampler: str, schedule: str, scheduler: Any, used: dict[str, Any]
    ) -> dict[str, Any]:
        """What every image of the batch records about how it was made; ``used`` holds the params that only some
        samplers take (eta), where this one took them."""
        import diffusers

        assert self.dtype is not None
        info: dict[str, Any] = {
            "model": loaded.name,
            "model_hash": loaded.sha256,
            "model_short_hash": loaded.short_hash,
            "sampler": sampler,
            "schedule": schedule,
            "scheduler": type(scheduler).__name__,
            "scheduler_config": _json_safe(dict(scheduler.config)),
            "device": self.device,
            "dtype": _dtype_name(self.dtype),
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
        }
        info.update(used)
        return info


def _guided(run: _BatchRun, pipeline: Any, chunk: Sequence[GenerationParams]) -> bool:
    """Whether the UNet ran the unconditional half too: it doubles the UNet's batch, so it is part of the shape."""
    if not run.own_loop:
        return chunk[0].cfg_scale > 1.0  # __call__ runs one CFG value, guided above 1 as diffusers decides
    return not denoise.uses_guidance_embedding(pipeline) and any(params.cfg_scale != 1.0 for params in chunk)


def _check_shared(batch: Sequence[GenerationParams], fields: Sequence[str]) -> None:
    for field_name in fields:
        values = {getattr(params, field_name) for params in batch}
        if len(values) > 1:
            raise ValueError(f"all params in one batch must share {field_name!r}; got {sorted(values, key=str)}")


def _indices_by_cfg(batch: Sequence[GenerationParams]) -> list[list[int]]:
    """Positions in ``batch`` grouped by CFG scale, groups in order of first appearance."""
    groups: dict[float, list[int]] = {}
    for index, params in enumerate(batch):
        groups.setdefault(params.cfg_scale, []).append(index)
    return list(groups.values())


def _step_callback(
    progress: ProgressCallback, should_stop: StopCheck, steps: int, latents: previews.ChunkLatents | None = None
) -> Callable[[Any, int, Any, dict[str, Any]], dict[str, Any]]:
    counted: list[denoise.StepProgress] = []  # made at the first call, when the pipeline knows its iterations

    def on_step_end(pipeline: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]) -> dict[str, Any]:
        # Second-order samplers run more loop iterations (num_timesteps) than steps; count the user's steps.
        if not counted:
            counted.append(denoise.StepProgress(steps, int(pipeline.num_timesteps), progress, latents))
        counted[0].iteration_done(step, pipeline.scheduler, callback_kwargs.get("latents"))
        if should_stop():
            raise GenerationInterrupted(f"stopped after step {counted[0].done}")
        return callback_kwargs

    return on_step_end


def _step_in_float32(scheduler: Any) -> None:
    """Run the sampler's arithmetic in float32 whatever dtype the UNet runs in, as k-diffusion does.

    Schedulers draw their per-step noise (ancestral and SDE samplers) in the model output's dtype, and torch's
    CPU generator does not give the same numbers in float16 as in float32; stepping in float32 keeps a seed's
    noise identical on a float16 GPU and a float32 CPU. The pipeline feeds the result straight back to the
    UNet, so the new sample goes back to the dtype it came in."""
    original = scheduler.step

    # functools.wraps keeps the signature visible: the pipeline inspects it to decide whether to pass
    # ``generator`` and ``eta``.
    @functools.wraps(original)
    def step(model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        result = original(model_output.float(), timestep, sample.float(), *args, **kwargs)
        if isinstance(result, tuple):
            return (result[0].to(sample.dtype), *result[1:])
        result.prev_sample = result.prev_sample.to(sample.dtype)
        return result

    scheduler.step = step


def _step_accepts(scheduler: Any, name: str) -> bool:
    import inspect

    return name in inspect.signature(scheduler.step).parameters


def _alias_flattened_clip(pipeline: Any) -> None:
    """Let diffusers' clip_skip path find the final LayerNorm of a transformers >= 5.6 CLIPTextModel.

    transformers flattened CLIPTextModel (its ``text_model`` wrapper is gone) while diffusers' encode_prompt
    still reads ``text_encoder.text_model.final_layer_norm`` whenever clip_skip is set (diffusers issue
    #14124). A plain attribute, not a submodule, so state dicts and device moves are unaffected."""
    encoder = getattr(pipeline, "text_encoder", None)
    if encoder is None or hasattr(encoder, "text_model") or not hasattr(encoder, "final_layer_norm"):
        return
    object.__setattr__(encoder, "text_model", SimpleNamespace(final_layer_norm=encoder.final_layer_norm))


def _use_sdpa_attention(module: Any) -> None:
    """PyTorch's fused scaled-dot-product attention, unless a model uses special processors (which stay)."""
    if module is None or not hasattr(module, "attn_processors"):
        return
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    processors = module.attn_processors.values()
    if processors and all(type(p) in (AttnProcessor, AttnProcessor2_0) for p in processors):
        module.set_attn_processor(AttnProcessor2_0())


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _json_safe(value: Any) -> Any:
    """Scheduler configs hold tuples, numpy arrays and numbers that JSON, msgpack and SQLite must accept."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
