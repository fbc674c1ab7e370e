"""Labelled comparison grids, checked on their pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cauldrond.media.grid import (
    BACKGROUND,
    MIN_FONT_SIZE,
    MISSING_FILL,
    GridTooLarge,
    draw_grid,
    get_font,
    grid_layout,
    wrap_text,
)

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200)]


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> Image.Image:
    return Image.new("RGB", size, colour)


def noise(seed: int, size: tuple[int, int] = (64, 48)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def region(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(image.crop(box))


def dark_pixels(pixels: np.ndarray) -> int:
    return int((pixels.max(axis=2) < 100).sum())


def test_images_are_pasted_where_the_layout_says() -> None:
    cells = [[noise(row * 3 + column) for column in range(3)] for row in range(2)]
    grid = draw_grid(cells, ["a", "b", "c"], ["one", "two"])
    layout = grid_layout(3, 2, (64, 48), ["a", "b", "c"], ["one", "two"])

    assert grid.size == (layout.width, layout.height)
    assert layout.top_height > 0 and layout.left_width > 0
    assert layout.width == layout.left_width + 3 * 64 + 2 * layout.gap
    assert layout.height == layout.top_height + 2 * 48 + layout.gap
    for row in range(2):
        for column in range(3):
            x, y = layout.cell_origin(row, column)
            assert np.array_equal(region(grid, (x, y, x + 64, y + 48)), np.asarray(cells[row][column]))


def test_labels_sit_above_their_column_and_left_of_their_row() -> None:
    cells = [[solid(COLOURS[0]), solid(COLOURS[1])], [solid(COLOURS[2]), solid(COLOURS[3])]]
    grid = draw_grid(cells, ["Euler", ""], ["", "40 steps"])
    layout = grid_layout(2, 2, (64, 48), ["Euler", ""], ["", "40 steps"])
    top = layout.title_height
    band_bottom = top + layout.top_height

    first_x, first_y = layout.cell_origin(0, 0)
    second_x, second_y = layout.cell_origin(1, 1)
    # Text above column 0, none above the unlabelled column 1.
    above_first = region(grid, (first_x, top, first_x + 64, band_bottom))
    assert dark_pixels(above_first) > 20
    assert (region(grid, (second_x, top, second_x + 64, band_bottom)) == BACKGROUND).all()
    # The label is centred over its column.
    columns_with_ink = np.nonzero((above_first.max(axis=2) < 100).any(axis=0))[0]
    assert abs((columns_with_ink.min() + columns_with_ink.max()) / 2 - 32) <= 3
    # Row label beside row 1 only.
    assert dark_pixels(region(grid, (0, second_y, layout.left_width, second_y + 48))) > 20
    assert (region(grid, (0, first_y, layout.left_width, first_y + 48)) == BACKGROUND).all()


def test_single_unlabelled_row_has_no_left_band() -> None:
    layout = grid_layout(2, 1, (64, 64), ["CFG 3", "CFG 7"], [""])
    assert layout.left_width == 0
    assert layout.cell_origin(0, 0) == (0, layout.top_height)
    grid = draw_grid([[noise(1, (64, 64)), noise(2, (64, 64))]], ["CFG 3", "CFG 7"], [""])
    assert grid.size == (2 * 64 + layout.gap, layout.top_height + 64)


def test_no_labels_no_bands() -> None:
    layout = grid_layout(2, 2, (32, 32), ["", ""], ["", ""])
    assert (layout.top_height, layout.left_width, layout.title_height) == (0, 0, 0)


def test_long_label_wraps_to_the_cell_width() -> None:
    long_label = "DPM++ 2M SDE Heun with a very long descriptive sampler name"
    short = grid_layout(2, 1, (128, 128), ["Euler", "DDIM"], [""])
    wrapped = grid_layout(2, 1, (128, 128), ["Euler", long_label], [""])

    assert len(wrapped.column_lines[1]) > 1
    assert " ".join(wrapped.column_lines[1]) == long_label
    font = get_font(wrapped.font_size)
    assert all(font.getlength(line) <= 128 - wrapped.padding for line in wrapped.column_lines[1])
    assert wrapped.top_height > short.top_height
    # Row labels wrap to the left band.
    rows = grid_layout(1, 1, (128, 128), ["x"], [long_label])
    assert len(rows.row_lines[0]) > 1
    assert all(font.getlength(line) <= rows.left_width - 2 * rows.padding for line in rows.row_lines[0])


def test_wrap_text_breaks_a_word_wider_than_the_cell_and_keeps_newlines() -> None:
    font = get_font(14)
    lines = wrap_text("a_lora_name_far_too_long_for_one_narrow_cell", font, 60)
    assert len(lines) > 1
    assert "".join(lines) == "a_lora_name_far_too_long_for_one_narrow_cell"
    assert all(font.getlength(line) <= 60 for line in lines)
    assert wrap_text("first\nsecond", font, 500) == ["first", "second"]
    assert wrap_text("", font, 100) == []


def test_endless_label_is_cut_with_an_ellipsis() -> None:
    layout = grid_layout(1, 1, (64, 64), [" ".join(["word"] * 200)], [""])
    assert 1 < len(layout.column_lines[0]) <= 6
    assert layout.column_lines[0][-1].endswith("…")


def test_font_grows_with_the_cell_but_never_below_the_minimum() -> None:
    assert grid_layout(1, 1, (64, 64), ["a"], [""]).font_size == MIN_FONT_SIZE
    assert grid_layout(1, 1, (512, 512), ["a"], [""]).font_size == 40
    assert grid_layout(1, 1, (1024, 1024), ["a"], [""]).font_size == 81


def test_missing_cell_is_a_marked_placeholder() -> None:
    cells: list[list[Image.Image | None]] = [[noise(1), None]]
    grid = draw_grid(cells, ["seed 1", "seed 2"], [""])
    layout = grid_layout(2, 1, (64, 48), ["seed 1", "seed 2"], [""])
    x, y = layout.cell_origin(0, 1)
    placeholder = region(grid, (x, y, x + 64, y + 48))

    is_fill = (placeholder == MISSING_FILL).all(axis=2)
    assert is_fill.mean() > 0.5
    # "missing" is written across it in white.
    assert ((placeholder > 200).all(axis=2)).sum() > 20


def test_all_missing_needs_a_cell_size() -> None:
    with pytest.raises(ValueError, match="cell_size"):
        draw_grid([[None, None]], ["a", "b"], [""])
    grid = draw_grid([[None, None]], ["a", "b"], [""], cell_size=(40, 40))
    assert grid.size[1] > 40


def test_too_large_grid_says_how_large_and_what_to_do() -> None:
    with pytest.raises(GridTooLarge) as caught:
        grid_layout(20, 20, (512, 512), [str(i) for i in range(20)], [str(i) for i in range(20)])
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert "megapixels" in message and "64.0" in message
    assert "fix an axis" in message and "Z" in message
    layout = grid_layout(20, 20, (512, 512), [str(i) for i in range(20)], [str(i) for i in range(20)], max_pixels=10**9)
    assert f"{layout.width}x{layout.height}" in message

    # draw_grid refuses too, before allocating the canvas.
    with pytest.raises(GridTooLarge):
        draw_grid([[noise(1), noise(2)]], ["a", "b"], [""], max_pixels=1000)


def test_title_gets_its_own_band() -> None:
    without = grid_layout(2, 1, (64, 64), ["a", "b"], [""])
    titled = grid_layout(2, 1, (64, 64), ["a", "b"], [""], title="a lighthouse at dusk × Euler")
    assert titled.title_height > 0
    assert titled.height == without.height + titled.title_height
    assert titled.cell_origin(0, 0)[1] == without.cell_origin(0, 0)[1] + titled.title_height
    grid = draw_grid([[noise(1, (64, 64)), noise(2, (64, 64))]], ["a", "b"], [""], title="a lighthouse")
    assert dark_pixels(region(grid, (0, 0, grid.width, titled.title_height))) > 20


def test_same_input_same_pixels() -> None:
    def build() -> bytes:
        cells: list[list[Image.Image | None]] = [[noise(1), None], [noise(3), noise(4)]]
        return draw_grid(cells, ["Euler a", "DPM++ 2M Karras"], ["10", "20"], title="steps × sampler").tobytes()

    assert build() == build()


def test_images_of_different_sizes_are_centred_in_cells_of_the_largest() -> None:
    wide, tall = noise(1, (64, 32)), noise(2, (32, 48))
    grid = draw_grid([[wide, tall]], ["512x256", "256x384"], [""])
    layout = grid_layout(2, 1, (64, 48), ["512x256", "256x384"], [""])
    assert grid.size == (layout.width, layout.height)
    x, y = layout.cell_origin(0, 0)
    assert np.array_equal(region(grid, (x, y + 8, x + 64, y + 40)), np.asarray(wide))
    assert (region(grid, (x, y, x + 64, y + 8)) == BACKGROUND).all()
    x, y = layout.cell_origin(0, 1)
    assert np.array_equal(region(grid, (x + 16, y, x + 48, y + 48)), np.asarray(tall))
    # cell_size only ever enlarges the cells.
    assert draw_grid([[wide]], [""], [""], cell_size=(80, 20)).size == (80, 32)


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="column labels"):
        draw_grid([[noise(1), noise(2)]], ["a"], [""])
    with pytest.raises(ValueError, match="row labels"):
        draw_grid([[noise(1)], [noise(2)]], ["a"], [""])
    with pytest.raises(ValueError, match="same length"):
        draw_grid([[noise(1), noise(2)], [noise(3)]], ["a", "b"], ["1", "2"])


def test_other_modes_are_converted_to_rgb() -> None:
    grey = Image.new("L", (32, 32), 90)
    rgba = Image.new("RGBA", (32, 32), (10, 20, 30, 255))
    grid = draw_grid([[grey, rgba]], ["", ""], [""])
    assert grid.mode == "RGB"
    assert grid.getpixel((0, 0)) == (90, 90, 90)
    assert grid.getpixel((grid.width - 1, 0)) == (10, 20, 30)
