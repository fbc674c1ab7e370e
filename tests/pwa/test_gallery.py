"""The gallery in Chromium against a real daemon on the tiny model: newest first, paged by after_id (page size 1 from
the URL), filters by experiment, sampler and words, favourite, a rating from the viewer, delete then undo (the file
comes back unchanged); axe and keyboard; screenshots at phone and tablet size.

Words are matched in the images' annotations, so this module's daemon tags images with the real llm-tags plugin,
pointed at a small Ollama-shaped HTTP server on loopback (an external service, stood in for here)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client

from tests.conftest import FAST
from tests.daemon.process import DaemonProcess
from tests.pwa.conftest import (
    assert_accessible,
    has_visible_focus,
    open_page,
    pair_context,
    rpc,
    run_js_unit_tests,
    screenshot,
    tab_until,
)
from tests.waiting import until

FINISH_TIMEOUT_S = 400  # a bound: one 64x64 image can take 30 s on the shared, loaded 2-core test machine


class OllamaStandIn(BaseHTTPRequestHandler):
    """Answers /api/chat as Ollama does; the first image it sees is described with "zebra", the others not."""

    answered = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.lock:
            first = OllamaStandIn.answered == 0
            OllamaStandIn.answered += 1
        answer = {
            "description": "A zebra crossing at night." if first else "A plain meadow.",
            "tags": ["striped", "road", "night"] if first else ["grass", "field", "green"],
            "quality": 5,
        }
        body = json.dumps({"model": "m", "message": {"role": "assistant", "content": json.dumps(answer)}, "done": True})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def app_daemon(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[DaemonProcess]:
    """This module's own daemon (conftest's, plus the llm-tags plugin pointed at the stand-in)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), OllamaStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    data_dir = tmp_path_factory.mktemp("gallery") / "data"
    data_dir.mkdir()
    env = {"CAULDRON_LLM_TAGS_URL": f"http://127.0.0.1:{server.server_address[1]}"}
    process = DaemonProcess(data_dir, models_dir, env=env)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        server.shutdown()
        server.server_close()


def wait(daemon: DaemonProcess, check: Any) -> Any:
    """Poll ``check(client)`` (async) until it returns something true, within FINISH_TIMEOUT_S."""

    async def run() -> Any:
        async with Client(daemon.url, daemon.token) as client:
            return await until(lambda: check(client), timeout=FINISH_TIMEOUT_S, interval=0.2)

    with ThreadPoolExecutor(max_workers=1) as pool:  # Playwright's sync API owns this thread's event loop
        return pool.submit(asyncio.run, run()).result(timeout=FINISH_TIMEOUT_S + 30)


@pytest.fixture(scope="module")
def images(app_daemon: DaemonProcess) -> dict[str, Any]:
    """Two experiments (three images) made and tagged: ids per experiment, per sampler, and the zebra's."""
    foxes = rpc(
        app_daemon,
        "experiments.create",
        {"name": "foxes", "base": {**FAST, "prompt": "a red fox", "seed": 7}, "axes": {"cfg_scale": [3.0, 7.0]}},
    )["experiment"]["id"]
    boats = rpc(
        app_daemon, "experiments.create", {"name": "boats", "base": {**FAST, "prompt": "a boat", "sampler": "DDIM"}}
    )["experiment"]["id"]

    async def all_tagged(client: Client) -> list[dict[str, Any]] | None:
        listed = (await client.call("images.list", order="newest", limit=100))["images"]
        if len(listed) < 3:
            return None
        for image in listed:
            runs = (await client.call("images.annotations", image_id=image["id"]))["runs"]
            if not any(run["plugin"] == "llm-tags" and run["status"] == "ok" for run in runs):
                return None
        return listed

    listed = wait(app_daemon, all_tagged)
    zebra = [
        image["id"]
        for image in listed
        if "zebra"
        in rpc(app_daemon, "images.annotations", {"image_id": image["id"]})["annotations"]["llm-tags"]["description"]
    ]
    return {
        "newest_first": [image["id"] for image in listed],
        "foxes": sorted((i["id"] for i in listed if i["experiment_id"] == foxes), reverse=True),
        "boats": [i["id"] for i in listed if i["experiment_id"] == boats],
        "foxes_id": foxes,
        "zebra": zebra,
        "images": {image["id"]: image for image in listed},
    }


def tile_ids(page: Any) -> list[int]:
    return [int(v) for v in page.locator("li.gallery-tile").evaluate_all("els => els.map(e => e.dataset.imageId)")]


def test_gallery_list_unit_tests_pass_in_the_browser(browser: Any, app_daemon: DaemonProcess) -> None:
    context = browser.new_context(base_url=app_daemon.url)
    results = run_js_unit_tests(context, "gallery_pages.test.js")
    context.close()
    assert not results["failed"], results["failed"]
    assert len(results["passed"]) == 5


