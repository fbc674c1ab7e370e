"""The latent-to-RGB projection against a hand calculation with the published factors, and the WebP encoding.

The factor rows below are typed in again from ComfyUI's ``comfy/latent_formats.py`` (classes SD15 and SDXL,
commit 040a324), independently of ``cauldrond.media.previews``; each expected byte is
``round(clip((v + 1) / 2, 0, 1) * 255)`` with ``v`` worked out by hand in the comment beside it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cauldrond.media import previews

COMFYUI_SD15 = [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
]
COMFYUI_SDXL = [
    [0.3651, 0.4232, 0.4341],
    [-0.2533, -0.0042, 0.1068],
    [0.1076, 0.1111, -0.0362],
    [-0.3165, -0.2492, -0.2188],
]
COMFYUI_SDXL_BIAS = [0.1084, -0.0175, -0.0011]


def _latent(*pixels: tuple[float, ...]) -> np.ndarray:
    """Latent pixels in a row, each given as its channel values: shape (channels, 1, len(pixels))."""
    return np.array(pixels, dtype=np.float32).T.reshape(len(pixels[0]), 1, len(pixels))


def test_the_factors_are_the_published_ones() -> None:
    assert [list(row) for row in previews.SD1.factors] == COMFYUI_SD15
    assert previews.SD1.bias == (0.0, 0.0, 0.0)
    assert [list(row) for row in previews.SDXL.factors] == COMFYUI_SDXL
    assert list(previews.SDXL.bias) == COMFYUI_SDXL_BIAS


def test_sd1_projection_equals_the_hand_calculation() -> None:
    rgb = previews.project(_latent((1, 0, 0, 0), (0, 0, 0, 1), (2, 2, 2, 2), (-3, 0, 0, 0)), previews.SD1)
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    assert rgb[0].tolist() == [
        # channel 1's row: v = (0.3512, 0.2297, 0.3227) -> 1.3512/2*255 = 172.28, 156.79, 168.64
        [172, 157, 169],
        # channel 4's row: v = (-0.2120, -0.2616, -0.7177) -> 0.788/2*255 = 100.47, 94.15, 35.99
        [100, 94, 36],
        # 2 x the column sums: R 2*0.1813 = 0.3626 -> 173.73; G 2*0.6417 = 1.2834 -> clipped 255; B 2*0.1121 -> 156.09
        [174, 255, 156],
        # -3 x channel 1's row: R -1.0536 -> clipped 0; G -0.6891 -> 39.64; B -0.9681 -> 4.07
        [0, 40, 4],
    ]


def test_sdxl_projection_adds_its_bias() -> None:
    rgb = previews.project(_latent((0, 0, 0, 0), (1, 0, 0, 0)), previews.SDXL)
    assert rgb[0].tolist() == [
        # the bias alone: (0.1084, -0.0175, -0.0011) -> 141.32, 125.27, 127.36
        [141, 125, 127],
        # channel 1's row + bias: (0.4735, 0.4057, 0.4330) -> 187.87, 179.23, 182.71
        [188, 179, 183],
    ]


def test_other_channel_counts_show_the_first_three_channels_each_normalised() -> None:
    # Two channels: R and B are channel 0 (repeated), G is channel 1. Channel 0 spans 0..4: 0, 63.75, 255;
    # channel 1 is flat and reads 0.
    rgb = previews.project(_latent((0, 5), (1, 5), (4, 5)), previews.SD1)
    assert rgb[0].tolist() == [[0, 0, 0], [64, 0, 64], [255, 0, 255]]
    sixteen = np.zeros((16, 2, 2), dtype=np.float32)
    sixteen[1] = [[0, 1], [2, 3]]
    assert previews.project(sixteen, previews.SDXL)[..., 1].tolist() == [[0, 85], [170, 255]]


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="channels, height, width"):
        previews.project(np.zeros((4, 8), dtype=np.float32), previews.SD1)
    with pytest.raises(ValueError, match="channels, height, width"):
        previews.project(np.zeros((0, 8, 8), dtype=np.float32), previews.SD1)


def test_webp_keeps_the_size_and_roughly_the_colour() -> None:
    rgb = np.full((16, 8, 3), (200, 40, 90), dtype=np.uint8)
    data, width, height = previews.encode_webp(rgb)
    assert (width, height) == (8, 16)
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.format == "WEBP" and picture.size == (8, 16)
        decoded = np.asarray(picture.convert("RGB"), dtype=np.int16)
    # Lossy (YUV 4:2:0), so a flat colour comes back within a few levels.
    assert np.abs(decoded - np.array([200, 40, 90])).max() <= 6


def test_large_previews_are_shrunk_to_the_maximum_side() -> None:
    data, width, height = previews.encode_webp(np.zeros((100, 300, 3), dtype=np.uint8))
    assert (width, height) == (previews.MAX_SIDE, 85)  # 100 * 256 / 300 = 85.3
    with Image.open(io.BytesIO(data)) as picture:
        assert picture.size == (256, 85)
