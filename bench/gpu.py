"""GPU-true figures on full-size random-weight models (`cauldrond models create-random`): SD 1.5 at 512² and SDXL
base at 1024², 30 Euler steps, CFG 7, through the daemon and through a bare diffusers pipeline on the same model
and device, in one run.

Per model it prints: seconds per image at batch 1 and images/s at the batch size the daemon chose (auto batch
size, up to --max-batch), daemon against bare; peak VRAM at batch 1 (torch.cuda.max_memory_allocated); the UNet's
FLOPs per step (torch.utils.flop_counter on one forward, counted on the meta device) and the fraction of the
device's peak dense fp16/bf16 FLOP/s that the UNet alone achieves; then each option on the bare pipeline (channels-
last, fused QKV projections, torch.compile of the UNet, VAE tiling at SDXL's size): its seconds per image and
whether its image stays within 2/255 of eager. Targets: daemon within 5% of bare; SDXL UNet >= 50% of peak on an
H100/H200; SDXL peak VRAM < 14 GB at batch 1.

    python bench/gpu.py [--arch sd15,sdxl] [--steps 30] [--max-batch 16] [--options all|none|a,b] [--models-dir D]

Runs only where CUDA is available; elsewhere it exits with a message (status 2).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Peak dense (no sparsity) fp16/bf16 tensor FLOP/s with fp32 accumulation, as PyTorch's half matmuls run, from
# the vendors' datasheets: NVIDIA H100 and H200 Tensor Core GPU datasheets (SXM: 1,979 TFLOPS "with sparsity",
# half that dense; H100 PCIe 1,513 with sparsity), A100 datasheet (312 dense), L40S datasheet (362.05 dense),
# Ada Lovelace architecture whitepaper appendix (GeForce RTX 4090: 165.2, RTX 4080: 97.5 with FP32 accumulate).
# Apple publishes no fp16 FLOP/s for the M4 family: no entry, so no fraction is printed there.
PEAK_TFLOPS: dict[str, float] = {
    "H200": 989.4,
    "H100 SXM": 989.4,
    "H100 80GB HBM3": 989.4,  # the SXM part's CUDA name
    "H100 PCIe": 756.5,
    "A100": 312.0,
    "L40S": 362.05,
    "RTX 4090": 165.2,
    "RTX 4080": 97.5,
}
MODELS = {"sd15": ("random-sd15", 512), "sdxl": ("random-sdxl", 1024)}
OPTIONS = ("channels_last", "fused_qkv", "compile", "vae_tiling")
PROMPT = "a lighthouse on a cliff at dusk, detailed oil painting"
CFG = 7.0
TOLERANCE = 2  # of 255


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--arch", default="sd15,sdxl", help="comma list of sd15, sdxl")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--max-batch", type=int, default=16, help="the daemon's max_batch_size (auto probes below)")
    parser.add_argument("--options", default="all", help=f"all, none, or a comma list of {', '.join(OPTIONS)}")
    parser.add_argument("--models-dir", type=Path, default=None, help="where random models are (made if missing)")
    args = parser.parse_args(argv)
    args.arch = [arch.strip() for arch in args.arch.split(",") if arch.strip()]
    unknown = [arch for arch in args.arch if arch not in MODELS]
    if unknown:
        parser.error(f"unknown --arch {', '.join(unknown)}; known: {', '.join(MODELS)}")
    chosen = {"all": list(OPTIONS), "none": []}.get(args.options)
    args.options = chosen if chosen is not None else [o.strip() for o in args.options.split(",") if o.strip()]
    if any(option not in OPTIONS for option in args.options):
        parser.error(f"unknown --options; known: {', '.join(OPTIONS)}")
    return args


def peak_flops(device_name: str) -> float | None:
    """The device's peak dense fp16/bf16 FLOP/s from the table above (longest matching name), or None."""
    matches = [name for name in PEAK_TFLOPS if name.lower() in device_name.lower()]
    return PEAK_TFLOPS[max(matches, key=len)] * 1e12 if matches else None


def unet_inputs(config: Any, batch: int, height: int, width: int, device: Any, dtype: Any) -> dict[str, Any]:
    """One denoising step's UNet inputs at this image size (``batch`` rows: twice the images under CFG)."""
    latents = torch.zeros(batch, config.in_channels, height // 8, width // 8, device=device, dtype=dtype)
    inputs: dict[str, Any] = {
        "sample": latents,
        "timestep": torch.tensor(500, device=device),
        "encoder_hidden_states": torch.zeros(batch, 77, config.cross_attention_dim, device=device, dtype=dtype),
    }
    if config.addition_embed_type == "text_time":
        pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        inputs["added_cond_kwargs"] = {
            "text_embeds": torch.zeros(batch, pooled, device=device, dtype=dtype),
            "time_ids": torch.zeros(batch, 6, device=device, dtype=dtype),
        }
    return inputs


def unet_flops(config: dict[str, Any], batch: int, height: int, width: int) -> int:
    """FLOPs of one UNet forward (a multiply-add is 2), counted by torch's FlopCounterMode on the meta device: no
    memory and no GPU needed. Attention runs through SDPA's math path so its two matmuls are counted on any
    device (the fused kernels count the same 4*B*H*L*S*D where torch has a formula for them)."""
    from diffusers import UNet2DConditionModel
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
        inputs = unet_inputs(unet.config, batch, height, width, "meta", torch.float32)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        unet(**inputs, return_dict=False)
    return int(counter.get_total_flops())


def synced(fn: Callable[[], Any]) -> tuple[float, Any]:
    torch.cuda.synchronize()
    started = time.perf_counter()
    result = fn()
    torch.cuda.synchronize()
    return time.perf_counter() - started, result


def require_gpu() -> str:
    if not torch.cuda.is_available():
        print(
            "bench/gpu.py needs a CUDA GPU (torch sees none here: "
            f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}); nothing was measured.",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return str(torch.cuda.get_device_name(0))


