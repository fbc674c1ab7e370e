"""Real plugins for the tests, registered with the daemon through ``Daemon.extra_plugins`` exactly as an entry
point's object would be. Each is a small class so a test can give it its own events and counters."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from cauldrond.config import Settings
from cauldrond.plugins.hookspecs import hookimpl
from cauldrond.plugins.interfaces import ExportedFile, Exporter, Importer, RpcMethod
from cauldrond.plugins.runtime import PluginSource


def source(name: str, plugin: object, version: str = "1.0") -> PluginSource:
    return PluginSource(name, lambda: plugin, version)


class Tagger:
    """Tags each image from its prompt and describes it; the model of what an LLM tagger stores."""

    @hookimpl
    def cauldron_process_image(self, image: Mapping[str, Any], settings: Settings) -> dict[str, str]:
        assert Path(image["file"]).is_file()
        prompt = str(image["params"]["prompt"])
        return {"tags": ", ".join(prompt.split()[-2:]), "description": f"A picture of {prompt}."}


class AsyncTagger:
    """An ``async def`` post-processor and an ``async def`` registration hook."""

    @hookimpl
    async def cauldron_process_image(self, image: Mapping[str, Any]) -> dict[str, str]:
        await asyncio.sleep(0.01)
        return {"seed": str(image["seed"])}

    @hookimpl
    async def cauldron_register_rpc_methods(self, register: Callable[[RpcMethod], None]) -> None:
        await asyncio.sleep(0)
        register(RpcMethod("async_tagger.ping", EmptyParams, _pong, "Answers pong."))


class EmptyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


async def _pong(ctx: Any, params: EmptyParams) -> dict[str, str]:
    return {"answer": "pong"}


class Raiser:
    @hookimpl
    def cauldron_process_image(self, image: Mapping[str, Any]) -> dict[str, str]:
        raise RuntimeError(f"cannot handle image {image['id']}")


class Liar:
    """Returns something that is not annotations: rejected and recorded, never stored."""

    @hookimpl
    def cauldron_process_image(self, image: Mapping[str, Any]) -> Any:
        return {"huge": "x" * 100_000}


class Hanger:
    """Overruns its timeout (the test sets a short one for it): holds each call until the test sets ``release``
    or ``seconds`` pass. ``returned`` is set once a call has come back, so a test can tell it is still held."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.release = threading.Event()
        self.returned = threading.Event()

    @hookimpl
    def cauldron_process_image(self, image: Mapping[str, Any]) -> dict[str, str]:
        self.release.wait(self.seconds)
        self.returned.set()
        return {"late": "yes"}


class Blocker:
    """Holds its first call until the test releases it: shows generation goes on while a plugin is busy."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls: list[int] = []

    @hookimpl
    def cauldron_process_image(self, image: Mapping[str, Any]) -> dict[str, str]:
        self.calls.append(int(image["id"]))
        self.started.set()
        self.release.wait(60)
        return {"blocked": "released"}


class FailsAtRegistration:
    @hookimpl
    def cauldron_register_exporters(self, register: Callable[[Exporter], None]) -> None:
        raise RuntimeError("exporter setup failed")

    @hookimpl
    def cauldron_process_image(self, image: Mapping[str, Any]) -> dict[str, str]:
        return {"should": "never run"}


class WrongNamespace:
    @hookimpl
    def cauldron_register_rpc_methods(self, register: Callable[[RpcMethod], None]) -> None:
        register(RpcMethod("images.delete_all", EmptyParams, _pong))


class UnknownHook:
    @hookimpl
    def cauldron_frobnicate(self) -> None:
        """Not a cauldron hook."""


class TextFormat:
    """An exporter and an importer of a one-line text format: ``prompt|seed|steps``."""

    @hookimpl
    def cauldron_register_exporters(self, register: Callable[[Exporter], None]) -> None:
        register(Exporter("pipe", "prompt|seed|steps lines", _export_image))

    @hookimpl
    def cauldron_register_importers(self, register: Callable[[Importer], None]) -> None:
        register(Importer("pipe", "prompt|seed|steps lines", _import_file))


def _export_image(image: Mapping[str, Any]) -> ExportedFile:
    params = image["params"]
    if params["prompt"].startswith("unexportable"):
        raise ValueError("this prompt cannot be exported")
    line = f"{params['prompt']}|{params['seed']}|{params['steps']}\n"
    return ExportedFile(f"image-{image['id']}.txt", "text/plain", line.encode())


def _import_file(content: bytes, filename: str) -> list[dict[str, Any]]:
    cells = []
    for line in content.decode().splitlines():
        prompt, seed, steps = line.split("|")
        cells.append({"prompt": prompt, "seed": int(seed), "steps": int(steps), "width": 64, "height": 64,
                      "sampler": "Euler"})  # fmt: skip
    if not cells:
        raise ValueError("no lines")
    return cells


class ClaimsBuiltin:
    """Registers a built-in method's name (refused even when the plugin is called ``images``)."""

    @hookimpl
    def cauldron_register_rpc_methods(self, register: Callable[[RpcMethod], None]) -> None:
        register(RpcMethod("images.list", EmptyParams, _pong))


class Wrapper:
    @hookimpl(wrapper=True)
    def cauldron_process_image(self, image: Mapping[str, Any]) -> Any:
        result = yield
        return result