def test_gallery_pages_filters_marks_and_undo_on_a_phone(
    browser: Any, app_daemon: DaemonProcess, images: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    assert len(images["zebra"]) == 1, "the stand-in describes exactly one image as a zebra"
    context = pair_context(browser, app_daemon, "phone")
    page, problems = open_page(context, "/gallery?limit=1")
    tiles = page.locator("li.gallery-tile")
    # Page size 1: three pages, fetched as the end of the list comes into view (or by "Load more").
    expect(tiles).to_have_count(3)
    assert tile_ids(page) == sorted(images["newest_first"], reverse=True) == images["newest_first"]
    expect(page.get_by_role("button", name="Load more")).to_have_count(0)
    for index in range(3):  # thumbnails, not full PNGs
        image_id = images["newest_first"][index]
        expect(tiles.nth(index).locator("img")).to_have_attribute("src", f"/thumbs/256/{image_id}.webp")
    screenshot(page, "gallery", "phone")
    assert_accessible(page, "gallery")
    tab_until(page, "button.gallery-thumb")
    assert has_visible_focus(page)

    # Filters (folded away on a phone, images first): experiment, sampler, words (in the annotations).
    page.get_by_role("button", name="Filters").click()
    page.get_by_label("Experiment", exact=True).select_option(value=str(images["foxes_id"]))
    expect(tiles).to_have_count(len(images["foxes"]))
    assert tile_ids(page) == images["foxes"]
    page.get_by_role("button", name="Clear").click()
    expect(tiles).to_have_count(3)
    page.get_by_label("Sampler", exact=True).select_option(value="DDIM")
    expect(tiles).to_have_count(1)
    assert tile_ids(page) == images["boats"]
    page.get_by_role("button", name="Clear").click()
    page.get_by_label("Words", exact=True).fill("zebra")
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(tiles).to_have_count(1)
    assert tile_ids(page) == images["zebra"]
    page.get_by_role("button", name="Clear").click()
    expect(tiles).to_have_count(3)

    # Favourite on a tile; a rating from the viewer.
    target = images["foxes"][0]
    page.get_by_role("button", name=f"Favourite image {target}").click()
    expect(page.get_by_role("button", name=f"Favourite image {target}")).to_have_attribute("aria-pressed", "true")
    assert rpc(app_daemon, "images.get", {"image_id": target})["image"]["favorite"] is True
    page.get_by_role("button", name=f"Open image {target}").click()
    viewer = page.get_by_role("dialog", name=f"Image {target}")
    viewer.get_by_role("button", name="Rate 4 of 5").click()
    expect(viewer.get_by_role("group", name="Rating: 4 of 5")).to_be_visible()
    assert rpc(app_daemon, "images.get", {"image_id": target})["image"]["rating"] == 4
    screenshot(page, "gallery-viewer", "phone")
    viewer.get_by_role("button", name="Close").click()
    expect(page.locator(f"li[data-image-id='{target}'] .gallery-rating")).to_have_attribute(
        "aria-label", "rated 4 of 5"
    )

    # Delete, then undo: the image and its file come back unchanged.
    record = rpc(app_daemon, "images.get", {"image_id": target})["image"]
    before = hashlib.sha256(Path(record["file"]).read_bytes()).hexdigest()
    assert before == record["sha256"]
    page.get_by_role("button", name=f"Delete image {target}").click()
    expect(page.locator(f"li[data-image-id='{target}']")).to_have_count(0)
    listed = rpc(app_daemon, "images.list", {"order": "newest"})["images"]
    assert target not in [image["id"] for image in listed]
    page.get_by_role("button", name="Undo").click()
    expect(page.locator(f"li[data-image-id='{target}']")).to_have_count(1)
    assert tile_ids(page) == images["newest_first"]
    back = rpc(app_daemon, "images.get", {"image_id": target})["image"]
    assert back["deleted_at"] is None and back["favorite"] is True and back["rating"] == 4
    assert hashlib.sha256(Path(back["file"]).read_bytes()).hexdigest() == before
    problems.check()
    context.close()


def test_gallery_on_a_tablet(browser: Any, app_daemon: DaemonProcess, images: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    context = pair_context(browser, app_daemon, "tablet")
    page, problems = open_page(context, "/gallery")
    expect(page.locator("li.gallery-tile")).to_have_count(3)
    assert tile_ids(page) == images["newest_first"]
    screenshot(page, "gallery", "tablet")
    assert_accessible(page, "gallery on a tablet")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "gallery, dark theme")
    screenshot(page, "gallery-dark", "tablet")
    problems.check()
    context.close()
