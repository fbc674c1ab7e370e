"""The installed distribution: its entry point, its hooks, and the exporters and importer they register."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from cauldron_comfyui import plugin
from cauldron_comfyui.png_chunks import read_text_chunks
from comfyui_fixtures import params
from PIL import Image

from cauldrond.config import Settings
from cauldrond.media.png import png_text_chunks, write_png_atomic
from cauldrond.plugins.interfaces import ExportedFile, Exporter, Importer, SkippedImage
from cauldrond.plugins.manager import get_plugin_manager


def test_entry_point_is_installed() -> None:
    (point,) = [point for point in entry_points(group="cauldron") if point.name == "comfyui"]
    assert point.value == "cauldron_comfyui.plugin"
    assert point.load() is plugin


def registered(tmp_path: Path) -> tuple[dict[str, Exporter], dict[str, Importer]]:
    manager = get_plugin_manager(load_entry_points=True)
    assert manager.get_plugin("comfyui") is not None
    settings = Settings(data_dir=tmp_path)
    exporters: list[Exporter] = []
    importers: list[Importer] = []
    manager.hook.cauldron_register_exporters(register=exporters.append, settings=settings)
    manager.hook.cauldron_register_importers(register=importers.append, settings=settings)
    return {e.name: e for e in exporters}, {i.name: i for i in importers}


@pytest.fixture
def image(tmp_path: Path) -> dict[str, Any]:
    values = params()
    written = write_png_atomic(Image.new("RGB", (64, 96), "navy"), tmp_path, "7.png", png_text_chunks(values, {}))
    return {"id": 7, "seed": values["seed"], "params": values, "file": str(written.path)}


def test_hooks_register_three_exporters_and_an_importer(tmp_path: Path, image: dict[str, Any]) -> None:
    exporters, importers = registered(tmp_path)
    assert {"comfyui", "comfyui-api", "comfyui-png"} <= exporters.keys()
    assert "comfyui" in importers
    importer = importers["comfyui"]
    expected = [params()]

    ui = exporters["comfyui"].export_image(image)
    assert (ui.filename, ui.media_type) == ("image-7.comfyui.json", "application/json")
    assert "nodes" in json.loads(ui.content)
    assert importer.import_file(ui.content, ui.filename) == expected

    api = exporters["comfyui-api"].export_image(image)
    assert (api.filename, api.media_type) == ("image-7.comfyui-api.json", "application/json")
    assert json.loads(api.content)["3"]["class_type"] == "KSampler"
    assert importer.import_file(api.content, api.filename) == expected

    png = exporters["comfyui-png"].export_image(image)
    assert (png.filename, png.media_type) == ("image-7.comfyui.png", "image/png")
    texts = read_text_chunks(png.content)
    assert {"parameters", "cauldron", "prompt", "workflow"} <= texts.keys()
    assert importer.import_file(png.content, png.filename) == expected


def test_experiment_export_gives_one_file_per_image(tmp_path: Path, image: dict[str, Any]) -> None:
    exporters, _ = registered(tmp_path)
    second = {**image, "id": 8, "params": params(seed=-1), "seed": 99}
    export_experiment = exporters["comfyui"].export_experiment
    assert export_experiment is not None
    files = export_experiment({"id": 1, "name": "sweep"}, [image, second])
    assert [f.filename for f in files] == ["image-7.comfyui.json", "image-8.comfyui.json"]
    (sampler,) = [node for node in json.loads(files[1].content)["nodes"] if node["type"] == "KSampler"]
    assert sampler["widgets_values"][0] == 99


def test_export_of_plms_is_invalid_params(tmp_path: Path, image: dict[str, Any]) -> None:
    exporters, _ = registered(tmp_path)
    with pytest.raises(ValueError, match="no ComfyUI equivalent"):
        exporters["comfyui"].export_image({**image, "params": params(sampler="PLMS", schedule="Automatic")})


def test_experiment_export_skips_what_comfyui_cannot_express(tmp_path: Path, image: dict[str, Any]) -> None:
    exporters, _ = registered(tmp_path)
    plms = {**image, "id": 8, "params": params(sampler="PLMS", schedule="Automatic")}
    export_experiment = exporters["comfyui-api"].export_experiment
    assert export_experiment is not None
    first, second = export_experiment({"id": 1, "name": "sweep"}, [image, plms])
    assert isinstance(first, ExportedFile) and first.filename == "image-7.comfyui-api.json"
    assert isinstance(second, SkippedImage) and second.image_id == 8
    assert "PLMS" in second.reason and "no ComfyUI equivalent" in second.reason
