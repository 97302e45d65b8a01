"""The flush after each transactional test, on PostgreSQL: DELETE from the tables that hold rows.

Django's flush TRUNCATEs every table (well over a hundred here), which costs PostgreSQL 1-2 s a
test on this machine: the transactional tests (real workers, the live server, the browser) spent
more time being cleaned up than running. A test leaves rows in a handful of tables; one query
finds them and they are deleted in one transaction. Every foreign key is DEFERRABLE INITIALLY
DEFERRED (Django's, and the raw SQL of usage's partitioned events), so the order does not matter;
no table has a trigger. The result is the same empty database (content types and permissions, which only
migrate writes, are kept rather than written again). Only for a superuser connection
(which row-level security does not hide rows from), and never when sequences are to be reset.
"""

from __future__ import annotations

from django.db.backends.postgresql.operations import DatabaseOperations

_truncate_all = DatabaseOperations.sql_flush
# Written by migrate and never by a test: kept, so flush's post_migrate does not insert them all again.
KEPT = {"django_content_type", "auth_permission"}


def _delete_what_is_there(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    if reset_sequences or not tables:
        return _truncate_all(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    quote = self.quote_name
    with self.connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
        if not (row and row[0]):
            return _truncate_all(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        cursor.execute(" UNION ALL ".join(f"(SELECT {i} FROM {quote(t)} LIMIT 1)" for i, t in enumerate(tables)))
        holding = [tables[index] for (index,) in cursor.fetchall() if tables[index] not in KEPT]
    return [f"DELETE FROM {quote(table)};" for table in holding]


def install() -> None:
    DatabaseOperations.sql_flush = _delete_what_is_there  # type: ignore[method-assign]
