"""What SDXL's ``__call__`` does beyond SD 1.x's, for the shared denoising loop (denoise.py), diffusers 0.42.

SDXL's UNet takes, beside the text embeddings of both encoders concatenated, an "added condition": the pooled
embedding of the second encoder and six time ids (original size, crop corner, target size). ``__call__`` sets
the sizes to the image's own and the crop to (0, 0) unless told otherwise, and the daemon never tells it
otherwise, so every row of a batch has the same time ids. Its VAE decode differs too: the VAE runs in float32
when it is float16 and says it overflows there (``force_upcast``), latents may be denormalised by a mean and
standard deviation, and an invisible watermark is applied when that package is installed.
"""

from __future__ import annotations

from typing import Any

import torch
from PIL import Image


def is_sdxl(pipeline: Any) -> bool:
    """Whether the pipeline's UNet takes SDXL's added condition (pooled text embedding and time ids)."""
    unet = getattr(pipeline, "unet", None)
    return unet is not None and getattr(unet.config, "addition_embed_type", None) == "text_time"


def added_conditioning(
    pipeline: Any,
    pooled: torch.Tensor,
    negative_pooled: torch.Tensor,
    height: int,
    width: int,
    guided: bool,
    dtype: torch.dtype,
) -> dict[str, torch.Tensor]:
    """The UNet's ``added_cond_kwargs`` for a batch of ``pooled.shape[0]`` images, rows ordered as the loop
    orders its inputs: negatives first when ``guided``."""
    device = pipeline._execution_device
    encoder_2 = getattr(pipeline, "text_encoder_2", None)
    projection_dim = int(pooled.shape[-1]) if encoder_2 is None else encoder_2.config.projection_dim
    time_ids = pipeline._get_add_time_ids((height, width), (0, 0), (height, width), dtype, projection_dim)
    text_embeds = torch.cat([negative_pooled, pooled]) if guided else pooled
    rows = text_embeds.shape[0]
    return {
        "text_embeds": text_embeds.to(device),
        "time_ids": time_ids.to(device).repeat(rows, 1),
    }


def decode(pipeline: Any, latents: torch.Tensor) -> list[Image.Image]:
    """Latents to PIL images exactly as SDXL's ``__call__`` decodes them."""
    vae = pipeline.vae
    needs_upcasting = vae.dtype == torch.float16 and vae.config.force_upcast
    if needs_upcasting:
        vae.to(dtype=torch.float32)
        latents = latents.to(torch.float32)
    mean = getattr(vae.config, "latents_mean", None)
    std = getattr(vae.config, "latents_std", None)
    if mean is not None and std is not None:
        mean_t = torch.tensor(mean).view(1, 4, 1, 1).to(latents.device, latents.dtype)
        std_t = torch.tensor(std).view(1, 4, 1, 1).to(latents.device, latents.dtype)
        latents = latents * std_t / vae.config.scaling_factor + mean_t
    else:
        latents = latents / vae.config.scaling_factor
    try:
        image = vae.decode(latents, return_dict=False)[0]
    finally:
        if needs_upcasting:
            vae.to(dtype=torch.float16)
    if getattr(pipeline, "watermark", None) is not None:
        image = pipeline.watermark.apply_watermark(image)
    images: list[Image.Image] = pipeline.image_processor.postprocess(image, output_type="pil")
    pipeline.maybe_free_model_hooks()
    return images
