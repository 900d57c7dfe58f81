"""An authenticated API write's statement budget (issue 12): at most 7 statements on the wire,
BEGIN and COMMIT included. It is 5: authentication with permissions (one statement, tokens),
then the upgrade's BEGIN, locked read, one write and COMMIT. Middleware adds none (no session
for a token request)."""

import pytest

from tests.support import round_trips

pytestmark = pytest.mark.django_db(transaction=True)  # real BEGIN/COMMIT, not savepoints

BUDGET = 7


def test_an_authenticated_upgrade_over_http_stays_within_the_budget(as_role, fleet):
    client = as_role("upgrader")
    url = f"/api/v1/nodes/{fleet['node'].pk}/upgrade/"

    with round_trips() as statements:
        answer = client.post(url, {"image_id": str(fleet["v2"].pk)}, format="json")

    assert answer.status_code == 200, answer.content
    assert len(statements) <= BUDGET, "\n".join(statements)
    upgrade = [sql.split()[0] for sql in statements[-4:]]
    assert upgrade == ["BEGIN", "SELECT", "WITH", "COMMIT"], statements
    assert len(statements) == 5, statements  # the token, its user and permissions: one statement (tokens)
    assert not any("django_session" in sql for sql in statements)
