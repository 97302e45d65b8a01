"""Monthly partitions of the PostgreSQL events table.

The migration creates two years back to a year ahead; anything else is created here on
demand before a write needs it (ingest, seeding, benchmark) and by the daily
`ensure_event_partitions` task. There is deliberately no DEFAULT partition: rows parked
there would block creating the real partition for their month later.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.db import DatabaseError, connections, transaction

# Months known to exist, per database alias. Only months found already present are
# remembered: one created inside a transaction that later rolls back must be checked again.
_known: set[tuple[str, datetime.date]] = set()


# The app role owns nothing, so it cannot add partitions itself: migrate creates this narrow owner
# function (accounts.rls.register_owner_function, from UsageConfig.ready), which adds exactly one monthly
# partition, with row-level security forced on it like on every tenant table.
CREATE_PARTITION_FUNCTION = "tw_create_event_partition"
CREATE_PARTITION_SQL = """
CREATE OR REPLACE FUNCTION tw_create_event_partition(month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE
    name text := 'usage_event_p' || to_char(month, 'YYYYMM');
BEGIN
    IF month <> date_trunc('month', month)::date THEN
        RAISE EXCEPTION 'not the first day of a month: %', month;
    END IF;
    IF to_regclass(name) IS NULL THEN
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF usage_event FOR VALUES FROM (%L) TO (%L)', name,
                       to_char(month, 'YYYY-MM-DD') || ' 00:00:00+00',
                       to_char(month + interval '1 month', 'YYYY-MM-DD') || ' 00:00:00+00');
        PERFORM tw_apply_tenant_policy(name::regclass);
    END IF;
    RETURN name;
END
$fn$
"""


def month_start(value: datetime.datetime | datetime.date) -> datetime.date:
    return datetime.date(value.year, value.month, 1)


def next_month(day: datetime.date) -> datetime.date:
    return datetime.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def partition_name(month: datetime.date) -> str:
    return f"usage_event_p{month:%Y%m}"


def ensure_event_partitions(months: Iterable[datetime.date], *, using: str = "default") -> list[str]:
    """Create the monthly partitions of `months` that don't exist yet. Returns the ones created.

    A no-op off PostgreSQL, and one catalog lookup per unseen month otherwise.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return []
    wanted = sorted({month_start(m) for m in months} - {m for (alias, m) in _known if alias == using})
    if not wanted:
        return []
    created = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'usage_event'::regclass"
        )
        existing = {row[0] for row in cursor.fetchall()}
        for month in wanted:
            name = partition_name(month)
            if name in existing:
                _known.add((using, month))
                continue
            try:
                # A savepoint, so a racing creator's duplicate error can't poison an outer transaction.
                with transaction.atomic(using=using):
                    cursor.execute("SELECT to_regproc(%s) IS NOT NULL", [CREATE_PARTITION_FUNCTION])
                    if cursor.fetchone()[0]:  # the app role asks the owner (row-level security on it too)
                        cursor.execute(f"SELECT {CREATE_PARTITION_FUNCTION}(%s::date)", [month])
                    else:  # before the first migrate has created it
                        cursor.execute(
                            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF usage_event "
                            f"FOR VALUES FROM ('{month.isoformat()} 00:00:00+00') "
                            f"TO ('{next_month(month).isoformat()} 00:00:00+00')"
                        )
                created.append(name)
            except DatabaseError:
                # Another process created it between our lookup and CREATE: that is fine.
                pass
    return created


def ensure_partitions_around(
    today: datetime.date, *, months_back: int, months_ahead: int, using: str = "default"
) -> list[str]:
    first = month_start(today)
    months = [first]
    back = first
    for _ in range(months_back):
        back = month_start(back - datetime.timedelta(days=1))
        months.append(back)
    ahead = first
    for _ in range(months_ahead):
        ahead = next_month(ahead)
        months.append(ahead)
    return ensure_event_partitions(months, using=using)