# --- the bare pipeline -----------------------------------------------------------------------------------------


def load_pipeline(folder: Path) -> Any:
    from diffusers import DiffusionPipeline, EulerDiscreteScheduler

    pipe = DiffusionPipeline.from_pretrained(folder, torch_dtype=torch.float16)
    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to("cuda")


def generate(pipe: Any, size: int, steps: int, batch: int = 1, seed: int = 1) -> np.ndarray:
    generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(batch)]
    out = pipe(
        prompt=[PROMPT] * batch,
        num_inference_steps=steps,
        guidance_scale=CFG,
        width=size,
        height=size,
        generator=generators,
        output_type="np",
    )
    return np.asarray(out.images)


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    """Largest per-pixel difference in 0..255 (NaN counts as different: random weights can overflow fp16)."""
    both = np.nan_to_num(np.abs(a.astype(np.float64) - b.astype(np.float64)), nan=1.0) * 255
    return int(np.ceil(both.max() - 1e-6))


def bare_figures(folder: Path, size: int, steps: int, batch: int, options: list[str]) -> dict[str, Any]:
    pipe = load_pipeline(folder)
    generate(pipe, size, 2)  # warm-up: kernels, allocator
    torch.cuda.reset_peak_memory_stats()
    one_s, eager = synced(lambda: generate(pipe, size, steps))
    figures: dict[str, Any] = {"s_per_image": one_s, "peak_vram": torch.cuda.max_memory_allocated()}
    many_s, _ = synced(lambda: generate(pipe, size, steps, batch))
    figures["images_per_s"] = batch / many_s
    unet = pipe.unet
    inputs = unet_inputs(unet.config, 2 * batch, size, size, "cuda", torch.float16)
    with torch.no_grad():
        for _ in range(2):
            unet(**inputs, return_dict=False)
        unet_s, _ = synced(lambda: [unet(**inputs, return_dict=False) for _ in range(5)])
    figures["unet_step_s"] = unet_s / 5
    figures["options"] = [try_option(pipe, option, size, steps, eager, one_s) for option in options]
    return figures  # the pipeline goes with this frame; main frees its memory


def try_option(pipe: Any, option: str, size: int, steps: int, eager: np.ndarray, eager_s: float) -> str:
    """Applies ``option`` to ``pipe`` (they accumulate, in OPTIONS' order), times one image, compares it."""
    if option == "vae_tiling" and size < 1024:
        return f"{option:14s} skipped below 1024 px (tiling only helps large images)"
    extra = ""
    if option == "channels_last":
        pipe.unet.to(memory_format=torch.channels_last)
    elif option == "fused_qkv":
        pipe.unet.fuse_qkv_projections()
    elif option == "compile":
        pipe.unet = torch.compile(pipe.unet, fullgraph=False)
        first_s, _ = synced(lambda: generate(pipe, size, steps))  # compiles: paid once per shape in a long sweep
        extra = f", first call {first_s:.1f} s (compiling)"
    elif option == "vae_tiling":
        pipe.vae.enable_tiling()
    torch.cuda.reset_peak_memory_stats()
    seconds, image = synced(lambda: generate(pipe, size, steps))
    diff = max_diff(image, eager)
    verdict = "within" if diff <= TOLERANCE else "NOT within"
    return (
        f"+{option:13s} {seconds:6.2f} s/image ({eager_s / seconds:4.2f}x eager){extra}; peak VRAM "
        f"{torch.cuda.max_memory_allocated() / 2**30:5.1f} GiB; max diff {diff}/255: {verdict} {TOLERANCE}/255"
    )


def free() -> None:
    gc.collect()
    torch.cuda.empty_cache()


# --- the daemon ------------------------------------------------------------------------------------------------


