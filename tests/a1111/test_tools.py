"""Raw HTTP in the exact shapes Open WebUI and SillyTavern send, answered as those tools read the replies.

Open WebUI (backend/open_webui/routers/images.py): an ``authorization: Basic`` header from "user:password",
GET options for the current model, GET sd-models mapped to title/model_name, a model switch that posts the
whole options dict back, and a txt2img body of prompt, batch_size, width, height, steps, negative_prompt.
SillyTavern (src/endpoints/stable-diffusion.js and its extension's generateAutoImage): Basic from its "auth"
string, GET options as a ping, samplers/schedulers/sd-models/upscalers/latent-upscale-modes/sd-vae listings,
a model switch followed by progress polls until idle, and a txt2img body that also carries its own ``url``
and ``auth`` (the password), which must never be echoed back."""

from __future__ import annotations

import base64
import json
from typing import Any

import requests

from tests.a1111.conftest import DaemonThread
from tests.a1111.helpers import decode_png, infotext_fields

TIMEOUT_S = 120.0


def open_webui_auth(daemon: DaemonThread) -> dict[str, str]:
    # get_automatic1111_api_auth: base64 of AUTOMATIC1111_API_AUTH ("user:password"), lower-case header name.
    return {"authorization": "Basic " + base64.b64encode(f"owui:{daemon.token}".encode()).decode()}


def test_open_webui(a1111: DaemonThread) -> None:
    headers = open_webui_auth(a1111)
    base = a1111.url
    # verify_url: GET options must succeed.
    options = requests.get(f"{base}/sdapi/v1/options", headers=headers, timeout=TIMEOUT_S)
    options.raise_for_status()
    current = options.json()["sd_model_checkpoint"]
    models = requests.get(f"{base}/sdapi/v1/sd-models", headers=headers, timeout=TIMEOUT_S).json()
    listed = [{"id": model["title"], "name": model["model_name"]} for model in models]
    assert {"id": current, "name": "tiny-sd"} in listed
    # set_image_model: the whole options dict goes back with the model changed (here: set to the same title).
    changed = dict(options.json(), sd_model_checkpoint=listed[0]["id"])
    posted = requests.post(f"{base}/sdapi/v1/options", json=changed, headers=headers, timeout=TIMEOUT_S)
    posted.raise_for_status()
    data = {"prompt": "a watercolor fox", "batch_size": 2, "width": 64, "height": 64, "steps": 2}
    data["negative_prompt"] = "text"
    reply = requests.post(f"{base}/sdapi/v1/txt2img", json=data, headers=headers, timeout=TIMEOUT_S)
    res = reply.json()
    assert reply.status_code == 200, res
    assert len(res["images"]) == 2
    for image in res["images"]:
        assert decode_png(image).size == (64, 64)
    info = json.loads(res["info"])
    assert info["prompt"] == "a watercolor fox" and info["negative_prompt"] == "text"


def sillytavern_auth(daemon: DaemonThread) -> dict[str, str]:
    # getBasicAuthHeader(auth): Buffer.from(`${auth}`).toString('base64') of the "user:password" setting.
    return {"Authorization": "Basic " + base64.b64encode(f"tavern:{daemon.token}".encode()).decode()}


def test_sillytavern(a1111: DaemonThread) -> None:
    headers = sillytavern_auth(a1111)
    base = a1111.url

    def get(path: str) -> Any:
        reply = requests.get(f"{base}/sdapi/v1/{path}", headers=headers, timeout=TIMEOUT_S)
        assert reply.ok, (path, reply.status_code, reply.text)
        return reply.json()

    get("options")  # /ping
    sampler_names = [x["name"] for x in get("samplers")]
    assert {"Euler a", "DPM++ 2M", "DDIM"} <= set(sampler_names)
    scheduler_names = [x["name"] for x in get("schedulers")]
    assert {"automatic", "karras", "exponential"} <= set(scheduler_names)
    models = [{"value": x["title"], "text": x["title"]} for x in get("sd-models")]
    upscalers = [x["name"] for x in get("upscalers")] + [x["name"] for x in get("latent-upscale-modes")]
    assert upscalers == []  # no upscalers: the list is truthful, and still a list the tool can splice
    assert [x["model_name"] for x in get("sd-vae")] == []
    assert get("options")["sd_model_checkpoint"] in [m["value"] for m in models]
    # /set-model: post the choice, then poll progress until progress is 0 and job_count is 0.
    posted = requests.post(
        f"{base}/sdapi/v1/options",
        data=json.dumps({"sd_model_checkpoint": models[0]["value"]}),
        headers={"Content-Type": "application/json", **headers},
        timeout=TIMEOUT_S,
    )
    assert posted.ok, posted.text
    progress = get("progress")
    assert progress["progress"] == 0.0 and progress["state"]["job_count"] == 0
    # generateAutoImage's body through /api/sd/generate, which forwards request.body as it is.
    body = {
        "url": base,
        "auth": f"tavern:{a1111.token}",
        "prompt": "a knight in a tavern",
        "negative_prompt": "lowres",
        "sampler_name": "DPM++ 2M",
        "scheduler": "karras",
        "steps": 2,
        "cfg_scale": 7,
        "width": 64,
        "height": 64,
        "restore_faces": False,
        "enable_hr": False,
        "hr_upscaler": "Latent",
        "hr_scale": 2,
        "denoising_strength": 0.7,
        "hr_second_pass_steps": 0,
        "override_settings": {"CLIP_stop_at_last_layers": 1},
        "override_settings_restore_afterwards": True,
        "clip_skip": 1,
        "save_images": True,
        "send_images": True,
        "do_not_save_grid": False,
        "do_not_save_samples": False,
    }
    reply = requests.post(
        f"{base}/sdapi/v1/txt2img",
        data=json.dumps(body),
        headers={"Content-Type": "application/json", **headers},
        timeout=TIMEOUT_S,
    )
    assert reply.ok, reply.text
    data = reply.json()
    assert decode_png(data["images"][0]).size == (64, 64)  # { format: 'png', data: data.images[0] }
    fields = infotext_fields(json.loads(data["info"])["infotexts"][0])
    assert fields["Sampler"] == "DPM++ 2M" and fields["Schedule type"] == "Karras"
    # The tool's own keys, its password among them, are not echoed back.
    assert a1111.token not in reply.text
    assert "auth" not in data["parameters"] and "url" not in data["parameters"]
