"""A1111's txt2img sampling path, rebuilt around k-diffusion's own code, as the reference our samplers must match.

AUTOMATIC1111's web UI runs its samplers as calls into k-diffusion (``modules/sd_samplers_kdiffusion.py``): the
model is wrapped in k-diffusion's ``CompVisDenoiser`` (a ``DiscreteEpsDDPMDenoiser`` over the checkpoint's
``alphas_cumprod``), classifier-free guidance combines the conditional and unconditional *denoised* predictions,
the sigma schedule comes from ``sd_schedulers.py`` (Uniform = the model's discrete sigmas, Karras/Exponential
between the model's smallest and largest sigma), and the noise is per image: the starting noise and every
ancestral draw come from a CPU generator seeded with the image's seed (``modules/rng.py``, ``randn_source=CPU``),
SDE samplers draw from a Brownian tree seeded with the image's seed. Everything here that decides numbers is
k-diffusion's code; only the glue (which function, which sigmas, which noise) follows A1111, restated from
reading its source rather than copied.

k-diffusion's package ``__init__`` imports its training and evaluation modules (torchvision, wandb, clean-fid,
...), none of which the samplers use, and PyPI's torchvision does not match our torch. So this module loads
``k_diffusion/sampling.py``, ``utils.py`` and ``external.py`` one by one from the installed package.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

# A1111's sampler table (modules/sd_samplers_kdiffusion.py, v1.9 and later): k-diffusion function and options.
# "scheduler" is the schedule A1111's own "Automatic" picks for that sampler; "discard" drops the
# next-to-last sigma (A1111 asks for one step more and removes it); "brownian" draws SDE noise from a Brownian
# tree; the others draw ancestral noise from the image's generator.


@dataclass(frozen=True)
class A1111Sampler:
    function: str
    default_schedule: str | None = None
    discard_next_to_last_sigma: bool = False
    brownian_noise: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


A1111_SAMPLERS: dict[str, A1111Sampler] = {
    "DPM++ 2M": A1111Sampler("sample_dpmpp_2m", "Karras"),
    "DPM++ SDE": A1111Sampler("sample_dpmpp_sde", "Karras", brownian_noise=True),
    "DPM++ 2M SDE": A1111Sampler("sample_dpmpp_2m_sde", "Exponential", brownian_noise=True),
    "DPM++ 2S a": A1111Sampler("sample_dpmpp_2s_ancestral", "Karras"),
    "DPM++ 3M SDE": A1111Sampler(
        "sample_dpmpp_3m_sde", "Exponential", discard_next_to_last_sigma=True, brownian_noise=True
    ),
    "Euler a": A1111Sampler("sample_euler_ancestral"),
    "Euler": A1111Sampler("sample_euler"),
    "LMS": A1111Sampler("sample_lms"),
    "Heun": A1111Sampler("sample_heun"),
    "DPM2": A1111Sampler("sample_dpm_2", "Karras", discard_next_to_last_sigma=True),
    "DPM2 a": A1111Sampler("sample_dpm_2_ancestral", "Karras", discard_next_to_last_sigma=True),
}

# SD 1.x's v1-inference.yaml, which A1111 reads the schedule from: linear_start, linear_end, timesteps.
SD1_LINEAR_START = 0.00085
SD1_LINEAR_END = 0.012
SD1_TIMESTEPS = 1000


def _load_module(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_k_diffusion() -> tuple[types.ModuleType, types.ModuleType]:
    """k-diffusion's ``sampling`` and ``external`` modules, without running the package ``__init__``."""
    if "k_diffusion.sampling" in sys.modules and "k_diffusion.external" in sys.modules:
        return sys.modules["k_diffusion.sampling"], sys.modules["k_diffusion.external"]
    spec = importlib.util.find_spec("k_diffusion")  # finds the package without importing it
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps k-diffusion"
    folder = Path(next(iter(spec.submodule_search_locations)))
    package = types.ModuleType("k_diffusion")
    package.__path__ = [str(folder)]
    sys.modules.setdefault("k_diffusion", package)
    # utils.py imports torchvision's image transforms at the top for its image-saving helpers; the samplers only
    # use its tensor helpers (append_dims), so an empty stand-in is enough and is removed right after.
    stand_ins = {
        name: types.ModuleType(name)
        for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
    }
    stand_ins["torchvision.transforms"].functional = stand_ins["torchvision.transforms.functional"]  # type: ignore[attr-defined]
    stand_ins["torchvision"].transforms = stand_ins["torchvision.transforms"]  # type: ignore[attr-defined]
    added = [name for name in stand_ins if name not in sys.modules]
    sys.modules.update({name: stand_ins[name] for name in added})
    try:
        _load_module("k_diffusion.utils", folder / "utils.py")
    finally:
        for name in added:
            del sys.modules[name]
    sampling = _load_module("k_diffusion.sampling", folder / "sampling.py")
    external = _load_module("k_diffusion.external", folder / "external.py")
    return sampling, external


