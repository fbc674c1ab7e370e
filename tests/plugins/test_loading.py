"""Loading plugins one by one: failures at import or registration are isolated, listed and logged; the plugins
setting restricts what loads; async registration hooks are awaited."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import pytest

from cauldrond.config import Settings
from cauldrond.plugins.runtime import PluginSource, load_plugins
from tests.conftest import FAST, make_settings
from tests.plugins.conftest import StartDaemon
from tests.plugins.sample_plugins import (
    AsyncTagger,
    ClaimsBuiltin,
    FailsAtRegistration,
    Tagger,
    TextFormat,
    UnknownHook,
    WrongNamespace,
    source,
)
from tests.waiting import finished

BROKEN = PluginSource("broken", lambda: importlib.import_module("tests.plugins.broken_at_import"), "0.1")


def settings(tmp_path: Path, models_dir: Path, **overrides: object) -> Settings:
    return make_settings(tmp_path / "data", models_dir, **overrides)


async def test_broken_plugins_are_skipped_listed_and_the_daemon_serves(
    start_daemon: StartDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    plugins = [
        BROKEN,
        source("fails_at_registration", FailsAtRegistration()),
        source("wrong_namespace", WrongNamespace()),
        source("unknown_hook", UnknownHook()),
        source("tagger", Tagger(), "2.5"),
    ]
    with caplog.at_level(logging.ERROR, logger="cauldrond.plugins.runtime"):
        async with start_daemon(plugins) as (daemon, client):
            listed = {p["name"]: p for p in (await client.call("plugins.list"))["plugins"]}
            assert listed["diffusers"]["status"] == "loaded"
            assert "cauldron_register_providers" in listed["diffusers"]["hooks"]
            assert listed["tagger"] == {
                "name": "tagger",
                "version": "2.5",
                "status": "loaded",
                "error": None,
                "hooks": ["cauldron_process_image"],
                "configured": True,  # it has no cauldron_check_configuration: nothing to configure
                "not_configured": None,
                "postprocess": {"ok": 0, "failed": 0, "timeout": 0, "last_error": None},
            }
            assert listed["broken"]["status"] == "failed"
            assert listed["broken"]["error"] == "import failed: RuntimeError: this plugin is broken at import"
            assert listed["fails_at_registration"]["status"] == "failed"
            assert "exporter setup failed" in listed["fails_at_registration"]["error"]
            assert listed["wrong_namespace"]["status"] == "failed"
            assert "wrong_namespace.<verb>" in listed["wrong_namespace"]["error"]
            assert "cauldron_frobnicate" in listed["unknown_hook"]["error"]

            # The daemon serves and generates; only the plugin that loaded post-processes.
            created = await client.call("generate", **FAST, seed=3)
            experiment = await finished(client, created["experiment"]["id"])
            image_id = experiment["jobs"][0]["image_id"]
            assert daemon.services is not None and daemon.services.postprocess is not None
            assert await daemon.services.postprocess.wait_idle(30)
            found = await client.call("images.annotations", image_id=image_id)
            assert set(found["annotations"]) == {"tagger"}
            assert [run["plugin"] for run in found["runs"]] == ["tagger"]
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("plugin broken skipped: it raised at import") for line in lines), lines
    assert any(line.startswith("plugin fails_at_registration skipped") for line in lines), lines


async def test_a_failed_plugin_leaves_nothing_registered(tmp_path: Path, models_dir: Path) -> None:
    runtime = await load_plugins(
        settings(tmp_path, models_dir), load_entry_points=False, extra_plugins=[source("x", FailsAtRegistration())]
    )
    assert runtime.hookimpls("cauldron_process_image") == []
    assert not runtime.catalogue.exporters and not runtime.providers


async def test_rpc_methods_are_namespaced_and_cannot_take_builtin_names(tmp_path: Path, models_dir: Path) -> None:
    runtime = await load_plugins(
        settings(tmp_path, models_dir),
        load_entry_points=False,
        reserved_methods=["images.list"],
        extra_plugins=[source("taker", ClaimsBuiltin()), source("images", ClaimsBuiltin())],
    )
    assert runtime.statuses["taker"].status == "failed"
    assert "taker.<verb>" in (runtime.statuses["taker"].error or "")
    # Even in its own namespace a plugin cannot take a built-in name.
    assert runtime.statuses["images"].status == "failed"
    assert "already registered" in (runtime.statuses["images"].error or "")
    assert not runtime.catalogue.rpc_methods


async def test_async_registration_hook_is_awaited_and_its_method_answers(start_daemon: StartDaemon) -> None:
    async with start_daemon([source("async_tagger", AsyncTagger())]) as (_, client):
        assert await client.call("async_tagger.ping") == {"answer": "pong"}
        described = {m["name"]: m for m in (await client.call("rpc.describe"))["methods"]}
        assert described["async_tagger.ping"]["doc"] == "[plugin async_tagger] Answers pong."


async def test_the_plugins_setting_restricts_what_loads(
    tmp_path: Path, models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    extra = [source("tagger", Tagger()), source("pipe", TextFormat())]
    runtime = await load_plugins(settings(tmp_path, models_dir, plugins="diffusers, pipe"), extra_plugins=extra)
    assert runtime.statuses["diffusers"].status == "loaded"
    assert runtime.statuses["pipe"].status == "loaded"
    assert runtime.statuses["tagger"].status == "disabled"
    assert runtime.hookimpls("cauldron_process_image") == []
    assert runtime.providers.names == ["diffusers"]

    with caplog.at_level(logging.WARNING, logger="cauldrond.plugins.runtime"):
        runtime = await load_plugins(settings(tmp_path, models_dir, plugins="tagger,nonesuch"), extra_plugins=extra)
    assert runtime.statuses["diffusers"].status == "disabled"
    assert runtime.statuses["tagger"].status == "loaded"
    assert not runtime.providers
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "'nonesuch', which is not installed" in messages
    assert "excludes the built-in 'diffusers' provider" in messages


async def test_restriction_comes_from_the_environment(tmp_path: Path) -> None:
    from cauldrond.config import load_settings

    loaded = load_settings(environ={"CAULDRON_PLUGINS": "diffusers", "CAULDRON_DATA_DIR": str(tmp_path)})
    runtime = await load_plugins(loaded, extra_plugins=[source("tagger", Tagger())])
    assert runtime.statuses["tagger"].status == "disabled"


async def test_hook_wrappers_are_refused(tmp_path: Path, models_dir: Path) -> None:
    from tests.plugins.sample_plugins import Wrapper

    runtime = await load_plugins(
        settings(tmp_path, models_dir), load_entry_points=False, extra_plugins=[source("wrapper", Wrapper())]
    )
    assert runtime.statuses["wrapper"].status == "failed"
    assert "hook wrappers" in (runtime.statuses["wrapper"].error or "")
    assert runtime.hookimpls("cauldron_process_image") == []
