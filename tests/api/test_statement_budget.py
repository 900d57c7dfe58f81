"""An authenticated API write's statement budget (issue 12): at most 7 statements on the wire,
BEGIN and COMMIT included. It is 6: the connection's health check, authentication with
permissions (one statement, tokens), then the upgrade's BEGIN, locked read, one write and
COMMIT. Middleware adds none (no session for a token request); the write throttle, on in
production, adds its one count (config.throttles): 7."""

import pytest
from django.db import close_old_connections

from config.throttles import rates
from tests.support import round_trips

pytestmark = pytest.mark.django_db(transaction=True)  # real BEGIN/COMMIT, not savepoints

BUDGET = 7


def test_an_authenticated_upgrade_over_http_stays_within_the_budget(as_role, fleet):
    client = as_role("upgrader")
    url = f"/api/v1/nodes/{fleet['node'].pk}/upgrade/"

    with round_trips() as statements:
        close_old_connections()  # what request_started does under gunicorn (the test client skips it)
        answer = client.post(url, {"image_id": str(fleet["v2"].pk)}, format="json")

    assert answer.status_code == 200, answer.content
    assert len(statements) <= BUDGET, "\n".join(statements)
    upgrade = [sql.split()[0] for sql in statements[-4:]]
    assert upgrade == ["BEGIN", "SELECT", "WITH", "COMMIT"], statements
    # The connection's health check (CONN_HEALTH_CHECKS: `SELECT 1` once per request), then the
    # token with its user and permissions in one statement (tokens), then the upgrade's four.
    assert statements[:2] == ["SELECT 1", statements[1]] and "FROM" in statements[1], statements
    assert len(statements) == 6, statements
    assert not any("django_session" in sql for sql in statements)


def test_with_the_production_write_throttle_an_upgrade_costs_one_statement_more(as_role, fleet, settings, monkeypatch):
    """API_WRITE_THROTTLE_RATE's default: the write is counted by one upsert (config.throttles),
    before the upgrade's transaction; 7, the budget (plus, one write in PRUNE_ONE_IN, the
    DELETE of ended windows, left out here)."""
    settings.API_WRITE_THROTTLE_RATE = "600/min"
    monkeypatch.setattr(rates, "PRUNE_ONE_IN", 10**9)
    client = as_role("upgrader")
    url = f"/api/v1/nodes/{fleet['node'].pk}/upgrade/"

    with round_trips() as statements:
        close_old_connections()
        answer = client.post(url, {"image_id": str(fleet["v2"].pk)}, format="json")

    assert answer.status_code == 200, answer.content
    assert len(statements) == BUDGET, statements
    assert statements[2].startswith("INSERT INTO throttles_ratewindow"), statements
    assert [sql.split()[0] for sql in statements[-4:]] == ["BEGIN", "SELECT", "WITH", "COMMIT"], statements
