"""The experiment screen in Chromium against a real daemon on the tiny model: the comparison grid fills in live with
thumbnails only, X and Y switch, the viewer shows every parameter and the infotext stored in the PNG, neighbours
by button and by swipe, favourite, compare side by side and with the slider, the convergence analysis, CSV export;
axe and keyboard; screenshots at phone and tablet size."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cauldron_client import Client

from cauldrond.media.png import read_png_text
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
from tests.waiting import finished as wait_finished

FULL_PNG = re.compile(r"/images/\d+\.png")
# A bound, not a measurement: on the shared 2-core test machine one 64x64 image can take 30 s under load.
FINISH_TIMEOUT_S = 400
SWEEP_AXES = {"cfg_scale": [3.0, 7.0], "steps": [2, 3]}


def finished(daemon: DaemonProcess, experiment_id: int) -> dict[str, Any]:
    """The experiment once no cell is queued or running (tests/waiting.py's bounded poll, through RPC)."""

    async def wait() -> dict[str, Any]:
        async with Client(daemon.url, daemon.token) as client:
            return await wait_finished(client, experiment_id, timeout=FINISH_TIMEOUT_S)

    with ThreadPoolExecutor(max_workers=1) as pool:  # Playwright's sync API owns this thread's event loop
        return pool.submit(asyncio.run, wait()).result(timeout=FINISH_TIMEOUT_S + 30)


def image_of(jobs: list[dict[str, Any]], **params: Any) -> int:
    """The image id of the job whose params hold ``params`` (read from the daemon, not from the page)."""
    (job,) = [job for job in jobs if all(job["params"][k] == v for k, v in params.items())]
    return int(job["image_id"])


@pytest.fixture(scope="module")
def sweep(app_daemon: DaemonProcess) -> Iterator[dict[str, Any]]:
    """A 2 x 2 sweep created while the queue is paused, so the page sees its cells queued and then filling in."""
    rpc(app_daemon, "queue.pause")
    created = rpc(
        app_daemon,
        "experiments.create",
        {"name": "cfg by steps", "base": {**FAST, "seed": 1234}, "axes": SWEEP_AXES},
    )
    yield created["experiment"]
    rpc(app_daemon, "queue.resume")


def test_grid_logic_unit_tests_pass_in_the_browser(browser: Any, app_daemon: DaemonProcess) -> None:
    context = browser.new_context(base_url=app_daemon.url)
    counts = {}
    for module in ("grid_layout.test.js", "png_text.test.js", "compare_math.test.js"):
        results = run_js_unit_tests(context, module)
        assert not results["failed"], results["failed"]
        counts[module] = len(results["passed"])
    context.close()
    assert counts == {"grid_layout.test.js": 11, "png_text.test.js": 6, "compare_math.test.js": 3}


def cell(page: Any, row: int, column: int) -> Any:
    """The grid cell at ``row``, ``column`` (0-based, headers left out)."""
    return page.locator("table.grid-table tbody tr").nth(row).locator("td").nth(column)


def test_grid_fills_in_live_then_viewer_compare_and_favourite_on_a_phone(
    browser: Any, app_daemon: DaemonProcess, sweep: dict[str, Any]
) -> None:
    from playwright.sync_api import expect

    context = pair_context(browser, app_daemon, "phone")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_daemon.url)
    requested: list[str] = []
    page, problems = open_page(context, "/")
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"/experiments/{sweep['id']}")
    # Paused queue: four cells, none finished yet; steps (the innermost axis) across, cfg down.
    expect(page.locator(".grid-pending")).to_have_count(4)
    expect(page.locator("table.grid-table thead th")).to_have_text(["cfg_scale \\ steps", "2", "3"])
    rpc(app_daemon, "queue.resume")
    thumbs = page.locator("table.grid-table img")
    expect(thumbs).to_have_count(4, timeout=FINISH_TIMEOUT_S * 1000)
    jobs = finished(app_daemon, sweep["id"])["jobs"]
    expected = {
        (0, 0): image_of(jobs, cfg_scale=3.0, steps=2),
        (0, 1): image_of(jobs, cfg_scale=3.0, steps=3),
        (1, 0): image_of(jobs, cfg_scale=7.0, steps=2),
        (1, 1): image_of(jobs, cfg_scale=7.0, steps=3),
    }
    for (row, column), image_id in expected.items():
        expect(cell(page, row, column).locator("img")).to_have_attribute("src", f"/thumbs/256/{image_id}.webp")
    for index in range(4):  # each thumbnail really decoded: a WebP the daemon made, not a broken image
        expect(thumbs.nth(index)).to_have_js_property("complete", True)
        assert thumbs.nth(index).evaluate("img => img.naturalWidth") > 0
    screenshot(page, "experiment-grid", "phone")
    assert_accessible(page, "experiment grid")
    assert not [url for url in requested if FULL_PNG.search(url)], "the grid downloaded a full PNG"

    # X and Y switched: cfg across, steps down.
    page.get_by_label("Across (X)").select_option(label="cfg_scale (2)")
    expect(page.locator("table.grid-table thead th")).to_have_text(["steps \\ cfg_scale", "3", "7"])
    expect(cell(page, 0, 1).locator("img")).to_have_attribute("src", f"/thumbs/256/{expected[(1, 0)]}.webp")
    expect(cell(page, 1, 0).locator("img")).to_have_attribute("src", f"/thumbs/256/{expected[(0, 1)]}.webp")
    page.get_by_label("Across (X)").select_option(label="steps (2)")

    # Keyboard: a grid cell is reachable with Tab and shows where the focus is.
    tab_until(page, "button.grid-cell")
    assert has_visible_focus(page)

    # The viewer: cfg 3, steps 2 (top left).
    first = expected[(0, 0)]
    cell(page, 0, 0).get_by_role("button").click()
    viewer = page.get_by_role("dialog", name=f"Image {first}")
    expect(viewer).to_be_visible()
    expect(viewer.locator(".viewer-picture img")).to_have_attribute("src", re.compile(r"^blob:"))
    stored = read_png_text(Path(rpc(app_daemon, "images.get", {"image_id": first})["image"]["file"]))
    infotext = viewer.get_by_label("A1111 infotext")
    expect(infotext).to_have_value(stored["parameters"])
    expect(viewer.locator(".params")).to_contain_text("cfg_scale3")
    viewer.get_by_role("button", name="Copy infotext").click()
    expect(viewer.get_by_role("status")).to_have_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == stored["parameters"]
    screenshot(page, "experiment-viewer", "phone")
    assert_accessible(page, "image viewer")

    # Neighbours: a button along steps, then a sideways swipe (touch pointer) back.
    viewer.get_by_role("button", name="Next steps").click()
    second = expected[(0, 1)]
    expect(page.get_by_role("dialog", name=f"Image {second}")).to_be_visible()
    picture = page.locator(".viewer-picture")
    box = picture.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    common = {"pointerType": "touch", "isPrimary": True, "bubbles": True, "pointerId": 7}
    picture.dispatch_event("pointerdown", {**common, "clientX": box["x"] + 20, "clientY": y})
    picture.dispatch_event("pointerup", {**common, "clientX": box["x"] + 220, "clientY": y + 5})
    expect(page.get_by_role("dialog", name=f"Image {first}")).to_be_visible()

    # Favourite from the viewer: the daemon has it.
    page.get_by_role("button", name="Add to favourites").click()
    expect(page.get_by_role("button", name="Favourite", exact=True)).to_have_attribute("aria-pressed", "true")
    assert rpc(app_daemon, "images.get", {"image_id": first})["image"]["favorite"] is True

    # Compare: pick this one, go to cfg 7 along cfg_scale, compare.
    page.get_by_role("button", name="Compare").click()
    page.get_by_role("button", name="Next cfg_scale").click()
    third = expected[(1, 0)]
    expect(page.get_by_role("dialog", name=f"Image {third}")).to_be_visible()
    page.get_by_role("button", name="Compare").click()
    compare = page.get_by_role("dialog", name=f"Compare image {first} and image {third}")
    expect(compare).to_be_visible()
    expect(compare.get_by_role("img", name=f"image {first}")).to_have_attribute("src", f"/images/{first}.png")
    expect(compare.get_by_role("img", name=f"image {third}")).to_have_attribute("src", f"/images/{third}.png")
    screenshot(page, "experiment-compare", "phone")
    compare.get_by_role("button", name="Slider").click()
    slider = compare.get_by_label("Compare position")
    slider.focus()
    for _ in range(10):
        page.keyboard.press("ArrowRight")
    expect(slider).to_have_value("60")
    expect(slider).to_have_attribute("aria-valuetext", f"60% image {first}, 40% image {third}")
    over = compare.locator("img.compare-over")
    assert over.evaluate("img => img.style.clipPath") == "inset(0px 40% 0px 0px)"
    screenshot(page, "experiment-slider", "phone")
    assert_accessible(page, "compare slider")
    page.keyboard.press("Escape")
    expect(compare).to_have_count(0)
    problems.check()
    context.close()


