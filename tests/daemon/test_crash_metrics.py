"""/metrics after a real SIGKILL: the jobs of the batch that was running become suspects at the next start, and
the scrape says so. The expected figure is the batch the daemon announced (job.started) before the kill."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest
from cauldron_client import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import FAST
from tests.daemon.process import DaemonProcess

pytestmark = pytest.mark.slow


def scrape(daemon: DaemonProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    request = urllib.request.Request(daemon.url + "/metrics", headers={"Authorization": f"Bearer {daemon.token}"})
    with urllib.request.urlopen(request, timeout=30) as reply:  # loopback, our own daemon
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


# Two daemon starts (torch imports, a model load each) take minutes on a shared 2-core machine under load.
@pytest.mark.timeout(900)
async def test_metrics_count_the_suspects_of_a_killed_batch(tmp_path: Path, models_dir: Path) -> None:
    daemon = DaemonProcess(tmp_path / "data", models_dir)
    daemon.start(timeout=300)
    try:
        async with Client(daemon.url, daemon.token) as client, client.events(["job.started"]) as started:
            # Enough steps that the batch is still running when the kill lands.
            base = {**FAST, "steps": 40}
            await client.call("experiments.create", name="killed", base=base, axes={"seed": list(range(1, 9))})
            event = await started.next(240)
            assert event is not None and event["type"] == "job.started"
            daemon.kill()
        batch = sorted(event["batch"])
        assert len(batch) == 4  # max_batch_size 4, eight cells of one batch key

        daemon.start(timeout=300)
        samples = scrape(daemon)
        assert samples[("cauldron_crash_guard_events_total", (("kind", "suspect"),))] == len(batch)
        assert samples[("cauldron_crash_guard_events_total", (("kind", "quarantine"),))] == 0
        assert samples[("cauldron_recovery_items", (("item", "suspects"),))] == len(batch)
        assert samples[("cauldron_recovery_items", (("item", "quarantined"),))] == 0
        async with Client(daemon.url, daemon.token) as client:
            info = await client.call("system.info")
        assert sorted(info["recovery"]["suspects"]) == batch
    finally:
        daemon.stop()
