"""cauldronctl's experiment commands (convergence, cfg, run FILE, --dry-run, grid, export, analyze, images rerun)
end to end against a real cauldrond subprocess on the built-in tiny model."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cauldron_client.cli import cli
from click.testing import CliRunner, Result
from PIL import Image, ImageChops

from tests.daemon.process import DaemonProcess

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path_factory.mktemp("ctl-exp") / "data", models_dir)
    process.start()
    yield process
    assert process.terminate() == 0


def ctl(daemon: DaemonProcess, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--url", daemon.url, "--token", daemon.token, *args], catch_exceptions=False)


def experiment_count(daemon: DaemonProcess) -> int:
    return len(json.loads(ctl(daemon, "--json", "experiments", "list").stdout)["experiments"])


@pytest.fixture(scope="module")
def convergence(daemon: DaemonProcess) -> int:
    """2 samplers x 2 seeds x 3 step counts at 64 px: four series."""
    result = ctl(
        daemon, "--json", "convergence", "--prompt", "a lighthouse, at dusk", "--model", "tiny-sd",
        "--sampler", "Euler", "--sampler", "DPM++ 2M", "--steps", "2-4 [3]", "--seed", "1,2", "--size", "64x64",
        "--name", "conv", "--watch",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["experiment"]["kind"] == "convergence"
    assert len(created["images"]) == 12
    return int(created["experiment"]["id"])


def test_dry_run_plans_without_creating(daemon: DaemonProcess) -> None:
    before = experiment_count(daemon)
    result = ctl(
        daemon, "sweep", "--prompt", "a cat", "--steps", "2-6 [3]", "--axis", "prompt_sr=cat,dog", "--seed", "1,2",
        "--size", "64x64", "--dry-run",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "12 cell(s)"
    assert re.search(r"steps\s+\(3\) 2, 4, 6", result.stdout)
    assert re.search(r"prompt_sr\s+\(2\) cat, dog", result.stdout)
    assert "model loads: 1" in result.stdout and "estimated duration:" in result.stdout
    assert experiment_count(daemon) == before


def test_daemon_rejects_a_bad_range_in_one_line(daemon: DaemonProcess) -> None:
    before = experiment_count(daemon)
    result = ctl(daemon, "sweep", "--prompt", "x", "--steps", "10-20 [0]", "--size", "64x64")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid_params: ") and len(result.stderr.strip().splitlines()) == 1
    assert experiment_count(daemon) == before


def test_analyze_prints_a_table_and_writes_the_plot(daemon: DaemonProcess, convergence: int, tmp_path: Path) -> None:
    plot = tmp_path / "plots" / "conv.png"
    result = ctl(daemon, "analyze", str(convergence), "--plot", str(plot))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("convergence (mad, threshold 0.02)")
    rows = {line.split("  ")[0] for line in lines[2:4]}
    assert rows == {"Euler", "DPM++ 2M"}
    assert "s/image".upper() in result.stdout and "sampler Euler" in result.stdout
    assert lines[-1] == str(plot)
    assert plot.read_bytes().startswith(PNG)

    raw = json.loads(ctl(daemon, "analyze", str(convergence), "--no-plot", "--json", "--metric", "ssim").stdout)
    assert raw["plot"] is None and raw["convergence"]["metric"] == "ssim"
    assert sum(group["series"] for group in raw["convergence"]["by_sampler"]) == 4


def test_grid_writes_one_png_per_z_value(daemon: DaemonProcess, convergence: int, tmp_path: Path) -> None:
    result = ctl(
        daemon, "grid", str(convergence), "--x", "sampler", "--y", "steps", "--z", "seed", "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    paths = [Path(line) for line in result.stdout.splitlines()]
    assert [p.name for p in paths] == [f"experiment-{convergence}-grid-1.png", f"experiment-{convergence}-grid-2.png"]
    assert all(p.read_bytes().startswith(PNG) for p in paths)

    fixed = ctl(daemon, "grid", str(convergence), "--x", "steps", "--fix", "seed=2", "--fix", "sampler=Euler",
                "--out", str(tmp_path / "one"))  # fmt: skip
    assert fixed.exit_code == 0, fixed.output
    assert len(fixed.stdout.splitlines()) == 1

    missing = ctl(daemon, "grid", str(convergence), "--x", "steps", "--fix", "seed=9")
    assert missing.exit_code == 2 and "seed" in missing.stderr


def test_export_csv_and_json(daemon: DaemonProcess, convergence: int, tmp_path: Path) -> None:
    result = ctl(daemon, "export", str(convergence))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 12
    assert {row["sampler"] for row in rows} == {"Euler", "DPM++ 2M"}
    assert {row["prompt"] for row in rows} == {"a lighthouse, at dusk"}

    out = tmp_path / "exp.json"
    written = ctl(daemon, "export", str(convergence), "--format", "json", "--out", str(out))
    assert written.exit_code == 0 and written.stdout == ""
    assert len(json.loads(out.read_text())) == 12


def test_cfg_and_rerun_start_from_an_image(daemon: DaemonProcess, convergence: int, tmp_path: Path) -> None:
    images = json.loads(ctl(daemon, "--json", "images", "list", "--experiment", str(convergence)).stdout)["images"]
    source = images[0]

    cfg = ctl(daemon, "--json", "cfg", str(source["id"]), "--cfg", "3-9 [3]", "--watch")
    assert cfg.exit_code == 0, cfg.output
    made = json.loads(cfg.stdout)["images"]
    assert sorted(image["params"]["cfg_scale"] for image in made) == [3.0, 6.0, 9.0]
    assert {image["seed"] for image in made} == {source["seed"]}

    # A cell generated alone, repeated alone: on CPU the same pixels. (A cell first generated inside a batch may
    # differ by float rounding, so the source here is a single generate.)
    single = ctl(daemon, "--json", "generate", "a boat", "--steps", "2", "--seed", "5", "--size", "64x64", "--watch")
    assert single.exit_code == 0, single.output
    (original,) = json.loads(single.stdout)["images"]
    rerun = ctl(daemon, "--json", "images", "rerun", str(original["id"]), "--watch")
    assert rerun.exit_code == 0, rerun.output
    (repeat,) = json.loads(rerun.stdout)["images"]
    assert (repeat["seed"], repeat["params"]) == (original["seed"], original["params"])
    fetched = ctl(daemon, "images", "fetch", str(original["id"]), str(repeat["id"]), "--out", str(tmp_path))
    assert fetched.exit_code == 0, fetched.output
    original_png = tmp_path / f"e{original['experiment_id']}-0000.png"
    repeat_png = tmp_path / f"e{repeat['experiment_id']}-0000.png"
    with Image.open(original_png) as a, Image.open(repeat_png) as b:
        assert ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None

    assert ctl(daemon, "cfg", "999999", "--cfg", "3,5").exit_code == 2


def test_run_file_and_every_example_plans(daemon: DaemonProcess, convergence: int, tmp_path: Path) -> None:
    image_id = json.loads(ctl(daemon, "--json", "images", "list", "--limit", "1").stdout)["images"][0]["id"]
    for example in sorted(EXAMPLES.glob("*.toml")):
        text = re.sub(r"(?m)^image_id = \d+", f"image_id = {image_id}", example.read_text())
        copy = tmp_path / example.name
        copy.write_text(text)
        planned = ctl(daemon, "--json", "run", str(copy), "--dry-run")
        assert planned.exit_code == 0, f"{example.name}: {planned.output}"
        assert json.loads(planned.stdout)["cells"] >= 2

    small = tmp_path / "small.toml"
    small.write_text(
        'name = "file sweep"\n[base]\nprompt = "a boat"\nwidth = 64\nheight = 64\nsteps = 2\n'
        '[axes]\nseed = "1-3"\nsize = ["64x64", "64x128"]\n'
    )
    result = ctl(daemon, "--json", "run", str(small), "--watch")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["experiment"]["name"] == "file sweep" and len(created["images"]) == 6

    before = experiment_count(daemon)
    bad_value = tmp_path / "bad-value.toml"
    bad_value.write_text('[base]\nprompt = "x"\n[axes]\nsampler = ["Euler", "Nope"]\n')
    refused = ctl(daemon, "run", str(bad_value))
    assert refused.exit_code == 2 and "Nope" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert experiment_count(daemon) == before
