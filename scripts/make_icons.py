"""Draw the web app's icons (pwa/icons/*.png) with Pillow: a cauldron with bubbles on the app's dark purple.

Deterministic (same Pillow, same bytes), so the committed PNGs can be regenerated and compared:
    .venv/bin/python scripts/make_icons.py
The "any" icons are a rounded square; the maskable one fills the whole square and keeps the drawing inside the
centre circle of 80% diameter that every platform's mask leaves visible (the W3C manifest spec's safe zone).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ICONS = Path(__file__).resolve().parents[1] / "pwa" / "icons"
BACKGROUND = (43, 29, 58, 255)  # the manifest's theme_color #2b1d3a
POT = (21, 16, 28, 255)  # background_color #15101c
RIM = (196, 155, 255, 255)  # the dark theme's accent #c49bff
BREW = (127, 214, 163, 255)  # the dark theme's ok green #7fd6a3
SUPERSAMPLE = 4  # draw large and scale down: smooth edges without antialiasing support in ImageDraw


def draw_cauldron(draw: ImageDraw.ImageDraw, size: int, scale: float) -> None:
    """The drawing, fitted into a centred square of ``scale`` x ``size``."""
    unit = size * scale / 100  # the drawing is laid out on a 100 x 100 grid

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        offset = (size - 100 * unit) / 2
        return (offset + x0 * unit, offset + y0 * unit, offset + x1 * unit, offset + y1 * unit)

    draw.ellipse(box(14, 34, 86, 92), fill=RIM)  # the pot's outline
    draw.ellipse(box(18, 38, 82, 88), fill=POT)
    draw.rectangle(box(24, 86, 32, 96), fill=RIM)  # feet
    draw.rectangle(box(68, 86, 76, 96), fill=RIM)
    draw.rounded_rectangle(box(8, 32, 92, 44), radius=6 * unit, fill=RIM)  # the rim
    draw.ellipse(box(16, 35, 84, 42), fill=BREW)  # the brew's surface
    for x, y, r in ((38, 22, 6), (56, 12, 4.5), (62, 26, 3.5), (46, 4, 3)):  # bubbles
        draw.ellipse(box(x - r, y - r, x + r, y + r), fill=BREW)


def make_icon(size: int, maskable: bool) -> Image.Image:
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if maskable:
        draw.rectangle((0, 0, big, big), fill=BACKGROUND)
        draw_cauldron(draw, big, 0.62)  # inside the 80% safe circle
    else:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 0.22, fill=BACKGROUND)
        draw_cauldron(draw, big, 0.8)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    ICONS.mkdir(parents=True, exist_ok=True)
    for name, size, maskable in (
        ("icon-192.png", 192, False),
        ("icon-512.png", 512, False),
        ("icon-maskable-512.png", 512, True),
        ("apple-touch-icon.png", 180, True),  # iOS draws its own rounded corners over a full square
    ):
        make_icon(size, maskable).save(ICONS / name, format="PNG", optimize=True)
        print(ICONS / name)


if __name__ == "__main__":
    main()
