"""LoRAs, a VAE and embeddings in the A1111 infotext, written as A1111 v1.6+ writes them (compare the civitai-style
line in tests/importers/test_a1111_infotext.py: "... Model hash: 7f96a1a9ca, Model: anything-v5, VAE hash: ...,
VAE: ..., Lora hashes: \"add_detail: 7c6bad76eb54\", TI hashes: \"easynegative: c74b4e810b03\", Version: ...")
and read back by the importer."""

from __future__ import annotations

import cauldrond
from cauldrond.importers.a1111 import import_a1111
from cauldrond.media.png import a1111_parameters

PARAMS = {
    "prompt": "a castle, badhands",
    "loras": [{"name": "detail", "weight": 0.6}, {"name": "ink", "weight": 1.0}],
    "vae": "vae-ft-mse.safetensors",
    "model": "sd15",
    "sampler": "Euler a",
    "steps": 20,
    "cfg_scale": 7.0,
    "seed": 5,
    "width": 512,
    "height": 512,
}
INFO = {
    "model_short_hash": "abcdef0123",
    "vae_short_hash": "735e4c3a44",
    "lora_hashes": "detail: 0123456789ab, ink: 00000000ffff",
    "ti_hashes": "badhands: ba9876543210",
}


def test_loras_vae_and_embeddings_are_written_as_a1111_writes_them() -> None:
    assert a1111_parameters(PARAMS, INFO) == (
        "a castle, badhands <lora:detail:0.6> <lora:ink:1>\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 512x512, Model hash: abcdef0123, Model: sd15, "
        "VAE hash: 735e4c3a44, VAE: vae-ft-mse.safetensors, "
        'Lora hashes: "detail: 0123456789ab, ink: 00000000ffff", TI hashes: "badhands: ba9876543210", '
        f"Version: cauldron-{cauldrond.__version__}"
    )


def test_the_model_s_own_vae_and_no_loras_leave_their_keys_out() -> None:
    text = a1111_parameters({**PARAMS, "loras": [], "vae": ""}, {"model_short_hash": "abcdef0123"})
    assert text.splitlines()[0] == "a castle, badhands"
    assert "VAE" not in text and "Lora hashes" not in text and "TI hashes" not in text


def test_the_importer_reads_the_vae_and_keeps_the_lora_tags_in_the_prompt() -> None:
    imported = import_a1111(a1111_parameters(PARAMS, INFO).encode(), "pasted.txt")
    (params,) = imported.params
    # The tags stay in the prompt; experiment creation turns them into the loras param (lora_axes.py).
    assert params["prompt"] == "a castle, badhands <lora:detail:0.6> <lora:ink:1>"
    assert params["vae"] == "vae-ft-mse.safetensors" and "loras" not in params
    assert "VAE hash: 735e4c3a44" in imported.notes
    assert {item.field for item in imported.ignored} == {"Lora hashes", "TI hashes"}
