"""cauldronctl with LoRAs, VAEs and model hashes, end to end against a real cauldrond subprocess: ``--lora`` and
``--vae`` on generate, sweep and convergence reach the stored params and the image's infotext, unknown names and
bad ``--lora`` syntax are refused with nothing queued, and ``models``, ``loras``, ``vaes`` and ``embeddings``
list the test's own files with their hashes.

Expected hashes are computed here with hashlib as A1111 computes them (docs/rpc.md): a checkpoint's "Model hash"
and the "VAE hash" are the first 10 hex digits of the file's sha256; a LoRA's, 12 of the sha256 of the tensor
data after the safetensors header (kohya's addnet hash); an embedding's, 12 of the file's sha256."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from cauldron_client.cli import cli
from click.testing import CliRunner, Result
from PIL import Image

from cauldrond.models.single_file import export_single_file
from tests.daemon.process import DaemonProcess
from tests.providers import extra_files

pytestmark = pytest.mark.slow

FAST = ["--size", "64x64", "--steps", "2", "--sampler", "Euler"]
LORA, OTHER_LORA, VAE, EMBEDDING, CHECKPOINT = "detail", "ink", "other.safetensors", "mystyle", "tiny-single"


@pytest.fixture(scope="module")
def extras_models_dir(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-extras-models")
    (root / "tiny-sd").symlink_to(models_dir / "tiny-sd", target_is_directory=True)
    export_single_file(models_dir / "tiny-sd", root / f"{CHECKPOINT}.safetensors")
    pipeline = extra_files.load_tiny(models_dir / "tiny-sd")
    extra_files.write_lora(pipeline, root / "loras" / f"{LORA}.safetensors")
    extra_files.write_lora(pipeline, root / "loras" / f"{OTHER_LORA}.safetensors", seed=5)
    torch.save({"x": torch.zeros(1)}, str(root / "loras" / "old.pt"))  # a pickle: listed, never loaded
    extra_files.write_vae(pipeline, root / "vae" / VAE)
    extra_files.write_embedding(pipeline, root / "embeddings" / f"{EMBEDDING}.safetensors", vectors=2)
    return root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, extras_models_dir: Path) -> Iterator[DaemonProcess]:
    process = DaemonProcess(tmp_path_factory.mktemp("cli-extras") / "data", extras_models_dir)
    try:
        process.start()
        yield process
        assert process.terminate() == 0
    finally:
        process.stop()


def ctl(daemon: DaemonProcess, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--url", daemon.url, "--token", daemon.token, *args], catch_exceptions=False)


def json_of(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def jobs_of(daemon: DaemonProcess, experiment_id: int) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = json_of(ctl(daemon, "--json", "experiments", "show", str(experiment_id)))["jobs"]
    return jobs


def rows(result: Result) -> dict[str, list[str]]:
    """A table's rows by their first column (whole rows: the output is not a terminal)."""
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    return {line.split()[0]: line.split() for line in lines[1:] if line.strip()}


def sha256_of(path: Path, offset: int = 0) -> str:
    return hashlib.sha256(path.read_bytes()[offset:]).hexdigest()


def addnet_hash(path: Path) -> str:
    header_length = int.from_bytes(path.read_bytes()[:8], "little")
    return sha256_of(path, 8 + header_length)


def experiments_and_jobs(daemon: DaemonProcess) -> list[tuple[Any, ...]]:
    """Each experiment with its job count: what a refused command must leave as it was. (Live counts and the
    queue listing move on their own: the module's daemon may still be running an earlier test's jobs.)"""
    listed = json_of(ctl(daemon, "--json", "experiments", "list"))["experiments"]
    return sorted((item["id"], item["kind"], item["name"], item["counts"]["total"]) for item in listed)


def test_generate_with_lora_and_vae_stores_them_and_writes_their_hashes(
    daemon: DaemonProcess, extras_models_dir: Path
) -> None:
    made = json_of(
        ctl(daemon, "--json", "generate", "a lighthouse", *FAST, "--seed", "4",
            "--lora", f"{LORA}:0.5", "--vae", VAE, "--watch")
    )  # fmt: skip
    (job,) = jobs_of(daemon, made["experiment"]["id"])
    assert job["status"] == "done", job
    assert job["params"]["loras"] == [{"name": LORA, "weight": 0.5}]
    assert job["params"]["vae"] == VAE

    (image,) = made["images"]
    with Image.open(daemon.data_dir / "images" / image["path"]) as png:
        text = png.text["parameters"]  # type: ignore[attr-defined]
    assert text.splitlines()[0] == f"a lighthouse <lora:{LORA}:0.5>"  # A1111 writes the tag back into the prompt
    lora_short = addnet_hash(extras_models_dir / "loras" / f"{LORA}.safetensors")[:12]
    assert f'Lora hashes: "{LORA}: {lora_short}"' in text
    vae_short = sha256_of(extras_models_dir / "vae" / VAE)[:10]
    assert f"VAE hash: {vae_short}, VAE: {VAE}" in text