def test_grid_viewer_and_compare_on_a_tablet(browser: Any, app_daemon: DaemonProcess, sweep: dict[str, Any]) -> None:
    from playwright.sync_api import expect

    rpc(app_daemon, "queue.resume")  # the sweep was created paused; the phone test resumes it when run first
    jobs = finished(app_daemon, sweep["id"])["jobs"]
    context = pair_context(browser, app_daemon, "tablet")
    page, problems = open_page(context, f"/experiments/{sweep['id']}")
    expect(page.locator("table.grid-table img")).to_have_count(4)
    screenshot(page, "experiment-grid", "tablet")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "experiment grid, dark theme")
    screenshot(page, "experiment-grid-dark", "tablet")
    page.emulate_media(color_scheme="light")
    first, other = image_of(jobs, cfg_scale=3.0, steps=2), image_of(jobs, cfg_scale=7.0, steps=3)
    cell(page, 0, 0).get_by_role("button").click()
    expect(page.get_by_role("dialog", name=f"Image {first}").get_by_label("A1111 infotext")).to_have_value(
        re.compile(r"Steps: 2, Sampler: Euler")
    )
    screenshot(page, "experiment-viewer", "tablet")
    page.get_by_role("button", name="Compare").click()
    page.get_by_role("button", name="Next steps").click()
    page.get_by_role("button", name="Next cfg_scale").click()
    expect(page.get_by_role("dialog", name=f"Image {other}")).to_be_visible()
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("dialog", name=f"Compare image {first} and image {other}")).to_be_visible()
    screenshot(page, "experiment-compare", "tablet")
    assert_accessible(page, "compare on a tablet")
    problems.check()
    context.close()


