"""API writes are throttled per user; reads are not."""

import pytest
from django.core.cache import cache

from nodes.models import Node
from tests.api.conftest import PROBLEM


@pytest.fixture
def write_limit(settings):
    settings.API_WRITE_THROTTLE_RATE = "2/min"
    cache.clear()
    yield
    cache.clear()


def test_writes_past_the_rate_answer_429_problem_details_with_retry_after(write_limit, as_role, fleet):
    client = as_role("admin")
    body = {"host_id": str(fleet["host"].pk), "image_id": str(fleet["v1"].pk)}

    answers = [client.post("/api/v1/nodes/", {**body, "name": f"t-{i}"}, format="json") for i in range(3)]

    assert [a.status_code for a in answers] == [201, 201, 429]
    refused = answers[2]
    assert refused["Content-Type"] == PROBLEM
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1
    assert not Node.objects.filter(name="t-2").exists()


def test_reads_are_not_throttled_and_each_user_has_their_own_count(write_limit, as_role, fleet):
    first, second = as_role("admin"), as_role("admin")
    assert all(first.get("/api/v1/nodes/").status_code == 200 for _ in range(5))
    for name in ("a", "b"):
        first.post("/api/v1/nodes/", {"name": name, "host_id": str(fleet["host"].pk), "image_id": str(fleet["v1"].pk)})
    third = {"name": "c", "host_id": str(fleet["host"].pk), "image_id": str(fleet["v1"].pk)}
    assert first.post("/api/v1/nodes/", third, format="json").status_code == 429
    assert second.post("/api/v1/nodes/", third, format="json").status_code == 201
