"""What bench/gpu.py does that a CPU can check: its arguments, the peak FLOP/s table, its refusal without a GPU,
and the UNet FLOP count, which must equal an independent count made with forward hooks on a real forward of the
tiny model (every convolution, linear layer and attention matmul, at 2 FLOPs a multiply-add)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention

from cauldrond.models.tiny import UNET_CONFIG

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def gpu_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH / "gpu.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_arguments(gpu_bench: ModuleType) -> None:
    defaults = gpu_bench.parse_args([])
    assert defaults.arch == ["sd15", "sdxl"] and defaults.steps == 30 and defaults.max_batch == 16
    assert defaults.options == ["channels_last", "fused_qkv", "compile", "vae_tiling"]
    chosen = gpu_bench.parse_args(["--arch", "sdxl", "--options", "compile, vae_tiling", "--steps", "5"])
    assert chosen.arch == ["sdxl"] and chosen.options == ["compile", "vae_tiling"] and chosen.steps == 5
    assert gpu_bench.parse_args(["--options", "none"]).options == []
    for bad in (["--arch", "sd3"], ["--options", "xformers"]):
        with pytest.raises(SystemExit) as exited:
            gpu_bench.parse_args(bad)
        assert exited.value.code == 2


def test_peak_flops_by_device_name(gpu_bench: ModuleType) -> None:
    # Names as torch.cuda.get_device_name gives them; figures from the vendors' datasheets (dense, no sparsity).
    assert gpu_bench.peak_flops("NVIDIA H200") == pytest.approx(989.4e12)
    assert gpu_bench.peak_flops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4e12)
    assert gpu_bench.peak_flops("NVIDIA H100 PCIe") == pytest.approx(756.5e12)
    assert gpu_bench.peak_flops("NVIDIA A100-SXM4-80GB") == pytest.approx(312e12)
    assert gpu_bench.peak_flops("NVIDIA GeForce RTX 4080") == pytest.approx(97.5e12)
    assert gpu_bench.peak_flops("Apple M4 Max") is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no GPU")
def test_without_a_gpu_it_exits_with_a_message(gpu_bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        gpu_bench.main(["--arch", "sd15"])
    assert exited.value.code == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def hooked_flops(unet: torch.nn.Module, inputs: dict[str, Any]) -> int:
    """FLOPs of one forward counted from the shapes each layer sees."""
    total = 0

    def conv(module: torch.nn.Conv2d, args: tuple[Any, ...], out: torch.Tensor) -> None:
        nonlocal total
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        total += 2 * out.numel() * per_output

    def linear(module: torch.nn.Linear, args: tuple[Any, ...], out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * out.numel() * module.in_features

    def attention(module: Attention, args: tuple[Any, ...], kwargs: dict[str, Any], out: torch.Tensor) -> None:
        nonlocal total
        queries = args[0] if args else kwargs["hidden_states"]
        context = kwargs.get("encoder_hidden_states")
        keys = queries if context is None else context
        batch, length = queries.shape[0], queries.shape[1]
        # Q K^T and the weights times V: each B x L x S x inner multiply-adds.
        total += 2 * 2 * batch * length * keys.shape[1] * module.inner_dim

    handles = []
    for module in unet.modules():
        if isinstance(module, torch.nn.Conv2d):
            handles.append(module.register_forward_hook(conv))
        elif isinstance(module, torch.nn.Linear):
            handles.append(module.register_forward_hook(linear))
        elif isinstance(module, Attention):
            handles.append(module.register_forward_hook(attention, with_kwargs=True))
    try:
        with torch.no_grad():
            unet(**inputs, return_dict=False)
    finally:
        for handle in handles:
            handle.remove()
    return total


def test_unet_flops_match_an_independent_count_on_the_tiny_model(gpu_bench: ModuleType) -> None:
    unet = UNet2DConditionModel(**UNET_CONFIG)
    inputs = gpu_bench.unet_inputs(unet.config, 2, 64, 96, "cpu", torch.float32)
    expected = hooked_flops(unet, inputs)
    assert expected > 0
    assert gpu_bench.unet_flops(dict(UNET_CONFIG), 2, 64, 96) == expected
    assert gpu_bench.unet_flops(dict(UNET_CONFIG), 4, 64, 96) == 2 * expected, "linear in the batch"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_gpu_bench_runs_end_to_end_on_sd15(
    gpu_bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--arch", "sd15", "--steps", "2", "--max-batch", "2", "--options", "channels_last"]
    gpu_bench.main([*args, "--models-dir", str(tmp_path)])
    out = capsys.readouterr().out
    for line in ("seconds/image, batch 1:", "daemon/bare throughput:", "peak VRAM, batch 1:", "option +channels_last"):
        assert line in out, out
