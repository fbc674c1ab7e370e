"""The `cauldrond` command: settings errors, create-tiny, and a single-file model served end to end."""

from __future__ import annotations

import asyncio
from io import BytesIO
from pathlib import Path

import numpy as np
from cauldron_client import Client
from click.testing import CliRunner
from PIL import Image

from cauldrond.cli import main
from cauldrond.daemon import Daemon
from cauldrond.models.single_file import export_single_file
from cauldrond.models.tiny import create_tiny_model
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.waiting import finished


def test_a_bad_setting_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = 'high'\n")
    result = CliRunner().invoke(main, ["--config", str(config), "--data-dir", str(tmp_path), "models", "list"])
    assert result.exit_code == 2
    assert "port" in result.output


def test_create_tiny_with_single_file_then_list(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path / "data")]
    created = runner.invoke(main, [*args, "models", "create-tiny", "--single-file"], catch_exceptions=False)
    assert created.exit_code == 0, created.output
    models_dir = tmp_path / "data" / "models"
    assert (models_dir / "tiny-sd" / "model_index.json").is_file()
    assert (models_dir / "tiny-sd-single.safetensors").is_file()
    again = runner.invoke(main, [*args, "models", "create-tiny"], catch_exceptions=False)
    assert again.exit_code == 0  # idempotent
    listed = runner.invoke(main, [*args, "models", "list"], catch_exceptions=False)
    assert "tiny-sd\tdiffusers" in listed.output and "tiny-sd-single" in listed.output


async def test_the_single_file_export_generates_the_same_image_as_the_folder(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    export_single_file(create_tiny_model(models_dir), models_dir / "tiny-sd-single.safetensors")
    daemon = Daemon(make_settings(tmp_path / "data", models_dir))
    await daemon.start()
    try:
        async with Client(url_of(daemon), token_of(daemon)) as client:
            created = await client.call(
                "experiments.create", base={**FAST, "seed": 11}, axes={"model": ["tiny-sd", "tiny-sd-single"]}
            )
            experiment_id = created["experiment"]["id"]
            await finished(client, experiment_id)
            images = (await client.call("images.list", experiment_id=experiment_id))["images"]
            pngs = await asyncio.gather(*(client.fetch_image(image["id"]) for image in images))
    finally:
        await daemon.stop()
    assert [image["params"]["model"] for image in images] == ["tiny-sd", "tiny-sd-single"]
    folder, single = (np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16) for png in pngs)
    assert int(np.abs(folder - single).max()) <= 1
