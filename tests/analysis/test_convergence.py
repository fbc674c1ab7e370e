"""Convergence over steps, on constructed images whose distances to the reference are known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from cauldrond.analysis.convergence import (
    DEFAULT_THRESHOLDS,
    analyze_convergence,
    converged_at,
    group_series,
    load_pixels,
    mean_absolute_difference,
    ssim,
)

SIZE = 32


def reference_pixels(seed: int) -> np.ndarray:
    # Kept within 64..191 so adding up to 64 levels never clips and the MAD is exactly offset / 255.
    return np.random.default_rng(seed).integers(64, 192, (SIZE, SIZE, 3), dtype=np.uint8)


def shifted(seed: int, offset: int) -> Image.Image:
    return Image.fromarray((reference_pixels(seed).astype(np.int16) + offset).astype(np.uint8))


def record(image_id: int, steps: int, **params: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "prompt": "a lighthouse",
        "negative_prompt": "",
        "model": "tiny-sd",
        "sampler": "Euler",
        "schedule": "Automatic",
        "steps": steps,
        "cfg_scale": 7.0,
        "seed": 1,
        "width": SIZE,
        "height": SIZE,
        "clip_skip": 1,
        "eta": 0.0,
    }
    values.update(params)
    return {
        "id": image_id,
        "job_id": image_id,
        "experiment_id": 1,
        "path": f"1/{image_id}.png",
        "sha256": "0" * 64,
        "size_bytes": 1,
        "seed": values["seed"],
        "params": values,
        "metadata": {},
        "wall_time_s": 1.0,
        "peak_memory_bytes": None,
        "created_at": "2025-01-01T00:00:00Z",
    }


def build_series(
    first_id: int, offsets: dict[int, int], **params: Any
) -> tuple[list[dict[str, Any]], dict[int, Image.Image]]:
    """A series whose image at each step count is the reference shifted by ``offsets[steps]`` levels; the
    highest step count should have offset 0 (it is the reference)."""
    seed = int(params.get("seed", 1))
    records, pixels = [], {}
    for index, (steps, offset) in enumerate(sorted(offsets.items())):
        one = record(first_id + index, steps, **params)
        records.append(one)
        pixels[one["id"]] = shifted(seed, offset)
    return records, pixels


# Levels off the reference per step count: MAD is offset / 255, threshold 0.02 is 5.1 levels.
CONVERGES_AT_20 = {4: 30, 8: 12, 12: 4, 16: 6, 20: 3, 24: 1, 30: 0}


def test_distances_are_exact_and_converged_at_is_found() -> None:
    records, pixels = build_series(1, CONVERGES_AT_20)
    analysis = analyze_convergence(records, pixels)

    (series,) = analysis.series
    assert [p.steps for p in series.points] == [4, 8, 12, 16, 20, 24, 30]
    for point in series.points:
        assert point.distance_mad == pytest.approx(CONVERGES_AT_20[point.steps] / 255, abs=1e-12)
    assert series.reference_steps == 30
    assert series.reference_image_id == 7
    assert series.points[-1].distance_mad == 0.0 and series.points[-1].ssim == 1.0
    # 12 steps is under the threshold, but 16 is over again: convergence counts from 20.
    assert series.converged_at == 20
    assert analysis.metric == "mad" and analysis.threshold == DEFAULT_THRESHOLDS["mad"]


def test_threshold_changes_the_answer() -> None:
    records, pixels = build_series(1, CONVERGES_AT_20)
    assert analyze_convergence(records, pixels, threshold=0.05).series[0].converged_at == 8
    assert analyze_convergence(records, pixels, threshold=0.003).series[0].converged_at is None


def test_a_series_that_never_converges() -> None:
    records, pixels = build_series(1, {10: 40, 20: 30, 30: 20, 40: 0})
    analysis = analyze_convergence(records, pixels)
    assert analysis.series[0].converged_at is None
    (summary,) = analysis.by_sampler
    assert (summary.series, summary.converged, summary.never_converged) == (1, 0, 1)
    assert summary.converged_at is None


def test_converged_at() -> None:
    assert converged_at([(20, 0.01), (5, 0.5), (10, 0.03), (15, 0.019)], 0.02) == 15
    assert converged_at([(5, 0.001), (10, 0.001)], 0.02) == 5
    assert converged_at([(5, 0.001), (10, 0.03)], 0.02) is None
    # At the threshold is not under it.
    assert converged_at([(5, 0.001), (10, 0.02)], 0.02) is None
    assert converged_at([], 0.02) is None


def test_grouping_separates_cfg_and_seed_and_ignores_lone_images() -> None:
    records = [
        record(1, 10),
        record(2, 20),
        record(3, 10, cfg_scale=5.0),
        record(4, 20, cfg_scale=5.0),
        record(5, 10, seed=2),
        record(6, 30, seed=2),
        record(7, 20, sampler="DDIM"),  # the only DDIM image: no series
        record(8, 20),  # the same cell as image 2: the first one counts
    ]
    series, unmatched = group_series(records)
    assert sorted([r["id"] for r in members] for members in series) == [[1, 2], [3, 4], [5, 6]]
    assert unmatched == [7, 8]


def test_ssim_metric() -> None:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.float64)
    other = rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.float64)

    def mix(weight: float) -> Image.Image:
        return Image.fromarray(np.round(base * (1 - weight) + other * weight).astype(np.uint8))

    weights = {5: 0.6, 10: 0.3, 15: 0.1, 20: 0.02, 25: 0.0}
    records = [record(index + 1, steps) for index, steps in enumerate(weights)]
    pixels = {r["id"]: mix(weights[r["params"]["steps"]]) for r in records}
    analysis = analyze_convergence(records, pixels, metric="ssim", threshold=0.05)

    (series,) = analysis.series
    # 1 - SSIM against the 25-step image, from scikit-image's structural_similarity called here directly.
    final = np.asarray(pixels[5], dtype=np.float64) / 255.0
    reference = {
        r["params"]["steps"]: 1.0
        - structural_similarity(
            np.asarray(pixels[r["id"]], dtype=np.float64) / 255.0, final, channel_axis=2, data_range=1.0
        )
        for r in records
    }
    assert {p.steps: p.distance_ssim for p in series.points} == pytest.approx(reference)
    # 0.113 at 10 steps, 0.011 at 15, 0.0004 at 20: under 0.05 from 15 steps on.
    assert reference[10] >= 0.05 > reference[15] > reference[20]
    assert series.converged_at == 15
    assert analysis.metric == "ssim"


def test_ssim_of_identical_and_unrelated_images() -> None:
    a = load_pixels(Image.fromarray(reference_pixels(1)))
    b = load_pixels(Image.fromarray(reference_pixels(2)))
    assert ssim(a, a) == pytest.approx(1.0)
    assert ssim(a, b) < 0.2
    assert mean_absolute_difference(a, a) == 0.0
    # Images smaller than skimage's 7-px window still compare; 2×2 is too small for any window.
    assert ssim(a[:5, :5], a[:5, :5]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="3×3"):
        ssim(a[:2, :2], b[:2, :2])
    with pytest.raises(ValueError, match="different sizes"):
        mean_absolute_difference(a, b[:8])


def test_summary_per_sampler_and_per_model_sampler_schedule() -> None:
    records: list[dict[str, Any]] = []
    pixels: dict[int, Image.Image] = {}
    plans: list[tuple[dict[str, Any], dict[int, int]]] = [
        ({"seed": 1}, {10: 9, 20: 3, 30: 0}),  # converges at 20
        ({"seed": 2}, {10: 4, 20: 2, 30: 0}),  # at 10
        ({"seed": 3}, {10: 9, 20: 8, 30: 0}),  # never
        ({"seed": 4}, {10: 3, 20: 1, 30: 0}),  # at 10
        ({"seed": 1, "sampler": "DDIM"}, {10: 30, 20: 1, 30: 0}),  # at 20
        ({"seed": 1, "sampler": "DDIM", "schedule": "Karras"}, {10: 2, 30: 0}),  # at 10
    ]
    for params, offsets in plans:
        more, images = build_series(len(records) + 1, offsets, **params)
        records += more
        pixels.update(images)

    analysis = analyze_convergence(records, pixels)
    by_sampler = {s.label: s for s in analysis.by_sampler}
    assert set(by_sampler) == {"Euler", "DDIM", "DDIM Karras"}, "a sampler's schedules are separate groups"
    euler = by_sampler["Euler"]
    assert (euler.series, euler.converged, euler.never_converged) == (4, 3, 1)
    assert euler.converged_at is not None
    spread = euler.converged_at.to_dict()
    assert spread == {"count": 3, "median": 10.0, "min": 10.0, "max": 20.0, "q1": 10.0, "q3": 15.0, "iqr": 5.0}
    curve = {point.steps: point for point in euler.curve}
    assert curve[10].count == 4
    assert curve[10].median == pytest.approx(6.5 / 255)
    assert curve[10].min == pytest.approx(3 / 255) and curve[10].max == pytest.approx(9 / 255)
    assert curve[30].max == 0.0

    ddim = by_sampler["DDIM"]
    assert ddim.series == 1 and ddim.converged_at is not None and ddim.converged_at.median == 20.0
    karras = by_sampler["DDIM Karras"]
    assert karras.key == {"sampler": "DDIM", "schedule": "Karras"}
    assert karras.series == 1 and karras.converged_at is not None and karras.converged_at.median == 10.0

    groups = {tuple(s.key.values()): s for s in analysis.by_model_sampler_schedule}
    assert set(groups) == {
        ("tiny-sd", "DDIM", "Automatic"),
        ("tiny-sd", "DDIM", "Karras"),
        ("tiny-sd", "Euler", "Automatic"),
    }
    assert groups[("tiny-sd", "DDIM", "Karras")].converged_at.median == 10.0  # type: ignore[union-attr]
    assert groups[("tiny-sd", "DDIM", "Karras")].label == "tiny-sd / DDIM Karras"


def test_dpmpp_2m_and_dpmpp_2m_karras_are_two_rows_named_as_a1111_names_them() -> None:
    # The convergence run: --sampler "DPM++ 2M" --sampler "DPM++ 2M Karras" gave one merged row.
    automatic, pixels = build_series(1, {4: 20, 8: 3, 12: 0}, sampler="DPM++ 2M", schedule="Automatic")
    karras, more = build_series(4, {4: 2, 8: 1, 12: 0}, sampler="DPM++ 2M", schedule="Karras")
    analysis = analyze_convergence(automatic + karras, {**pixels, **more})
    rows = [(s.label, s.series, s.converged_at.median if s.converged_at else None) for s in analysis.by_sampler]
    # Names from A1111's own sampler list (modules/sd_samplers_kdiffusion.py: "DPM++ 2M", "DPM++ 2M Karras").
    assert sorted(rows) == [("DPM++ 2M", 1, 8.0), ("DPM++ 2M Karras", 1, 4.0)]
    assert sorted(s.sampler for s in analysis.series) == ["DPM++ 2M", "DPM++ 2M Karras"]


def test_loads_from_paths_and_from_a_function(tmp_path: Path) -> None:
    records, images = build_series(1, CONVERGES_AT_20)
    for image_id, image in images.items():
        image.save(tmp_path / f"{image_id}.png")

    by_path = analyze_convergence(records, lambda r: tmp_path / f"{r['id']}.png")
    by_mapping = analyze_convergence(records, {i: str(tmp_path / f"{i}.png") for i in images})
    in_memory = analyze_convergence(records, images)
    assert by_path.to_dict() == by_mapping.to_dict() == in_memory.to_dict()

    del images[3]
    with pytest.raises(KeyError, match="image 3"):
        analyze_convergence(records, images)


def test_to_dict_is_json_safe_and_carries_the_figures() -> None:
    records, pixels = build_series(1, CONVERGES_AT_20)
    data = analyze_convergence(records, pixels).to_dict()
    assert json.loads(json.dumps(data)) == data
    (series,) = data["series"]
    assert series["converged_at"] == 20
    assert series["params"]["sampler"] == "Euler" and "steps" not in series["params"]
    assert {"steps", "image_id", "distance_mad", "distance_ssim", "ssim"} <= set(series["points"][0])
    assert data["by_sampler"][0]["key"] == {"sampler": "Euler", "schedule": "Automatic"}
    assert data["by_sampler"][0]["label"] == "Euler"


def test_bad_metric_or_threshold() -> None:
    with pytest.raises(ValueError, match="metric"):
        analyze_convergence([], {}, metric="lpips")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threshold"):
        analyze_convergence([], {}, threshold=0)


def test_no_series_gives_an_empty_analysis() -> None:
    analysis = analyze_convergence([record(1, 20), record(2, 20, seed=5)], {})
    assert analysis.series == () and analysis.by_sampler == ()
    assert analysis.unmatched_image_ids == (1, 2)


def test_series_group_by_lora_set_though_it_is_a_list() -> None:
    """A LoRA set is a list of maps: it keys a series like a scalar field (it used to raise 'unhashable')."""
    style = [{"name": "style", "weight": 0.6}]
    records = [
        record(1, 10, loras=style),
        record(2, 20, loras=[{"weight": 0.6, "name": "style"}]),  # the same set, keys in another order
        record(3, 10, loras=[{"name": "style", "weight": 1.0}]),
        record(4, 20, loras=[{"name": "style", "weight": 1.0}]),
        record(5, 20, loras=[]),
    ]
    series, unmatched = group_series(records)
    assert sorted([r["id"] for r in members] for members in series) == [[1, 2], [3, 4]]
    assert unmatched == [5]
