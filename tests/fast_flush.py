"""The flush after each transactional test, on PostgreSQL: DELETE from the tables that hold rows.

Django's flush TRUNCATEs every table (well over a hundred here), which costs PostgreSQL 1-2 s a
test on this machine: the transactional tests (real workers, the live server, the browser) spent
more time being cleaned up than running. A test leaves rows in a handful of tables; one query
finds them and they are deleted in one transaction. Tables over 1 MB on disk (the ingest tests
fill some) are truncated instead: deleted rows would stay on their pages and slow every later
scan. Every foreign key is DEFERRABLE INITIALLY DEFERRED (Django's, and the raw SQL of usage's
partitioned events), so the order does not matter; no table has a trigger. The result is the same
empty database (content types and permissions, which only migrate writes, are kept rather than
written again). Only for a superuser connection (which row-level security does not hide rows
from), and never when sequences are to be reset.
"""

from __future__ import annotations

from django.db.backends.postgresql.operations import DatabaseOperations

_truncate_all = DatabaseOperations.sql_flush
# Written by migrate and never by a test: kept, so flush's post_migrate does not insert them all again.
KEPT = {"django_content_type", "auth_permission"}
BIG_BYTES = 1 << 20


def _delete_what_is_there(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    if reset_sequences or not tables:
        return _truncate_all(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    quote = self.quote_name
    with self.connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
        if not (row and row[0]):
            return _truncate_all(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        # On disk (a partitioned table: its partitions): a big table is truncated, since deleted rows stay on
        # its pages until a vacuum and every later scan would read them.
        cursor.execute(  # pg_partition_tree lists nothing for a table that is not partitioned
            "SELECT t, pg_relation_size(quote_ident(t)::regclass) + (SELECT coalesce(sum(pg_relation_size(p.relid)), 0)"
            " FROM pg_partition_tree(quote_ident(t)::regclass) p WHERE p.relid <> quote_ident(t)::regclass)"
            " FROM unnest(%s::text[]) AS t",
            [list(tables)],
        )
        big = [t for t, size in cursor.fetchall() if size > BIG_BYTES and t not in KEPT]
        small = [t for t in tables if t not in big]
        cursor.execute(" UNION ALL ".join(f"(SELECT {i} FROM {quote(t)} LIMIT 1)" for i, t in enumerate(small)))
        holding = [small[index] for (index,) in cursor.fetchall() if small[index] not in KEPT]
    # CASCADE: the tables that point at a big one go too (emptied below anyway).
    truncate = [f"TRUNCATE {', '.join(quote(t) for t in big)} CASCADE;"] if big else []
    return truncate + [f"DELETE FROM {quote(table)};" for table in holding]


def install() -> None:
    DatabaseOperations.sql_flush = _delete_what_is_there  # type: ignore[method-assign]
