"""The experiment builder and the experiments list in a real browser against a real daemon on the tiny model: a
sweep built field by field with the daemon's plan following the edits, a bad value shown at its field with nothing
created, the draft kept over a reload and cleared on submit, "run again with changes" from an experiment and from an
image, the convergence kind's plan; plus the builder's pure logic as in-browser unit tests."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

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
from tests.pwa.service_worker_helpers import poll

PROMPT = "a lighthouse at dusk"


def experiment_ids(daemon: DaemonProcess) -> list[int]:
    return [e["id"] for e in rpc(daemon, "experiments.list", {"limit": 100})["experiments"]]


def test_builder_logic_unit_tests_pass_in_the_browser(browser: Any, app_daemon: DaemonProcess) -> None:
    context = browser.new_context(base_url=app_daemon.url)
    for module, count in (("builder_spec.test.js", 8), ("field_errors.test.js", 4)):
        results = run_js_unit_tests(context, module)
        assert not results["failed"], results["failed"]
        assert len(results["passed"]) == count, results
    context.close()


def test_build_a_sweep_with_the_live_plan_and_queue_it(browser: Any, app_daemon: DaemonProcess) -> None:
    phone = pair_context(browser, app_daemon, "phone")
    page, problems = open_page(phone, "/new")
    page.get_by_label("Prompt", exact=True).fill(PROMPT)
    page.get_by_label("Width").fill("64")
    page.get_by_label("Height").fill("64")
    page.get_by_label("Sampler", exact=True).select_option("Euler")
    page.get_by_label("Values of steps").fill("2-3")
    steps_row = page.locator(".axis-row[data-axis='steps']")
    expect(steps_row.locator(".axis-preview")).to_have_text("→ 2, 3 (2 values)")
    cells = page.locator("[data-plan='cells']")
    expect(cells).to_have_text("2")

    page.get_by_role("button", name="Add an axis").click()
    page.get_by_label("Axis 2").select_option("sampler")
    page.get_by_label("Values of sampler").fill("Euler, Euler a")
    expect(cells).to_have_text("4")  # 2 step counts x 2 samplers
    expect(page.locator(".axis-row[data-axis='sampler'] .axis-preview")).to_have_text("→ Euler, Euler a (2 values)")

    # A bad range: the daemon's message at the field, and queueing it creates nothing.
    before = experiment_ids(app_daemon)
    steps = page.get_by_label("Values of steps")
    steps.fill("2-x")
    expect(steps_row.locator(".error")).to_contain_text("bad range '2-x'")
    expect(steps).to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Queue it").click()
    expect(steps_row.locator(".error")).to_contain_text("bad range '2-x'")
    assert page.url.endswith("/new")
    assert experiment_ids(app_daemon) == before

    # The draft survives a reload.
    steps.fill("2-3")
    expect(cells).to_have_text("4")
    expect(steps_row.locator(".error")).to_have_count(0)
    page.reload()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(PROMPT)
    expect(page.get_by_label("Values of steps")).to_have_value("2-3")
    expect(page.get_by_label("Values of sampler")).to_have_value("Euler, Euler a")
    expect(cells).to_have_text("4")
    assert_accessible(page, "new experiment")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "new experiment (dark theme)")
    page.emulate_media(color_scheme="light")
    tab_until(page, "button[type='submit']")
    assert has_visible_focus(page)
    page.evaluate("window.scrollTo(0, 0)")  # the top of the screen, under the sticky bar
    screenshot(page, "new", "phone")

    page.get_by_role("button", name="Queue it").click()
    page.wait_for_url(re.compile(r"/experiments/\d+$"))
    experiment_id = int(page.url.rsplit("/", 1)[1])
    created = rpc(app_daemon, "experiments.get", {"experiment_id": experiment_id, "jobs_limit": 0})["experiment"]
    assert created["counts"]["total"] == 4
    assert created["spec"]["axes"] == {"steps": "2-3", "sampler": "Euler, Euler a"}
    assert created["spec"]["base"]["width"] == 64 and created["spec"]["base"]["prompt"] == PROMPT

    # Submitting cleared the draft.
    page.goto("/new")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("")
    problems.check()
    phone.close()


def test_experiments_list_and_run_again_with_changes(browser: Any, app_daemon: DaemonProcess) -> None:
    base = {"prompt": "a red boat", "width": 64, "height": 64, "steps": 2, "sampler": "Euler"}
    made = rpc(app_daemon, "experiments.create", {"name": "Boats", "base": base, "axes": {"cfg_scale": "3, 7"}})
    experiment_id = made["experiment"]["id"]

    phone = pair_context(browser, app_daemon, "phone")
    page, problems = open_page(phone, "/experiments")
    row = page.locator(f".experiment-row[data-experiment-id='{experiment_id}']")
    expect(row.get_by_role("link", name="Boats", exact=True)).to_have_attribute("href", f"/experiments/{experiment_id}")
    assert page.locator(".experiment-row").first.get_attribute("data-experiment-id") == str(experiment_id)  # newest
    assert_accessible(page, "experiments")
    page.emulate_media(color_scheme="dark")
    assert_accessible(page, "experiments (dark theme)")
    page.emulate_media(color_scheme="light")
    screenshot(page, "experiments", "phone")

    row.get_by_role("link", name="Run again with changes: Boats").click()
    page.wait_for_url(re.compile(r"/new$"))
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a red boat")
    expect(page.get_by_label("Values of cfg_scale")).to_have_value("3, 7")
    expect(page.get_by_label("Name (optional)")).to_have_value("Boats (again)")
    expect(page.locator("[data-plan='cells']")).to_have_text("2")

    # Prompt history: searchable, a tap puts the prompt back.
    page.get_by_label("Prompt", exact=True).fill("")
    page.get_by_text("Recent prompts").click()
    page.get_by_label("Search prompts").fill("boat")
    page.locator(".history-item").filter(has_text="a red boat").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a red boat")
    problems.check()
    phone.close()

    # From an image: its exact params, seed included.
    def first_image() -> dict[str, Any] | None:
        images = rpc(app_daemon, "images.list", {"experiment_id": experiment_id, "limit": 1})["images"]
        return images[0] if images else None

    image = poll(first_image, timeout=300)
    tablet = pair_context(browser, app_daemon, "tablet")
    page, problems = open_page(tablet, "/experiments")
    expect(page.locator(f".experiment-row[data-experiment-id='{experiment_id}']")).to_be_visible()
    screenshot(page, "experiments", "tablet")
    page.goto(f"/new?image={image['id']}")
    page.wait_for_url(re.compile(r"/new$"))
    expect(page.get_by_label("Seed (-1: random)")).to_have_value(str(image["seed"]))
    cfg_scale = str(image["params"]["cfg_scale"]).removesuffix(".0")  # JavaScript writes 3.0 as "3"
    expect(page.get_by_label("CFG scale", exact=True)).to_have_value(cfg_scale)
    expect(page.locator("[data-plan='cells']")).to_have_text("1")  # no axes: one cell
    screenshot(page, "new", "tablet")
    assert_accessible(page, "new experiment (tablet)")

    # The convergence kind: 1 prompt x 2 samplers x 1 seed x 4 step counts ("10-40 [4]") = 8 cells.
    page.get_by_role("radio", name="Convergence").check()
    page.get_by_label("Prompts, one a line").fill("a red boat")
    page.get_by_label("Samplers").fill("Euler, Euler a")
    page.get_by_label("Steps", exact=True).fill("10-40 [4]")
    expect(page.get_by_text("→ 10, 20, 30, 40")).to_be_visible()
    expect(page.locator("[data-plan='cells']")).to_have_text("8")
    problems.check()
    tablet.close()
