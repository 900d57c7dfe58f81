"""The admin in a real browser, as support staff use it: Debian's headless Chromium driven by
Playwright against the live server. `make screenshots` saves the screenshots the README shows
(SCREENSHOTS_DIR=docs/screenshots); otherwise they go to a temporary directory, so the suite
never writes a tracked file."""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from hosts.models import Host
from nodes.models import Node
from tests.factories import GiB, HostFactory, ImageFactory, ImagePropertyFactory, TiB, UserFactory, place_node
from tests.hosts.drift import set_counter

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it); nothing downloads a browser
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "pw-for-tests"  # UserFactory's


@pytest.fixture
def page(live_server, monkeypatch):
    """A logged-out page of a fresh browser on the live server. Playwright's sync API runs an
    event loop in this thread, so Django's guard against ORM calls from async code is lifted
    while it lives (the test's own ORM calls are plain synchronous ones)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (`.ci/run` does).")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=live_server.url)
        context.set_default_timeout(15_000)
        yield context.new_page()
        browser.close()
        # ORM calls made while Playwright's loop ran used a connection of their own context
        # (asgiref's Local): close it here, or it outlives the test database.
        connections.close_all()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where the screenshots go: SCREENSHOTS_DIR (relative to the project) or the test's tmp dir."""
    given = os.environ.get("SCREENSHOTS_DIR")
    directory = Path(settings.BASE_DIR) / given if given else tmp_path
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def fleet():
    """Eight hosts of three sizes with ethereum and bitcoin nodes; host-02 nearly full of memory."""
    old = ImageFactory(protocol="ethereum", version="1.13.0", min_cpu_cores=2, min_memory_bytes=8 * GiB)
    new = ImageFactory(
        protocol="ethereum", version="1.14.0", min_cpu_cores=4, min_memory_bytes=16 * GiB, min_disk_bytes=TiB
    )
    for image in (old, new):
        ImagePropertyFactory(image=image, key="rpc", default_value="off", add_cpu_cores=1, add_memory_bytes=2 * GiB)
    bitcoin = ImageFactory(protocol="bitcoin", version="27.0", min_memory_bytes=6 * GiB, min_disk_bytes=700 * GiB)
    sizes = [(64, 256 * GiB, 8 * TiB), (16, 36 * GiB, 4 * TiB), (32, 128 * GiB, 16 * TiB)]
    fields = ["cpu_cores", "memory_bytes", "disk_bytes"]
    hosts = [
        HostFactory(name=f"host-{n:02d}", **dict(zip(fields, sizes[(n - 1) % 3], strict=True))) for n in range(1, 9)
    ]
    for n in (1, 2, 3):
        place_node(host=hosts[0], image=old, name=f"eth-{n:02d}")
    place_node(host=hosts[1], image=old, name="eth-04")
    for n, host in enumerate([hosts[0], *[hosts[1]] * 4, *hosts[2:], *hosts[4:7]], start=1):
        place_node(host=host, image=bitcoin, name=f"btc-{n:02d}")
    for n, host in enumerate(hosts[2:6], start=5):
        place_node(host=host, image=old, name=f"eth-{n:02d}", properties={"rpc": "on"})
    return hosts


