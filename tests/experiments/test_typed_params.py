"""Params are validated once, when the experiment is created, and travel typed with each queued job to the
provider; a job read back from the store after a restart runs from its stored params."""

from __future__ import annotations

from pathlib import Path

from cauldron_client import Client

from cauldrond.daemon import Daemon
from cauldrond.params import GenerationParams
from tests.conftest import FAST, make_settings, token_of, url_of
from tests.waiting import finished


async def test_created_jobs_carry_their_validated_params_and_a_restart_reads_them_back(
    tmp_path: Path, models_dir: Path
) -> None:
    settings = make_settings(tmp_path / "data", models_dir)
    daemon = Daemon(settings)
    await daemon.start()
    try:
        assert daemon.services is not None
        daemon.services.queue.pause()
        async with Client(url_of(daemon), token_of(daemon)) as client:
            # A legacy combined name in any case: A1111's "DPM++ 2M Karras" is sampler DPM++ 2M, schedule Karras.
            spec = {"base": {**FAST, "sampler": "dpm++ 2m karras", "seed": 3}, "axes": {"cfg_scale": [2, 5]}}
            created = await client.call("experiments.create", **spec)
        jobs = [job for _priority, job in daemon.services.queue.ordered()]
        assert len(jobs) == 2
        for job, cfg in zip(jobs, (2.0, 5.0), strict=True):
            assert isinstance(job.generation, GenerationParams)
            # Typed as the model declares (2 became 2.0), the name as samplers.list gives it, the seed fixed.
            expected = {**FAST, "sampler": "DPM++ 2M", "schedule": "Karras", "seed": 3, "cfg_scale": cfg}
            assert job.generation.model_dump(include=set(expected)) == expected
            assert job.generation.to_json_dict() == job.params  # what the store holds
    finally:
        await daemon.stop()

    # Rebuilt from the store, the jobs carry their stored params (the engine validates them when they run).
    restarted = Daemon(settings)
    await restarted.start()
    try:
        async with Client(url_of(restarted), token_of(restarted)) as client:
            result = await finished(client, created["experiment"]["id"])
            assert result["experiment"]["status"] == "done"
            images = (await client.call("images.list", experiment_id=created["experiment"]["id"]))["images"]
        assert sorted(image["params"]["cfg_scale"] for image in images) == [2.0, 5.0]
        assert {(image["params"]["sampler"], image["params"]["schedule"]) for image in images} == {
            ("DPM++ 2M", "Karras")
        }
    finally:
        await restarted.stop()
