"""Labelled comparison grids: images in rows and columns, column labels on top, row labels on the left.

Every cell is as large as the largest image; a smaller one (a width or size axis) is centred in its cell at its
own pixels, never scaled, so what the grid shows is what was generated.

The approach follows AUTOMATIC1111's X/Y/Z plot grids (font size proportional to the cell, labels word-wrapped
to the cell width, a band above and to the left) so a grid from either tool reads the same way.

Fonts come from installed packages only, never the network: DejaVu Sans as bundled with matplotlib (a dependency
for the analysis plots) because it covers accented Latin, Greek, Cyrillic and symbols such as "×", and otherwise
Pillow's own ``ImageFont.load_default(size=...)``, whose font has ASCII glyphs only. With one installation the
same input always gives the same pixels.

``grid_layout`` does all the measuring without touching pixels, so a caller can check the pixel budget before it
loads a single image; ``draw_grid`` then paints what the layout says, decoding each cell only when it is pasted
(a loader per cell) so a grid costs its own pixels plus one cell's, never every cell's at once.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
# A cell: an image, a loader that decodes it when it is pasted (and whose image is closed right after), or None.
Cell = Image.Image | Callable[[], Image.Image] | None

DEFAULT_MAX_PIXELS = 64_000_000
# The largest grid anyone may ask for. Pillow refuses to open an image over 2 x Image.MAX_IMAGE_PIXELS
# (178,956,970 px by default) as a decompression bomb, so a grid above that could be written but not read back
# by any Pillow-based tool, this daemon included; 160 M px stays below that limit, and at 3 bytes a pixel its
# 480 MB is the memory budget of the one grid the daemon draws at a time.
MAX_GRID_PIXELS = 160_000_000
# Below this a label is unreadable once a wide grid is scaled down to a phone screen.
MIN_FONT_SIZE = 14
# A very long column label (a prompt axis) would otherwise make the top band taller than the images.
MAX_COLUMN_LABEL_LINES = 6
MAX_TITLE_LINES = 4
ELLIPSIS = "…"

BACKGROUND = (255, 255, 255)
TEXT = (0, 0, 0)
MISSING_FILL = (128, 128, 128)
MISSING_MARK = (176, 176, 176)
MISSING_TEXT = (255, 255, 255)


class GridTooLarge(ValueError):
    """The grid would exceed the pixel budget; the message says how large it would be and what to do."""


@dataclass(frozen=True)
class GridLayout:
    """Where everything goes. Coordinates are in output pixels, origin at the top left."""

    columns: int
    rows: int
    cell_width: int
    cell_height: int
    gap: int
    font_size: int
    title_font_size: int
    padding: int
    line_gap: int
    title_height: int
    top_height: int  # column label band, below the title
    left_width: int  # row label band
    title_lines: tuple[str, ...]
    column_lines: tuple[tuple[str, ...], ...]
    row_lines: tuple[tuple[str, ...], ...]

    @property
    def width(self) -> int:
        return self.left_width + self.columns * self.cell_width + (self.columns - 1) * self.gap

    @property
    def height(self) -> int:
        return self.title_height + self.top_height + self.rows * self.cell_height + (self.rows - 1) * self.gap

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def cell_origin(self, row: int, column: int) -> tuple[int, int]:
        """Top-left corner of the image at ``row``, ``column``."""
        x = self.left_width + column * (self.cell_width + self.gap)
        y = self.title_height + self.top_height + row * (self.cell_height + self.gap)
        return x, y


@functools.lru_cache(maxsize=1)
def bundled_font_file() -> Path | None:
    """matplotlib's DejaVu Sans, found without importing matplotlib (slow, and it may pick a GUI backend)."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=16)
def get_font(size: int) -> Font:
    """The label font at ``size`` px: DejaVu Sans when installed, else Pillow's built-in font (ASCII only)."""
    path = bundled_font_file()
    if path is not None:
        try:
            return ImageFont.truetype(str(path), size)
        except OSError:
            pass  # a broken font file must not stop a grid; the built-in font still draws ASCII
    return ImageFont.load_default(size=size)


def line_height(font: Font) -> int:
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return int(ascent + descent)
    _, top, _, bottom = font.getbbox("Ag")
    return int(bottom - top)


def wrap_text(text: str, font: Font, max_width: int) -> list[str]:
    """Break ``text`` into lines no wider than ``max_width`` px: at spaces where possible, inside a word that is
    too long on its own. Explicit newlines are kept. Empty text gives no lines."""
    lines: list[str] = []
    for paragraph in text.splitlines():
        current = ""
        for word in paragraph.split():
            candidate = f"{current} {word}" if current else word
            if font.getlength(candidate) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = ""
            # A word wider than the cell (a long LoRA name, a URL) is split rather than drawn across neighbours.
            for char in word:
                if current and font.getlength(current + char) > max_width:
                    lines.append(current)
                    current = ""
                current += char
        if current:
            lines.append(current)
    return lines


