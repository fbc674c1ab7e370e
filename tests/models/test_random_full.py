"""Full-size random models: the architecture `cauldrond models create-random` builds is the real one, checked by
parameter counts published for the real checkpoints (built on the meta device: no memory, no weights).

Published figures:
- SD 1.5 UNet 859,520,964: diffusers' own docstring of ``ModelMixin.num_parameters``, counted on
  runwayml/stable-diffusion-v1-5's UNet (diffusers/models/modeling_utils.py).
- SDXL base UNet 2,567,463,684 and its two text encoders together 817,720,320 (123,060,480 for CLIP ViT-L, the
  rest OpenCLIP bigG's text tower with its projection): as counted on stabilityai/stable-diffusion-xl-base-1.0 in
  training logs and model catalogues (e.g. diffusers' DreamBooth training script's "unet params = 2567463684").
- The VAE shared by SD 1.x and SDXL, 83,653,863 parameters.

Writing the weights takes gigabytes (SD 1.5 is 2.1 GB in float16): that test needs a GPU and is marked so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors import safe_open

from cauldrond.cli import main
from cauldrond.models.random_full import RANDOM_MODEL_NOTE, create_random_model, parameter_counts
from cauldrond.providers.diffusers import devices

CLIP_VIT_L_TEXT = 123_060_480
VAE = 83_653_863


def test_sd15_has_the_real_parameter_counts() -> None:
    assert parameter_counts("sd15") == {"unet": 859_520_964, "vae": VAE, "text_encoder": CLIP_VIT_L_TEXT}


def test_sdxl_has_the_real_parameter_counts() -> None:
    counts = parameter_counts("sdxl")
    assert counts["unet"] == 2_567_463_684 and counts["vae"] == VAE
    assert counts["text_encoder"] == CLIP_VIT_L_TEXT
    assert counts["text_encoder"] + counts["text_encoder_2"] == 817_720_320


def test_an_unknown_architecture_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown architecture 'sd3'"):
        create_random_model(tmp_path / "models", "sd3")
    assert not (tmp_path / "models").exists()
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "models", "create-random", "--arch", "sd3"])
    assert result.exit_code == 2 and "'sd3' is not one of 'sd15', 'sdxl'" in result.output


def _file_parameters(folder: Path) -> int:
    """Parameters stored in a component folder's safetensors files, from their headers."""
    total = 0
    for file in folder.glob("*.safetensors"):
        with safe_open(file, "pt") as weights:
            for key in weights.keys():  # noqa: SIM118 - safe_open is not iterable
                total += math.prod(weights.get_slice(key).get_shape())
    return total


@pytest.mark.gpu
@pytest.mark.skipif(not devices.cuda_available(), reason="needs a CUDA device")
def test_create_random_sd15_writes_the_full_model_on_a_gpu(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path), "models", "create-random", "--arch", "sd15", "--device", "cuda"]
    )
    assert result.exit_code == 0, result.output
    folder = tmp_path / "models" / "random-sd15"
    assert _file_parameters(folder / "unet") == 859_520_964
    assert json.loads((folder / "CAULDRON_MODEL.json").read_text())["note"] == RANDOM_MODEL_NOTE
    assert len(json.loads((folder / "tokenizer" / "vocab.json").read_text(encoding="utf-8"))) == 49_408
