"""Our own denoising loop for Stable Diffusion 1.x/2.x and SDXL pipelines, with a guidance scale per image.

``StableDiffusionPipeline.__call__`` takes one scalar ``guidance_scale``, so a CFG sweep would need one call
per CFG value. This loop is that ``__call__`` step for step (diffusers 0.42), reusing the pipeline's own
helpers wherever they exist (``retrieve_timesteps``, ``prepare_latents``, ``prepare_extra_step_kwargs``,
``get_guidance_scale_embedding``, ``rescale_noise_cfg``, ``run_safety_checker``, the image processor), and
differs only where guidance is applied: with a (B, 1, 1, 1) tensor instead of a scalar. SDXL's extra inputs
(pooled embeddings, time ids) and its VAE decode are in sdxl.py.

Guidance follows A1111, not diffusers, at scales of 1 and below: diffusers skips classifier-free guidance
altogether when ``guidance_scale <= 1`` (so 0.5 and 1 both give the plain conditional prediction), while
A1111 always computes ``uncond + scale * (cond - uncond)``, so 1 gives exactly the conditional prediction and
0 the unconditional one; a CFG sweep from 0 to 2 is then a continuum. When every image of a batch has scale 1
the unconditional half is skipped (its result would be multiplied by zero), which halves the UNet work; an
image at scale 1 computed alone that way and the same image in a mixed batch differ by float rounding only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from cauldrond.providers.base import GenerationInterrupted, ProgressCallback, StopCheck
from cauldrond.providers.diffusers import sdxl

# Exactly these classes: a subclass may override __call__ with semantics this loop would silently drop.
SUPPORTED_PIPELINES = ("StableDiffusionPipeline", "StableDiffusionXLPipeline")


def supports(pipeline: Any) -> bool:
    """Whether ``run`` reproduces this pipeline's ``__call__``; others go through ``__call__`` itself."""
    return type(pipeline).__name__ in SUPPORTED_PIPELINES and type(pipeline).__module__.startswith("diffusers.")


@dataclass(frozen=True)
class DenoiseRequest:
    """One denoising batch: per-image embeddings, noise, generators and guidance; everything else shared."""

    prompt_embeds: torch.Tensor  # (B, tokens, dim) on the execution device
    negative_prompt_embeds: torch.Tensor  # (B, tokens, dim)
    guidance_scales: Sequence[float]  # one per image
    latents: torch.Tensor  # (B, C, H/8, W/8) unscaled starting noise, on the device in the UNet's dtype
    generators: list[torch.Generator]  # one per image; the schedulers' per-step noise is drawn from these
    num_inference_steps: int
    eta: float = 0.0
    guidance_rescale: float = 0.0
    # SDXL only: the second encoder's pooled embeddings, (B, dim) each
    pooled_embeds: torch.Tensor | None = None
    negative_pooled_embeds: torch.Tensor | None = None


class StepProgress:
    """Reports denoising steps as the user set them, whatever the sampler's model evaluations.

    Heun, DPM2 and DPM++ SDE evaluate the model twice per step, so diffusers runs ``2 * steps - 1`` loop iterations
    (the last step is a plain Euler step, as in k-diffusion); PLMS runs ``steps + 1``. Such schedulers say when a
    whole step is done with ``state_in_first_order`` (true again after the second evaluation); one without it
    finishes a step with every iteration. The count never exceeds ``steps`` before the last iteration, and the
    last iteration always reports ``steps``: the callback sees 1..steps, each once, in order. ``latents``, when
    given, is called right after with the same step and the latents that step left (live previews)."""

    def __init__(
        self,
        steps: int,
        iterations: int,
        progress: ProgressCallback,
        latents: Callable[[int, int, Any], None] | None = None,
    ) -> None:
        self._steps = steps
        self._iterations = iterations
        self._progress = progress
        self._latents = latents
        self.done = 0

    def iteration_done(self, index: int, scheduler: Any, latents: Any = None) -> None:
        """Loop iteration ``index`` (from 0) has stepped ``scheduler``, leaving ``latents``."""
        if index + 1 >= self._iterations:
            done = self._steps
        elif getattr(scheduler, "state_in_first_order", True):
            done = min(self.done + 1, self._steps - 1)
        else:
            return  # halfway through a two-evaluation step
        if done > self.done:
            self.done = done
            self._progress(done, self._steps)
            if self._latents is not None and latents is not None:
                self._latents(done, self._steps, latents)


def uses_guidance_embedding(pipeline: Any) -> bool:
    """LCM-distilled UNets take the guidance scale as an input instead of a second, unconditional pass."""
    return pipeline.unet.config.time_cond_proj_dim is not None


def run(
    pipeline: Any,
    request: DenoiseRequest,
    progress: ProgressCallback,
    should_stop: StopCheck,
    latents: Callable[[int, int, Any], None] | None = None,
) -> list[Image.Image]:
    """Denoise ``request`` with ``pipeline`` and its current scheduler; one PIL image per row, in order.

    Calls ``progress(step, steps)`` after each denoising step as the user counts them (see StepProgress), then
    ``latents(step, steps, tensor)`` when given, and raises GenerationInterrupted when ``should_stop()`` turns
    true between steps."""
    with torch.no_grad():  # as __call__ runs
        return _denoise(pipeline, request, progress, should_stop, latents)


