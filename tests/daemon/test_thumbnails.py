"""Thumbnails: WebP that Pillow decodes at the size asked for, made once (the second request serves the same file,
same inode and mtime), behind the same auth as /images, and 404 for an unknown image."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import aiohttp
import pytest
from cauldron_client import Client
from PIL import Image

from cauldrond.daemon import Daemon
from cauldrond.media.thumbnails import encode_thumbnail, write_thumbnail
from tests.conftest import FAST, token_of, url_of
from tests.waiting import finished

CACHE_CONTROL = "private, max-age=31536000, immutable"


@pytest.mark.parametrize(("size", "expected"), [(256, (256, 128)), (768, (768, 384)), (2048, (1000, 500))])
def test_a_thumbnail_fits_its_size_keeps_the_aspect_and_never_enlarges(
    tmp_path: Path, size: int, expected: tuple[int, int]
) -> None:
    source = tmp_path / "wide.png"
    Image.new("RGB", (1000, 500), (200, 30, 40)).save(source)

    target = write_thumbnail(source, tmp_path / "thumbs" / str(size) / "1.webp", size)

    with Image.open(target) as thumb:
        assert thumb.format == "WEBP" and thumb.size == expected
        # Lossy, but a flat colour stays close to itself.
        red, green, blue = thumb.convert("RGB").getpixel((expected[0] // 2, expected[1] // 2))
        assert abs(red - 200) < 8 and abs(green - 30) < 8 and abs(blue - 40) < 8
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".tmp-")]
    assert encode_thumbnail(source, size)[:4] == b"RIFF"


async def get(url: str, token: str | None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def test_thumbnails_are_made_once_and_need_the_token(daemon: Daemon, client: Client) -> None:
    created = await client.call("experiments.create", base=FAST, axes={"cfg_scale": [3, 7]})
    await finished(client, created["experiment"]["id"])
    image = (await client.call("images.list", order="newest"))["images"][0]
    base, token = url_of(daemon), token_of(daemon)
    file = daemon.settings.data_dir / "thumbs" / "256" / f"{image['id']}.webp"
    assert not file.exists()  # made on first request, not before

    status, headers, body = await get(base + image["thumb_url"], token)
    assert status == 200, body
    assert headers["Content-Type"] == "image/webp" and headers["Cache-Control"] == CACHE_CONTROL
    with Image.open(io.BytesIO(body)) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (64, 64)  # the image is 64x64: never enlarged
    made = file.stat()

    again = await get(base + image["thumb_url"], token)
    assert again[0] == 200 and again[2] == body
    now = file.stat()
    assert (now.st_ino, now.st_mtime_ns) == (made.st_ino, made.st_mtime_ns)

    # Requests at once for a thumbnail not made yet: every reply is the whole file, the same bytes.
    large = f"{base}/thumbs/768/{image['id']}.webp"
    replies = await asyncio.gather(*(get(large, token) for _ in range(4)))
    assert {status for status, _, _ in replies} == {200} and len({body for _, _, body in replies}) == 1

    assert (await get(base + image["thumb_url"], None))[0] == 401
    assert (await get(base + image["thumb_url"], "wrong-token"))[0] == 401
    assert (await get(f"{base}/thumbs/256/987654.webp", token))[0] == 404
    assert (await get(f"{base}/thumbs/512/{image['id']}.webp", token))[0] == 404  # only the fixed sizes

    # In the trash the thumbnail moves with the image and is still served (an undo shows it).
    await client.call("images.delete", image_ids=[image["id"]])
    trashed = daemon.settings.data_dir / "trash" / "thumbs" / "256" / f"{image['id']}.webp"
    assert trashed.is_file() and not file.exists()
    status, _, in_trash = await get(base + image["thumb_url"], token)
    assert status == 200 and in_trash == body
    await client.call("images.restore", image_ids=[image["id"]])
    assert file.is_file() and not trashed.exists()
