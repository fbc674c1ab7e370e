"""params.py is the one place generation fields are declared: a field declared there, and nowhere else, is
exported, written into infotext (and read back), kept apart by the batch key and checked by the provider."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

import pytest
from cauldron_client import generation_fields as client_options
from cauldron_client.commands.experiments import convergence
from cauldron_client.commands.generate import generate, sweep, sweep_experiment
from pydantic import Field

import cauldrond
from cauldrond import params as params_module
from cauldrond.analysis.convergence import series_key
from cauldrond.analysis.export import export_rows, to_csv
from cauldrond.config import Settings
from cauldrond.importers.a1111 import import_a1111
from cauldrond.media.png import a1111_parameters
from cauldrond.params import Batching, GenerationParams, Param, batch_key_fields, cli_options
from cauldrond.providers.diffusers.provider import DiffusersProvider
from cauldrond.queue import JobQueue, QueuedJob
from cauldrond.queue.batching import batch_key, cell_batch_key

VERSION = f"cauldron-{cauldrond.__version__}"


class WithNewFields(GenerationParams):
    """Two fields as a later feature would declare them: one the whole batch shares, one per image."""

    detail: Annotated[float, Param(Batching.SHARED, infotext="Detail", option="--detail", option_help="Detail.")] = (
        Field(default=0.0, ge=0.0, le=2.0)
    )
    tag: Annotated[str, Param(Batching.PER_IMAGE, infotext="Tag", infotext_default=False, column="tag_text")] = ""


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch) -> type[GenerationParams]:
    monkeypatch.setattr(params_module, "PARAMS_MODEL", WithNewFields)
    return WithNewFields


def cell(**values: Any) -> dict[str, Any]:
    return WithNewFields(prompt="a lighthouse", seed=5, width=64, height=64, **values).to_json_dict()


def test_a_new_field_is_an_export_column_in_declaration_order(declared: type[GenerationParams]) -> None:
    record = {"id": 1, "job_id": 2, "experiment_id": 3, "params": cell(detail=1.25, tag="x"), "metadata": {}}
    (row,) = export_rows([record])
    assert row["detail"] == 1.25 and row["tag_text"] == "x"
    assert "param.detail" not in row and "param.tag" not in row  # not an unknown provider param
    header = next(csv.reader(io.StringIO(to_csv([row]))))
    # The params' columns in declaration order (as pydantic lists the fields), the new ones last, then A1111's
    # sampler name.
    start = header.index("prompt")
    assert header[start : header.index("a1111_sampler")] == [*GenerationParams.model_fields, "detail", "tag_text"]


def test_a_new_field_is_written_into_infotext_and_read_back(declared: type[GenerationParams]) -> None:
    text = a1111_parameters(cell(detail=1.5, tag="blue"), {"model": "tiny-sd"})
    assert text == (
        "a lighthouse\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64, Model: tiny-sd, "
        f"Detail: 1.5, Tag: blue, Version: {VERSION}"
    )
    # A field marked to be left out at its default is; the others are always written, as A1111 does.
    at_defaults = a1111_parameters(cell(), {"model": "tiny-sd"})
    assert at_defaults.endswith(f", Detail: 0, Version: {VERSION}") and "Tag:" not in at_defaults
    imported = import_a1111(text.encode(), "pasted.txt")
    assert imported.params[0]["detail"] == 1.5 and imported.params[0]["tag"] == "blue"
    assert not [field for field in imported.ignored if field.key in ("Detail", "Tag")]


def test_a_new_shared_field_keeps_batches_apart_and_a_per_image_one_does_not(
    declared: type[GenerationParams],
) -> None:
    assert "detail" in batch_key_fields() and "tag" not in batch_key_fields()
    assert cell_batch_key(cell(detail=1.0)) != cell_batch_key(cell(detail=2.0))
    assert cell_batch_key(cell(tag="a")) == cell_batch_key(cell(tag="b"))
    queue = JobQueue()
    cells = [cell(detail=1.0, tag="a"), cell(detail=1.0, tag="b"), cell(detail=2.0), cell(detail=2.0)]
    for idx, values in enumerate(cells):
        queue.add(QueuedJob(idx + 1, 1, idx, values), priority=0)
    assert [[job.job_id for job in queue.take_batch(8, batch_key)] for _ in range(2)] == [[1, 2], [3, 4]]
    # Convergence series: every field but steps tells series apart.
    assert series_key(cell(detail=1.0, steps=10)) != series_key(cell(detail=2.0, steps=10))
    assert series_key(cell(detail=1.0, steps=10)) == series_key(cell(detail=1.0, steps=20))


def test_the_provider_refuses_a_batch_that_does_not_share_a_new_shared_field(
    declared: type[GenerationParams], tmp_path: Any
) -> None:
    provider = DiffusersProvider(Settings(data_dir=tmp_path, device="cpu"))
    first = WithNewFields(prompt="a", seed=1, detail=1.0)
    with pytest.raises(ValueError, match="share 'detail'"):
        provider.generate([first, first.model_copy(update={"detail": 2.0})], lambda step, total: None, lambda: False)
    assert provider.load_count == 0  # refused before any model was loaded


def test_a_new_field_with_an_option_is_offered_to_the_client(declared: type[GenerationParams]) -> None:
    assert ("detail", "--detail", "float", "Detail.") in cli_options()
    assert "tag" not in [name for name, *_ in cli_options()]


def test_every_field_needs_exactly_one_marker() -> None:
    class Unmarked(GenerationParams):
        extra: int = 0

    with pytest.raises(TypeError, match=r"Unmarked\.extra needs a plain type and exactly one Param marker"):
        params_module._fields_of(Unmarked)


def test_the_clients_option_table_is_the_daemons() -> None:
    # The client installs without the daemon, so it keeps a copy (cauldron_client/generation_fields.py).
    assert cli_options() == client_options.OPTIONS


def test_generate_sweep_and_convergence_offer_every_field_with_an_option() -> None:
    for command in (generate, sweep, convergence):
        offered = {option for param in command.params for option in param.opts}
        assert {option for _name, option, *_ in cli_options()} <= offered, command.name
    # eta had no option before it was declared with one: a sweep over it is an eta axis.
    spec = sweep_experiment(prompts=["p"], samplers=["DDIM"], eta=[[0.0, 0.5]], cfg=["3-5 [2]"])
    assert spec.request() == {
        "kind": "sweep",
        "base": {"prompt": "p", "sampler": "DDIM"},
        "axes": {"cfg_scale": "3-5 [2]", "eta": [0.0, 0.5]},
    }
    with pytest.raises(TypeError, match="no sweep option 'etas'"):
        sweep_experiment(prompts=["p"], etas=[[0.5]])