def _denoise(
    pipeline: Any,
    request: DenoiseRequest,
    progress: ProgressCallback,
    should_stop: StopCheck,
    on_latents: Callable[[int, int, Any], None] | None,
) -> list[Image.Image]:
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion import rescale_noise_cfg, retrieve_timesteps

    batch = request.latents.shape[0]
    if not (len(request.guidance_scales) == len(request.generators) == request.prompt_embeds.shape[0] == batch):
        raise ValueError("a denoise request needs one prompt, generator and guidance scale per latent")
    device = pipeline._execution_device
    scheduler = pipeline.scheduler
    embedded_guidance = uses_guidance_embedding(pipeline)
    # A1111 semantics (see the module docstring): guidance at every scale, skipped only when it cannot matter.
    do_cfg = not embedded_guidance and any(scale != 1.0 for scale in request.guidance_scales)

    prompt_embeds = request.prompt_embeds
    if do_cfg:
        prompt_embeds = torch.cat([request.negative_prompt_embeds, prompt_embeds])

    timesteps, _ = retrieve_timesteps(scheduler, request.num_inference_steps, device)
    num_channels = pipeline.unet.config.in_channels
    height, width = (side * pipeline.vae_scale_factor for side in request.latents.shape[-2:])
    latents = pipeline.prepare_latents(
        batch, num_channels, height, width, prompt_embeds.dtype, device, request.generators, request.latents
    )
    extra_step_kwargs = pipeline.prepare_extra_step_kwargs(request.generators, request.eta)
    added_cond_kwargs = None
    if sdxl.is_sdxl(pipeline):
        if request.pooled_embeds is None or request.negative_pooled_embeds is None:
            raise ValueError("an SDXL denoise request needs the pooled embeddings of both prompts")
        added_cond_kwargs = sdxl.added_conditioning(
            pipeline,
            request.pooled_embeds,
            request.negative_pooled_embeds,
            height,
            width,
            do_cfg,
            prompt_embeds.dtype,
        )
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(0)  # as SDXL's __call__ does (SD 1.x's does not)

    timestep_cond = None
    if embedded_guidance:
        # diffusers embeds (scale - 1) for the whole batch; a row per image is the same maths per image.
        scales = torch.tensor([scale - 1 for scale in request.guidance_scales])
        timestep_cond = pipeline.get_guidance_scale_embedding(
            scales, embedding_dim=pipeline.unet.config.time_cond_proj_dim
        ).to(device=device, dtype=latents.dtype)
    # Guidance in float32 whatever the UNet's dtype: the scheduler steps in float32 anyway (see the provider),
    # and on a float32 CPU run this is exactly the pipeline's arithmetic.
    scale_column = torch.tensor(request.guidance_scales, dtype=torch.float32, device=device).view(-1, 1, 1, 1)

    steps = StepProgress(request.num_inference_steps, len(timesteps), progress, on_latents)
    for index, timestep in enumerate(timesteps):
        model_input = torch.cat([latents] * 2) if do_cfg else latents
        if hasattr(scheduler, "scale_model_input"):
            model_input = scheduler.scale_model_input(model_input, timestep)
        noise_pred = pipeline.unet(
            model_input,
            timestep,
            encoder_hidden_states=prompt_embeds,
            timestep_cond=timestep_cond,
            cross_attention_kwargs=None,
            added_cond_kwargs=added_cond_kwargs,
            return_dict=False,
        )[0]
        if do_cfg:
            noise_uncond, noise_text = noise_pred.float().chunk(2)
            noise_pred = noise_uncond + scale_column * (noise_text - noise_uncond)
            if request.guidance_rescale > 0.0:
                noise_pred = rescale_noise_cfg(noise_pred, noise_text, guidance_rescale=request.guidance_rescale)
        latents = scheduler.step(noise_pred, timestep, latents, **extra_step_kwargs, return_dict=False)[0]
        steps.iteration_done(index, scheduler, latents)
        if should_stop():
            raise GenerationInterrupted(f"stopped after step {steps.done}")

    if added_cond_kwargs is not None:
        return sdxl.decode(pipeline, latents)
    return _decode(pipeline, latents, request.generators, device, prompt_embeds.dtype)


def _decode(
    pipeline: Any, latents: torch.Tensor, generators: list[torch.Generator], device: Any, dtype: torch.dtype
) -> list[Image.Image]:
    scaled = latents / pipeline.vae.config.scaling_factor
    image = pipeline.vae.decode(scaled, return_dict=False, generator=generators)[0]
    image, has_nsfw = pipeline.run_safety_checker(image, device, dtype)
    denormalize = [True] * image.shape[0] if has_nsfw is None else [not flagged for flagged in has_nsfw]
    images: list[Image.Image] = pipeline.image_processor.postprocess(
        image, output_type="pil", do_denormalize=denormalize
    )
    pipeline.maybe_free_model_hooks()
    return images