async def daemon_figures(models_dir: Path, name: str, size: int, steps: int, max_batch: int) -> dict[str, Any]:
    from cauldron_client import Client

    from cauldrond.config import Settings
    from cauldrond.daemon import Daemon

    base = {"prompt": PROMPT, "model": name, "sampler": "Euler", "cfg_scale": CFG, "width": size, "height": size}
    with tempfile.TemporaryDirectory(prefix="cauldron-gpu-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp), port=0, models_dir=models_dir, device="cuda", max_batch_size=max_batch)
        daemon = Daemon(settings)
        await daemon.start()
        try:
            token = settings.token_path.read_text().strip()
            async with Client(f"http://127.0.0.1:{daemon.bound_port}", token) as client:
                await run_cells(client, base, 1, 2)  # loads the model, warms up
                torch.cuda.reset_peak_memory_stats()
                one_s = await run_cells(client, base, 1, steps)
                peak = torch.cuda.max_memory_allocated()
                # The probe runs on these cells (max_batch, half, ...), then the chosen size is remembered.
                await run_cells(client, base, 2 * max_batch, steps)
                sizes = daemon.services.engine.batch_sizes.describe()
                batch = next((c["batch_size"] for c in sizes if c["width"] == size), max_batch)
                many_s = await run_cells(client, base, 2 * batch, steps)
        finally:
            await daemon.stop()
        del daemon
    free()
    return {"s_per_image": one_s, "peak_vram": peak, "batch": batch, "images_per_s": 2 * batch / many_s}


async def run_cells(client: Any, base: dict[str, Any], cells: int, steps: int) -> float:
    """Seconds from creating an experiment of ``cells`` seeds to its last image committed."""
    started = time.perf_counter()
    created = await client.call(
        "experiments.create", name="gpu", base={**base, "steps": steps}, axes={"seed": list(range(1, cells + 1))}
    )
    experiment_id = created["experiment"]["id"]
    async with client.events(["experiment.finished"]) as stream:
        while True:
            got = await client.call("experiments.get", experiment_id=experiment_id, jobs_limit=0)
            counts = got["experiment"]["counts"]
            if counts["queued"] == 0 and counts["running"] == 0:
                break
            await stream.next(5.0)
    if counts["done"] != cells:
        raise RuntimeError(f"{cells - counts['done']} of {cells} cells did not finish: {counts}")
    return time.perf_counter() - started


# --- the report ------------------------------------------------------------------------------------------------


def report(arch: str, size: int, steps: int, device: str, daemon: dict[str, Any], bare: dict[str, Any]) -> None:
    from cauldrond.models.random_full import component_config

    gib = 2**30
    batch = daemon["batch"]
    flops = unet_flops(component_config(arch, "unet"), 2 * batch, size, size)
    peak = peak_flops(device)
    achieved = flops / bare["unet_step_s"]
    print(f"\n== {arch} at {size}x{size}, {steps} steps, CFG {CFG}, fp16, {device}")
    print(f"seconds/image, batch 1:   daemon {daemon['s_per_image']:6.2f}   bare {bare['s_per_image']:6.2f}")
    print(f"images/s at batch {batch:2d}:    daemon {daemon['images_per_s']:6.3f}   bare {bare['images_per_s']:6.3f}")
    ratio = daemon["images_per_s"] / bare["images_per_s"]
    print(f"daemon/bare throughput: {ratio:4.2f}x   target within 5%: {'met' if ratio >= 0.95 else 'NOT met'}")
    vram = f"daemon {daemon['peak_vram'] / gib:5.2f} GiB   bare {bare['peak_vram'] / gib:5.2f} GiB"
    print(f"peak VRAM, batch 1:      {vram}")
    if arch == "sdxl":
        met = daemon["peak_vram"] < 14e9
        print(f"target SDXL peak VRAM < 14 GB at batch 1: {'met' if met else 'NOT met'}")
    print(f"UNet: {flops / 1e12:.2f} TFLOP per step at batch {batch} (x2 for CFG); {achieved / 1e12:.1f} TFLOP/s")
    if peak is None:
        print(f"no peak FLOP/s known for {device!r}: fraction not computed")
    else:
        fraction = achieved / peak
        line = f"UNet at {fraction:.0%} of the device's {peak / 1e12:.0f} TFLOP/s dense fp16 peak"
        if arch == "sdxl" and any(name in device for name in ("H100", "H200")):
            line += f"; target >= 50% on H100/H200: {'met' if fraction >= 0.5 else 'NOT met'}"
        print(line)
    for line in bare["options"]:
        print(f"option {line}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = require_gpu()
    from cauldrond.models.random_full import create_random_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    models_dir = args.models_dir or Path(tempfile.mkdtemp(prefix="cauldron-random-models-"))
    print(f"device: {device}; torch {torch.__version__}; CUDA {torch.version.cuda}; models in {models_dir}")
    for arch in args.arch:
        name, size = MODELS[arch]
        started = time.perf_counter()
        folder = create_random_model(models_dir, arch, device="cuda")
        print(f"{name}: ready in {time.perf_counter() - started:.0f} s", flush=True)
        daemon = asyncio.run(daemon_figures(models_dir, name, size, args.steps, args.max_batch))
        bare = bare_figures(folder, size, args.steps, daemon["batch"], args.options)
        free()
        report(arch, size, args.steps, device, daemon, bare)


if __name__ == "__main__":
    main()
