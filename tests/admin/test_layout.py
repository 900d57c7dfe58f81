"""The admin at a support person's screen widths (1,280 and 1,440 px, headless Chromium): no cell
of any list or page cuts what it holds (no td/th, nor anything inside one, whose content is wider
than its box), and a host's name never wraps."""

import datetime as dt
import json
import os

import pytest
from django.core.management import call_command
from django.utils import timezone

from hosts.agent_tokens import agent_token_issue
from hosts.models import Host
from nodes.changes import node_upgrade
from nodes.models import Image, Node
from nodes.rollouts.plan import Selection
from nodes.rollouts.services import rollout_create
from tests.admin.test_browser import log_in, page  # noqa: F401 (fixture)
from tests.factories import UserFactory
from tests.nodes.rollouts.support import answer, work

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = [1280, 1440]

#: Every td/th of the page's content (and every element inside one that clips its overflow) whose
#: content is wider than its box: clipped, or spilling over its neighbour.
OVERFLOWING = """() => {
  const cut = [];
  const clips = e => getComputedStyle(e).overflowX !== 'visible';
  for (const cell of document.querySelectorAll('#content td, #content th')) {
    const inner = [...cell.querySelectorAll('*')].filter(clips);
    for (const box of [cell, ...inner]) {
      if (box.offsetParent !== null && box.scrollWidth > box.clientWidth + 1) {
        cut.push(`${cell.className || cell.tagName}: "${cell.innerText.trim().slice(0, 60)}" ` +
                 `(${box.scrollWidth} > ${box.clientWidth} px)`);
        break;
      }
    }
  }
  // A table wider than the box that scrolls it (the changelist's .results): its last columns are cut.
  for (const box of document.querySelectorAll('#content *')) {
    if (box.tagName !== 'TD' && box.tagName !== 'TH' && !box.closest('td, th') && clips(box)
        && box.offsetParent !== null && box.scrollWidth > box.clientWidth + 1) {
      cut.push(`${box.tagName.toLowerCase()}.${box.className || box.id} scrolls: ` +
               `${box.scrollWidth} > ${box.clientWidth} px`);
    }
  }
  if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1) {
    cut.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} px`);
  }
  return cut;
}"""

#: Host name cells whose text breaks over two lines.
WRAPPED_NAMES = """() => [...document.querySelectorAll('#result_list .field-host, #result_list .field-host_link')]
  .filter(cell => {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    const text = walker.nextNode();
    if (!text || !text.textContent.trim()) return false;
    const range = document.createRange();
    range.selectNodeContents(text);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1;
  }).map(cell => cell.innerText.trim())"""


def busy_fleet():
    """The quick start's demo fleet (five-digit host names), agents seen a moment ago, a node
    upgrading, a history of upgrades, commands, and a rollout paused after its canary batch, made
    by a support person with a long username."""
    call_command("seed_demo", "--hosts", "12", "--nodes-per-host", "3")
    now = timezone.now()
    for index, host in enumerate(Host.objects.order_by("name")):
        agent_token_issue(host=host)
        seen = now - (dt.timedelta(seconds=20) if index % 4 else dt.timedelta(hours=3))
        Host.objects.filter(pk=host.pk).update(agent_seen_at=seen)
    support = UserFactory(username="support-engineer-on-call", is_staff=True, is_superuser=True)
    node = Node.objects.filter(image__protocol="ethereum", image__version="1.13.0").order_by("name").first()
    newer = Image.objects.get(protocol="ethereum", version="1.14.0")
    node_upgrade(node_id=node.pk, image_id=newer.pk, force=True)
    answer("succeeded")
    older = Image.objects.get(protocol="ethereum", version="1.13.0")
    node_upgrade(node_id=node.pk, image_id=older.pk, force=True)  # open: the node is upgrading
    rollout = rollout_create(selection=Selection(image=newer, canary=1, batch_size=2), start=True, actor=support)
    work()
    answer("succeeded", only={n.pk for n in Node.objects.exclude(pk=node.pk)})
    work()
    rollout.refresh_from_db()
    return support, node, rollout


@pytest.mark.parametrize("width", WIDTHS)
def test_no_cell_cuts_what_it_holds(page, width):  # noqa: F811
    support, node, rollout = busy_fleet()
    assert rollout.state == "paused"
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, support)
    cut = {}
    for path in (
        "/admin/hosts/host/",
        f"/admin/hosts/host/{node.host_id}/change/",
        "/admin/nodes/node/",
        f"/admin/nodes/node/{node.pk}/change/",
        "/admin/nodes/image/",
        "/admin/nodes/rollout/",
        f"/admin/nodes/rollout/{rollout.pk}/change/",
        "/admin/nodes/command/",
        "/admin/nodes/nodelog/",
    ):
        page.goto(path)
        if os.environ.get("LAYOUT_SHOTS"):
            page.screenshot(path=f"{os.environ['LAYOUT_SHOTS']}/{width}{path.replace('/', '_')}.png", full_page=True)
        found = page.evaluate(OVERFLOWING) + [f"wrapped host name: {n}" for n in page.evaluate(WRAPPED_NAMES)]
        if found:
            cut[path] = found
    assert cut == {}, json.dumps(cut, indent=1)
