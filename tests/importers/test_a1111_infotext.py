"""A1111 infotext as A1111 writes it (modules/processing.py create_infotext, read back by
modules/infotext_utils.py parse_generation_parameters) turned into params. Every expected value below is read by
hand off the infotext string above it."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from cauldrond.importers.a1111 import import_a1111
from cauldrond.importers.infotext import parse_infotext
from cauldrond.media.png import png_text_chunks
from cauldrond.params import GenerationParams
from cauldrond.plugins.interfaces import Imported

# A1111's own docstring example (parse_generation_parameters), from before schedule types and model names.
A1111_2022 = """girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy makeup, \
by Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate
Negative prompt: ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, poorly drawn face, \
mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing
Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b"""

# A1111 v1.6: legacy combined sampler name, multi-line prompts, hires fix, ADetailer, quoted values with commas.
A1111_V16 = """masterpiece, best quality, 1girl, (red hair:1.2), looking at viewer,
upper body, <lora:add_detail:0.6>
Negative prompt: (worst quality, low quality:1.4), easynegative,
bad hands
Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 3912051283, Size: 512x768, Model hash: 7f96a1a9ca, \
Model: anything-v5-PrtRE, Denoising strength: 0.45, Clip skip: 2, ENSD: 31337, Hires upscale: 2, Hires steps: 15, \
Hires upscaler: R-ESRGAN 4x+ Anime6B, Lora hashes: "add_detail: 7c6bad76eb54", TI hashes: "easynegative: \
c74b4e810b03", ADetailer model: face_yolov8n.pt, ADetailer prompt: "a \\"smiling\\" face, detailed", ADetailer \
confidence: 0.3, ADetailer version: 23.11.1, Version: v1.6.0"""

# A1111 v1.10.1: "Schedule type" written separately, an empty negative prompt line, SDXL extras.
A1111_V110 = (
    "cat portrait, \n"
    "Negative prompt: \n"
    "Steps: 13, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 4, Seed: 2535254266, Face restoration: "
    "CodeFormer, Size: 1216x832, Model hash: 31e35c80fc, Model: sd_xl_base_1.0, FP8 weight: Enable for SDXL, "
    "Cache FP16 weight for LoRA: True, Version: v1.10.1"
)

# DDIM with eta, CPU noise, a legacy name with the Exponential schedule in it.
A1111_DDIM = """a lighthouse at dusk
Steps: 50, Sampler: DDIM, CFG scale: 7.5, Seed: 42, Size: 512x512, Model hash: 6ce0161689, \
Model: v1-5-pruned-emaonly, Eta DDIM: 0.3, RNG: CPU, Version: v1.7.0"""
A1111_EXPONENTIAL = """a fox
Steps: 30, Sampler: DPM++ 2M SDE Exponential, Schedule type: Automatic, CFG scale: 5, Seed: 7, Size: 640x448, \
Model: dreamshaper_8, Eta: 0.67, RNG: NV, Version: v1.8.0"""


def imported(text: str) -> Imported:
    return import_a1111(text.encode("utf-8"), "pasted.txt")


def ignored_fields(result: Imported) -> dict[str, str]:
    return {item.field: item.value for item in result.ignored}


def test_a1111_docstring_example() -> None:
    result = imported(A1111_2022)
    assert result.params == [
        {
            "prompt": "girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy "
            "makeup, by Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate",
            "negative_prompt": "ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, poorly "
            "drawn face, mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing",
            "steps": 20,
            "cfg_scale": 7.0,
            "seed": 965400086,
            "sampler": "Euler a",
            "schedule": "Automatic",
            "width": 512,
            "height": 512,
        }
    ]
    assert result.ignored == []
    assert "Model hash: 45dee52b" in result.notes
    assert "no Model field: the default model is used" in result.notes


def test_v16_legacy_sampler_multiline_prompts_and_unsupported_fields() -> None:
    result = imported(A1111_V16)
    (params,) = result.params
    assert params["prompt"] == (
        "masterpiece, best quality, 1girl, (red hair:1.2), looking at viewer,\nupper body, <lora:add_detail:0.6>"
    )
    assert params["negative_prompt"] == "(worst quality, low quality:1.4), easynegative,\nbad hands"
    assert (params["sampler"], params["schedule"]) == ("DPM++ 2M", "Karras")
    assert (params["steps"], params["cfg_scale"], params["seed"]) == (28, 6.5, 3912051283)
    assert (params["width"], params["height"], params["clip_skip"]) == (512, 768, 2)
    assert params["model"] == "anything-v5-PrtRE"
    assert ignored_fields(result) == {
        "Denoising strength": "0.45",
        "ENSD": "31337",
        "Hires upscale": "2",
        "Hires steps": "15",
        "Hires upscaler": "R-ESRGAN 4x+ Anime6B",
        "Lora hashes": "add_detail: 7c6bad76eb54",
        "TI hashes": "easynegative: c74b4e810b03",
        "ADetailer model": "face_yolov8n.pt",
        "ADetailer prompt": 'a "smiling" face, detailed',
        "ADetailer confidence": "0.3",
        "ADetailer version": "23.11.1",
    }
    reasons = {item.field: item.reason for item in result.ignored}
    assert "txt2img only" in reasons["Hires upscale"] and "txt2img only" in reasons["Denoising strength"]
    assert "ADetailer" in reasons["ADetailer model"] and "LoRA" in reasons["Lora hashes"]
    assert {"Model hash: 7f96a1a9ca", "Version: v1.6.0"} <= set(result.notes)
    assert any("<lora:...>" in note for note in result.notes)
    GenerationParams.model_validate(params)  # every mapped value is one cauldron accepts


def test_v110_schedule_type_field_and_empty_negative_prompt() -> None:
    result = imported(A1111_V110)
    (params,) = result.params
    assert params["prompt"] == "cat portrait,"
    assert params["negative_prompt"] == ""
    assert (params["sampler"], params["schedule"], params["steps"], params["cfg_scale"]) == (
        "DPM++ 2M",
        "Karras",
        13,
        4.0,
    )
    assert (params["seed"], params["width"], params["height"]) == (2535254266, 1216, 832)
    assert params["model"] == "sd_xl_base_1.0"
    assert ignored_fields(result) == {
        "Face restoration": "CodeFormer",
        "FP8 weight": "Enable for SDXL",
        "Cache FP16 weight for LoRA": "True",
    }
    # A1111's default noise source is the GPU: the same seed does not give the same noise here.
    assert any("GPU" in note for note in result.notes)


def test_ddim_eta_maps_and_ancestral_eta_ensd_rng_do_not() -> None:
    (ddim,) = imported(A1111_DDIM).params
    assert (ddim["sampler"], ddim["schedule"], ddim["eta"], ddim["steps"]) == ("DDIM", "Automatic", 0.3, 50)
    assert ignored_fields(imported(A1111_DDIM)) == {}
    assert not any("GPU" in note for note in imported(A1111_DDIM).notes)  # RNG: CPU is what cauldron does

    result = imported(A1111_EXPONENTIAL)
    (params,) = result.params
    # The schedule in the legacy name wins over "Automatic", as in A1111 1.9+.
    assert (params["sampler"], params["schedule"]) == ("DPM++ 2M SDE", "Exponential")
    assert (params["width"], params["height"], params["cfg_scale"]) == (640, 448, 5.0)
    assert "eta" not in params
    assert ignored_fields(result) == {"Eta": "0.67", "RNG": "NV"}


def test_uniform_is_our_automatic() -> None:
    result = imported("a fox\nSteps: 12, Sampler: Euler, Schedule type: Uniform, CFG scale: 7, Seed: 3, Size: 512x512")
    assert (result.params[0]["sampler"], result.params[0]["schedule"]) == ("Euler", "Automatic")
    assert "A1111's Uniform schedule is cauldron's Automatic" in result.notes


def test_a1111_png_parameters_chunk() -> None:
    info = PngInfo()
    info.add_text("parameters", A1111_V110)  # as A1111's images.save_image_with_geninfo writes it
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(buffer, format="PNG", pnginfo=info)
    assert import_a1111(buffer.getvalue(), "00012-2535254266.png") == imported(A1111_V110)


def test_our_own_png_round_trips_what_it_records() -> None:
    # Consistency of our writer (media/png.py) and this reader; A1111's format itself is checked above.
    params = GenerationParams(
        prompt='a "quoted", multi\nline prompt: yes', negative_prompt="blurry, text", model="tiny-sd",
        sampler="DPM++ 2M", schedule="Karras", steps=7, cfg_scale=6.5, seed=1234, width=64, height=96, clip_skip=2,
    ).to_json_dict()  # fmt: skip
    text = png_text_chunks(params, {"model": "tiny-sd", "model_short_hash": "abc123def0"})["parameters"]
    result = imported(text)
    (back,) = result.params
    assert GenerationParams.model_validate(back).to_json_dict() == params
    assert result.ignored == []
    assert not any("GPU" in note for note in result.notes)
    ddim = GenerationParams(prompt="p", sampler="DDIM", eta=0.3, seed=5, width=64, height=64).to_json_dict()
    (back,) = imported(png_text_chunks(ddim, {})["parameters"]).params
    assert GenerationParams.model_validate(back).to_json_dict() == ddim


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"just a prompt, no parameters", "no A1111 parameters line"),
        (b"", "no A1111 parameters line"),
        (b"\xff\xfe\x00garbage\x80", "neither a PNG nor UTF-8 text"),
        (b'{"3": {"class_type": "KSampler"}}', "JSON"),
        (b"a cat\nSteps: many, Sampler: Euler, CFG scale: 7, Seed: 1", "Steps: 'many'"),
        (b"a cat\nSteps: 20, Sampler: Euler, CFG scale: 7, Size: big", "Size: 'big'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00truncated", "PNG cannot be read"),
    ],
)
def test_bad_input_is_a_clear_error(content: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        import_a1111(content, "x")


def test_png_without_parameters_names_the_chunks_it_has() -> None:
    info = PngInfo()
    info.add_text("prompt", "{}")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG", pnginfo=info)
    with pytest.raises(ValueError, match=r"no A1111 'parameters' text chunk \(text chunks: prompt\)"):
        import_a1111(buffer.getvalue(), "comfy.png")


def test_parameters_line_needs_three_pairs_and_keeps_unreadable_parts() -> None:
    # Fewer than three pairs: the line is part of the prompt, as in A1111.
    assert parse_infotext("a cat\nstyle: anime, mood: dark").prompt == "a cat\nstyle: anime, mood: dark"
    parsed = parse_infotext("a cat\nSteps: 4, stray words, Sampler: Euler, CFG scale: 7")
    assert parsed.fields == {"Steps": "4", "Sampler": "Euler", "CFG scale": "7"}
    assert parsed.unreadable == ["stray words"]
    assert ("stray words", "", "not a 'key: value' pair") in [
        (i.field, i.value, i.reason)
        for i in imported("a cat\nSteps: 4, stray words, Sampler: Euler, CFG scale: 7").ignored
    ]