def sd1_alphas_cumprod() -> torch.Tensor:
    """The SD 1.x ``alphas_cumprod`` as ldm's ``make_beta_schedule("linear")`` builds it (float64, then float32)."""
    betas = np.linspace(SD1_LINEAR_START**0.5, SD1_LINEAR_END**0.5, SD1_TIMESTEPS, dtype=np.float64) ** 2
    return torch.tensor(np.cumprod(1.0 - betas), dtype=torch.float32)


class _UNetEps(nn.Module):
    """The diffusers UNet as ldm's ``apply_model``: (x, t, cond) -> predicted noise."""

    def __init__(self, unet: Any) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = self.unet(x, t, encoder_hidden_states=cond, return_dict=False)[0]
        return result


class CFGDenoiser(nn.Module):
    """A1111's CFG denoiser: both halves through the model in one batch (cond first), then
    ``uncond + (cond - uncond) * scale`` on the denoised predictions."""

    def __init__(self, model_wrap: nn.Module) -> None:
        super().__init__()
        self.inner_model = model_wrap

    def forward(
        self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor, cond_scale: float
    ) -> torch.Tensor:
        x_in = torch.cat([x, x])
        sigma_in = torch.cat([sigma, sigma])
        out: torch.Tensor = self.inner_model(x_in, sigma_in, cond=torch.cat([cond, uncond]))
        denoised_cond, denoised_uncond = out.chunk(2)
        return denoised_uncond + (denoised_cond - denoised_uncond) * cond_scale


class ImageRNG:
    """A1111's per-image noise (``modules/rng.py`` with ``randn_source=CPU`` and no eta noise seed delta): one CPU
    generator per seed gives the starting noise, then each ancestral draw, in that order."""

    def __init__(self, shape: Sequence[int], seeds: Sequence[int]) -> None:
        self.shape = tuple(shape)
        self.generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]

    def next(self) -> torch.Tensor:
        return torch.stack([torch.randn(self.shape, generator=generator) for generator in self.generators])


