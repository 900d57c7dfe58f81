"""Prepared statements for the hot path (issue 22, docs/performance.md "Connections").

`prepared_cursor()` is `connection.cursor()` for the few statements every upgrade, agent call and
token request runs (the upgrade's locked read and its one write, the agent's poll and its locked
read of a command, the token lookup): on PostgreSQL it is a server-side binding cursor on the
same connection, so psycopg prepares each of those statements once it has run
`prepare_threshold` times there (5, psycopg's default) and PostgreSQL parses and plans it once per
connection instead of once per request. Each is a fixed text with one plan whatever its values
(rows by primary key or unique digest), so a generic plan is the plan. Every other statement
keeps Django's client-side binding: the ORM's and the admin's SQL were written for it, and a
search's plan depends on its pattern.

The cursor is wrapped as Django wraps its own (the health check first, the error translation,
the debug wrapper that records queries), so statement budgets count these statements as
before. DB_PREPARED_STATEMENTS=false turns it off: behind a pooler in transaction mode that does
not keep prepared statements (PgBouncer before 1.21, or without max_prepared_statements)."""

from django.conf import settings
from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor


def prepared_cursor():
    """A cursor of the default connection whose statements PostgreSQL prepares (see above)."""
    if (
        connection.vendor != "postgresql"
        or not settings.DB_PREPARED_STATEMENTS
        or connection.settings_dict["OPTIONS"].get("server_side_binding")  # every cursor is one already
    ):
        return connection.cursor()
    connection.close_if_health_check_failed()  # what connection.cursor() does, then its own cursor
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))
