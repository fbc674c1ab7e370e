"""Timing figures from constructed records."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from cauldrond.analysis.timing import analyze_timing


def record(image_id: int, seconds: Any, steps: Any, sampler: str = "Euler", model: str = "tiny-sd") -> dict[str, Any]:
    return {"id": image_id, "wall_time_s": seconds, "params": {"steps": steps, "sampler": sampler, "model": model}}


RECORDS = [
    record(1, 2.0, 20),  # 0.1 s/step
    record(2, 4.0, 20),  # 0.2
    record(3, 3.0, 10),  # 0.3
    record(4, 1.0, 20, sampler="DDIM", model="other"),  # 0.05
    record(5, 9.0, 20, sampler="DDIM"),  # 0.45: a model load landed on this image
]


def test_per_sampler() -> None:
    analysis = analyze_timing(RECORDS)
    by_sampler = {g.key["sampler"]: g for g in analysis.by_sampler}
    euler = by_sampler["Euler"]
    assert euler.count == 3
    assert euler.total_seconds == pytest.approx(9.0)
    assert euler.seconds_per_image.median == pytest.approx(3.0)
    assert euler.seconds_per_image.mean == pytest.approx(3.0)
    assert euler.seconds_per_step.median == pytest.approx(0.2)
    assert euler.seconds_per_step.mean == pytest.approx(0.2)
    ddim = by_sampler["DDIM"]
    assert ddim.count == 2
    assert ddim.seconds_per_image.median == pytest.approx(5.0)
    assert ddim.seconds_per_step.mean == pytest.approx(0.25)


def test_per_model_and_overall() -> None:
    analysis = analyze_timing(RECORDS)
    by_model = {g.key["model"]: g for g in analysis.by_model}
    assert by_model["tiny-sd"].count == 4
    # 2, 4, 3, 9 → median 3.5; per step 0.1, 0.2, 0.3, 0.45 → median 0.25
    assert by_model["tiny-sd"].seconds_per_image.median == pytest.approx(3.5)
    assert by_model["tiny-sd"].seconds_per_step.median == pytest.approx(0.25)
    assert by_model["other"].seconds_per_image.mean == pytest.approx(1.0)
    assert analysis.overall is not None
    assert analysis.overall.count == 5
    assert analysis.overall.total_seconds == pytest.approx(19.0)
    assert analysis.overall.key == {}


def test_unusable_records_are_skipped_and_named() -> None:
    records = [
        *RECORDS,
        record(6, None, 20),
        record(7, -1.0, 20),
        record(8, math.nan, 20),
        record(9, 1.0, 0),
        record(10, 1.0, None),
        record(11, True, 20),
    ]
    analysis = analyze_timing(records)
    assert analysis.skipped_image_ids == (6, 7, 8, 9, 10, 11)
    assert analysis.overall is not None and analysis.overall.count == 5


def test_empty_and_json_safe() -> None:
    empty = analyze_timing([])
    assert empty.to_dict() == {"overall": None, "by_sampler": [], "by_model": [], "skipped_image_ids": []}
    data = analyze_timing(RECORDS).to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert [g["key"]["sampler"] for g in data["by_sampler"]] == ["DDIM", "Euler"]
    assert set(data["by_sampler"][0]) == {
        "key",
        "label",
        "count",
        "total_seconds",
        "seconds_per_image",
        "seconds_per_step",
    }


def test_each_schedule_of_a_sampler_is_its_own_group_named_as_a1111_names_it() -> None:
    records = [
        {"id": 1, "wall_time_s": 2.0, "params": {"steps": 10, "sampler": "DPM++ 2M", "schedule": "Automatic"}},
        {"id": 2, "wall_time_s": 6.0, "params": {"steps": 10, "sampler": "DPM++ 2M", "schedule": "Karras"}},
        {"id": 3, "wall_time_s": 4.0, "params": {"steps": 10, "sampler": "DPM++ 2M", "schedule": "Karras"}},
    ]
    groups = {g.label: (g.key, g.count, g.seconds_per_image.median) for g in analyze_timing(records).by_sampler}
    # A1111's sampler list names these two "DPM++ 2M" and "DPM++ 2M Karras".
    assert groups == {
        "DPM++ 2M": ({"sampler": "DPM++ 2M", "schedule": "Automatic"}, 1, 2.0),
        "DPM++ 2M Karras": ({"sampler": "DPM++ 2M", "schedule": "Karras"}, 2, 5.0),
    }