def log_in(page, user):
    page.goto("/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(user.username)


def run_action(page, label: str):
    page.select_option("select[name=action]", label=label)
    page.click("button[name=index]")


def host_row(page, name: str):
    name_cell = page.locator("th.field-host", has_text=re.compile(rf"^\s*{re.escape(name)}(\s|$)"))
    return page.locator("#result_list tbody tr").filter(has=name_cell)


def test_support_staff_upgrade_nodes_through_the_plan_page(page, screenshots):
    fleet()
    log_in(
        page,
        UserFactory(
            username="support", is_staff=True, permissions=["nodes.view_node", "hosts.view_host", "nodes.upgrade_node"]
        ),
    )

    page.goto("/admin/nodes/node/")
    page.get_by_role("link", name="ethereum", exact=True).click()  # the protocol filter
    for name in ("eth-01", "eth-02", "eth-03", "eth-04"):
        page.locator("#result_list tr", has_text=name).locator("input.action-select").check()
    run_action(page, "Upgrade selected nodes…")

    expect(page.locator("h1")).to_have_text("Upgrade 4 ethereum nodes")
    page.get_by_label(re.compile(r"ethereum@1\.14\.0 ")).check()
    page.get_by_role("button", name="Show the plan").click()

    plan = page.locator("#upgrade-plan")
    expect(page.locator("#plan-summary")).to_contain_text("3 of 4 nodes will be upgraded, 1 would fail")
    expect(plan.locator("tr", has_text="eth-04")).to_contain_text(
        "not enough memory on host-02 (needs 8.0 GiB, 4.0 GiB free)"
    )
    expect(plan.locator("tr", has_text="eth-03")).to_contain_text("fits")
    page.screenshot(path=screenshots / "upgrade-plan.png", full_page=True)
    assert Host.objects.get(name="host-01").node_cpu_cores == 3 * 2 + 2  # nothing written yet

    page.get_by_role("button", name="Confirm: upgrade 3 nodes").click()

    expect(page.locator(".messagelist")).to_have_text(
        "3 upgrades started; their hosts will report. 1 failed: eth-04: not enough memory on host-02 "
        "(needs 8.0 GiB, 4.0 GiB free)"
    )
    page.goto("/admin/hosts/host/")
    expect(host_row(page, "host-01")).to_contain_text("14 / 64 cores")
    expect(host_row(page, "host-01")).to_contain_text("54.0 GiB / 256.0 GiB")
    expect(host_row(page, "host-02")).to_contain_text("32.0 GiB / 36.0 GiB")


def test_support_staff_repair_a_drifted_host_from_the_hosts_list(page, screenshots):
    hosts = fleet()
    drifted = hosts[4]
    set_counter(drifted, "node_count", 1)
    set_counter(drifted, "node_memory_bytes", 16 * GiB)
    log_in(
        page, UserFactory(username="support", is_staff=True, permissions=["hosts.view_host", "hosts.repair_counters"])
    )

    page.goto("/admin/hosts/host/")
    expect(page.locator(".nf-badge-drift")).to_have_count(1)
    expect(host_row(page, "host-05").locator(".nf-badge-drift")).to_have_text("drift")
    page.screenshot(path=screenshots / "hosts-list.png", full_page=True)

    host_row(page, "host-05").locator("input.action-select").check()
    run_action(page, "Repair counters")
    changes = page.locator(".nf-counter-changes")
    expect(changes).to_contain_text("nodes")
    expect(changes).to_contain_text("→ 3")
    expect(changes).to_contain_text("→ 22.0 GiB")
    page.get_by_role("button", name="Confirm: repair 1 host").click()

    expect(page.locator(".messagelist")).to_have_text(
        "Repaired 1 host(s): host-05 (nodes 4 → 3, memory 38.0 GiB → 22.0 GiB)."
    )
    expect(page.locator(".nf-badge-drift")).to_have_count(0)
    drifted.refresh_from_db()
    assert (drifted.node_count, drifted.node_memory_bytes) == (3, 22 * GiB)


#: Collects every CSP violation the page reports, from its first script on.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""

#: The tallest row label of the fleet page's tables and its narrowest cell with text (a cell squeezed
#: to a letter per line is both tall and narrow; cells of links may wrap between links).
SQUEEZE = """
() => {
  const cells = [...document.querySelectorAll('#nf-fleet td, #nf-fleet th')].filter((c) => c.innerText.trim());
  const labels = [...document.querySelectorAll('#nf-fleet th[scope=row], #nf-fleet th[scope=col]')];
  return [Math.max(...labels.map((c) => c.getBoundingClientRect().height)),
          Math.min(...cells.map((c) => c.getBoundingClientRect().width))];
}
"""


def test_support_staff_see_the_fleet_at_a_glance_on_the_admin_home(page, screenshots):
    from tests.nodes.fleet_fixture import build_fleet

    built = build_fleet()
    errors = []
    page.add_init_script(RECORD_VIOLATIONS)
    page.on(
        "console",
        lambda message: errors.append((message.text, message.location.get("url"))) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(
        page,
        UserFactory(
            username="support",
            is_staff=True,
            permissions=[
                "hosts.view_host",
                "nodes.view_node",
                "nodes.view_command",
                "nodes.view_rollout",
                "nodes.view_image",
            ],
        ),
    )

    page.goto("/admin/")
    fleet_page = page.locator("#nf-fleet")
    expect(fleet_page.locator("#nf-capacity")).to_contain_text("eu-1")
    expect(fleet_page.locator("a.nf-tile")).to_have_count(4)
    expect(fleet_page.locator("a.nf-tile.nf-is-draining")).to_have_attribute("data-host", "eu-a2")
    expect(fleet_page.locator("#nf-audit-age")).to_contain_text("minutes ago")
    expect(fleet_page.locator("#nf-outcomes svg.nf-chart")).to_be_visible()
    for width in (1024, 1280, 1400):
        page.set_viewport_size({"width": width, "height": 900})
        tallest_label, narrowest = page.evaluate(SQUEEZE)
        # a row's height follows its widest content (links wrap); a cell squeezed to a letter per line is narrow
        assert narrowest > 24, f"a fleet table cell is squeezed at {width} px ({tallest_label} px tall label)"
    page.set_viewport_size({"width": 1400, "height": 900})
    page.screenshot(path=screenshots / "fleet.png", full_page=True)

    # Dark theme: the panels read the admin's variables.
    light = page.evaluate("getComputedStyle(document.querySelector('.nf-panel')).backgroundColor")
    page.evaluate("localStorage.setItem('theme', 'dark')")
    page.reload()
    dark = page.evaluate("getComputedStyle(document.querySelector('.nf-panel')).backgroundColor")
    assert dark != light
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=screenshots / "fleet-dark-1280.png", full_page=True)
    page.evaluate("localStorage.setItem('theme', 'light')")

    # A tile leads to its host.
    page.locator("a.nf-tile[data-host='zz-c1']").click()
    expect(page).to_have_url(re.compile(rf"/admin/hosts/host/{built.hosts['zz-c1'].pk}/change/$"))

    # A number leads to the list it counts, showing that many rows.
    for link in ("#nf-commands-overdue", "#nf-nodes-failed", "#nf-hosts-offline", "#nf-rollouts-halted"):
        page.goto("/admin/")
        number = int(page.locator(f"{link} b").inner_text())
        page.locator(link).click()
        expect(page.locator("#result_list tbody tr")).to_have_count(number)

    assert page.evaluate("window.cspViolations") == []
    # The browser asks for /favicon.ico on its own (the admin has none): the only error allowed.
    assert [error for error in errors if not (error[1] or "").endswith("/favicon.ico")] == []


def placement_fleet():
    """eu-01 … eu-04 (eu-1, 16 cores: 4 nodes each), eu-05 (eu-1, manual), us-01 (us-1)."""
    image = ImageFactory(protocol="ethereum", version="1.14.0", min_cpu_cores=4, min_memory_bytes=16 * GiB)
    for n in range(1, 5):
        HostFactory(name=f"eu-{n:02d}", region="eu-1", cpu_cores=16)
    HostFactory(name="eu-05", region="eu-1", scheduling="manual")
    HostFactory(name="us-01", region="us-1")
    return image


def place_nodes(page, image, *, count: int, prefix: str):
    page.goto("/admin/nodes/node/")
    page.get_by_role("link", name="Place nodes…").click()
    expect(page.locator("h1")).to_have_text("Place nodes")
    page.select_option("#id_image", value=str(image.pk))
    page.fill("#id_count", str(count))
    page.fill("#id_name_prefix", prefix)
    page.select_option("#id_region", value="eu-1")
    page.get_by_role("button", name="Show the plan").click()


def test_support_staff_place_nodes_in_a_region_through_the_plan_then_more_than_fits_is_refused(page, screenshots):
    image = placement_fleet()
    log_in(
        page,
        UserFactory(
            username="support", is_staff=True, permissions=["nodes.view_node", "hosts.view_host", "nodes.add_node"]
        ),
    )

    place_nodes(page, image, count=10, prefix="web")
    expect(page.locator("#plan-summary")).to_contain_text("All 10 nodes would be placed, on 3 hosts.")
    plan = page.locator("#placement-plan")
    expect(plan.locator("tbody tr")).to_have_count(10)
    expect(plan.locator("tr", has_text="web-4")).to_contain_text("eu-01")
    expect(plan.locator("tr", has_text="web-4")).to_contain_text("0 cores")  # CPU: counts web-1 … web-3 on eu-01
    expect(plan.locator("tr", has_text="web-10")).to_contain_text("eu-03")
    page.screenshot(path=screenshots / "placement-plan.png", full_page=True)
    assert not Node.objects.exists()  # nothing written before confirm

    page.get_by_role("button", name="Confirm: place 10 nodes").click()
    expect(page.locator(".messagelist")).to_have_text("10 nodes placed on 3 hosts.")
    expect(page.locator("#result_list tbody tr")).to_have_count(10)  # the list, filtered to the new nodes

    refusal = (
        "No host can take this node: 0 of 6 hosts fit (4 short of cpu_cores, 1 not automatic, 1 outside region eu-1)."
    )
    place_nodes(page, image, count=10, prefix="more")
    expect(page.locator("#plan-summary")).to_contain_text("6 of 10 nodes would be placed, on 2 hosts; 4 would not.")
    expect(page.locator("#plan-refusal")).to_have_text(refusal)
    page.get_by_role("button", name="Confirm: place the nodes (6 of 10 fit now)").click()
    expect(page.locator(".messagelist")).to_have_text(f"6 nodes placed on 2 hosts; 4 not placed: {refusal}")
    assert Node.objects.count() == 16
    assert set(Host.objects.filter(region="eu-1", scheduling="automatic").values_list("node_count", flat=True)) == {4}


def test_support_staff_drain_a_host_from_the_hosts_list(page):
    placement_fleet()
    log_in(page, UserFactory(username="support", is_staff=True, permissions=["hosts.view_host", "hosts.change_host"]))

    page.goto("/admin/hosts/host/")
    host_row(page, "eu-02").locator("input.action-select").check()
    run_action(page, "Drain")

    expect(page.locator(".messagelist")).to_have_text(
        "Draining now (no new node goes on them; their nodes stay): eu-02."
    )
    expect(host_row(page, "eu-02").locator(".nf-scheduling-draining")).to_have_text("draining")
    expect(host_row(page, "eu-05").locator(".nf-scheduling-manual")).to_have_text("manual")
    page.get_by_role("link", name="draining", exact=True).click()  # the scheduling filter
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    assert Host.objects.get(name="eu-02").scheduling == "draining"