def _limit(lines: list[str], max_lines: int, font: Font, max_width: int) -> tuple[str, ...]:
    if len(lines) <= max_lines:
        return tuple(lines)
    kept = lines[: max(max_lines, 1)]
    last = kept[-1]
    while last and font.getlength(last + ELLIPSIS) > max_width:
        last = last[:-1]
    kept[-1] = last + ELLIPSIS
    return tuple(kept)


def _block_height(count: int, each: int, line_gap: int) -> int:
    return count * each + max(count - 1, 0) * line_gap


def grid_layout(
    columns: int,
    rows: int,
    cell_size: tuple[int, int],
    x_labels: Sequence[str],
    y_labels: Sequence[str],
    title: str | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    gap: int | None = None,
) -> GridLayout:
    """Measure a grid of ``rows`` × ``columns`` cells of ``cell_size`` (width, height) with its labels.
    ``gap`` (px between cells) defaults to a width that grows with the font; A1111's "grid margins" set it.

    Raises ``ValueError`` for labels that do not match the shape and ``GridTooLarge`` over ``max_pixels``."""
    cell_width, cell_height = cell_size
    if columns < 1 or rows < 1:
        raise ValueError(f"a grid needs at least one row and one column, got {rows} × {columns}")
    if cell_width < 1 or cell_height < 1:
        raise ValueError(f"cell size must be positive, got {cell_width}×{cell_height}")
    if len(x_labels) != columns:
        raise ValueError(f"{len(x_labels)} column labels for {columns} columns")
    if len(y_labels) != rows:
        raise ValueError(f"{len(y_labels)} row labels for {rows} rows")

    font_size = max(MIN_FONT_SIZE, (cell_width + cell_height) // 25)
    title_font_size = font_size * 5 // 4
    padding = font_size // 2
    line_gap = font_size // 4
    if gap is None:
        gap = max(2, font_size // 8)
    elif gap < 0:
        raise ValueError(f"the gap between cells must be 0 or more pixels, got {gap}")
    font = get_font(font_size)
    each_line = line_height(font)

    # Column labels: wrapped to the cell width, the band as tall as the tallest label.
    column_width = max(cell_width - padding, 1)
    column_lines = tuple(
        _limit(wrap_text(label, font, column_width), MAX_COLUMN_LABEL_LINES, font, column_width) for label in x_labels
    )
    most_column_lines = max(len(lines) for lines in column_lines)
    top_height = _block_height(most_column_lines, each_line, line_gap) + 2 * padding if most_column_lines else 0

    # Row labels: a band as wide as the widest label needs, but no wider than 3/4 of a cell (as A1111) or room
    # for a few words at this font size, whichever is more; each label may use the height of its row.
    left_width = 0
    row_lines: tuple[tuple[str, ...], ...] = tuple(() for _ in y_labels)
    if any(label.strip() for label in y_labels):
        widest_allowed = max(cell_width * 3 // 4, font_size * 8)
        natural = max(int(font.getlength(line)) for label in y_labels for line in (label.splitlines() or [""]))
        text_width = min(natural, widest_allowed)
        left_width = text_width + 2 * padding
        fits = max(1, (cell_height + line_gap) // (each_line + line_gap))
        row_lines = tuple(
            _limit(wrap_text(label, font, max(text_width, 1)), fits, font, max(text_width, 1)) for label in y_labels
        )

    title_lines: tuple[str, ...] = ()
    title_height = 0
    if title and title.strip():
        title_font = get_font(title_font_size)
        full_width = left_width + columns * cell_width + (columns - 1) * gap
        title_width = max(full_width - 2 * padding, 1)
        title_lines = _limit(wrap_text(title, title_font, title_width), MAX_TITLE_LINES, title_font, title_width)
        title_height = _block_height(len(title_lines), line_height(title_font), line_gap) + 2 * padding

    layout = GridLayout(
        columns=columns,
        rows=rows,
        cell_width=cell_width,
        cell_height=cell_height,
        gap=gap,
        font_size=font_size,
        title_font_size=title_font_size,
        padding=padding,
        line_gap=line_gap,
        title_height=title_height,
        top_height=top_height,
        left_width=left_width,
        title_lines=title_lines,
        column_lines=column_lines,
        row_lines=row_lines,
    )
    if layout.pixels > max_pixels:
        raise GridTooLarge(
            f"the grid would be {layout.width}x{layout.height} px ({layout.pixels / 1e6:.1f} megapixels), over the "
            f"limit of {max_pixels / 1e6:.1f} megapixels ({rows} rows × {columns} columns of "
            f"{cell_width}x{cell_height} images): fix an axis to fewer values, or move one to Z to get one "
            "smaller grid per value"
        )
    return layout


def _cell_size(images: Sequence[Sequence[Cell]], cell_size: tuple[int, int] | None) -> tuple[int, int]:
    sizes = [image.size for row in images for image in row if isinstance(image, Image.Image)]
    if cell_size is None and any(callable(image) for row in images for image in row):
        raise ValueError("cells given as loaders need cell_size: their sizes are not known before they are drawn")
    if cell_size is not None:
        sizes.append(cell_size)
    if not sizes:
        raise ValueError("every cell is missing: pass cell_size so the grid knows how large to draw them")
    return max(width for width, _ in sizes), max(height for _, height in sizes)


def _draw_lines(
    draw: ImageDraw.ImageDraw, lines: Sequence[str], centre_x: int, top: int, font: Font, line_gap: int
) -> None:
    each = line_height(font)
    for index, line in enumerate(lines):
        draw.text((centre_x, top + index * (each + line_gap)), line, font=font, fill=TEXT, anchor="ma")


def _missing_cell(layout: GridLayout) -> Image.Image:
    width, height = layout.cell_width, layout.cell_height
    cell = Image.new("RGB", (width, height), MISSING_FILL)
    draw = ImageDraw.Draw(cell)
    # A cross tells "no image" apart from a generated image that happens to be flat grey.
    stroke = max(1, layout.font_size // 10)
    draw.line((0, 0, width - 1, height - 1), fill=MISSING_MARK, width=stroke)
    draw.line((0, height - 1, width - 1, 0), fill=MISSING_MARK, width=stroke)
    font = get_font(layout.font_size)
    draw.text((width // 2, height // 2), "missing", font=font, fill=MISSING_TEXT, anchor="mm")
    return cell


def draw_grid(
    images: Sequence[Sequence[Cell]],
    x_labels: Sequence[str],
    y_labels: Sequence[str],
    title: str | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    cell_size: tuple[int, int] | None = None,
    gap: int | None = None,
) -> Image.Image:
    """Draw ``images`` (a list of rows) as one RGB image with column labels on top and row labels on the left.

    ``None`` cells are drawn as a grey "missing" placeholder; a callable cell is a loader, called when its cell
    is painted. Cells are as large as the largest image, or ``cell_size`` when that is larger (it is needed when
    every cell is missing, or cells are loaders); smaller images are centred.
    ``y_labels`` may be ``[""]`` for a single unlabelled row. Raises ``GridTooLarge`` (a ValueError) when the
    result would have more than ``max_pixels`` pixels."""
    rows = len(images)
    columns = len(images[0]) if rows else 0
    for index, cells in enumerate(images):
        if len(cells) != columns:
            raise ValueError(f"row {index} has {len(cells)} cells, row 0 has {columns}: rows must be the same length")
    size = _cell_size(images, cell_size)
    layout = grid_layout(columns, rows, size, x_labels, y_labels, title, max_pixels=max_pixels, gap=gap)

    grid = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
    draw = ImageDraw.Draw(grid)
    font = get_font(layout.font_size)
    each_line = line_height(font)

    if layout.title_lines:
        title_font = get_font(layout.title_font_size)
        _draw_lines(draw, layout.title_lines, layout.width // 2, layout.padding, title_font, layout.line_gap)

    for column, lines in enumerate(layout.column_lines):
        x, _ = layout.cell_origin(0, column)
        # Bottom-aligned, so one-line labels sit right above their images even when a neighbour wraps.
        block = _block_height(len(lines), each_line, layout.line_gap)
        top = layout.title_height + layout.top_height - layout.padding - block
        _draw_lines(draw, lines, x + layout.cell_width // 2, top, font, layout.line_gap)

    for row, lines in enumerate(layout.row_lines):
        _, y = layout.cell_origin(row, 0)
        block = _block_height(len(lines), each_line, layout.line_gap)
        _draw_lines(draw, lines, layout.left_width // 2, y + (layout.cell_height - block) // 2, font, layout.line_gap)

    missing: Image.Image | None = None
    for row, cells in enumerate(images):
        for column, cell in enumerate(cells):
            loaded = cell() if callable(cell) else None
            image = loaded if loaded is not None else cell
            if not isinstance(image, Image.Image):
                missing = missing or _missing_cell(layout)
                image = missing
            x, y = layout.cell_origin(row, column)
            x += (layout.cell_width - image.width) // 2
            y += (layout.cell_height - image.height) // 2
            grid.paste(image if image.mode == "RGB" else image.convert("RGB"), (x, y))
            if loaded is not None:
                loaded.close()  # one decoded cell at a time
    return grid
