"""The X/Y/Z plot's answer drawn from finished cells: A1111's order, its labels, legend and margins.

Cells are noise images, so a cell found in a grid pixel for pixel is that cell and no other. Where a label band's
size depends on the font, the first cell is located by search and every other position is checked against it
by hand arithmetic (cell size plus margin)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

from cauldrond.a1111.xyz import PlotAxis, XyzExperiment, axis_label, parse_script_args, xyz_experiment
from cauldrond.a1111.xyz_output import PlotCell, compose_xyz_output
from cauldrond.media.grid import draw_grid
from tests.a1111.test_xyz_args import release_args

SIZE = 64
BASE = {"prompt": "a cat", "negative_prompt": "", "width": SIZE, "height": SIZE, "seed": 5}


def noise(index: int) -> Image.Image:
    pixels = np.random.default_rng(index).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def cells_for(count: int) -> list[PlotCell]:
    return [PlotCell(noise(i), f"a cat\nSteps: {i}, Seed: 5") for i in range(count)]


def plot_of(**kwargs: Any) -> XyzExperiment:
    return xyz_experiment(parse_script_args(release_args(**kwargs)), BASE)


def resolved(plot: XyzExperiment) -> list[dict[str, Any]]:
    # What experiments.create stores as spec["resolved_axes"] when no -1 seed needs drawing.
    return [{"name": name, "values": list(values)} for name, values in plot.axes.items()]


def array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def find(grid: Image.Image, cell: Image.Image) -> tuple[int, int]:
    """Where ``cell`` sits in ``grid``, found by exhaustive search (independent of the layout code)."""
    big, small = array(grid), array(cell)
    height, width = small.shape[:2]
    for y in range(big.shape[0] - height + 1):
        for x in range(big.shape[1] - width + 1):
            if big[y, x, 0] == small[0, 0, 0] and np.array_equal(big[y : y + height, x : x + width], small):
                return x, y
    raise AssertionError("the cell is not in the grid")


def at(grid: Image.Image, x: int, y: int, size: tuple[int, int] = (SIZE, SIZE)) -> np.ndarray:
    return array(grid)[y : y + size[1], x : x + size[0]]


def test_plain_grid_without_legend_is_cells_edge_to_edge() -> None:
    plot = plot_of(x=(4, "2-4"), y=(6, "5, 7"), draw_legend=False, margin_size=10)
    cells = cells_for(6)
    out = compose_xyz_output(plot, resolved(plot), cells)
    assert out.kinds == ["grid"] and out.sources == [0]
    (grid,) = out.images
    # A1111's image_grid: 3 columns x 2 rows of 64 px, no labels, and no margin without the legend.
    assert grid.size == (3 * SIZE, 2 * SIZE)
    for index, cell in enumerate(cells):
        column, row = index % 3, index // 3  # A1111's order: x + y * len(X)
        assert np.array_equal(at(grid, column * SIZE, row * SIZE), array(cell.image))  # type: ignore[arg-type]


@pytest.mark.parametrize("margin", [0, 6])
def test_legend_and_margin(margin: int) -> None:
    plot = plot_of(x=(4, "2-3"), y=(6, "5, 7"), draw_legend=True, margin_size=margin)
    cells = cells_for(4)
    (grid,) = compose_xyz_output(plot, resolved(plot), cells).images
    left, top = find(grid, cells[0].image)  # type: ignore[arg-type]
    assert left > 0 and top > 0  # a band for the Y labels on the left and for the X labels on top
    step = SIZE + margin
    assert grid.size == (left + 2 * SIZE + margin, top + 2 * SIZE + margin)
    for index, cell in enumerate(cells):
        x, y = left + (index % 2) * step, top + (index // 2) * step
        assert np.array_equal(at(grid, x, y), array(cell.image))  # type: ignore[arg-type]
    pixels = array(grid)
    # The bands hold text (dark pixels) over each column and beside each row; the margins are white.
    for column in range(2):
        assert (pixels[:top, left + column * step : left + column * step + SIZE] < 128).any()
    for row in range(2):
        assert (pixels[top + row * step : top + row * step + SIZE, :left] < 128).any()
    if margin:
        assert (pixels[top:, left + SIZE : left + SIZE + margin] == 255).all()


def test_z_axis_sub_grids_images_and_their_order() -> None:
    plot = plot_of(x=(4, "2-3"), y=(6, "5, 7"), z=(7, "cat, dog"), include_sub_grids=True, include_lone_images=True)
    cells = cells_for(8)
    out = compose_xyz_output(plot, resolved(plot), cells)
    assert out.kinds == ["grid", "sub-grid", "sub-grid"] + ["image"] * 8
    assert out.sources == [0, 0, 4, *range(8)]
    grid, first, second = out.images[:3]
    # Each sub-grid holds its Z value's four cells: cell 4 (z=1, x=0, y=0) is in the second, not the first.
    assert find(second, cells[4].image) == find(first, cells[0].image)  # type: ignore[arg-type]
    with pytest.raises(AssertionError):
        find(first, cells[4].image)  # type: ignore[arg-type]
    # The main grid: the two sub-grids side by side under the Z labels, no gap between them.
    x0, y0 = find(grid, cells[0].image)  # type: ignore[arg-type]
    x4, y4 = find(grid, cells[4].image)  # type: ignore[arg-type]
    assert (x4 - x0, y4 - y0) == (first.width, 0)
    assert grid.width == 2 * first.width and grid.height > first.height  # the Z labels' band on top
    assert all(np.array_equal(array(a), array(b.image)) for a, b in zip(out.images[3:], cells, strict=True))  # type: ignore[arg-type]


def test_one_z_value_main_grid_is_the_sub_grid() -> None:
    # A1111 returns the grid and, with "Include Sub Grids", its one sub-grid again.
    plot = plot_of(x=(4, "2-3"), include_sub_grids=True)
    out = compose_xyz_output(plot, resolved(plot), cells_for(2))
    assert out.kinds == ["grid", "sub-grid"]
    assert np.array_equal(array(out.images[0]), array(out.images[1]))


def test_no_grid_when_the_dev_branch_turns_it_off() -> None:
    args = [*release_args(x=(4, "2-3"), include_lone_images=True), False]
    plot = xyz_experiment(parse_script_args(args), BASE)
    cells = cells_for(2)
    out = compose_xyz_output(plot, resolved(plot), cells)
    assert out.kinds == ["image", "image"] and out.infotexts == [cell.infotext for cell in cells]
    args[10] = False  # include_lone_images off too: A1111 answers with no image at all
    assert compose_xyz_output(xyz_experiment(parse_script_args(args), BASE), resolved(plot), cells).images == []


def test_infotexts_follow_the_images() -> None:
    plot = plot_of(x=(4, "2-3"), y=(6, "5,7"), z=(7, "cat,dog"), include_sub_grids=True, include_lone_images=True)
    cells = cells_for(8)
    out = compose_xyz_output(plot, resolved(plot), cells)
    xy = 'Script: X/Y/Z plot, X Type: Steps, X Values: 2-3, Y Type: CFG Scale, Y Values: "5,7"'
    assert out.infotexts[0] == f'{cells[0].infotext}, {xy}, Z Type: Prompt S/R, Z Values: "cat,dog"'
    assert out.infotexts[1:3] == [f"{cells[0].infotext}, {xy}", f"{cells[4].infotext}, {xy}"]
    assert out.infotexts[3:] == [cell.infotext for cell in cells]


def test_fixed_seeds_are_written_into_the_grid_infotext() -> None:
    plot = plot_of(x=(1, "-1, 7"))
    drawn = [{"name": "seed", "values": [123456, 7]}]  # the service drew 123456 for the -1
    out = compose_xyz_output(plot, drawn, cells_for(2))
    assert out.infotexts[0].endswith('X Type: Seed, X Values: "-1, 7", Fixed X Values: "123456, 7"')
    kept = plot_of(x=(1, "-1, 7"), no_fixed_seeds=True)
    assert (
        "Fixed X Values"
        not in compose_xyz_output(kept, [{"name": "seed", "values": [-1, 7]}], cells_for(2)).infotexts[0]
    )


def test_a_failed_cell_is_missing_in_the_grid_and_black_among_the_images() -> None:
    plot = plot_of(x=(4, "2-3"), draw_legend=False, include_lone_images=True)
    cells = [PlotCell(noise(0), "ok"), PlotCell(None, "")]
    out = compose_xyz_output(plot, resolved(plot), cells)
    grid = out.images[0]
    assert grid.size == (2 * SIZE, SIZE)
    assert np.array_equal(at(grid, 0, 0), array(noise(0)))
    missing = at(grid, SIZE, 0)
    assert not np.array_equal(missing, array(noise(0))) and (missing > 0).any()  # the grey "missing" placeholder
    assert out.images[2].size == (SIZE, SIZE) and not array(out.images[2]).any() and out.infotexts[2] == ""


def test_cells_must_match_the_plot() -> None:
    plot = plot_of(x=(4, "2-3"))
    with pytest.raises(ValueError, match="3 cells for a plot of 2 x 1 x 1"):
        compose_xyz_output(plot, resolved(plot), cells_for(3))
    with pytest.raises(ValueError, match="no axis 'steps'"):
        compose_xyz_output(plot, [{"name": "cfg_scale", "values": [1.0, 2.0]}], cells_for(2))


@pytest.mark.parametrize(
    ("label", "value", "expected"),
    [
        # A1111's format_value_add_label: f"{label}: {x}", floats rounded to 8 places; format_value: the bare value.
        ("Steps", 20, "Steps: 20"),
        ("CFG Scale", 7.0, "CFG Scale: 7.0"),
        ("CFG Scale", 0.1 + 0.2, "CFG Scale: 0.3"),
        ("Seed", 42, "Seed: 42"),
        ("Prompt S/R", "a dog", "a dog"),
        ("Sampler", "DPM++ 2M Karras", "DPM++ 2M Karras"),
        ("Checkpoint name", "sd/v1-5.safetensors", "v1-5.safetensors"),  # format_remove_path
        ("Schedule type", "Karras", "Schedule type: Karras"),
        ("Clip skip", 2, "Clip skip: 2"),
        ("Size", "512x768", "Size: 512x768"),
        ("Nothing", None, ""),
    ],
)
def test_labels_as_a1111_writes_them(label: str, value: Any, expected: str) -> None:
    assert axis_label(PlotAxis("X", 0, label, "", ()), value) == expected


def test_grid_gap_argument() -> None:
    # The shared grid's gap, set explicitly: two unlabelled 64 px cells 9 px apart.
    grid = draw_grid([[noise(1), noise(2)]], ["", ""], [""], gap=9)
    assert grid.size == (2 * SIZE + 9, SIZE)
    assert np.array_equal(at(grid, SIZE + 9, 0), array(noise(2)))
    with pytest.raises(ValueError, match="0 or more"):
        draw_grid([[noise(1)]], [""], [""], gap=-1)
