"""Where jobs sit on their experiment's axes, and how grid labels name them."""

from __future__ import annotations

from typing import Any

from cauldrond.experiments.layout import experiment_layout
from cauldrond.store import JobRow


def job(job_id: int, idx: int, **params: Any) -> JobRow:
    full = {"prompt": "a fox", "sampler": "Euler", "schedule": "Automatic", "steps": 2, "seed": 7, **params}
    return JobRow(
        id=job_id,
        experiment_id=1,
        idx=idx,
        params=full,
        status="done",
        attempts=0,
        last_error=None,
        created_at="2026-01-01T00:00:00Z",
        started_at=None,
        finished_at=None,
        image_id=None,
    )


def test_sampler_axis_labels_carry_the_schedule_as_a1111_names_it() -> None:
    # As the daemon stores a convergence run of "DPM++ 2M" and "dpm++ 2m karras": the axis keeps what was typed,
    # each job holds the canonical sampler and its schedule.
    spec = {
        "resolved_axes": [
            {"name": "sampler", "values": ["DPM++ 2M", "dpm++ 2m karras"]},
            {"name": "steps", "values": [2, 4]},
        ]
    }
    jobs = [
        job(10, 0, sampler="DPM++ 2M", steps=2),
        job(11, 1, sampler="DPM++ 2M", steps=4),
        job(12, 2, sampler="DPM++ 2M", schedule="Karras", steps=2),
        job(13, 3, sampler="DPM++ 2M", schedule="Karras", steps=4),
    ]
    layout = experiment_layout(spec, jobs)
    sampler = layout.axes[layout.axis("sampler")]
    # A1111's sampler list calls these "DPM++ 2M" and "DPM++ 2M Karras".
    assert [sampler.label(i) for i in range(2)] == ["sampler: DPM++ 2M", "sampler: DPM++ 2M Karras"]
    assert layout.coordinates[12] == (1, 0) and layout.coordinates[11] == (0, 1)
    assert layout.axes[layout.axis("steps")].label(1) == "steps: 4"


def test_a_schedule_in_base_shows_in_the_sampler_labels() -> None:
    spec = {"resolved_axes": [{"name": "sampler", "values": ["DPM2", "DPM++ SDE"]}]}
    jobs = [job(1, 0, sampler="DPM2", schedule="Karras"), job(2, 1, sampler="DPM++ SDE", schedule="Karras")]
    sampler = experiment_layout(spec, jobs).axes[0]
    assert [sampler.label(0), sampler.label(1)] == ["sampler: DPM2 Karras", "sampler: DPM++ SDE Karras"]


def test_beside_a_schedule_axis_the_sampler_label_is_the_sampler() -> None:
    spec = {
        "resolved_axes": [
            {"name": "sampler", "values": ["DPM++ 2M"]},
            {"name": "schedule", "values": ["Automatic", "Karras"]},
        ]
    }
    jobs = [job(1, 0, sampler="DPM++ 2M"), job(2, 1, sampler="DPM++ 2M", schedule="Karras")]
    layout = experiment_layout(spec, jobs)
    assert [axis.label(0) for axis in layout.axes] == ["sampler: DPM++ 2M", "schedule: Automatic"]
    assert layout.axes[1].label(1) == "schedule: Karras"


def test_explicit_cells_get_an_axis_per_differing_param_with_named_samplers() -> None:
    jobs = [
        job(1, 0, sampler="DPM++ 2M", schedule="Karras", seed=-1),
        job(2, 1, sampler="Euler a", seed=-1),
    ]
    layout = experiment_layout({"cells": [{}, {}]}, jobs)
    assert [axis.name for axis in layout.axes] == ["sampler", "schedule"]
    sampler = layout.axes[0]
    assert [sampler.label(0), sampler.label(1)] == ["sampler: DPM++ 2M Karras", "sampler: Euler a"]
