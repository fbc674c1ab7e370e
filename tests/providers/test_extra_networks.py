"""LoRAs, VAE overrides and textual-inversion embeddings on tiny-sd and tiny-sdxl, through the real provider.

Each test family gets its own models dir: the session's tiny model linked in, plus a LoRA, a VAE and an embedding
made for it (tests/providers/extra_files.py). Expected hashes are computed here with hashlib as A1111 computes
them (LoRA: sha256 of the bytes after the safetensors header, first 12 hex; VAE: sha256 of the file, first 10;
embedding: sha256 of the file, first 12), never read from the code under test."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cauldrond.params import GenerationParams
from cauldrond.providers.base import GeneratedImage, ProviderError
from cauldrond.providers.diffusers.provider import DiffusersProvider
from tests.providers import extra_files
from tests.providers.cpu_provider import new_cpu_provider


@dataclass
class Family:
    provider: DiffusersProvider
    models_dir: Path
    model: str
    other_family_lora: Path | None = None

    def params(self, **changes: Any) -> GenerationParams:
        base = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "steps": 2, "sampler": "Euler", "seed": 7}
        return GenerationParams.model_validate({**base, "model": self.model, **changes})

    def run(self, *cells: GenerationParams) -> list[GeneratedImage]:
        return self.provider.generate(list(cells), lambda step, total: None, lambda: False)

    def image(self, **changes: Any) -> np.ndarray:
        (result,) = self.run(self.params(**changes))
        return np.asarray(result.image.convert("RGB"), dtype=np.int16)


def _family(tmp: Path, source_dir: Path, model: str) -> Family:
    models_dir = tmp / "models"
    models_dir.mkdir()
    (models_dir / model).symlink_to(source_dir / model, target_is_directory=True)
    pipeline = extra_files.load_tiny(source_dir / model)
    extra_files.write_lora(pipeline, models_dir / "loras" / "detail.safetensors")
    extra_files.write_lora(pipeline, models_dir / "loras" / "style" / "ink.safetensors", seed=5)
    extra_files.write_vae(pipeline, models_dir / "vae" / "other.safetensors")
    extra_files.write_vae(pipeline, models_dir / "vae" / "wide.safetensors", latent_channels=16)
    extra_files.write_embedding(pipeline, models_dir / "embeddings" / "mystyle.safetensors")
    extra_files.write_embedding(pipeline, models_dir / "embeddings" / "narrow.safetensors", width=8)
    for folder, name in (("loras", "pickled"), ("vae", "pickled"), ("embeddings", "pickled")):
        extra_files.write_pickle_as_safetensors(models_dir / folder / f"{name}.safetensors")
    extra_files.write_truncated_copy(
        models_dir / "loras" / "detail.safetensors", models_dir / "loras" / "cut.safetensors"
    )
    extra_files.write_garbled(models_dir / "vae" / "garbled.safetensors")
    return Family(new_cpu_provider(models_dir, tmp / "data"), models_dir, model)


@pytest.fixture(scope="module")
def sd(models_dir: Path, tmp_path_factory: pytest.TempPathFactory, sdxl_models_dir: Path) -> Family:
    family = _family(tmp_path_factory.mktemp("sd-extras"), models_dir, "tiny-sd")
    # A LoRA made for tiny-sdxl's UNet: other layer widths and names than tiny-sd's.
    sdxl = extra_files.load_tiny(sdxl_models_dir / "tiny-sdxl")
    family.other_family_lora = extra_files.write_lora(sdxl, family.models_dir / "loras" / "xl-only.safetensors")
    return family


@pytest.fixture(scope="module")
def sdxl(sdxl_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Family:
    return _family(tmp_path_factory.mktemp("sdxl-extras"), sdxl_models_dir, "tiny-sdxl")


@pytest.fixture(params=["sd", "sdxl"])
def family(request: pytest.FixtureRequest) -> Family:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def _addnet_hash(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha256(data[8 + int.from_bytes(data[:8], "little") :]).hexdigest()


def _diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a - b).max())


def test_a_lora_changes_the_image_and_weight_zero_equals_none(family: Family) -> None:
    plain = family.image()
    loads = family.provider.load_count
    strong = family.image(loras=[{"name": "detail", "weight": 1.0}])
    zero = family.image(loras=[{"name": "detail", "weight": 0.0}])
    again = family.image()
    assert _diff(plain, strong) > 20
    assert _diff(plain, zero) <= 1  # weight 0 adds 0 * B(A(x)): float rounding at most
    assert _diff(plain, again) == 0  # a LoRA switched off leaves the base weights as they were
    assert family.provider.load_count == loads  # never a model reload


def test_lora_weights_and_sets_apply_per_batch_and_are_recorded_as_a1111_does(family: Family) -> None:
    loads = family.provider.load_count
    half = family.image(loras=[{"name": "detail", "weight": 0.5}])
    full = family.image(loras=[{"name": "detail", "weight": 1.0}])
    both = family.params(loras=[{"name": "detail", "weight": 0.5}, {"name": "ink", "weight": 0.8}])
    (result,) = family.run(both)
    assert _diff(half, full) > 5
    assert _diff(np.asarray(result.image.convert("RGB"), dtype=np.int16), half) > 5
    detail, ink = (
        (family.models_dir / "loras" / "detail.safetensors"),
        (family.models_dir / "loras" / "style/ink.safetensors"),
    )
    assert result.info["lora_hashes"] == f"detail: {_addnet_hash(detail)[:12]}, ink: {_addnet_hash(ink)[:12]}"
    assert family.provider.load_count == loads


def test_a_vae_override_changes_the_image_and_is_recorded(family: Family) -> None:
    plain = family.image()
    loads = family.provider.load_count
    (result,) = family.run(family.params(vae="other.safetensors"))
    swapped = np.asarray(result.image.convert("RGB"), dtype=np.int16)
    path = family.models_dir / "vae" / "other.safetensors"
    assert _diff(plain, swapped) > 20
    assert result.info["vae"] == "other.safetensors"
    assert result.info["vae_short_hash"] == hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    assert _diff(plain, family.image()) == 0  # the model's own VAE comes back
    assert family.provider.load_count == loads


def test_an_embedding_named_in_the_prompt_changes_only_that_prompt(family: Family) -> None:
    plain = family.image(prompt="a lighthouse at dusk")
    loads = family.provider.load_count
    (result,) = family.run(family.params(prompt="a lighthouse at dusk, mystyle"))
    styled = np.asarray(result.image.convert("RGB"), dtype=np.int16)
    without = family.image(prompt="a lighthouse at dusk, plain")
    path = family.models_dir / "embeddings" / "mystyle.safetensors"
    assert _diff(styled, without) > 5
    assert result.info["ti_hashes"] == f"mystyle: {hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
    assert _diff(plain, family.image(prompt="a lighthouse at dusk")) == 0  # other prompts as before
    assert family.provider.load_count == loads


BAD_FILES = [
    ({"loras": [{"name": "pickled"}]}, r"pickled\.safetensors.*pickle"),
    ({"loras": [{"name": "cut"}]}, r"cut\.safetensors.*(safetensors|read)"),
    ({"vae": "pickled.safetensors"}, r"pickled\.safetensors.*pickle"),
    ({"vae": "garbled.safetensors"}, r"garbled\.safetensors.*not a valid safetensors"),
    ({"vae": "wide.safetensors"}, r"wide\.safetensors has 16 latent channels.*4.*another model family"),
    ({"prompt": "a lighthouse, pickled"}, r"pickled\.safetensors.*pickle"),
    ({"prompt": "a lighthouse, narrow"}, r"narrow\.safetensors.*width"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_FILES)
def test_bad_files_are_refused_naming_the_file_and_nothing_changes(
    family: Family, changes: dict[str, Any], message: str
) -> None:
    before = family.image()
    with pytest.raises(ProviderError, match=message):
        family.run(family.params(**changes))
    assert _diff(before, family.image()) == 0  # the pipeline is as it was


def test_a_lora_for_another_architecture_is_refused_and_leaves_the_model_as_it_was(sd: Family) -> None:
    assert sd.other_family_lora is not None
    before = sd.image()
    with pytest.raises(ProviderError, match=r"xl-only\.safetensors .*(fit|matches none)"):
        sd.run(sd.params(loras=[{"name": "xl-only"}]))
    assert _diff(before, sd.image()) == 0
    assert _diff(before, sd.image(loras=[{"name": "detail", "weight": 0.0}])) <= 1  # adapters still work


def test_a_safetensors_header_of_128_bytes_is_not_mistaken_for_a_pickle(tmp_path: Path) -> None:
    # Its first byte is 0x80, a pickle's PROTO opcode; the safetensors layout (length, then "{") must win.
    from cauldrond.providers.diffusers.loading import SAFETENSORS, detect_format

    header = b'{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    header += b" " * (128 - len(header))  # safetensors pads headers with spaces
    path = tmp_path / "padded.safetensors"
    path.write_bytes((128).to_bytes(8, "little") + header + b"\x00\x00\x80\x3f")
    assert path.read_bytes()[0] == 0x80
    from safetensors.torch import load_file

    assert load_file(str(path))["x"].item() == 1.0  # the real library reads it
    assert detect_format(path) == SAFETENSORS


def test_a_text_encoder_lora_is_not_served_stale_prompt_encodings(sd: Family, models_dir: Path) -> None:
    # The prompt cache keys encodings by the LoRA set: with a text-encoder LoRA the same prompt encodes otherwise.
    extra_files.write_text_encoder_lora(models_dir / "tiny-sd", sd.models_dir / "loras" / "te-only.safetensors")
    plain = sd.image()  # its encoding is now cached
    with_lora = sd.image(loras=[{"name": "te-only", "weight": 1.0}])
    assert _diff(plain, with_lora) > 20
    assert _diff(plain, sd.image()) == 0


def test_one_vae_as_a_diffusers_file_a_folder_and_an_ldm_file_makes_one_image(family: Family) -> None:
    names = extra_files.write_vae_layouts(family.models_dir / family.model, family.models_dir / "vae")
    plain = family.image()
    images = [family.image(vae=name) for name in names]
    assert _diff(plain, images[0]) > 20
    assert _diff(images[0], images[1]) == 0 and _diff(images[0], images[2]) == 0


def test_least_recently_used_loras_are_unloaded_and_load_again_the_same(sd: Family) -> None:
    adapters = sd.provider.extra_networks.loras
    before = adapters.max_loaded
    adapters.max_loaded = 1
    try:
        first = sd.image(loras=[{"name": "detail", "weight": 1.0}])
        sd.image(loras=[{"name": "ink", "weight": 1.0}])
        assert adapters.loaded() == ["ink"]
        assert sd.provider._loaded is not None
        assert sum(len(names) for names in sd.provider._loaded.pipeline.get_list_adapters().values()) == 1
        assert _diff(first, sd.image(loras=[{"name": "detail", "weight": 1.0}])) == 0
    finally:
        adapters.max_loaded = before
