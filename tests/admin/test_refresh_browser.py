"""A page with work in flight refreshes itself in a real browser (headless Chromium): a support
person watching a node upgrade sees it turn running when its agent reports, without reloading,
and the script (static, CSP-clean) stops once they have changed something on the page."""

import pytest
from playwright.sync_api import expect

from nodes.changes import node_upgrade
from tests.admin.test_browser import log_in, page  # noqa: F401 (fixture)
from tests.factories import GiB, HostFactory, ImageFactory, TiB, UserFactory, place_node
from tests.nodes.rollouts.support import answer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_node_page_turns_running_by_itself_when_the_agent_reports(page, settings):  # noqa: F811
    settings.ADMIN_REFRESH_SECONDS = 1
    old, new = ImageFactory(version="1.14.0"), ImageFactory(version="1.15.0")
    host = HostFactory(name="host-00001", cpu_cores=64, memory_bytes=256 * GiB, disk_bytes=8 * TiB)
    node = place_node(host=host, image=old, name="eth-1")
    node_upgrade(node_id=node.pk, image_id=new.pk)
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    log_in(page, UserFactory(username="support", is_staff=True, permissions=["nodes.view_node"]))

    page.goto(f"/admin/nodes/node/{node.pk}/change/")
    expect(
        page.locator(".field-state_badge, .field-state_column, .form-row").filter(has_text="Upgrading").first
    ).to_be_visible()
    expect(page.locator("#nf-refresh")).to_be_visible()
    answer("succeeded")  # the host's agent reports

    expect(page.get_by_text("Running", exact=True)).to_be_visible(timeout=10_000)
    expect(page.locator("#nf-refresh")).to_have_count(0)  # nothing in flight: no script, no note
    assert not [e for e in errors if "Content Security Policy" in e], errors
