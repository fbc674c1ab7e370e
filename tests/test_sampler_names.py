"""Sampler labels against AUTOMATIC1111's own sampler list, for the daemon and the client alike."""

from __future__ import annotations

import pytest
from cauldron_client.sampler_names import a1111_sampler_name as client_name
from cauldron_client.sampler_names import sampler_name_of as client_name_of

from cauldrond.providers.diffusers.samplers import SAMPLERS
from cauldrond.sampler_names import a1111_sampler_name, sampler_name_of, split_sampler_name

# (sampler, schedule) -> the label A1111's sampler list gives it. Copied from AUTOMATIC1111/stable-diffusion-webui
# modules/sd_samplers_kdiffusion.py (samplers_k_diffusion: 'DPM++ 2M Karras' is sample_dpmpp_2m with
# {'scheduler': 'karras'}), plus the Exponential entries its 1.6 release added; before 1.9 these were the names.
A1111_NAMES = {
    ("Euler a", "Automatic"): "Euler a",
    ("Euler", "Automatic"): "Euler",
    ("LMS", "Automatic"): "LMS",
    ("Heun", "Automatic"): "Heun",
    ("DPM2", "Automatic"): "DPM2",
    ("DPM2 a", "Automatic"): "DPM2 a",
    ("DPM++ 2S a", "Automatic"): "DPM++ 2S a",
    ("DPM++ 2M", "Automatic"): "DPM++ 2M",
    ("DPM++ SDE", "Automatic"): "DPM++ SDE",
    ("DPM++ 2M SDE", "Automatic"): "DPM++ 2M SDE",
    ("DPM++ 3M SDE", "Automatic"): "DPM++ 3M SDE",
    ("LMS", "Karras"): "LMS Karras",
    ("DPM2", "Karras"): "DPM2 Karras",
    ("DPM2 a", "Karras"): "DPM2 a Karras",
    ("DPM++ 2S a", "Karras"): "DPM++ 2S a Karras",
    ("DPM++ 2M", "Karras"): "DPM++ 2M Karras",
    ("DPM++ SDE", "Karras"): "DPM++ SDE Karras",
    ("DPM++ 2M SDE", "Karras"): "DPM++ 2M SDE Karras",
    ("DPM++ 2M SDE", "Exponential"): "DPM++ 2M SDE Exponential",
    ("DPM++ 3M SDE", "Karras"): "DPM++ 3M SDE Karras",
    ("DPM++ 3M SDE", "Exponential"): "DPM++ 3M SDE Exponential",
    ("DDIM", "Automatic"): "DDIM",
    ("PLMS", "Automatic"): "PLMS",
    ("UniPC", "Automatic"): "UniPC",
}


@pytest.mark.parametrize(("pair", "expected"), sorted(A1111_NAMES.items()), ids=lambda v: str(v))
def test_labels_are_a1111s_names(pair: tuple[str, str], expected: str) -> None:
    sampler, schedule = pair
    assert sampler in SAMPLERS and schedule in SAMPLERS[sampler].schedules, "we offer what A1111 offered"
    assert a1111_sampler_name(sampler, schedule) == expected
    assert client_name(sampler, schedule) == expected
    params = {"sampler": sampler, "schedule": schedule, "steps": 20}
    assert sampler_name_of(params) == client_name_of(params) == expected


def test_daemon_and_client_agree_on_every_sampler_and_schedule_we_offer() -> None:
    for sampler, spec in SAMPLERS.items():
        for schedule in spec.schedules:
            name = a1111_sampler_name(sampler, schedule)
            assert client_name(sampler, schedule) == name
            # Two schedules of one sampler never share a label: that merge is what the labels exist to prevent.
            assert name == sampler if schedule == "Automatic" else name == f"{sampler} {schedule}"


def test_odd_inputs() -> None:
    # A legacy combined name is not named twice; a missing schedule is the automatic one.
    assert a1111_sampler_name("DPM++ 2M Karras", "Karras") == "DPM++ 2M Karras"
    assert a1111_sampler_name("DPM++ 2M", None) == "DPM++ 2M"
    assert a1111_sampler_name("DPM++ 2M", "automatic") == "DPM++ 2M"
    assert sampler_name_of({"sampler": "Euler"}) == client_name_of({"sampler": "Euler"}) == "Euler"


def test_every_a1111_label_reads_back_as_its_sampler_and_schedule() -> None:
    # The one parser, as experiment creation and the provider call it: A1111's own labels (above) split back.
    suffixes = {"Karras": "Karras", "Exponential": "Exponential"}
    for (sampler, schedule), label in A1111_NAMES.items():
        expected = (sampler, None if schedule == "Automatic" else schedule)
        assert split_sampler_name(label, suffixes, list(SAMPLERS)) == expected
        assert split_sampler_name(f"  {label.lower()} ", suffixes, list(SAMPLERS)) == expected, "any case, spaces"
    assert split_sampler_name("Euler b", suffixes, list(SAMPLERS)) is None
    assert split_sampler_name("Karras", suffixes, list(SAMPLERS)) is None


def test_without_a_sampler_list_any_name_splits_off_the_longest_schedule() -> None:
    # As the infotext importer reads names of samplers it may not have: A1111's "SGM Uniform" is one schedule.
    suffixes = {"Uniform": "Uniform", "SGM Uniform": "SGM Uniform", "SGMUniform": "SGM Uniform"}
    assert split_sampler_name("Euler a SGM Uniform", suffixes) == ("Euler a", "SGM Uniform")
    assert split_sampler_name("Restart SGMUniform", suffixes) == ("Restart", "SGM Uniform")
    assert split_sampler_name("Euler a", suffixes) == ("Euler a", None)
    assert split_sampler_name("Uniform", suffixes) == ("Uniform", None)
