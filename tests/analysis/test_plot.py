"""The convergence plot is a real PNG, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cauldrond.analysis.convergence import analyze_convergence
from cauldrond.analysis.plot import convergence_figure, plot_convergence


def constructed_analysis() -> Any:
    rng = np.random.default_rng(3)
    records: list[dict[str, Any]] = []
    pixels: dict[int, Image.Image] = {}
    for sampler in ("Euler", "DDIM"):
        for seed in (1, 2):
            base = rng.integers(64, 192, (24, 24, 3))
            for steps, offset in ((5, 20), (10, 6), (15, 2), (20, 0)):
                image_id = len(records) + 1
                params = {"prompt": "p", "sampler": sampler, "seed": seed, "steps": steps}
                records.append({"id": image_id, "params": params})
                # Seeds converge a little differently, so each sampler has a min-max band to draw.
                shift = offset + seed * 3 if offset else 0
                pixels[image_id] = Image.fromarray((base + shift).astype(np.uint8))
    return analyze_convergence(records, pixels)


def test_plot_writes_a_png(tmp_path: Path) -> None:
    analysis = constructed_analysis()
    out = plot_convergence(analysis, tmp_path / "convergence.png")
    assert out == tmp_path / "convergence.png"
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (960, 600)
        pixels = np.asarray(image.convert("RGB"))
    # Something was drawn: more than a blank canvas.
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10
    assert [p.name for p in tmp_path.iterdir()] == ["convergence.png"]


def test_plot_takes_the_dict_form_and_replaces_an_old_file(tmp_path: Path) -> None:
    target = tmp_path / "plot.png"
    target.write_bytes(b"old")
    plot_convergence({"convergence": constructed_analysis().to_dict()}, target)
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]


def test_nothing_to_plot(tmp_path: Path) -> None:
    empty = analyze_convergence([], {})
    with pytest.raises(ValueError, match="no images that differ only in steps"):
        plot_convergence(empty, tmp_path / "plot.png")
    assert list(tmp_path.iterdir()) == []


def test_each_schedule_of_a_sampler_is_its_own_line_named_as_a1111_names_it() -> None:
    rng = np.random.default_rng(5)
    records: list[dict[str, Any]] = []
    pixels: dict[int, Image.Image] = {}
    for schedule in ("Automatic", "Karras"):
        base = rng.integers(64, 192, (24, 24, 3))
        for steps, offset in ((4, 12), (8, 2), (12, 0)):  # MAD 12/255 > 0.02 > 2/255: converged at 8
            image_id = len(records) + 1
            params = {"prompt": "p", "sampler": "DPM++ 2M", "schedule": schedule, "seed": 1, "steps": steps}
            records.append({"id": image_id, "params": params})
            pixels[image_id] = Image.fromarray((base + offset).astype(np.uint8))
    figure = convergence_figure(analyze_convergence(records, pixels))
    (axes,) = figure.axes
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    # A1111's names (its sampler list has "DPM++ 2M" and "DPM++ 2M Karras"), not one merged "DPM++ 2M: 2 series".
    assert legend[:2] == [
        "DPM++ 2M: 1 series, median converged at 8 steps",
        "DPM++ 2M Karras: 1 series, median converged at 8 steps",
    ]
    assert len(axes.get_lines()) == 3  # two series and the threshold line
