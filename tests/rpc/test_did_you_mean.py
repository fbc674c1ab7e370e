"""Unknown samplers, schedules, models and axes: the error names what was probably meant and where the choices
are listed, and nothing is queued. Real daemon, real WebSocket."""

from __future__ import annotations

from typing import Any

import pytest
from cauldron_client import Client, RpcError
from cauldron_client.cli import error_line

from cauldrond.suggestions import close_matches, did_you_mean
from tests.conftest import FAST

# A1111's sampler names (modules/sd_samplers_kdiffusion.py, 1.9+), typed here rather than read from our table.
A1111_SAMPLERS = [
    "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE",
    "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM fast", "DPM adaptive", "Restart",
]  # fmt: skip


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("DPM++2M", ["DPM++ 2M"]),  # only the spacing differs: that one alone
        ("euler A", ["Euler a"]),
        ("dpm++ 2m sde", ["DPM++ 2M SDE"]),
        ("Eulr", ["Euler", "Euler a"]),  # a typo: the close ones, best first
        ("lighthouse", []),  # nothing close: no guess
    ],
)
def test_close_matches(typed: str, meant: list[str]) -> None:
    assert close_matches(typed, A1111_SAMPLERS) == meant


def test_did_you_mean_wording() -> None:
    assert did_you_mean(["DPM++ 2M"]) == "did you mean 'DPM++ 2M'?"
    assert did_you_mean(["a", "b", "c"]) == "did you mean 'a', 'b' or 'c'?"
    assert did_you_mean([]) == ""


async def _refused(client: Client, method: str, **params: Any) -> RpcError:
    before = await client.call("experiments.list")
    with pytest.raises(RpcError) as caught:
        await client.call(method, **params)
    assert caught.value.code == "invalid_params"
    assert await client.call("experiments.list") == before  # nothing was created
    queue = await client.call("queue.list")
    assert queue["total"] == 0 and queue["running"] == []
    return caught.value


async def test_unknown_sampler_suggests_and_names_the_list(client: Client) -> None:
    error = await _refused(client, "generate", **{**FAST, "sampler": "DPM++2M"})
    assert error.data["suggestions"] == ["DPM++ 2M"]
    assert error.data["choices"] == "samplers.list"
    assert "did you mean 'DPM++ 2M'? (samplers.list lists them)" in error.message
    line, code = error_line(error)
    expected = "error: unknown sampler 'DPM++2M' — did you mean 'DPM++ 2M'? (cauldronctl samplers lists them)"
    assert (line, code) == (expected, 2)


async def test_combined_sampler_names_are_suggested_with_their_schedule(client: Client) -> None:
    error = await _refused(client, "generate", **{**FAST, "sampler": "DPM++2M karas"})
    assert "DPM++ 2M Karras" in error.data["suggestions"]


async def test_unknown_schedule_and_model_and_axis(client: Client) -> None:
    schedule = await _refused(client, "generate", **{**FAST, "sampler": "DPM++ 2M", "schedule": "karas"})
    assert schedule.data["suggestions"] == ["Karras"] and schedule.data["choices"] == "samplers.list"

    model = await _refused(client, "generate", **{**FAST, "model": "Tiny_SD"})
    assert model.data["suggestions"] == ["tiny-sd"] and model.data["choices"] == "models.list"
    assert error_line(model)[0] == (
        "error: unknown model 'Tiny_SD' — did you mean 'tiny-sd'? (cauldronctl models lists them)"
    )

    axis = await _refused(client, "experiments.create", base=FAST, axes={"step": [2, 3]})
    assert axis.data["suggestions"] == ["steps"]
    # No RPC method lists the axes, so the daemon's own message (which lists them) is what the CLI prints.
    line, _ = error_line(axis)
    assert line.startswith("error: invalid_params: unknown axis 'step'; did you mean 'steps'?; valid axes: prompt,")

    in_axis = await _refused(client, "experiments.create", base=FAST, axes={"sampler": ["Euler", "Eulr a"]})
    assert in_axis.data["problem"] == "axis 'sampler': unknown sampler 'Eulr a'"
    assert in_axis.data["suggestions"][0] == "Euler a"
