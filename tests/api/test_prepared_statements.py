"""The hot statements are prepared on each connection (config.db.prepared, issue 22): after a
few upgrades PostgreSQL holds the upgrade's locked read and its one write as prepared
statements, the statements on the wire stay the same four, and DB_PREPARED_STATEMENTS=false
prepares nothing. Real commits on PostgreSQL: the prepared statements live on the connection."""

import pytest
from django.db import connection

from nodes.changes import node_upgrade
from tests.support import round_trips

pytestmark = pytest.mark.django_db(transaction=True)

RUNS = 8  # past psycopg's prepare_threshold (5)


def _prepared() -> dict[str, str]:
    """The connection's protocol-level prepared statements (psycopg's), by name."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements WHERE from_sql = false")
        return dict(cursor.fetchall())


def _upgrade_back_and_forth(fleet, runs: int) -> None:
    for run in range(runs):
        node_upgrade(node_id=fleet["node"].pk, image_id=(fleet["v2"] if run % 2 == 0 else fleet["v1"]).pk)


def test_the_upgrades_locked_read_and_write_are_prepared_and_still_counted(fleet):
    connection.close()  # a new connection: nothing prepared on it yet
    _upgrade_back_and_forth(fleet, RUNS)

    prepared = _prepared()
    assert any("FOR NO KEY UPDATE" in sql for sql in prepared.values()), prepared
    assert any(sql.lstrip().startswith("WITH") and "UPDATE" in sql for sql in prepared.values()), prepared
    assert all("$1" in sql for sql in prepared.values())  # server-side parameters, not literals

    with round_trips() as statements:  # prepared before the block: sent by name only
        node_upgrade(node_id=fleet["node"].pk, image_id=fleet["v2"].pk)
    named = [prepared.get(sql.removeprefix("EXECUTE "), sql) for sql in statements]
    assert [sql.split()[0] for sql in named] == ["BEGIN", "SELECT", "WITH", "COMMIT"], statements
    assert "FOR NO KEY UPDATE" in named[1]


def test_off_nothing_is_prepared(fleet, settings):
    settings.DB_PREPARED_STATEMENTS = False
    connection.close()
    _upgrade_back_and_forth(fleet, RUNS)

    assert _prepared() == {}
