"""Rollouts in a real browser (headless Chromium, Playwright): support staff roll an image out
from the images list (selection → plan → confirm), watch it complete as the agents report, and
see why a halted rollout stopped."""

import pytest
from playwright.sync_api import expect

from tests.admin.test_browser import log_in, run_action
from tests.factories import GiB, HostFactory, ImageFactory, TiB, UserFactory
from tests.nodes.rollouts.support import answer, running_node, work

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUPPORT = [
    "nodes.view_image",
    "nodes.view_node",
    "nodes.view_rollout",
    "nodes.add_rollout",
    "nodes.change_rollout",
    "nodes.upgrade_node",
]


def fleet(nodes: int):
    v1 = ImageFactory(protocol="ethereum", version="1.14.0", min_cpu_cores=2, min_memory_bytes=8 * GiB)
    ImageFactory(protocol="ethereum", version="1.15.0", min_cpu_cores=4, min_memory_bytes=16 * GiB)
    hosts = [HostFactory(name=f"host-{n}", cpu_cores=64, memory_bytes=256 * GiB, disk_bytes=8 * TiB) for n in (1, 2)]
    for n in range(nodes):
        running_node(host=hosts[n % 2], image=v1, name=f"eth-{n:02d}")


def roll_out(page, *, batch_size: str, max_failures: str = "1"):
    page.goto("/admin/nodes/image/")
    page.locator("#result_list tbody tr", has_text="ethereum@1.15.0").locator("input.action-select").check()
    run_action(page, "Roll out this image…")
    page.fill("#id_batch_size", batch_size)
    page.fill("#id_max_failures", max_failures)
    page.uncheck("#id_pause_after_canary")
    page.get_by_role("button", name="Plan").click()
    expect(page.locator("#plan-summary")).to_contain_text("6 nodes in")
    page.get_by_role("button", name="Confirm: create the rollout").click()
    expect(page.locator("#rollout-state")).to_have_text("Running")


def test_support_staff_roll_an_image_out_and_watch_it_complete(page, screenshots):
    fleet(6)
    log_in(page, UserFactory(username="support", is_staff=True, permissions=SUPPORT))

    roll_out(page, batch_size="3")
    page.screenshot(path=screenshots / "rollout-running.png", full_page=True)
    for _ in range(10):  # the worker and the hosts' agents take turns
        work()
        answer("succeeded")
    work()
    page.reload()

    expect(page.locator("#rollout-state")).to_have_text("Completed")
    expect(page.locator("#rollout-progress")).to_contain_text("6 succeeded")
    expect(page.locator("#rollout-batches tbody tr")).to_have_count(3)  # the canary, then 3 and 2
    page.screenshot(path=screenshots / "rollout-completed.png", full_page=True)
    page.goto("/admin/nodes/rollout/")
    expect(page.locator("#result_list")).to_contain_text("6 succeeded")


def test_a_halted_rollout_shows_why_and_resumes_with_a_higher_limit(page, screenshots):
    fleet(6)
    log_in(page, UserFactory(username="support", is_staff=True, permissions=SUPPORT))
    roll_out(page, batch_size="5")

    work()
    answer("failed")  # the canary fails
    work()
    page.reload()

    expect(page.locator("#rollout-state")).to_have_text("Halted")
    expect(page.locator("#rollout-reason")).to_contain_text("reached max_failures (1)")
    expect(page.locator("#rollout-trouble")).to_contain_text("failed")
    page.screenshot(path=screenshots / "rollout-halted.png", full_page=True)
    page.fill("input[name=max_failures]", "2")
    page.click("#rollout-resume")
    expect(page.locator("#rollout-state")).to_have_text("Running")
