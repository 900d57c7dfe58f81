"""The Content-Security-Policy in a real browser (Debian's headless Chromium): Swagger UI at
/api/v1/docs/ still renders the API's operations from local files, and neither it nor the admin
pages support staff use trip a single CSP violation."""

from pathlib import Path

import pytest
from django.db import connections
from django.urls import reverse
from playwright.sync_api import expect, sync_playwright

from tests.admin.test_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, fleet, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

#: Records every violation the page reports (the securitypolicyviolation event), from its first script on.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


class Watched:
    """A page, the CSP complaints of its console and every request it made to another origin."""

    def __init__(self, page, origin: str):
        self.page, self.console, self.foreign = page, [], []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", lambda message: self.console.append(message.text))
        page.on("request", lambda request: None if request.url.startswith(origin) else self.foreign.append(request.url))

    def violations(self) -> list[str]:
        reported = self.page.evaluate("window.cspViolations")
        return reported + [text for text in self.console if "Content Security Policy" in text]


@pytest.fixture
def watched(live_server, monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (`.ci/run` does).")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=live_server.url)
        context.set_default_timeout(15_000)
        yield Watched(context.new_page(), live_server.url)
        browser.close()
        connections.close_all()


def test_swagger_ui_renders_the_operations_offline_without_a_csp_violation(watched):
    page = watched.page
    page.goto("/api/v1/docs/")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/nodes/{id}/upgrade/")).to_be_visible()
    page.locator(".opblock-summary", has_text="/api/v1/hosts/").first.click()  # an operation opens
    expect(page.locator(".opblock-body").first).to_be_visible()

    assert watched.violations() == []
    assert watched.foreign == []  # Swagger UI and its assets come from this server


def test_the_admin_pages_support_staff_use_trip_no_csp_violation(watched):
    page = watched.page
    hosts = fleet()
    log_in(page, UserFactory(is_staff=True, is_superuser=True, password=PASSWORD))
    for url in (
        reverse("admin:hosts_host_changelist"),  # usage bars
        reverse("admin:hosts_host_change", args=[hosts[0].pk]),
        reverse("admin:hosts_host_add"),
        reverse("admin:nodes_node_changelist"),
        reverse("admin:nodes_node_add"),
        reverse("admin:fleet_audit"),
    ):
        page.goto(url)
        expect(page.locator("#content")).to_be_visible()
    page.goto(reverse("admin:hosts_host_changelist"))
    page.locator("#result_list tbody input.action-select").first.check()  # the actions' script runs
    expect(page.locator(".action-counter")).to_contain_text("1 of")

    assert watched.violations() == []
    assert watched.foreign == []
