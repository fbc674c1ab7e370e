"""Flat exports: every parameter a column, CSV and JSON that read back, formulas neutralised."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from cauldrond.analysis.export import COLUMNS, PARAM_COLUMNS, export_rows, image_figures, to_csv, to_json


def record(image_id: int, steps: int = 20, **params: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "prompt": "a lighthouse at dusk, oil painting",
        "negative_prompt": "blurry",
        "model": "tiny-sd",
        "sampler": "DPM++ 2M",
        "schedule": "Karras",
        "steps": steps,
        "cfg_scale": 7.5,
        "seed": 1234,
        "width": 64,
        "height": 64,
        "clip_skip": 1,
        "eta": 0.0,
    }
    values.update(params)
    return {
        "id": image_id,
        "job_id": 100 + image_id,
        "experiment_id": 7,
        "path": f"7/{image_id}.png",
        "sha256": f"{image_id:064x}",
        "size_bytes": 5000 + image_id,
        "seed": values["seed"],
        "params": values,
        "metadata": {"model_hash": "ab" * 32, "device": "cpu", "dtype": "float32", "torch": "2.13"},
        "wall_time_s": 1.25,
        "peak_memory_bytes": None,
        "created_at": "2025-01-01T00:00:00Z",
    }


ANALYSIS = {
    "convergence": {
        "metric": "mad",
        "series": [
            {
                "reference_image_id": 2,
                "points": [
                    {"steps": 10, "image_id": 1, "distance_mad": 0.031, "distance_ssim": 0.2, "ssim": 0.8},
                    {"steps": 20, "image_id": 2, "distance_mad": 0.0, "distance_ssim": 0.0, "ssim": 1.0},
                ],
            }
        ],
    }
}


def test_rows_have_every_parameter_as_a_column() -> None:
    (row,) = export_rows([record(1)])
    assert row["image_id"] == 1 and row["job_id"] == 101 and row["experiment_id"] == 7
    for name in PARAM_COLUMNS:
        assert name in row
    assert row["sampler"] == "DPM++ 2M" and row["cfg_scale"] == 7.5 and row["seed"] == 1234
    assert row["schedule"] == "Karras" and row["a1111_sampler"] == "DPM++ 2M Karras"  # A1111's own name
    assert row["model_hash"] == "ab" * 32 and row["device"] == "cpu" and row["dtype"] == "float32"
    assert row["sha256"] == f"{1:064x}" and row["path"] == "7/1.png"
    assert row["wall_time_s"] == 1.25 and row["peak_memory_bytes"] is None
    assert "distance_mad" not in row


def test_analysis_figures_join_by_image_id() -> None:
    rows = export_rows([record(1, 10), record(2, 20), record(3, 20, seed=9)], ANALYSIS)
    assert (rows[0]["distance_mad"], rows[0]["distance_ssim"], rows[0]["reference_image_id"]) == (0.031, 0.2, 2)
    assert rows[1]["distance_mad"] == 0.0
    assert rows[2]["distance_mad"] is None and rows[2]["reference_image_id"] is None
    # The bare convergence dict works too.
    assert image_figures(ANALYSIS["convergence"]) == image_figures(ANALYSIS)


def test_csv_round_trip() -> None:
    records = [record(1, 10), record(2, 20, prompt='a "quoted", comma\nand a newline — über')]
    rows = export_rows(records, ANALYSIS)
    text = to_csv(rows)
    read = list(csv.DictReader(io.StringIO(text)))

    assert list(read[0]) == [name for name in COLUMNS if name in rows[0]]
    assert len(read) == 2
    for original, back in zip(rows, read, strict=True):
        for name, value in original.items():
            assert back[name] == ("" if value is None else str(value)), name
    assert read[1]["prompt"] == 'a "quoted", comma\nand a newline — über'


def test_the_a1111_sampler_column_follows_the_schedule() -> None:
    rows = export_rows([record(1, schedule="Automatic"), record(2, sampler="DPM++ SDE"), record(3, sampler="Euler a")])
    # "Euler a" only runs on the automatic schedule; here it carries Karras from the record's defaults.
    assert [row["a1111_sampler"] for row in rows] == ["DPM++ 2M", "DPM++ SDE Karras", "Euler a Karras"]
    read = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert list(read[0])[list(read[0]).index("eta") + 1 :][:2] == ["a1111_sampler", "model_hash"]


def test_extra_provider_params_get_their_own_columns() -> None:
    rows = export_rows([record(1, hires_fix={"scale": 2}), record(2)])
    assert rows[0]["param.hires_fix"] == {"scale": 2}
    read = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert list(read[0])[-1] == "param.hires_fix"
    assert json.loads(read[0]["param.hires_fix"]) == {"scale": 2}
    assert read[1]["param.hires_fix"] == ""


def test_formulas_are_neutralised_in_csv_only() -> None:
    dangerous = ['=HYPERLINK("http://x","y")', "+1+cmd", "-2+3", "@SUM(A1)", "\tleading tab"]
    records = [record(i + 1, prompt=text) for i, text in enumerate(dangerous)]
    records.append(record(99, prompt="harmless = text", seed=-1, eta=-0.0))
    rows = export_rows(records)
    read = list(csv.DictReader(io.StringIO(to_csv(rows))))

    for text, back in zip(dangerous, read, strict=False):
        assert back["prompt"] == "'" + text
    assert read[-1]["prompt"] == "harmless = text"
    # Numbers are numbers, not text a spreadsheet would evaluate: left as they are.
    assert read[-1]["seed"] == "-1"
    # JSON keeps the exact text.
    assert json.loads(to_json(rows))[0]["prompt"] == dangerous[0]


def test_json_round_trip_and_stable_column_order() -> None:
    rows = export_rows([record(1, 10), record(2, 20)], ANALYSIS)
    shuffled = [dict(reversed(list(row.items()))) for row in rows]
    assert to_json(shuffled) == to_json(rows)
    assert to_csv(shuffled) == to_csv(rows)
    back = json.loads(to_json(rows))
    assert back == rows
    assert list(back[0]) == [name for name in COLUMNS if name in rows[0]]


def test_non_finite_numbers_become_null_in_json() -> None:
    row = export_rows([record(1)])[0]
    row["wall_time_s"] = float("nan")
    assert json.loads(to_json([row]))[0]["wall_time_s"] is None


def test_no_records() -> None:
    assert export_rows([]) == []
    assert to_csv([]) == "\r\n"
    assert to_json([]) == "[]"
