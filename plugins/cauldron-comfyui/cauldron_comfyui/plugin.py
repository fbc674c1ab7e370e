"""Entry point (``[project.entry-points.cauldron] comfyui``): three export formats and one importer.

- ``comfyui``: the UI-format workflow (``image-<id>.comfyui.json``), the file to drop onto ComfyUI;
- ``comfyui-api``: the API-format graph (``image-<id>.comfyui-api.json``), for ``POST /prompt`` and scripts;
- ``comfyui-png``: the image's own PNG with ComfyUI's ``prompt`` and ``workflow`` chunks added
  (``image-<id>.comfyui.png``); ComfyUI loads the workflow when the PNG is dropped onto it.

The importer ``comfyui`` takes any of these (and ComfyUI's own saves) back to params."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cauldron_comfyui.export_api import to_api
from cauldron_comfyui.export_ui import to_ui
from cauldron_comfyui.graph import build_graph, normalise_params
from cauldron_comfyui.importer import import_file
from cauldron_comfyui.png_chunks import with_text_chunks
from cauldrond.config import Settings
from cauldrond.plugins.hookspecs import hookimpl
from cauldrond.plugins.interfaces import ExportedFile, Exporter, Importer, SkippedImage

JSON = "application/json"


def _dumps(document: Any) -> bytes:
    # ASCII JSON, as ComfyUI writes it: safe in a Latin-1 tEXt chunk whatever the prompt's script.
    return json.dumps(document, indent=2).encode("ascii")


def workflow_for(params: Mapping[str, Any], seed: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(ui_workflow, api_prompt)`` for one image's params; ``ValueError`` for what ComfyUI cannot express."""
    nodes = build_graph(normalise_params(params, seed))
    return to_ui(nodes), to_api(nodes)


def _image_workflows(image: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return workflow_for(image["params"], image.get("seed"))


def export_ui_file(image: Mapping[str, Any]) -> ExportedFile:
    workflow, _ = _image_workflows(image)
    return ExportedFile(f"image-{image['id']}.comfyui.json", JSON, _dumps(workflow))


def export_api_file(image: Mapping[str, Any]) -> ExportedFile:
    _, prompt = _image_workflows(image)
    return ExportedFile(f"image-{image['id']}.comfyui-api.json", JSON, _dumps(prompt))


def export_png_file(image: Mapping[str, Any]) -> ExportedFile:
    workflow, prompt = _image_workflows(image)
    original = Path(image["file"]).read_bytes()
    # Compact JSON in the chunks, as ComfyUI's SaveImage writes them.
    texts = {"prompt": json.dumps(prompt), "workflow": json.dumps(workflow)}
    return ExportedFile(f"image-{image['id']}.comfyui.png", "image/png", with_text_chunks(original, texts))


def _per_image(
    export: Callable[[Mapping[str, Any]], ExportedFile],
) -> Callable[[Mapping[str, Any], Sequence[Mapping[str, Any]]], list[ExportedFile | SkippedImage]]:
    """An experiment exported image by image: an image ComfyUI cannot express (a PLMS cell, a DDIM eta) is listed
    with the reason, and every other image is still exported."""

    def export_experiment(
        experiment: Mapping[str, Any], images: Sequence[Mapping[str, Any]]
    ) -> list[ExportedFile | SkippedImage]:
        outcomes: list[ExportedFile | SkippedImage] = []
        for image in images:
            try:
                outcomes.append(export(image))
            except ValueError as exc:
                outcomes.append(SkippedImage(int(image["id"]), str(exc)))
        return outcomes

    return export_experiment


EXPORTERS = (
    Exporter(
        name="comfyui",
        description="ComfyUI workflow (UI format): drop the .json onto ComfyUI to load the graph",
        export_image=export_ui_file,
        export_experiment=_per_image(export_ui_file),
    ),
    Exporter(
        name="comfyui-api",
        description="ComfyUI graph in the API format, for POST /prompt and scripts",
        export_image=export_api_file,
        export_experiment=_per_image(export_api_file),
    ),
    Exporter(
        name="comfyui-png",
        description="The image's PNG with ComfyUI's prompt and workflow chunks; drop it onto ComfyUI",
        export_image=export_png_file,
        export_experiment=_per_image(export_png_file),
    ),
)

IMPORTER = Importer(
    name="comfyui",
    description="ComfyUI txt2img workflow (API or UI format JSON, or a PNG ComfyUI saved) to params",
    import_file=import_file,
)


@hookimpl
def cauldron_register_exporters(register: Callable[[Exporter], None], settings: Settings) -> None:
    for exporter in EXPORTERS:
        register(exporter)


@hookimpl
def cauldron_register_importers(register: Callable[[Importer], None], settings: Settings) -> None:
    register(IMPORTER)