def test_sweep_and_convergence_take_a_lora_set_and_vaes(daemon: DaemonProcess) -> None:
    # One --vae per occurrence: two make a vae axis ("Automatic" is A1111's name for the model's own).
    swept = json_of(
        ctl(daemon, "--json", "sweep", "--prompt", "a fox", *FAST, "--seed", "2",
            "--lora", LORA, "--lora", f"{OTHER_LORA}:-0.25", "--vae", VAE, "--vae", "Automatic")
    )  # fmt: skip
    assert swept["experiment"]["counts"]["total"] == 2
    jobs = jobs_of(daemon, swept["experiment"]["id"])
    # No weight is A1111's default of 1; the loras are one set for every cell, in the order given.
    both = [{"name": LORA, "weight": 1.0}, {"name": OTHER_LORA, "weight": -0.25}]
    assert [job["params"]["loras"] for job in jobs] == [both, both]
    assert sorted(job["params"]["vae"] for job in jobs) == ["", VAE]

    converging = json_of(
        ctl(daemon, "--json", "convergence", "--prompt", "a fox", "--sampler", "Euler", "--steps", "2",
            "--seed", "1", "--size", "64x64", "--lora", f"{LORA}:0.75", "--vae", VAE)
    )  # fmt: skip
    (job,) = jobs_of(daemon, converging["experiment"]["id"])
    assert (job["params"]["loras"], job["params"]["vae"]) == ([{"name": LORA, "weight": 0.75}], VAE)


@pytest.mark.parametrize(
    ("option", "refused"),
    [
        (["--lora", "ghost:0.5"], "error: unknown LoRA 'ghost' (cauldronctl loras lists them)"),
        (
            ["--vae", "absent.safetensors"],
            "error: unknown VAE 'absent.safetensors' — did you mean 'other.safetensors'? (cauldronctl vaes lists them)",
        ),
        # A pickle is listed but never loaded: the daemon's own message says why.
        (["--lora", "old"], "error: invalid_params: parameter 'loras': LoRA 'old' is a pickle file"),
    ],
)
@pytest.mark.parametrize("command", ["generate", "sweep"])
def test_an_unknown_or_unusable_name_is_refused_naming_it_and_nothing_is_queued(
    daemon: DaemonProcess, command: str, option: list[str], refused: str
) -> None:
    before = experiments_and_jobs(daemon)
    prompt = ["a fox"] if command == "generate" else ["--prompt", "a fox"]
    result = ctl(daemon, command, *prompt, *FAST, *option)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(refused) and result.stderr.count("\n") == 1, result.stderr
    assert experiments_and_jobs(daemon) == before


@pytest.mark.parametrize(
    ("value", "named"),
    [("detail:heavy", "'heavy'"), ("detail:", "'detail:'"), (":0.5", "':0.5'"), ("detail:nan", "'nan'")],
)
def test_bad_lora_syntax_is_a_usage_error_naming_the_value(daemon: DaemonProcess, value: str, named: str) -> None:
    before = experiments_and_jobs(daemon)
    for command in (["generate", "a fox"], ["sweep", "--prompt", "a fox"]):
        result = ctl(daemon, *command, *FAST, "--lora", value)
        assert result.exit_code == 2, result.output
        assert "Invalid value for '--lora'" in result.stderr and named in result.stderr, result.stderr
    assert experiments_and_jobs(daemon) == before


def test_models_show_the_a1111_model_hash(daemon: DaemonProcess, extras_models_dir: Path) -> None:
    listed = rows(ctl(daemon, "models"))
    single = extras_models_dir / f"{CHECKPOINT}.safetensors"
    assert listed[CHECKPOINT][:2] == [CHECKPOINT, sha256_of(single)[:10]]
    # A diffusers folder: the sha256 of its weight files' "<relative path> <sha256>" lines, sorted by path.
    folder = extras_models_dir / "tiny-sd"
    weights = sorted(p for p in folder.rglob("*") if p.suffix == ".safetensors")
    lines = "".join(f"{p.relative_to(folder).as_posix()} {sha256_of(p)}\n" for p in weights)
    assert listed["tiny-sd"][:2] == ["tiny-sd", hashlib.sha256(lines.encode()).hexdigest()[:10]]

    full = json_of(ctl(daemon, "--json", "models"))  # --json keeps the full data
    by_name = {model["name"]: model for model in full["models"]}
    assert by_name[CHECKPOINT]["sha256"] == sha256_of(single)
    assert by_name[CHECKPOINT]["path"] == str(single)


def test_loras_vaes_and_embeddings_list_the_files_with_hashes(daemon: DaemonProcess, extras_models_dir: Path) -> None:
    loras = rows(ctl(daemon, "loras"))
    assert sorted(loras) == sorted([LORA, OTHER_LORA, "old"])
    for name in (LORA, OTHER_LORA):
        assert loras[name] == [name, addnet_hash(extras_models_dir / "loras" / f"{name}.safetensors")[:12], "yes", "-"]
    assert loras["old"][:3] == ["old", "-", "no"] and "pickle" in " ".join(loras["old"][3:])

    vaes = rows(ctl(daemon, "vaes"))
    assert vaes == {VAE: [VAE, sha256_of(extras_models_dir / "vae" / VAE)[:10], "yes", "-"]}
    embeddings = rows(ctl(daemon, "embeddings"))
    embedding = extras_models_dir / "embeddings" / f"{EMBEDDING}.safetensors"
    assert embeddings == {EMBEDDING: [EMBEDDING, sha256_of(embedding)[:12], "yes", "-"]}

    full = json_of(ctl(daemon, "--json", "loras"))["loras"]
    assert {item["name"]: item["path"] for item in full}[LORA] == str(
        extras_models_dir / "loras" / f"{LORA}.safetensors"
    )
