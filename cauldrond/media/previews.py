"""Live step previews: the cheap linear latent-to-RGB projection and the small WebP it is sent as.

A VAE decode per step would cost as much as a UNet step; a 4x3 matrix per latent pixel costs microseconds. Each
latent pixel's channels are mixed into R, G, B by a per-family matrix (plus a bias), the result read on the
-1..1 scale of a decoded image and mapped to 0..255. The image has the latent's resolution (an eighth of the
final width and height): a client scales it up.

The factors are published by ComfyUI, ``comfy/latent_formats.py`` (``SD15`` and ``SDXL``, ``latent_rgb_factors``
and ``latent_rgb_factors_bias``; read at commit 040a3243468ecefd1f2802592d90458f1ce4d65f of
comfyanonymous/ComfyUI), fitted there by regression of decoded pixels on latents. They apply to the latents the
sampler works on (diffusers' pipeline latents, before the division by the VAE's scaling factor), as there.

Latents with other than four channels (SD3 and Flux have 16; a test model may have any number) have no published
matrix here: their first three channels are shown as R, G, B, each normalised to its own range, which still shows
the shapes forming.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image

MIME = "image/webp"
# A 2048x2048 image has 256x256 latents; larger previews are shrunk to this side (a phone shows no more).
MAX_SIDE = 256
# Lossy WebP at this quality keeps a 64x64 preview to a few KB; the picture is an approximation anyway.
WEBP_QUALITY = 80


@dataclass(frozen=True)
class LatentFamily:
    """A model family's projection: ``rgb = latent_channels @ factors + bias`` per latent pixel."""

    name: str
    factors: tuple[tuple[float, float, float], ...]  # one (R, G, B) row per latent channel
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def channels(self) -> int:
        return len(self.factors)


# ComfyUI comfy/latent_formats.py, class SD15 (also used there for SD 2.x, whose VAE is the same).
SD1 = LatentFamily(
    "sd1",
    (
        (0.3512, 0.2297, 0.3227),
        (0.3250, 0.4974, 0.2350),
        (-0.2829, 0.1762, 0.2721),
        (-0.2120, -0.2616, -0.7177),
    ),
)
# ComfyUI comfy/latent_formats.py, class SDXL (its VAE differs from SD 1.x's, hence other factors and a bias).
SDXL = LatentFamily(
    "sdxl",
    (
        (0.3651, 0.4232, 0.4341),
        (-0.2533, -0.0042, 0.1068),
        (0.1076, 0.1111, -0.0362),
        (-0.3165, -0.2492, -0.2188),
    ),
    (0.1084, -0.0175, -0.0011),
)
FAMILIES = {family.name: family for family in (SD1, SDXL)}


def project(latent: NDArray[np.floating], family: LatentFamily) -> NDArray[np.uint8]:
    """One image's latents, shape (channels, height, width), as an RGB array of shape (height, width, 3).

    With the family's channel count: ``v = latent . factors + bias`` per pixel and colour, then
    ``round(clip((v + 1) / 2, 0, 1) * 255)``. With any other count (at least one channel): the first three
    channels (repeated when fewer), each scaled from its own min..max to 0..255 (a flat channel reads 0)."""
    if latent.ndim != 3 or latent.shape[0] < 1:
        raise ValueError(f"expected latents of shape (channels, height, width), got {latent.shape}")
    values = latent.astype(np.float32, copy=False)
    if values.shape[0] == family.channels:
        factors = np.asarray(family.factors, dtype=np.float32)
        rgb = np.einsum("chw,cr->hwr", values, factors) + np.asarray(family.bias, dtype=np.float32)
        scaled = np.clip((rgb + 1.0) / 2.0, 0.0, 1.0) * 255.0
    else:
        picked = values[[index % values.shape[0] for index in range(3)]]
        low = picked.min(axis=(1, 2), keepdims=True)
        span = picked.max(axis=(1, 2), keepdims=True) - low
        scaled = np.moveaxis((picked - low) / np.where(span > 0, span, 1.0), 0, -1) * 255.0
    result: NDArray[np.uint8] = np.rint(scaled).astype(np.uint8)
    return result


def encode_webp(rgb: NDArray[np.uint8]) -> tuple[bytes, int, int]:
    """The RGB array as WebP bytes, shrunk to at most MAX_SIDE a side; returns (bytes, width, height)."""
    image = Image.fromarray(rgb, "RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=WEBP_QUALITY, method=0)  # method 0: the fastest encoder setting
    return buffer.getvalue(), image.width, image.height
