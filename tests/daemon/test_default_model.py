"""The default_model setting: from TOML, environment or flag; used by every request that names no model; and
`cauldronctl models` points a user with real models at it. Real daemon, real models folder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cauldron_client import Client
from cauldron_client.cli import cli
from click.testing import CliRunner, Result

from cauldrond.config import ConfigError, load_settings
from cauldrond.daemon import Daemon
from cauldrond.models.tiny import create_tiny_model
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.waiting import finished

OTHER = "fox-sd"  # a second model in the folder: what a user's real checkpoint is to the daemon


def test_default_model_from_file_environment_and_flag(tmp_path: Path) -> None:
    config = tmp_path / "cauldron.toml"
    config.write_text('[cauldrond]\ndefault_model = "from-file"\n')
    assert load_settings(environ={}).default_model == "tiny-sd"
    assert load_settings(config, environ={}).default_model == "from-file"
    env = {"CAULDRON_DEFAULT_MODEL": "from-env"}
    assert load_settings(config, environ=env).default_model == "from-env"
    assert load_settings(config, environ=env, overrides={"default_model": "from-flag"}).default_model == "from-flag"
    with pytest.raises(ConfigError, match="default_model"):
        load_settings(environ={"CAULDRON_DEFAULT_MODEL": " "})


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("two-models")
    create_tiny_model(folder)
    create_tiny_model(folder, name=OTHER)
    return folder


async def _daemon(tmp_path: Path, models: Path, **settings: object) -> Daemon:
    daemon = Daemon(make_settings(tmp_path / "data", models, **settings))
    await daemon.start()
    return daemon


@pytest.fixture
async def fox_default(tmp_path: Path, two_models: Path) -> AsyncIterator[Client]:
    daemon = await _daemon(tmp_path, two_models, default_model=OTHER)
    try:
        async with Client(url_of(daemon), token_of(daemon)) as client:
            yield client
    finally:
        await daemon.stop()


async def test_requests_without_a_model_use_the_setting(fox_default: Client) -> None:
    client = fox_default
    listed = await client.call("models.list")
    assert listed["default_model"] == OTHER
    assert {m["name"] for m in listed["models"]} == {"tiny-sd", OTHER}

    params = {key: value for key, value in FAST.items() if key != "model"}
    generated = await client.call("generate", **params)
    swept = await client.call("experiments.create", base=params, axes={"steps": [2, 3]})
    converging = await client.call(
        "experiments.convergence", prompts=["a fox"], samplers=["Euler"], steps=[2, 3], base={"width": 64, "height": 64}
    )
    named = await client.call("generate", **params, model="tiny-sd")  # a model given is kept
    expected = {
        generated["experiment"]["id"]: {OTHER},
        swept["experiment"]["id"]: {OTHER},
        converging["experiment"]["id"]: {OTHER},
        named["experiment"]["id"]: {"tiny-sd"},
    }
    for experiment_id, models in expected.items():
        result = await finished(client, experiment_id)
        assert {job["params"]["model"] for job in result["jobs"]} == models
        assert result["experiment"]["counts"]["done"] == result["experiment"]["counts"]["total"]
    # The spec records the model it used, so the experiment reads the same after the setting changes.
    assert swept["experiment"]["spec"]["base"]["model"] == OTHER
    plan = await client.call("experiments.plan", base=params)
    assert plan["cells"] == 1 and plan["model_loads"] in (0, 1)


async def test_cauldronctl_models_suggests_the_first_real_model(tmp_path: Path, two_models: Path) -> None:
    daemon = await _daemon(tmp_path, two_models)
    try:
        runner = CliRunner()
        result = await _invoke(runner, ["--url", url_of(daemon), "--token", token_of(daemon), "models"])
    finally:
        await daemon.stop()
    assert result.exit_code == 0, result.output
    assert "default model: tiny-sd (used when no --model is given)" in result.stderr
    assert f"To use {OTHER} instead: cauldrond --default-model {OTHER}" in result.stderr
    assert f'default_model = "{OTHER}"' in result.stderr


async def _invoke(runner: CliRunner, args: list[str]) -> Result:
    # cauldronctl runs its own event loop: give it a thread, as a separate process would have.
    return await asyncio.to_thread(runner.invoke, cli, args, catch_exceptions=False)
