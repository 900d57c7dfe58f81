"""Substring search by name that stays fast on a big table: a trigram GIN index (pg_trgm) on the
expression Django's `icontains` compares on PostgreSQL, `UPPER(name::text)`. PostgreSQL only;
on SQLite (the quick start) the migration operation does nothing and the search scans."""

from django.db import migrations


def index_name(table: str, column: str) -> str:
    return f"{table}_{column}_trgm"


def trigram_index(table: str, column: str) -> migrations.RunPython:
    """A migration operation creating (CONCURRENTLY: run it in a non-atomic migration) the index
    on PostgreSQL, and dropping it on the way back."""
    name = index_name(table, column)

    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" '
                f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
            )

    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')

    return migrations.RunPython(forwards, backwards, elidable=False)


def trigram_index_without_pending_list(table: str, column: str) -> migrations.RunPython:
    """A migration operation turning off GIN's fast update on the index (issue 22): with it on,
    new rows wait in a pending list of up to gin_pending_list_limit (4 MB) that every search
    reads through in full, besides the index, until a vacuum merges it; the list is merged now.
    Inserts then update the index at once (a node create is one row)."""
    name = index_name(table, column)

    def forwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f'ALTER INDEX IF EXISTS "{name}" SET (fastupdate = off)')
            schema_editor.execute(
                f"SELECT gin_clean_pending_list(to_regclass('{name}')) WHERE to_regclass('{name}') IS NOT NULL"
            )

    def backwards(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f'ALTER INDEX IF EXISTS "{name}" RESET (fastupdate)')

    return migrations.RunPython(forwards, backwards, elidable=False)
