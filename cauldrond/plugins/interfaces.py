"""What plugins hand to the daemon through the ``register(...)`` callbacks of the collecting hooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class ExportedFile:
    """One exported artefact: bytes plus what a client needs to save or serve it."""

    filename: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class Exporter:
    """A format an image or a whole experiment can be exported to (``cauldronctl export --format NAME``).

    ``export_image(image)`` gets one image record (the ``images.get`` shape, with ``file`` the absolute path to
    its PNG) and returns one file; ``export_experiment(experiment, images)`` gets the experiment record and all
    its image records. Both run on a worker thread; raise ``ValueError`` with a clear message for what the format
    cannot express (it is reported to the client as ``invalid_params``)."""

    name: str
    description: str
    export_image: Callable[[Mapping[str, Any]], ExportedFile]
    export_experiment: Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], list[ExportedFile]] | None = None


@dataclass(frozen=True)
class Importer:
    """Turns a file from another tool into generation params (``cauldronctl import FILE``).

    ``import_file(content, filename)`` returns one params dict per image the file describes (the fields of
    ``cauldrond.params.GenerationParams``); raise ``ValueError`` naming what cannot be mapped."""

    name: str
    description: str
    import_file: Callable[[bytes, str], list[dict[str, Any]]]


RpcHandler = Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True)
class RpcMethod:
    """An RPC method a plugin adds. Its name must start with the plugin's namespace: ``"<namespace>.<verb>"``."""

    name: str
    params: type[BaseModel]
    handler: RpcHandler
    doc: str = ""


@dataclass(frozen=True)
class Annotations:
    """What a post-processor found about one image: ``{key: value}`` strings, stored per image and plugin."""

    values: Mapping[str, str] = field(default_factory=dict)