def test_convergence_analysis_and_csv_export(browser: Any, app_daemon: DaemonProcess, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    created = rpc(
        app_daemon,
        "experiments.convergence",
        {
            "name": "converge",
            "base": {"width": 64, "height": 64},
            "prompts": ["a lighthouse at dusk"],
            "models": ["tiny-sd"],
            "samplers": ["Euler", "DDIM"],
            "steps": [2, 3],
            "seeds": [5],
        },
    )
    experiment_id = created["experiment"]["id"]
    finished(app_daemon, experiment_id)
    answer = rpc(app_daemon, "experiments.analyze", {"experiment_id": experiment_id})["convergence"]
    context = pair_context(browser, app_daemon, "phone")
    page, problems = open_page(context, f"/experiments/{experiment_id}")
    table = page.get_by_role("table", name=re.compile("Converged at"))
    expect(table.locator("tbody tr")).to_have_count(2)
    for row in answer["by_sampler"]:  # one row per sampler, with the series counts the daemon computed
        cells = table.locator("tbody tr", has=page.get_by_role("rowheader", name=row["label"], exact=True))
        expect(cells.locator("td").nth(0)).to_have_text(str(row["series"]))
        expect(cells.locator("td").nth(1)).to_have_text(str(row["converged"]))
    plot = page.locator("img.analysis-plot")
    expect(plot).to_have_js_property("complete", True)
    assert plot.evaluate("img => img.naturalWidth") > 0
    with page.expect_download() as download_info:
        page.get_by_role("button", name="CSV").click()
    download = download_info.value
    assert download.suggested_filename == f"experiment-{experiment_id}.csv"
    saved = tmp_path / "export.csv"
    download.save_as(saved)
    export = rpc(app_daemon, "experiments.export", {"experiment_id": experiment_id, "format": "csv"})
    assert saved.read_text(encoding="utf-8") == export["content"]
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 4 and "steps" in lines[0].split(",")
    screenshot(page, "experiment-analysis", "phone")
    assert_accessible(page, "experiment analysis")
    problems.check()
    context.close()
