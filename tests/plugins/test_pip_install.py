"""A third-party plugin built in a temporary folder, installed with pip into this environment (offline), found
through its entry point, then uninstalled: after a restart it is gone."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cauldron_client.errors import RpcError

from tests.conftest import FAST
from tests.plugins.conftest import StartDaemon
from tests.waiting import finished

DIST = "cauldron-pip-test-plugin"
MODULE = "cauldron_pip_test_plugin"
NAME = "pip_test"

PYPROJECT = f"""
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{DIST}"
version = "0.7.1"

[project.entry-points.cauldron]
{NAME} = "{MODULE}"

[tool.setuptools]
py-modules = ["{MODULE}"]
"""

PLUGIN = """
from pydantic import BaseModel, ConfigDict

from cauldrond.plugins.hookspecs import hookimpl
from cauldrond.plugins.interfaces import RpcMethod


class EchoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


async def echo(ctx, params):
    return {"echo": params.text}


@hookimpl
def cauldron_register_rpc_methods(register, settings):
    register(RpcMethod("pip_test.echo", EchoParams, echo, "Repeats text."))


@hookimpl
def cauldron_process_image(image, settings):
    greeting = settings.plugin_config("pip_test").get("greeting", "hello")
    return {"note": f"{greeting} {image['seed']}"}
"""


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--no-input"],
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[None]:
    folder = tmp_path / "plugin-src"
    folder.mkdir()
    (folder / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (folder / f"{MODULE}.py").write_text(textwrap.dedent(PLUGIN))
    try:
        pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(folder))
        importlib.invalidate_caches()
        yield
    finally:
        # Also after a failure: the plugin must not stay in the shared environment.
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "-y", DIST], capture_output=True, timeout=300, check=False
        )
        sys.modules.pop(MODULE, None)
        importlib.invalidate_caches()


@pytest.mark.slow
async def test_pip_installed_plugin_loads_runs_and_goes_away(installed_plugin: None, start_daemon: StartDaemon) -> None:
    config = {"pip_test": {"greeting": "hi"}}
    async with start_daemon(plugins="diffusers,pip_test", plugin_settings=config) as (daemon, client):
        listed = {p["name"]: p for p in (await client.call("plugins.list"))["plugins"]}
        assert listed[NAME]["status"] == "loaded" and listed[NAME]["version"] == "0.7.1"
        assert listed[NAME]["hooks"] == ["cauldron_process_image", "cauldron_register_rpc_methods"]
        assert await client.call("pip_test.echo", text="ping") == {"echo": "ping"}

        created = await client.call("generate", **FAST, seed=42)
        experiment = await finished(client, created["experiment"]["id"])
        assert daemon.services is not None and daemon.services.postprocess is not None
        assert await daemon.services.postprocess.wait_idle(30)
        found = await client.call("images.annotations", image_id=experiment["jobs"][0]["image_id"])
        assert found["annotations"] == {NAME: {"note": "hi 42"}}

    pip("uninstall", "-y", DIST)
    sys.modules.pop(MODULE, None)
    importlib.invalidate_caches()
    async with start_daemon(plugins="") as (_, client):
        names = [p["name"] for p in (await client.call("plugins.list"))["plugins"]]
        assert NAME not in names and "diffusers" in names
        with pytest.raises(RpcError) as caught:
            await client.call("pip_test.echo", text="ping")
        assert caught.value.code == "method_not_found"