@dataclass
class Reference:
    """A1111's k-diffusion sampling around one eps-prediction UNet."""

    unet: Any
    sampling: types.ModuleType = field(init=False)
    model_wrap: Any = field(init=False)

    def __post_init__(self) -> None:
        self.sampling, external = load_k_diffusion()
        self.model_wrap = external.DiscreteEpsDDPMDenoiser(_UNetEps(self.unet), sd1_alphas_cumprod(), quantize=False)

    def sigmas(self, sampler: str, schedule: str, steps: int, *, discard: bool | None = None) -> torch.Tensor:
        """A1111's ``KDiffusionSampler.get_sigmas`` for a schedule named as A1111 names it.

        ``discard`` overrides A1111's discard_next_to_last_sigma option for the sampler."""
        options = A1111_SAMPLERS[sampler]
        if schedule == "Automatic":
            schedule = options.default_schedule or "Uniform"
        discard = options.discard_next_to_last_sigma if discard is None else discard
        count = steps + 1 if discard else steps
        sigma_min, sigma_max = self.model_wrap.sigmas[0].item(), self.model_wrap.sigmas[-1].item()
        if schedule == "Uniform":
            sigmas = self.model_wrap.get_sigmas(count)
        elif schedule == "Karras":
            sigmas = self.sampling.get_sigmas_karras(n=count, sigma_min=sigma_min, sigma_max=sigma_max)
        elif schedule == "Exponential":
            sigmas = self.sampling.get_sigmas_exponential(n=count, sigma_min=sigma_min, sigma_max=sigma_max)
        else:
            raise ValueError(f"no A1111 schedule {schedule!r} in this reference")
        if discard:
            sigmas = torch.cat([sigmas[:-2], sigmas[-1:]])
        return sigmas

    def sample(
        self,
        sampler: str,
        schedule: str,
        *,
        steps: int,
        seeds: Sequence[int],
        latent_shape: Sequence[int],
        cond: torch.Tensor,
        uncond: torch.Tensor,
        cfg_scale: float,
        noise: str = "a1111",
        start_scale: float = 1.0,
        discard: bool | None = None,
    ) -> torch.Tensor:
        """Final latents (unscaled by the VAE factor) as A1111's txt2img leaves them for decoding.

        ``noise="a1111"`` draws the stochastic samplers' noise as A1111 does (Brownian tree or image generator);
        ``noise="generator"`` draws every sampler's noise from the image generators, one fresh draw per step after
        the starting noise, which is how diffusers' schedulers draw it: the same noise sequence in both, so what
        remains is the sampler's arithmetic. ``start_scale`` multiplies the starting noise (diffusers' DPM-Solver
        family starts from ``noise * sqrt(sigma_max**2 + 1)``, A1111 from ``noise * sigma_max``); ``discard`` as for
        :meth:`sigmas`."""
        options = A1111_SAMPLERS[sampler]
        sigmas = self.sigmas(sampler, schedule, steps, discard=discard)
        rng = ImageRNG(latent_shape, seeds)
        x = rng.next() * sigmas[0] * start_scale
        kwargs: dict[str, Any] = dict(options.extra)
        function = getattr(self.sampling, options.function)
        takes_noise = "noise_sampler" in inspect.signature(function).parameters
        if noise not in ("a1111", "generator"):
            raise ValueError(f"unknown noise source {noise!r}")
        if noise == "a1111" and options.brownian_noise:
            positive = sigmas[sigmas > 0]
            kwargs["noise_sampler"] = self.sampling.BrownianTreeNoiseSampler(
                x, positive.min(), sigmas.max(), seed=list(seeds)
            )
        elif takes_noise:
            kwargs["noise_sampler"] = lambda sigma, sigma_next: rng.next()
        denoiser = CFGDenoiser(self.model_wrap)
        extra_args = {"cond": cond, "uncond": uncond, "cond_scale": cfg_scale}
        with torch.no_grad():
            result: torch.Tensor = function(denoiser, x, sigmas, extra_args=extra_args, disable=True, **kwargs)
        return result

    def sample_ddim(
        self,
        *,
        steps: int,
        seeds: Sequence[int],
        latent_shape: Sequence[int],
        cond: torch.Tensor,
        uncond: torch.Tensor,
        cfg_scale: float,
    ) -> torch.Tensor:
        """A1111's DDIM at eta 0, computed with k-diffusion's Euler sampler.

        A1111 runs DDIM with its own loop (``sd_samplers_timesteps_impl.ddim``), not k-diffusion, over the timesteps
        ``range(0, 1000, 1000 // steps) + 1`` and down to ``alphas_cumprod[0]``. Deterministic DDIM is exactly an
        Euler step in k-diffusion's variables (x / sqrt(alpha_bar), sigma = sqrt((1 - alpha_bar) / alpha_bar)),
        so Euler over those timesteps' sigmas, started from the DDPM noise and mapped back at the end, is the same
        sampler computed by independent code."""
        alphas_cumprod = sd1_alphas_cumprod()
        timesteps = (torch.arange(0, SD1_TIMESTEPS, SD1_TIMESTEPS // steps) + 1).clamp(max=SD1_TIMESTEPS - 1)
        # Descending steps, then the last step's target: alpha_bar at t=0 (A1111's alphas_prev for t=1).
        levels = torch.cat([alphas_cumprod[timesteps.flip(0)], alphas_cumprod[:1]])
        sigmas = ((1 - levels) / levels) ** 0.5
        x = ImageRNG(latent_shape, seeds).next() * (1 + sigmas[0] ** 2) ** 0.5  # DDPM's x_T in k-diffusion form
        extra_args = {"cond": cond, "uncond": uncond, "cond_scale": cfg_scale}
        with torch.no_grad():
            result = self.sampling.sample_euler(
                CFGDenoiser(self.model_wrap), x, sigmas, extra_args=extra_args, disable=True
            )
        ddpm: torch.Tensor = result / (1 + sigmas[-1] ** 2) ** 0.5
        return ddpm
