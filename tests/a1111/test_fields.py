"""Every txt2img field gets the behaviour docs/a1111-api.md documents: refused fields answer 422 naming the
field and queue nothing; ignored fields change nothing in the image; limits are the RPC's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from cauldrond.a1111.translate import RULES
from tests.a1111.conftest import DaemonThread, a1111_experiments
from tests.a1111.helpers import FAST, decode_png

TIMEOUT_S = 120.0
DOC = Path(__file__).resolve().parents[2] / "docs" / "a1111-api.md"

# A value that asks for the feature, per refused field (what a client sends to turn it on).
ACTIVE = {
    "enable_hr": True,
    "restore_faces": True,
    "tiling": True,
    "subseed_strength": 0.5,
    "seed_resize_from_h": 768,
    "seed_resize_from_w": 768,
    "refiner_checkpoint": "sdxl-refiner",
    "alwayson_scripts": {"ADetailer": {"args": [True]}},
    "styles": ["cinematic"],
    "firstpass_image": "iVBORw0KGgo=",
    "infotext": "a cat\nSteps: 20, Sampler: Euler, Seed: 1",
    "s_churn": 0.5,
    "s_noise": 0.9,
    "s_min_uncond": 0.2,
    "disable_extra_networks": True,
}
# Values far from the defaults, per ignored field: A1111 ignores them too without the feature they belong to.
IGNORED_VALUES = {
    "subseed": 99,
    "s_tmin": 0.5,
    "s_tmax": 10.0,
    "refiner_switch_at": 0.5,
    "denoising_strength": 0.2,
    "firstphase_width": 128,
    "firstphase_height": 128,
    "hr_scale": 4,
    "hr_upscaler": "R-ESRGAN 4x+",
    "hr_second_pass_steps": 9,
    "hr_resize_x": 1024,
    "hr_resize_y": 1024,
    "hr_checkpoint_name": "other",
    "hr_sampler_name": "DDIM",
    "hr_scheduler": "karras",
    "hr_prompt": "other prompt",
    "hr_negative_prompt": "other negative",
    "override_settings_restore_afterwards": False,
    "do_not_save_samples": True,
    "do_not_save_grid": True,
    "comments": {"note": "hello"},
    "force_task_id": "task(abc)",
}


def post(daemon: DaemonThread, body: Any, **kwargs: Any) -> requests.Response:
    return requests.post(
        f"{daemon.api}/txt2img", auth=("user", daemon.token), timeout=TIMEOUT_S, **({"json": body} | kwargs)
    )


def assert_refused(daemon: DaemonThread, body: Any, field: str, status: int = 422, **kwargs: Any) -> dict[str, Any]:
    before = a1111_experiments(daemon)
    queued_before = daemon.rpc("queue.list")["total"]
    reply = post(daemon, body, **kwargs)
    assert reply.status_code == status, (field, reply.status_code, reply.text)
    error = reply.json()
    assert set(error) == {"error", "detail", "body", "errors"}
    if status == 422 and field:
        assert error["detail"][0]["loc"] == ["body", *field.split(".")], error
        assert error["errors"].startswith(f"{field}: "), error
    # Nothing was queued or created, and what was there is unchanged.
    assert a1111_experiments(daemon) == before
    assert daemon.rpc("queue.list")["total"] == queued_before
    result: dict[str, Any] = error
    return result


def test_the_rules_cover_every_field_and_the_doc_table_matches_them() -> None:
    assert set(ACTIVE) == {name for name, rule in RULES.items() if rule.treatment == "refused"}
    assert set(IGNORED_VALUES) == {name for name, rule in RULES.items() if rule.treatment == "ignored"}
    rows = dict(re.findall(r"^\| `(\w+)` \| (supported|refused|ignored)", DOC.read_text(), flags=re.MULTILINE))
    assert rows == {name: rule.treatment for name, rule in RULES.items()}


@pytest.mark.parametrize("field", sorted(ACTIVE))
def test_a_refused_field_is_named_and_queues_nothing(a1111: DaemonThread, field: str) -> None:
    assert_refused(a1111, {"prompt": "x", **FAST, field: ACTIVE[field]}, field)


def test_refused_fields_in_their_off_state_are_accepted_and_ignored_fields_change_nothing(a1111: DaemonThread) -> None:
    # What webuiapi and SillyTavern send for features they do not use.
    off = {"enable_hr": False, "restore_faces": False, "tiling": False, "subseed_strength": 0, "styles": []}
    off |= {"seed_resize_from_h": -1, "seed_resize_from_w": 0, "refiner_checkpoint": "None", "alwayson_scripts": {}}
    off |= {"s_churn": 0, "s_noise": 1, "s_min_uncond": 0, "infotext": None, "firstpass_image": None}
    off |= {"disable_extra_networks": False}
    plain = post(a1111, {"prompt": "same", "seed": 31, **FAST})
    busy = post(a1111, {"prompt": "same", "seed": 31, **FAST, **off, **IGNORED_VALUES})
    assert plain.status_code == busy.status_code == 200, busy.text
    first = decode_png(plain.json()["images"][0])
    second = decode_png(busy.json()["images"][0])
    assert first.tobytes() == second.tobytes()
    assert busy.json()["parameters"]["hr_scale"] == 4  # echoed as sent, as A1111 echoes its request


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"override_settings": {"eta_noise_seed_delta": 31337}}, "override_settings.eta_noise_seed_delta"),
        ({"override_settings": {"sd_vae": "vae-ft-mse-840000.safetensors"}}, "override_settings.sd_vae"),
        ({"override_settings": {"sd_model_checkpoint": "no-such-model"}}, "override_settings.sd_model_checkpoint"),
        ({"override_settings": {"CLIP_stop_at_last_layers": 13}}, "override_settings.CLIP_stop_at_last_layers"),
        ({"override_settings": "not an object"}, "override_settings"),
        ({"script_name": "img2img alternative test"}, "script_name"),
        ({"sampler_name": "Euler b"}, "sampler_name"),
        ({"scheduler": "beta"}, "scheduler"),
        ({"width": 4104}, "width"),
        ({"height": 65}, "height"),
        ({"steps": 0}, "steps"),
        ({"cfg_scale": "lots"}, "cfg_scale"),
        ({"seed": -2}, "seed"),
        ({"batch_size": 4, "n_iter": 4}, "n_iter"),  # 16 images over max_cells = 12
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_values_are_named(a1111: DaemonThread, body: dict[str, Any], field: str) -> None:
    assert_refused(a1111, {"prompt": "x", **FAST, **body}, field)


def test_override_settings_that_ask_for_nothing_are_accepted(a1111: DaemonThread) -> None:
    body = {"prompt": "x", **FAST, "override_settings": {"sd_vae": "Automatic", "samples_format": "png"}}
    assert post(a1111, body).status_code == 200


def test_body_limits(a1111: DaemonThread) -> None:
    assert_refused(a1111, None, "", status=413, data=b"{" + b" " * (1024 * 1024 + 1) + b"}")
    assert_refused(a1111, None, "", status=422, data=b"not json")
    assert_refused(a1111, None, "", status=422, data=json.dumps([1, 2]).encode())


@pytest.mark.parametrize(
    "body",
    [{}, {"image": 5}, {"image": "not base64 at all!"}, {"image": "aGVsbG8gd29ybGQ="}],  # last: "hello world"
)
def test_png_info_refuses_what_is_not_an_image(a1111: DaemonThread, body: dict[str, Any]) -> None:
    reply = requests.post(f"{a1111.api}/png-info", json=body, auth=("u", a1111.token), timeout=TIMEOUT_S)
    assert reply.status_code == 422, reply.text
    assert reply.json()["detail"][0]["loc"] == ["body", "image"]
