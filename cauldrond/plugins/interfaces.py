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
    its image records and returns files, plus a ``SkippedImage`` for each image it cannot express. Without
    ``export_experiment``, an experiment is exported image by image, and an image whose ``export_image`` raises
    ``ValueError`` is skipped with that reason. Both run on a worker thread; raise ``ValueError`` with a clear
    message for what the format cannot express (for a single image it reaches the client as ``invalid_params``)."""

    name: str
    description: str
    export_image: Callable[[Mapping[str, Any]], ExportedFile]
    export_experiment: (
        Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], Sequence[ExportedFile | SkippedImage]] | None
    ) = None


@dataclass(frozen=True)
class SkippedImage:
    """An image of an experiment that an exporter could not express: ``export_experiment`` may return these among
    its files, so the images that can be exported still are and the client is told why the others were not."""

    image_id: int
    reason: str


@dataclass(frozen=True)
class IgnoredField:
    """A setting the other tool's file holds that cauldron cannot reproduce: reported to the user, never dropped
    silently."""

    field: str
    value: str
    reason: str


@dataclass(frozen=True)
class Imported:
    """What an importer read: params dicts, the settings it had to leave out, and notes for the user."""

    params: list[dict[str, Any]]
    ignored: list[IgnoredField] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Importer:
    """Turns a file from another tool into generation params (``cauldronctl import FILE``).

    ``import_file(content, filename)`` returns one params dict per image the file describes (the fields of
    ``cauldrond.params.GenerationParams``), or an ``Imported`` that also names the settings it could not map;
    raise ``ValueError`` naming what is wrong with the file."""

    name: str
    description: str
    import_file: Callable[[bytes, str], list[dict[str, Any]] | Imported]


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
